"""``distill adapt``, before anything is spent: its options, the budget, the recipe it writes and the plan it
prints (the teacher's time estimated, the cache counted)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.errors import DistillError

if TYPE_CHECKING:
    pass

# Measured on 2 cores, all-mpnet-base-v2 at its 384-token limit: ~4.4 SQuAD paragraphs/s (~150 tokens, ~660 tokens/s),
# ~1.4 NFCorpus abstracts/s (~330 tokens, ~460 tokens/s) and FiQA's 10,000 answers (1,678,357 tokens, longest first,
# nothing else running) in 68.7 min, 407 tokens/s. The plan takes the slowest, so that a long pass is never promised
# short (at 600 it told FiQA 46 min). MiniLM-L6 trains at ~5.5 examples/s on a query and its passage at 256 tokens,
# and at ~2.5 with a hard negative each (NFCorpus).
TEACHER_TOKENS_PER_S = 400.0
TEACHER_REFERENCE_PARAMS = 110e6
STUDENT_EXAMPLES_PER_S = 5.5
STUDENT_EXAMPLES_PER_S_WITH_NEGATIVES = 2.5
# A query-only student embeds only queries (64 tokens); the passages are the teacher's cached embeddings, and by
# default every one of them is a listwise-KL column (one batch x dim x corpus product a step). Measured on 2 cores,
# MiniLM-L6 on FiQA (10,000 columns): the query log alone at 47-50 queries/s (1,368 steps, ~42,900 queries, in
# 849-917 s; unit tests shared the cores for part of one run); the log with one sentence of each answer beside it
# (5,400 questions, 9,786 sentences) at 23.5-32 queries/s over three runs (32 and 23.5 for 4 epochs, unit tests
# sharing 2 of the first's 32 min; 27.2 for 8, alone: 3,858 steps in 4,463 s). Sentences are longer than questions;
# the pseudo-query rate below makes that mix come out near its slowest run (the plan said 36.6 queries/s with 60 and
# 30, and 55 min for a run that took 74). Like the teacher's rate, the slowest: a long run is never promised short.
QUERY_ONLY_EXAMPLES_PER_S = 47.0
QUERY_ONLY_PSEUDO_PER_S = 20.0
# The teacher's pass over training queries, in queries a second on 2 cores: all-mpnet-base-v2 embedded 10,213 of
# FiQA's pseudo-queries (sentences of the answers) in ~15 min (~11.5/s) and 9,618 in 8.6 min (~18.6/s) in another
# run; the slower figure, so that the plan does not promise too little.
TEACHER_QUERIES_PER_S = 11.5
# A user's questions are shorter: the teacher embedded FiQA's 5,500 log queries in 2.3 min (~40/s) and 5,379 variants
# of them (words left out) in 2.0 min (~44/s); the slower again.
TEACHER_USER_QUERIES_PER_S = 40.0
# The kinds of training query (distill.training.tasks.queries) shaped like a user's questions, short: the rest are
# sentences cut from the corpus.
USER_KINDS = ("user", "variant")

# Listwise KL at T = 0.05, the best loss of the SQuAD ablation (docs/benchmarks/retrieval.md). A passage-passage
# relation loss is one override away (--set 'losses.1={name: similarity_matrix, keys: [passage, negative], cross:
# false, weight: W}'); at weight 1 its MSE of cosines is ~100x listwise KL's value and dominates the mix.
ADAPT_LOSSES = [{"name": "listwise_kl", "weight": 1.0, "temperature": 0.05}]
# A query-only student (--query-only): the documents keep the teacher's embeddings and index and only the query
# encoder is trained, into the teacher's space (a ridge-fitted head where the widths differ). Its passages are fixed
# rows, so every query is scored against the whole corpus (passage_memory: corpus): listwise KL over the teacher's
# ranking of the index it will search, weighted 100, alone. On FiQA's query log this beat the SQuAD query-only recipe
# (listwise KL weighted 20 over the batch, beside a cosine to the teacher's query embedding) by 2.1 nDCG@10 points at
# the same 1,368 steps (docs/benchmarks/own-data.md); its steps are cheap (queries only), so it trains for 8 epochs at
# lr 1e-4, checked every 50 steps. Held-out agreement still rose at epoch 7.
QUERY_ONLY_LOSSES = [{"name": "listwise_kl", "weight": 100.0, "temperature": 0.05}]
QUERY_ONLY_SETTINGS = {"epochs": 8, "eval_every": 50, "save_every": 50, "passage_memory": "corpus"}


@dataclass(frozen=True)
class AdaptOptions:
    """What ``distill adapt`` is asked to do (``distill/cli.py`` builds it from the command line's flags)."""

    indexing: Path  # the user's indexing pipeline YAML: its document embedder is the teacher
    query: Path  # the user's query pipeline YAML: its text embedder embeds with the same model
    corpus: str  # the user's documents: a BEIR folder, a .jsonl of passages, a SQuAD .json
    queries: str | None = None  # unlabelled queries: a text file (one per line), a .jsonl, a BEIR folder:split
    # pseudo-queries cut from the corpus (titles, sentences); None: one per passage, which 0 becomes without `queries`
    # (nothing else to train on)
    pseudo_queries: int | None = 0
    # variants of each of the user's queries with words left out, labelled by the teacher (data.query_variants)
    query_variants: int = 0
    student: str = "minilm-l6"  # the student to distil into: a model spec or folder
    budget: str | None = None  # caps the work: minutes (30m, 1.5h) or passages (2000p); see parse_budget
    eval_data: str | None = None  # a labelled data set to score relevance on; None: agreement with the teacher
    eval_questions: int | None = None  # a seeded sample (seed 0) of this many eval_data questions
    out: Path = Path("runs/adapt")  # the folder for the recipe, the student and the reports
    overrides: tuple[str, ...] = ()  # recipe overrides, KEY=VALUE as `distill train --set` takes them
    plan_only: bool = False  # check the data, print the plan, write the recipe, and stop
    anyway: bool = False  # train even when the off-the-shelf student already matches the teacher
    # train only a query encoder into the teacher's space: the documents keep the teacher's embeddings and index
    query_only: bool = False

    def __post_init__(self) -> None:
        if self.queries is None and self.pseudo_queries == 0:
            object.__setattr__(self, "pseudo_queries", None)
        if self.query_variants and self.queries is None:
            raise DistillError("--query-variants varies your queries: give them with --queries")


def parse_budget(text: str | None) -> tuple[float | None, int | None]:
    """``30m`` / ``2h`` (minutes) or ``2000p`` (passages) -> (minutes, passages)."""
    if text is None:
        return None, None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(m|min|h|p|passages)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise DistillError(f"--budget must be minutes (30m, 1.5h) or passages (2000p), got {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    if unit in ("p", "passages"):
        return None, int(value)
    return (value * 60 if unit == "h" else value), None


def build_recipe(
    indexing: Path,
    query: Path,
    *,
    corpus: str,
    queries: str | None,
    pseudo_queries: int | None,
    student: str,
    output: Path,
    overrides: list[str],
    query_only: bool = False,
    query_variants: int = 0,
) -> dict[str, Any]:
    """The recipe ``distill adapt`` trains with, validated (overrides as ``distill train`` takes them); with
    ``query_only`` a query encoder into the teacher's space (``QUERY_ONLY_LOSSES``, ``QUERY_ONLY_SETTINGS``)."""
    from distill.training import recipes

    recipe = recipes.apply_overrides(recipes.EMBEDDER_DEFAULTS, [])
    recipe.update(
        teacher="pipelines",
        student=student,
        pipelines={"indexing": str(indexing.resolve()), "query": str(query.resolve())},
        # the student is OUT/student: its name (OUT's name + "student") tells its index apart from other runs
        output=str(output),
        losses=[dict(loss) for loss in ADAPT_LOSSES],
        eval_every=20,
        save_every=20,
    )
    recipe["data"].update(
        train=corpus,
        labels="teacher",
        queries=queries,
        pseudo_queries=pseudo_queries,
        query_variants=query_variants,
        hard_negatives=True,
        questions=None,
        dev_questions=100,
    )
    if query_only:
        recipe.update(query_only=True, losses=[dict(loss) for loss in QUERY_ONLY_LOSSES], **QUERY_ONLY_SETTINGS)
        recipe["optimizer"] = {**recipe["optimizer"], "lr": 1e-4}
    return recipes.validate(recipes.apply_overrides(recipe, overrides))


@dataclass
class Plan:
    """What a run will do and cost, before it starts."""

    passages: int
    skipped: dict[str, int]
    queries: dict[str, int]
    held_out: int
    uncached_passages: int
    teacher_tokens: int
    teacher_minutes: float
    steps: int
    train_minutes: float
    train_rate: float
    left_out: list[str] = field(default_factory=list)
    chunking: dict[str, Any] | None = None  # where the indexing pipeline preprocesses: what it made of the corpus
    query_file: dict[str, Any] = field(default_factory=dict)  # what reading the user's queries skipped
    long_queries: int | None = None  # training queries longer than the student's query limit (cut); None: unknown
    query_limit: int | None = None
    negatives_from: str = "teacher"
    query_only: bool = False  # only queries are embedded by the student; documents keep the teacher's index
    uncached_queries: int = 0  # training queries (held-out ones too) the teacher has not embedded yet
    query_minutes: float = 0.0

    @property
    def unit(self) -> str:
        return "chunks" if self.chunking is not None else "passages"

    def _corpus_line(self) -> str:
        skipped = ", ".join(f"{v} {k}" for k, v in self.skipped.items() if v)
        skipped = f" ({skipped} skipped)" if skipped else ""
        if not (c := self.chunking):
            return f"corpus: {self.passages} passages{skipped}"
        return (
            f"corpus: {self.passages} chunks, cut from {c['documents']} documents{skipped} by the indexing pipeline's "
            f"{' -> '.join(c['components'])} "
            f"({c['chunks']} chunks: {c['skipped_empty_chunks']} empty and {c['duplicate_chunks']} duplicates "
            f"skipped, {c['documents_without_chunks']} documents gave none; "
            f"{'read from' if c['cached'] else 'stored in'} the chunk cache)"
        )

    def lines(self) -> list[str]:
        q = self.queries
        read = self.query_file
        skipped = (
            f" ({read.get('blank', 0)} blank, {read.get('duplicates', 0)} repeated and {read.get('not_utf8', 0)} "
            "not UTF-8 lines skipped)"
            if read
            else ""
        )
        long = (
            f"; {self.long_queries} longer than the student's {self.query_limit} tokens (cut)"
            if self.long_queries is not None
            else ""
        )
        out = [
            self._corpus_line(),
            f"queries: {q.get('user', 0)} of yours{skipped}, "
            f"{q.get('title', 0) + q.get('sentence', 0) + q.get('question', 0)} pseudo-queries cut from the corpus "
            f"({q.get('title', 0)} titles, {q.get('sentence', 0)} sentences"
            + (f", {q['question']} questions the passages ask" if q.get("question") else "")
            + ")"
            + (f", {q['variant']} variants of yours with words left out" if q.get("variant") else "")
            + f"; {self.held_out} held out to choose the checkpoint by agreement with the teacher{long}",
            f"teacher: {self.uncached_passages} {self.unit} to embed "
            f"({self.passages - self.uncached_passages} cached), "
            f"about {self.teacher_minutes:.0f} min (estimate: {self.teacher_tokens:,} tokens at "
            f"{TEACHER_TOKENS_PER_S:.0f} tokens/s for a 110M-parameter teacher on 2 cores); "
            f"{self.uncached_queries} of the {sum(q.values())} queries to embed "
            f"({sum(q.values()) - self.uncached_queries} cached), about {self.query_minutes:.0f} min (estimate: "
            f"{TEACHER_USER_QUERIES_PER_S:g} of your queries or {TEACHER_QUERIES_PER_S:g} pseudo-queries a second)",
            f"training: about {self.steps} steps, about {self.train_minutes:.0f} min (estimate: "
            f"{self.train_rate:.1f} {'queries' if self.query_only else 'examples'}/s for a MiniLM-L6-size student on 2 "
            "cores; queries whose top passage is "
            "the same train in different batches, so there may be more steps of fewer queries)",
        ]
        if self.query_only:
            out.append(
                "query-only: the student embeds the queries, the documents keep the teacher's embeddings and index "
                "(your indexing pipeline and its store stay as they are: index with the teacher, search with the "
                "student)"
            )
        if self.negatives_from != "teacher":
            out.append(
                f"negatives: {'half ' if self.negatives_from == 'both' else ''}from where the untrained student "
                f"disagrees with the teacher, after one pass of the student over the {self.passages} {self.unit} "
                "(cached; MiniLM-L6 took 7.5 min for FiQA's 10,000 passages on 2 cores)"
            )
        out += [f"budget: {line}" for line in self.left_out]
        return out


def _train_rate(recipe: dict[str, Any], kinds: dict[str, int] | None = None) -> float:
    """Queries per second: a step's cost is mostly its passages (a positive, and each of its negatives, per query);
    a query-only student embeds no passages, only queries, so there the kinds of query (``kinds``: counts by kind)
    set the rate: a user's questions at ``QUERY_ONLY_EXAMPLES_PER_S``, pseudo-queries at ``QUERY_ONLY_PSEUDO_PER_S``."""
    if recipe["query_only"]:
        user = sum((kinds or {}).get(kind, 0) for kind in USER_KINDS)
        pseudo = sum((kinds or {}).values()) - user
        if not pseudo:
            return QUERY_ONLY_EXAMPLES_PER_S
        return (user + pseudo) / (user / QUERY_ONLY_EXAMPLES_PER_S + pseudo / QUERY_ONLY_PSEUDO_PER_S)
    if not recipe["data"]["hard_negatives"]:
        return STUDENT_EXAMPLES_PER_S
    per_query = 1 + recipe["data"].get("negatives_per_query", 1)
    return STUDENT_EXAMPLES_PER_S_WITH_NEGATIVES * 2 / per_query


def _teacher_params(path: str) -> float:
    from distill.common.models import model_footprint

    try:
        return float(model_footprint(Path(path)).get("parameters") or TEACHER_REFERENCE_PARAMS)
    except (DistillError, OSError, ValueError, TypeError):
        return TEACHER_REFERENCE_PARAMS


def make_plan(
    recipe: dict[str, Any], teacher: Any, budget: tuple[float | None, int | None], *, capped: bool = False
) -> Plan:
    """The plan of ``recipe``; a budget sets ``data.passages`` and ``max_steps`` in ``recipe`` (in place)."""
    from transformers import AutoTokenizer

    from distill.teacher.embedders import uncached_positions
    from distill.training.tasks.queries import QUERY_KINDS
    from distill.training.tasks.silver import corpus_documents, held_out, training_queries

    data_cfg = recipe["data"]
    minutes, passages = budget
    if passages is not None:
        data_cfg["passages"] = passages
    checked = corpus_documents(data_cfg, teacher.passage_texts, teacher.chunker)
    chunked = checked.sources is not None
    tokenizer = AutoTokenizer.from_pretrained(teacher.model_path)
    limit = teacher.max_length() or 512
    lengths = [
        min(len(ids), limit) for ids in tokenizer(teacher.passage_texts(checked.documents), verbose=False)["input_ids"]
    ]
    uncached = uncached_positions(teacher.indexing, teacher.document_embedder, checked.documents)
    scale = _teacher_params(teacher.model_path) / TEACHER_REFERENCE_PARAMS
    rate = TEACHER_TOKENS_PER_S / scale
    tokens = sum(lengths[i] for i in uncached)
    left_out = []
    if checked.left_out:
        left_out.append(
            f"{checked.left_out} of {len(checked.documents) + checked.left_out} {'chunks' if chunked else 'passages'} "
            "left out of training" + (" (whole documents kept)" if chunked else "")
        )
    queries, read = training_queries(data_cfg, checked.documents)
    query_limit = recipe["max_length"]["query"]
    long_queries = _long_queries([q for q, _ in queries], recipe["student"], query_limit)
    n_train = len(queries) - len(held_out(data_cfg, queries)) if len(queries) >= 2 else len(queries)
    uncached_queries, query_seconds = teacher_query_seconds(queries, getattr(teacher, "uncached_queries", None), scale)
    steps = math.ceil(n_train / recipe["batch_size"]) * recipe["epochs"]
    kinds = {k: sum(1 for _, kind in queries if kind == k) for k in QUERY_KINDS}
    train_rate = _train_rate(recipe, kinds)
    if recipe["max_steps"]:
        steps = min(steps, recipe["max_steps"])
    if minutes is not None:
        if tokens / rate > 0.6 * minutes * 60 and uncached and not capped:
            # keep the cached passages and as many uncached ones as 60% of the budget embeds
            mean = tokens / len(uncached)
            fit = int(0.6 * minutes * 60 * rate / mean)
            keep = len(checked.documents) - len(uncached) + fit
            data_cfg["passages"] = max(keep, 2)
            return make_plan(recipe, teacher, (minutes, data_cfg["passages"]), capped=True)
        spare = minutes * 60 - tokens / rate - query_seconds
        fit_steps = int(spare * train_rate / recipe["batch_size"])
        if fit_steps < steps:
            recipe["max_steps"] = max(fit_steps, 1)
            left_out.append(f"training stops after {recipe['max_steps']} of {steps} steps")
            steps = recipe["max_steps"]
    return Plan(
        passages=len(checked.documents),
        skipped={"empty": checked.empty, "duplicate": checked.duplicates},
        queries=kinds,
        held_out=len(held_out(data_cfg, queries)) if len(queries) >= 2 else 0,
        uncached_passages=len(uncached),
        teacher_tokens=tokens,
        teacher_minutes=tokens / rate / 60,
        steps=steps,
        train_minutes=steps * recipe["batch_size"] / train_rate / 60,
        train_rate=train_rate,
        left_out=left_out,
        chunking=checked.chunking if chunked else None,
        query_file=read,
        long_queries=long_queries,
        query_limit=query_limit,
        negatives_from=data_cfg.get("negatives_from", "teacher") if data_cfg["hard_negatives"] else "teacher",
        query_only=bool(recipe["query_only"]),
        uncached_queries=uncached_queries,
        query_minutes=query_seconds / 60,
    )


def teacher_query_seconds(
    queries: list[tuple[str, str]], count_uncached: Any = None, scale: float = 1.0
) -> tuple[int, float]:
    """How many of the training queries (text, kind) the teacher has still to embed (``count_uncached``: texts ->
    how many are not cached; None: all) and about how long that takes on 2 cores, a user's questions and their
    variants at ``TEACHER_USER_QUERIES_PER_S``, pseudo-queries at ``TEACHER_QUERIES_PER_S`` (``scale``: the
    teacher's size against all-mpnet-base-v2's)."""
    count = count_uncached or len
    short = count([q for q, kind in queries if kind in USER_KINDS])
    long = count([q for q, kind in queries if kind not in USER_KINDS])
    return short + long, scale * (short / TEACHER_USER_QUERIES_PER_S + long / TEACHER_QUERIES_PER_S)


def _long_queries(texts: list[str], student: Any, limit: int) -> int | None:
    """How many training queries the student's tokenizer cuts at ``limit`` tokens; None where the student is not a
    folder with a tokenizer (a static student made from the teacher reads whole texts)."""
    from distill.common.models import resolve_model
    from distill.training.tasks.silver import count_cut

    if not isinstance(student, str):
        return None
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(resolve_model(student))
    except (OSError, ValueError, DistillError):
        return None
    return count_cut(texts, tokenizer, limit)
