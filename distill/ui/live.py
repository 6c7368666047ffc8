"""Ask one question of several pipelines side by side: the engine behind the UI's Ask page.

A :class:`LiveEngine` loads, indexes and warms the pipelines of an evaluation report once (through
:func:`distill.evaluation.runner.load_systems`, so the live pipelines are exactly the evaluated ones) and then answers
questions one at a time: each system's retrieved passages with scores (the gold passage flagged when the question
comes from the evaluation set), its top answers with their offsets in the passage, per-component latency, and whether
the systems agree. For a RAG pipeline the passages are the documents its generator would receive, and the prompt is
what its own prompt builder renders from them (built and run alone: :func:`distill.pipelines.retrieval.render_prompt`);
the generator is never built. Everything returned is a plain dataclass; the UI only draws it.

Questions are checked here: an empty one is refused, one longer than :data:`MAX_QUESTION_CHARS` is cut with a notice,
and any script is fine (the tokenizers map unknown characters to ``[UNK]``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document
from haystack.core.errors import PipelineRuntimeError

from distill.common import metrics
from distill.data.datasets import Dataset, Query, load_dataset
from distill.errors import DistillError
from distill.evaluation.runner import LoadedSystem, System, load_systems, run_query, score_question, timing_tracer
from distill.pipelines.retrieval import prompt_builder, render_prompt

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
SHOWN_ANSWERS = 3


def check_question(text: str | None, limit: int = MAX_QUESTION_CHARS) -> tuple[str, str | None]:
    """The question to run and a notice when it had to be shortened; an empty question raises DistillError."""
    question = " ".join((text or "").split())
    if not question:
        raise DistillError("the question is empty: type a question, or draw one from the evaluation set")
    if len(question) > limit:
        cut = question[:limit].rsplit(" ", 1)[0] or question[:limit]
        notice = f"The question had {len(question):,} characters; only the first {len(cut):,} were used."
        return cut, notice
    return question, None


@dataclass
class Passage:
    rank: int
    doc_id: str
    content: str
    score: float | None
    title: str = ""
    gold: bool = False


@dataclass
class Answer:
    """An extracted answer and where it sits in its passage (``context[start:end] == text``)."""

    text: str
    score: float
    doc_id: str | None
    context: str
    start: int | None
    end: int | None

    @property
    def located(self) -> bool:
        return self.start is not None and self.end is not None


@dataclass
class SystemResult:
    name: str
    passages: list[Passage] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    has_reader: bool = False
    latency_ms: float = 0.0
    component_ms: dict[str, float] = field(default_factory=dict)
    gold_rank: int | None = None
    exact_match: float | None = None
    f1: float | None = None
    error: str | None = None
    scored: str | None = None  # the component whose documents ``passages`` are
    into: str | None = None  # the prompt builder or reader that receives them (None: the pipeline's output)
    prompt: str | None = None  # what the prompt builder renders from the question and ``passages``
    prompt_error: str | None = None  # why there is no prompt although a prompt builder receives the passages

    @property
    def top_answer(self) -> Answer | None:
        return self.answers[0] if self.answers else None

    @property
    def top_passage(self) -> Passage | None:
        return self.passages[0] if self.passages else None


@dataclass
class Agreement:
    """How a system's result compares with the reference system's."""

    reference: str
    other: str
    same_top_passage: bool
    shared_passages: int
    compared_passages: int
    same_answer: bool | None

    @property
    def agree(self) -> bool:
        return self.same_answer if self.same_answer is not None else self.same_top_passage

    def describe(self) -> str:
        overlap = f"{self.shared_passages} of {self.compared_passages} retrieved passages in common"
        top = "same top passage" if self.same_top_passage else "different top passages"
        if self.same_answer is None:
            return f"{top}; {overlap}"
        answer = "same answer" if self.same_answer else "different answers"
        return f"{answer}; {top}; {overlap}"


@dataclass
class LiveResult:
    question: str
    notice: str | None
    gold: Query | None
    gold_passage: str | None
    results: list[SystemResult]
    agreements: list[Agreement]


def compare(reference: SystemResult, other: SystemResult) -> Agreement:
    """Top-1 passage, overlap of the retrieved lists, and (when both read) the normalised top answers."""
    ref_ids = [p.doc_id for p in reference.passages]
    other_ids = [p.doc_id for p in other.passages]
    same_answer = None
    if reference.has_reader and other.has_reader:
        a, b = reference.top_answer, other.top_answer
        same_answer = (a is None and b is None) or (
            a is not None and b is not None and metrics.normalize_answer(a.text) == metrics.normalize_answer(b.text)
        )
    return Agreement(
        reference=reference.name,
        other=other.name,
        same_top_passage=bool(ref_ids and other_ids and ref_ids[0] == other_ids[0]),
        shared_passages=len(set(ref_ids) & set(other_ids)),
        compared_passages=max(len(ref_ids), len(other_ids)),
        same_answer=same_answer,
    )


def _answer(answer: Any) -> Answer | None:
    text = getattr(answer, "data", None)
    if text is None:
        return None
    document: Document | None = getattr(answer, "document", None)
    context = (document.content or "") if document is not None else ""
    offset = getattr(answer, "document_offset", None)
    start = end = None
    if offset is not None and context[offset.start : offset.end] == text:
        start, end = offset.start, offset.end
    elif text and text in context:
        start = context.index(text)
        end = start + len(text)
    return Answer(
        text=text,
        score=float(answer.score),
        doc_id=document.id if document is not None else None,
        context=context,
        start=start,
        end=end,
    )


def short_error(error: BaseException) -> str:
    """One line for the page: the component that failed (if any) and the root cause, never a stack trace."""
    if isinstance(error, DistillError):
        return str(error)
    where = getattr(error, "component_name", None)
    root = error
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    lines = str(root).strip().splitlines()
    text = lines[-1] if isinstance(root, PipelineRuntimeError) and lines else (lines[0] if lines else "")
    text = text.removeprefix("Error: ")[:300]
    message = f"{type(root).__name__}: {text}" if text else type(root).__name__
    return f"component {where!r} failed: {message}" if where else message


def dataset_from_config(config: dict[str, Any], base_dir: Path, *, articles: int | None = None) -> Dataset:
    """The data set a report was evaluated on (``config``: data, articles, questions, seed), read from ``base_dir``.

    ``articles`` overrides the report's article count, to index a smaller corpus for a quick live demo.
    """
    spec = config.get("data")
    if not isinstance(spec, str) or not spec:
        raise DistillError("the report's config names no data set ('data'): re-run `distill eval` to record it")
    if spec not in ("squad-dev", "squad-train") and not Path(spec).is_absolute():
        head = spec.split(":", 1)[0]
        if not (base_dir / head).exists():
            raise DistillError(
                f"the report's data set {spec!r} is not found under {base_dir}: start the app in the folder "
                "`distill eval` ran in (the repository root)"
            )
        spec = str(base_dir / spec)
    data = load_dataset(spec)
    n_articles = articles if articles is not None else config.get("articles")
    n_questions = config.get("questions")
    if n_questions is not None and articles is not None:
        n_questions = None  # the report's sample may not fit inside fewer articles: keep all their questions
    if n_articles is not None or n_questions is not None:
        data = data.subset(articles=n_articles, questions=n_questions, seed=int(config.get("seed") or 0))
    return data


def systems_from_report(report: dict[str, Any], base_dir: Path) -> list[System]:
    systems = []
    for name, entry in report["pipelines"].items():
        if (entry.get("scored") or {}).get("of"):
            continue  # an embedding list scored beside a pipeline's own: the same pipeline, asked once
        query = entry.get("query_yaml")
        if not query:
            raise DistillError(f"pipeline {name!r} in the report has no 'query_yaml': re-run `distill eval`")
        indexing = entry.get("indexing_yaml")
        query_path = Path(query) if Path(query).is_absolute() else base_dir / query
        index_path = None
        if indexing:
            index_path = Path(indexing) if Path(indexing).is_absolute() else base_dir / indexing
        for path in (query_path, index_path):
            if path is not None and not path.exists():
                raise DistillError(f"pipeline {name!r}: {path} does not exist (paths are read from {base_dir})")
        systems.append(System(name=name, query_yaml=query_path, indexing_yaml=index_path))
    return systems


class LiveEngine:
    """Loaded, indexed and warmed pipelines that answer one question at a time (thread-safe, one at a time).

    The timing tracer is process-wide, so questions are serialised: two sessions asking at once would otherwise
    mix their per-component timings.
    """

    def __init__(self, systems: list[System], data: Dataset, *, warmup: int = 2) -> None:
        if not systems:
            raise DistillError("no pipelines to load")
        start = time.perf_counter()
        try:
            # load_systems builds every pipeline before it indexes, and empties each in-memory store just before
            # writing the corpus into it: an engine that cannot load leaves the indexes other engines (and sessions)
            # share in this process as they were, and one that loads searches exactly its data set.
            self.loaded: list[LoadedSystem] = load_systems(systems, data.documents)
        except DistillError:
            raise
        except Exception as e:
            raise DistillError(f"could not load the pipelines: {short_error(e)}") from e
        self.data = data
        self._builders = {
            s.system.name: prompt_builder(s.part) for s in self.loaded if s.part and s.part.prompt_builder
        }
        self._lock = threading.Lock()
        self._queries_by_text = {" ".join(q.text.split()).lower(): q for q in data.queries}
        self._queries_by_id = {q.id: q for q in data.queries}
        self.warm_up(warmup)
        self.load_seconds = time.perf_counter() - start

    @classmethod
    def from_report(
        cls, report: dict[str, Any], *, base_dir: Path | None = None, articles: int | None = None, warmup: int = 2
    ) -> LiveEngine:
        """The report's pipelines on the report's data set; relative paths are read from ``base_dir`` (default cwd)."""
        base = base_dir if base_dir is not None else Path.cwd()
        systems = systems_from_report(report, base)
        data = dataset_from_config(report.get("config") or {}, base, articles=articles)
        return cls(systems, data, warmup=warmup)

    @property
    def names(self) -> list[str]:
        return [s.system.name for s in self.loaded]

    def has_reader(self, name: str) -> bool:
        return self._system(name).reader is not None

    def partner(self, reference: str, preferred: Collection[str] = ()) -> str | None:
        """The pipeline to show beside ``reference`` first: one of the same kind (a reader beside a reader), of
        ``preferred`` (the distilled students) before the others, else the first in the report's order."""
        others = [n for n in self.names if n != reference]
        kind = self.has_reader(reference)
        return min(others, key=lambda n: (self.has_reader(n) != kind, n not in preferred), default=None)

    def warm_up(self, n: int) -> None:
        texts = [q.text for q in self.data.queries[:n]] or ["warm up"] * n
        for text in texts:
            for s in self.loaded:
                try:
                    run_query(s, text)
                except Exception as e:  # the real question will report it
                    logger.warning("warm-up query failed for %s: %s", s.system.name, short_error(e))

    def random_question(self, seed: int | None = None) -> Query:
        if not self.data.queries:
            raise DistillError(f"the data set {self.data.name} has no questions to draw from")
        return random.Random(seed).choice(self.data.queries)

    def question(self, query_id: str) -> Query | None:
        """The evaluation question with this id, if the data set has it."""
        return self._queries_by_id.get(query_id)

    def find_question(self, text: str) -> Query | None:
        """The evaluation question with this exact text (case and outer space ignored), for its gold labels."""
        return self._queries_by_text.get(" ".join(text.split()).lower())

    def ask(self, text: str | None, names: Sequence[str] | None = None, gold: Query | None = None) -> LiveResult:
        """Run one question through the named systems (default: all); the first named is the reference."""
        question, notice = check_question(text)
        chosen = [self._system(n) for n in names] if names else list(self.loaded)
        if gold is None or " ".join(gold.text.split()) != question:
            gold = self.find_question(question)
        with self._lock, timing_tracer() as tracer:
            tracer.pop()
            results = [self._run(s, question, gold, tracer) for s in chosen]
        gold_passage = None
        if gold is not None and gold.gold_doc_ids:
            try:
                gold_passage = self.data.document(gold.gold_doc_ids[0]).content
            except KeyError:
                gold_passage = None
        ok = [r for r in results if r.error is None]
        agreements = [compare(ok[0], other) for other in ok[1:]] if ok and ok[0] is results[0] else []
        return LiveResult(question, notice, gold, gold_passage, results, agreements)

    def _system(self, name: str) -> LoadedSystem:
        for s in self.loaded:
            if s.system.name == name:
                return s
        raise DistillError(f"no pipeline named {name!r}; loaded: {', '.join(self.names)}")

    def _run(self, loaded: LoadedSystem, question: str, gold: Query | None, tracer: Any) -> SystemResult:
        part = loaded.part
        result = SystemResult(
            name=loaded.system.name,
            has_reader=loaded.reader is not None,
            scored=part.scored if part else None,
            into=part.into if part else None,
        )
        start = time.perf_counter()
        try:
            documents, answers = run_query(loaded, question)
        except Exception as e:
            tracer.pop()
            result.error = f"{loaded.system.name} could not answer: {short_error(e)}"
            logger.warning("%s", result.error)
            return result
        result.latency_ms = (time.perf_counter() - start) * 1000
        result.component_ms = tracer.pop()
        gold_ids = set(gold.gold_doc_ids) if gold is not None else set()
        result.passages = [
            Passage(
                rank=rank,
                doc_id=d.id,
                content=d.content or "",
                score=float(d.score) if d.score is not None else None,
                title=str(d.meta.get("title", "")),
                gold=d.id in gold_ids,
            )
            for rank, d in enumerate(documents, start=1)
        ]
        result.answers = [a for a in (_answer(x) for x in answers) if a is not None][:SHOWN_ANSWERS]
        if part is not None and part.prompt_builder is not None:
            builder = self._builders.get(loaded.system.name)
            try:
                if builder is None:
                    raise DistillError(f"the prompt builder {part.prompt_builder!r} does not build with this Haystack")
                result.prompt = render_prompt(builder, part, question, documents)
            except Exception as e:  # the passages still stand; the page says why there is no prompt
                result.prompt_error = short_error(e)
        if gold is not None:
            scored = score_question(gold, documents, answers)
            result.gold_rank = scored["rank"]
            result.exact_match = scored.get("em")
            result.f1 = scored.get("f1")
        return result
