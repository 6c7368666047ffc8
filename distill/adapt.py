"""``distill adapt``: distil a user's own retrieval pipeline on their own documents, with no labels.

1. The teacher is read from the user's YAML (the document embedder of the indexing pipeline and the text embedder of
   the query pipeline, any file and component names: :class:`~distill.teacher.embedders.PipelineTeacher`).
2. The corpus and the queries are checked, and the plan is printed with an estimate of the teacher's time before
   anything expensive starts; ``--budget`` (minutes or passages) caps the work and says what it left out.
3. The recipe is written (``distill train RECIPE`` repeats the run) with ``data.labels: teacher``: the teacher ranks
   the corpus for every training query (:mod:`distill.training.tasks.silver`).
4. Look before you spend: teacher and off-the-shelf student are scored first (relevance where ``--eval-data`` has
   labels, else agreement with the teacher on held-out queries); a student that already matches the teacher's
   relevance stops the run, unless ``--anyway``.
5. Train, swap the student into copies of the user's YAML, and evaluate teacher, off-the-shelf and distilled student
   side by side in one run (the teacher's index comes from the cache the training filled).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.errors import DistillError

if TYPE_CHECKING:
    from distill.pipelines.user import UserPipelines

# Measured on 2 cores: all-mpnet-base-v2 embeds ~4.4 SQuAD paragraphs/s (~150 tokens) and ~1.4 NFCorpus abstracts/s
# (~330 tokens at its 384-token limit), i.e. about 600 tokens/s for a 110M-parameter teacher; MiniLM-L6 trains at
# ~5.5 examples/s on a query and its passage at 256 tokens, and at ~2.5 with a hard negative each (NFCorpus).
TEACHER_TOKENS_PER_S = 600.0
TEACHER_REFERENCE_PARAMS = 110e6
STUDENT_EXAMPLES_PER_S = 5.5
STUDENT_EXAMPLES_PER_S_WITH_NEGATIVES = 2.5

# Listwise KL at T = 0.05, the best loss of the SQuAD ablation (docs/benchmarks/retrieval.md). A passage-passage
# relation loss is one override away (--set 'losses.1={name: similarity_matrix, keys: [passage, negative], cross:
# false, weight: W}'); at weight 1 its MSE of cosines is ~100x listwise KL's value and dominates the mix.
ADAPT_LOSSES = [{"name": "listwise_kl", "weight": 1.0, "temperature": 0.05}]


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
    student: str = "minilm-l6"  # the student to distil into: a model spec or folder
    budget: str | None = None  # caps the work: minutes (30m, 1.5h) or passages (2000p); see parse_budget
    eval_data: str | None = None  # a labelled data set to score relevance on; None: agreement with the teacher
    eval_questions: int | None = None  # a seeded sample (seed 0) of this many eval_data questions
    out: Path = Path("runs/adapt")  # the folder for the recipe, the student and the reports
    overrides: tuple[str, ...] = ()  # recipe overrides, KEY=VALUE as `distill train --set` takes them
    plan_only: bool = False  # check the data, print the plan, write the recipe, and stop
    anyway: bool = False  # train even when the off-the-shelf student already matches the teacher

    def __post_init__(self) -> None:
        if self.queries is None and self.pseudo_queries == 0:
            object.__setattr__(self, "pseudo_queries", None)


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
) -> dict[str, Any]:
    """The recipe ``distill adapt`` trains with, validated (overrides as ``distill train`` takes them)."""
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
        hard_negatives=True,
        questions=None,
        dev_questions=100,
    )
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

    def lines(self) -> list[str]:
        q = self.queries
        out = [
            f"corpus: {self.passages} passages"
            + (
                f" ({', '.join(f'{v} {k}' for k, v in self.skipped.items() if v)} skipped)"
                if any(self.skipped.values())
                else ""
            ),
            f"queries: {q.get('user', 0)} of yours, {q.get('title', 0) + q.get('sentence', 0)} pseudo-queries cut "
            f"from the corpus ({q.get('title', 0)} titles, {q.get('sentence', 0)} sentences); {self.held_out} held "
            "out to choose the checkpoint by agreement with the teacher",
            f"teacher: {self.uncached_passages} passages to embed ({self.passages - self.uncached_passages} cached), "
            f"about {self.teacher_minutes:.0f} min (estimate: {self.teacher_tokens:,} tokens at "
            f"{TEACHER_TOKENS_PER_S:.0f} tokens/s for a 110M-parameter teacher on 2 cores)",
            f"training: {self.steps} steps, about {self.train_minutes:.0f} min (estimate: "
            f"{self.train_rate} examples/s for a MiniLM-L6-size student on 2 cores)",
        ]
        out += [f"budget: {line}" for line in self.left_out]
        return out


def _train_rate(recipe: dict[str, Any]) -> float:
    return STUDENT_EXAMPLES_PER_S_WITH_NEGATIVES if recipe["data"]["hard_negatives"] else STUDENT_EXAMPLES_PER_S


def _teacher_params(path: str) -> float:
    from distill.common.models import model_footprint

    try:
        return float(model_footprint(Path(path)).get("parameters") or TEACHER_REFERENCE_PARAMS)
    except (DistillError, OSError, ValueError, TypeError):
        return TEACHER_REFERENCE_PARAMS


def _uncached(teacher: Any, documents: list[Any]) -> list[int]:
    """Positions of the documents whose teacher embedding is not cached yet."""
    from distill.teacher.cache import TeacherCache
    from distill.teacher.embedders import cached_width, document_keys, embedder_namespace

    namespace = embedder_namespace(teacher.indexing, teacher.document_embedder)
    dim = cached_width(namespace)
    if dim is None:
        return list(range(len(documents)))
    cache = TeacherCache(TeacherCache.default_root(), namespace=namespace | {"dim": dim}, row_shape=(dim,))
    fields = list(teacher.passage_params.get("meta_fields_to_embed") or [])
    return [i for i, key in enumerate(document_keys(documents, fields)) if key not in cache]


def make_plan(
    recipe: dict[str, Any], teacher: Any, budget: tuple[float | None, int | None], *, capped: bool = False
) -> Plan:
    """The plan of ``recipe``; a budget sets ``data.passages`` and ``max_steps`` in ``recipe`` (in place)."""
    from transformers import AutoTokenizer

    from distill.training.tasks.silver import corpus_documents, held_out, training_queries

    data_cfg = recipe["data"]
    minutes, passages = budget
    if passages is not None:
        data_cfg["passages"] = passages
    checked = corpus_documents(data_cfg, teacher.passage_texts)
    tokenizer = AutoTokenizer.from_pretrained(teacher.model_path)
    limit = teacher.max_length() or 512
    lengths = [
        min(len(ids), limit) for ids in tokenizer(teacher.passage_texts(checked.documents), verbose=False)["input_ids"]
    ]
    uncached = _uncached(teacher, checked.documents)
    scale = _teacher_params(teacher.model_path) / TEACHER_REFERENCE_PARAMS
    rate = TEACHER_TOKENS_PER_S / scale
    tokens = sum(lengths[i] for i in uncached)
    left_out = []
    if checked.left_out:
        left_out.append(
            f"{checked.left_out} of {len(checked.documents) + checked.left_out} passages left out of training"
        )
    queries, _ = training_queries(data_cfg, checked.documents)
    n_train = len(queries) - len(held_out(data_cfg, queries)) if len(queries) >= 2 else len(queries)
    steps = math.ceil(n_train / recipe["batch_size"]) * recipe["epochs"]
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
        spare = minutes * 60 - tokens / rate
        fit_steps = int(spare * _train_rate(recipe) / recipe["batch_size"])
        if fit_steps < steps:
            recipe["max_steps"] = max(fit_steps, 1)
            left_out.append(f"training stops after {recipe['max_steps']} of {steps} steps")
            steps = recipe["max_steps"]
    kinds = {k: sum(1 for _, kind in queries if kind == k) for k in ("user", "title", "sentence")}
    return Plan(
        passages=len(checked.documents),
        skipped={"empty": checked.empty, "duplicate": checked.duplicates},
        queries=kinds,
        held_out=len(held_out(data_cfg, queries)) if len(queries) >= 2 else 0,
        uncached_passages=len(uncached),
        teacher_tokens=tokens,
        teacher_minutes=tokens / rate / 60,
        steps=steps,
        train_minutes=steps * recipe["batch_size"] / _train_rate(recipe) / 60,
        train_rate=_train_rate(recipe),
        left_out=left_out,
    )


def held_out_queries(recipe: dict[str, Any], teacher: Any) -> Any:
    """The corpus asked the held-out training queries (no labels): what agreement is measured on without qrels."""
    from distill.data.datasets import Dataset, Query
    from distill.training.tasks.silver import corpus_documents, held_out, training_queries

    data_cfg = recipe["data"]
    documents = corpus_documents(data_cfg, teacher.passage_texts).documents
    queries, _ = training_queries(data_cfg, documents)
    picked = [Query(f"held-out-{i}", queries[i][0]) for i in held_out(data_cfg, queries)]
    return Dataset(name=f"{Path(data_cfg['train']).name}-held-out", documents=documents, queries=picked)


def _systems(pipelines: UserPipelines, shelf: list[Path], distilled: Path | None) -> list[Any]:
    """Teacher (the user's pipelines as read), off-the-shelf student (``shelf``: its swapped indexing and query files)
    and, once trained, the distilled student (its files in ``distilled``)."""
    from distill.evaluation.runner import System

    systems = [System.from_pipelines("teacher", pipelines), System("off-the-shelf", shelf[1], shelf[0])]
    if distilled is not None:
        names = pipelines.query.path.name, pipelines.indexing.path.name
        systems.append(System("distilled", distilled / names[0], distilled / names[1]))
    return systems


def _print_report(report: dict[str, Any]) -> None:
    from distill.evaluation.report import (
        agreement_table,
        comparison_table,
        difference_lines,
        relative_lines,
        scored_lines,
    )

    print(comparison_table(report))
    if scored := scored_lines(report):
        print(scored)
    if table := agreement_table(report):
        print(table)
    if report.get("relative"):
        print(relative_lines(report["relative"]))
    if report.get("differences"):
        print(difference_lines(report["differences"]))


AGREES_ALREADY = 0.95  # silver nDCG@10 of the off-the-shelf student against the teacher


def agreement_note(report: dict[str, Any]) -> str | None:
    """Without labels: a plain sentence when the off-the-shelf student already ranks almost as the teacher does."""
    agreement = report["pipelines"]["off-the-shelf"].get("agreement") or {}
    silver = agreement.get("silver_ndcg@10")
    if silver is None or "ndcg@10" in report["pipelines"]["teacher"]["quality"]:
        return None
    if silver >= AGREES_ALREADY:
        return (
            f"the off-the-shelf student already ranks almost as the teacher does on these queries (silver nDCG@10 "
            f"{silver:.3f}): distillation has little to gain here; without labels nobody can tell which is better"
        )
    return (
        f"the off-the-shelf student agrees with the teacher at silver nDCG@10 {silver:.3f}: distillation moves it "
        "toward the teacher (without labels, whether that is better is the teacher's word)"
    )


def look_before_you_spend(report: dict[str, Any]) -> str | None:
    """A plain sentence when the off-the-shelf student already matches or beats the teacher's relevance (nDCG@10)
    on the evaluation queries; None otherwise (or without labels, where only agreement is known)."""
    pipelines = report["pipelines"]
    teacher, shelf = pipelines["teacher"]["quality"], pipelines["off-the-shelf"]["quality"]
    if "ndcg@10" not in teacher or "ndcg@10" not in shelf:
        return None
    if shelf["ndcg@10"] >= teacher["ndcg@10"]:
        return (
            f"the off-the-shelf student already matches or beats the teacher here (nDCG@10 {shelf['ndcg@10']:.4f} "
            f"vs {teacher['ndcg@10']:.4f}): distilling it toward the teacher would likely make it worse"
        )
    return None


def adapt(options: AdaptOptions, command: str = "") -> int:
    """The ``distill adapt`` command (see the module docstring)."""
    from distill.data.datasets import load_dataset
    from distill.evaluation.runner import evaluate
    from distill.pipelines.loading import load_pipeline, swap_pipelines
    from distill.pipelines.retrieval import retrieval_part
    from distill.pipelines.user import read_user_pipelines
    from distill.teacher.embedders import PipelineTeacher
    from distill.training import recipes
    from distill.training.train import train

    out = options.out
    pipelines = read_user_pipelines(options.indexing, options.query)  # the only read of the two files
    # what evaluation builds and scores of the query pipeline (never its prompt builder or generator); a pipeline
    # that no student could change, or whose scored list would be a guess, is one line before any teacher pass
    retrieval = retrieval_part(pipelines.query, require_embedding=True)
    teacher = PipelineTeacher.from_pipelines(pipelines)
    for data, path in ((pipelines.indexing.data, pipelines.indexing.path), (retrieval.data, pipelines.query.path)):
        # a store or component Haystack cannot build is one line now, not after the plan
        load_pipeline(data, name=str(path))
    budget = parse_budget(options.budget)
    recipe = build_recipe(
        options.indexing,
        options.query,
        corpus=options.corpus,
        queries=options.queries,
        pseudo_queries=options.pseudo_queries,
        student=options.student,
        output=out,
        overrides=list(options.overrides),
    )
    if options.eval_questions is not None and not options.eval_data:
        raise DistillError("--eval-questions samples --eval-data: give --eval-data too (e.g. BEIR_FOLDER:dev)")
    eval_data = load_dataset(options.eval_data) if options.eval_data else None
    if eval_data is not None and options.eval_questions:
        eval_data = eval_data.subset(questions=options.eval_questions, seed=0)
    if eval_data is not None and not any(q.gold_doc_ids for q in eval_data.queries):
        raise DistillError(f"--eval-data {options.eval_data} has no judged queries: leave it out to measure agreement")
    print(
        f"teacher: {teacher.passage_model} ({teacher.indexing_path}: {teacher.document_embedder}, "
        f"{teacher.query_path}: {teacher.text_embedder})"
    )
    print(f"evaluation scores {retrieval.describe()}")
    plan = make_plan(recipe, teacher, budget)
    for line in plan.lines():
        print(line)
    recipe = recipes.validate(recipe)
    out.mkdir(parents=True, exist_ok=True)
    recipe_path = out / "recipe.yaml"
    recipe_path.write_text(
        f"# written by: {command or 'distill adapt'}\n# repeat with: distill train {recipe_path}\n"
        + recipes.dump_recipe(recipe),
        encoding="utf-8",
    )
    print(f"recipe: {recipe_path}")
    if options.plan_only:
        return 0
    data = eval_data if eval_data is not None else held_out_queries(recipe, teacher)
    what = (
        "relevance on " + options.eval_data
        if eval_data is not None
        else "agreement with the teacher on held-out queries"
    )
    print(f"before training: teacher and off-the-shelf student, {what}")
    shelf = swap_pipelines(pipelines.files, out / "off-the-shelf", model=options.student)
    before = evaluate(_systems(pipelines, shelf, None), data, out_dir=out / "before", command=command, progress=True)
    _print_report(before)
    if note := agreement_note(before):
        print(note)
    verdict = look_before_you_spend(before)
    if verdict:
        print(verdict)
        if not options.anyway:
            print("stopping before training (pass --anyway to train regardless)")
            return 0
    student = train(recipe, swap=True, user_pipelines=pipelines)
    report = evaluate(
        _systems(pipelines, shelf, Path(recipe["output"]) / "pipelines"),
        data,
        out_dir=out / "eval",
        command=command,
        progress=True,
        versus="off-the-shelf",
    )
    _print_report(report)
    summary = {
        "student": str(student),
        "recipe": str(recipe_path),
        "report": str(out / "eval" / "report.json"),
        "plan": plan.lines(),
    }
    (out / "adapt.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"student: {student}; pipelines: {Path(recipe['output']) / 'pipelines'}; report: {out / 'eval' / 'report.json'}"
    )
    return 0
