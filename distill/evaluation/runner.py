"""Run two or more YAML pipelines on the same questions and report quality and latency side by side.

Each *system* is a query pipeline (retrieval, extractive QA, or RAG) plus the indexing pipeline that fills its document
store. Only a query pipeline's retrieval part is built and timed, and the list it scores is chosen on purpose
(:mod:`distill.pipelines.retrieval`: the documents entering the prompt builder or the reader; no generator is ever
built). Where that list is not the embedding retriever's own (hybrid retrieval, a ranker), the embedding retriever's
list from the same run is a row of its own, ``NAME [COMPONENT]``, timed as the sum of its components' spans. The
corpus is indexed once per distinct indexing pipeline; every question then runs through every system,
interleaved question by question so that a drift in machine load hits all systems alike. Latency comes from a
Haystack tracer (per component) and a wall clock around ``Pipeline.run`` (per query), after discarded warm-up queries.
Where an indexing pipeline splits documents into chunks, the questions' judgements name whole documents: each
retrieved chunk counts as its source document, once, at its best rank (:func:`score_question`).
Reading, merging and printing the reports it writes is :mod:`distill.evaluation.report`'s.

Why one module over 400 lines: loading the systems, indexing through the cache, the tracer and the interleaved
run are one measurement; what reads its output is already apart (:mod:`distill.evaluation.report`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document, Pipeline, tracing
from haystack.components.evaluators import DocumentMRREvaluator, DocumentRecallEvaluator
from haystack.core.errors import PipelineRuntimeError

from distill.common import metrics
from distill.common.models import model_footprint
from distill.common.provenance import library_versions, machine_info
from distill.data.datasets import Dataset, Query
from distill.errors import DistillError
from distill.evaluation.agreement import add_agreement
from distill.evaluation.report import paired_differences, relative_quality, write_report
from distill.pipelines.checks import question_inputs, run_failure, warm_up
from distill.pipelines.loading import (
    fit_devices,
    is_generator,
    is_reader,
    load_pipeline,
    read_pipeline_dict,
    resolve_models,
)
from distill.pipelines.retrieval import RetrievalPart, retrieval_part
from distill.pipelines.stores import component_store, store_name, store_type
from distill.pipelines.user import UserPipeline, UserPipelines
from distill.teacher.indexing import Indexed, copy_documents, index_corpus

logger = logging.getLogger(__name__)

KS = (1, 5, 10)
CONTEXTS = ("retrieved", "gold")


@dataclass
class System:
    """A named query pipeline and the indexing pipeline that fills its store."""

    name: str
    query_yaml: Path
    indexing_yaml: Path | None
    # both files as already read (``distill adapt``'s): evaluation reads neither again
    pipelines: UserPipelines | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_pipelines(cls, name: str, pipelines: UserPipelines) -> System:
        return cls(name, pipelines.query.path, pipelines.indexing.path, pipelines)

    def query_data(self) -> dict[str, Any]:
        return self.pipelines.query.data if self.pipelines else read_pipeline_dict(self.query_yaml)

    def query_pipeline(self) -> UserPipeline:
        """The query pipeline with its components by role."""
        return self.pipelines.query if self.pipelines else UserPipeline.parse(self.query_yaml, self.query_data())

    def indexing_data(self) -> dict[str, Any]:
        """The indexing pipeline's dict (call it only where ``indexing_yaml`` is set)."""
        return self.pipelines.indexing.data if self.pipelines else read_pipeline_dict(self.indexing_yaml)

    @classmethod
    def parse(cls, spec: str) -> System:
        """``NAME=QUERY.yaml[,INDEXING.yaml]``; without an indexing YAML, ``indexing.yaml`` beside the query one."""
        name, sep, rest = spec.partition("=")
        if not sep:
            name, rest = Path(spec).parent.name or Path(spec).stem, spec
        query, _, indexing = rest.partition(",")
        query_path = Path(query)
        if not query_path.exists():
            raise DistillError(f"pipeline {name!r}: {query_path} does not exist")
        index_path = Path(indexing) if indexing else query_path.with_name("indexing.yaml")
        if indexing and not index_path.exists():
            raise DistillError(f"pipeline {name!r}: indexing pipeline {index_path} does not exist")
        return cls(name=name, query_yaml=query_path, indexing_yaml=index_path if index_path.exists() else None)


class _Span(tracing.Span):
    def __init__(self, tags: dict[str, Any] | None) -> None:
        self.tags = dict(tags or {})

    def set_tag(self, key: str, value: Any) -> None:
        self.tags[key] = value


class TimingTracer(tracing.Tracer):
    """Records the wall time of every ``haystack.component.run`` span, by component name, in milliseconds."""

    def __init__(self) -> None:
        self.durations: dict[str, list[float]] = defaultdict(list)
        self._current: list[_Span] = []

    @contextlib.contextmanager
    def trace(self, operation_name: str, tags: dict[str, Any] | None = None, parent_span: Any = None) -> Iterator[Any]:
        span = _Span(tags)
        self._current.append(span)
        start = time.perf_counter()
        try:
            yield span
        finally:
            elapsed_ms = (time.perf_counter() - start) * 1000
            self._current.pop()
            if operation_name == "haystack.component.run":
                self.durations[span.tags.get("haystack.component.name", "?")].append(elapsed_ms)

    def current_span(self) -> Any:
        return self._current[-1] if self._current else None

    def pop(self) -> dict[str, float]:
        """Total time per component since the last pop (a component may run more than once per query)."""
        out = {name: sum(values) for name, values in self.durations.items()}
        self.durations.clear()
        return out


@contextlib.contextmanager
def timing_tracer() -> Iterator[TimingTracer]:
    tracer = TimingTracer()
    previous = tracing.tracer.actual_tracer
    tracing.enable_tracing(tracer)
    try:
        yield tracer
    finally:
        tracing.tracer.actual_tracer = previous


@dataclass
class LoadedSystem:
    system: System
    pipeline: Pipeline
    query_inputs: list[tuple[str, str]]
    retriever: str | None
    reader: str | None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    index_seconds: float = 0.0
    indexed: Indexed | None = None  # where its indexing pipeline preprocesses: the chunks it wrote
    part: RetrievalPart | None = None  # what was built of the query pipeline and what is scored (None: gold context)

    @property
    def sources(self) -> dict[str, str] | None:
        """Chunk id -> corpus document id, where its indexing pipeline preprocesses the corpus (None elsewhere)."""
        return self.indexed.chunks.source_map() if self.indexed is not None else None

    @property
    def embedding(self) -> str | None:
        """The embedding retriever whose own list is scored beside the pipeline's (:func:`view_name`)."""
        return self.part.embedding if self.part else None


def view_name(system: str, component: str) -> str:
    """The report's name for the list of ``component`` in pipeline ``system``: ``teacher [embedding_retriever]``."""
    return f"{system} [{component}]"


def _models_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    resolved = resolve_models(data)
    for name, component in data["components"].items():
        model = (component.get("init_parameters") or {}).get("model")
        if not isinstance(model, str) or is_generator(component):
            continue
        folder = Path(resolved["components"][name]["init_parameters"]["model"])
        info: dict[str, Any] = {"model": model, "path": str(folder)}
        if folder.is_dir():
            info.update(model_footprint(folder))
        out[name] = info
    return out


def _index_key(data: dict[str, Any]) -> str:
    return json.dumps(fit_devices(data), sort_keys=True, default=str)


def _store_indexes(data: dict[str, Any]) -> set[str]:
    out = set()
    for component in data["components"].values():
        store = (component.get("init_parameters") or {}).get("document_store")
        if isinstance(store, dict):
            out.add(f"{store_type(store)}:{store_name(store) or (store.get('init_parameters') or {}).get('index')}")
    return out


def reader_only(data: dict[str, Any], name: str) -> tuple[dict[str, Any], str]:
    """The pipeline's reader alone (for questions asked against their gold paragraph), and the reader's name."""
    readers = [n for n, c in data["components"].items() if is_reader(c)]
    if not readers:
        raise DistillError(
            f"pipeline {name!r} has no extractive reader: --context gold evaluates readers (use --context retrieved)"
        )
    only = {k: v for k, v in data.items() if k not in ("components", "connections")}
    return {**only, "components": {readers[0]: data["components"][readers[0]]}, "connections": []}, readers[0]


def load_systems(
    systems: list[System], documents: list[Document], *, progress: bool = True, context: str = "retrieved"
) -> list[LoadedSystem]:
    """Load every query pipeline and index the corpus once per distinct indexing pipeline.

    ``context="gold"`` loads only each pipeline's reader and indexes nothing: every question is then asked against its
    own gold paragraph."""
    if len({s.name for s in systems}) != len(systems):
        raise DistillError(f"pipeline names must be unique, got {[s.name for s in systems]}")
    if context not in CONTEXTS:
        raise DistillError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    if context == "gold":
        loaded = []
        for system in systems:
            data, reader = reader_only(system.query_data(), system.name)
            pipeline = load_pipeline(data, name=str(system.query_yaml))
            warm_up(pipeline, str(system.query_yaml))
            loaded.append(LoadedSystem(system, pipeline, [(reader, "query")], None, reader, models=_models_of(data)))
        return loaded
    if not documents:
        raise DistillError("the corpus is empty: nothing to index")
    indexed: dict[str, float] = {}
    chunked: dict[str, Indexed | None] = {}
    index_owner: dict[str, str] = {}
    # Every pipeline is read and built before any is indexed or warmed up: a bad file costs seconds, not an indexing.
    parts = {s.name: retrieval_part(s.query_pipeline()) for s in systems}
    queries = {name: part.data for name, part in parts.items()}
    indexings = {s.name: s.indexing_data() for s in systems if s.indexing_yaml is not None}
    built = {s.name: load_pipeline(queries[s.name], name=str(s.query_yaml)) for s in systems}
    inputs = {name: question_inputs(pipeline, name) for name, pipeline in built.items()}
    for system in systems:
        if system.name in indexings:
            load_pipeline(indexings[system.name], name=str(system.indexing_yaml))
    loaded = []
    for system in systems:
        query_data = queries[system.name]
        index_seconds = 0.0
        if system.indexing_yaml is not None:
            index_data = indexings[system.name]
            key = _index_key(index_data)
            for index in _store_indexes(index_data):
                owner = index_owner.setdefault(index, key)
                if owner != key:
                    raise DistillError(
                        f"pipeline {system.name!r} indexes into store index {index!r} with another indexing pipeline "
                        "than an earlier one: give the student its own index (`distill swap` does unless --keep-index)"
                    )
            if key not in indexed:
                logger.info("indexing %d documents for %s with %s", len(documents), system.name, system.indexing_yaml)
                start = time.perf_counter()
                chunked[key] = index_corpus(index_data, documents, progress=progress, name=str(system.indexing_yaml))
                indexed[key] = time.perf_counter() - start
                index_seconds = indexed[key]
        pipeline = built[system.name]
        warm_up(pipeline, str(system.query_yaml))
        part = parts[system.name]
        loaded.append(
            LoadedSystem(
                system=system,
                pipeline=pipeline,
                query_inputs=inputs[system.name],
                retriever=part.scored,
                reader=part.reader,
                models=_models_of(query_data),
                index_seconds=index_seconds,
                indexed=chunked.get(key) if system.indexing_yaml is not None else None,
                part=part,
            )
        )
    for item in loaded:  # after all indexing: stores of one shared index fill each other
        for retriever, instance in item.pipeline.walk():
            store = component_store(instance)
            if store is not None and store.count_documents() == 0:  # else every question silently retrieves nothing
                name, query = item.system.name, item.system.query_yaml
                raise DistillError(
                    f"pipeline {name!r}: the document store of its retriever {retriever!r} is empty and no indexing "
                    f"pipeline filled it; put indexing.yaml beside {query} or pass {name}={query},INDEXING.yaml"
                )
    return loaded


@dataclass
class QueryResult:
    """What one question got from a pipeline: the scored documents, the reader's answers, and the embedding
    retriever's own list where it is not the scored one (else None)."""

    documents: list[Document]
    answers: list[Any]
    embedding: list[Document] | None = None


def run_pipeline(loaded: LoadedSystem, question: str, documents: list[Document] | None = None) -> QueryResult:
    """One question through a pipeline; ``documents`` go straight to a reader-only pipeline (gold context)."""
    data: dict[str, dict[str, Any]] = defaultdict(dict)
    for component, socket in loaded.query_inputs:
        data[component][socket] = question
    if documents is not None:
        data[loaded.reader]["documents"] = copy_documents(documents)
    outputs = {c for c in (loaded.retriever, loaded.reader, loaded.embedding) if c}
    try:
        result = loaded.pipeline.run(dict(data), include_outputs_from=outputs)
    except PipelineRuntimeError as e:
        raise run_failure(e, str(loaded.system.query_yaml)) from e
    return QueryResult(
        documents=result.get(loaded.retriever, {}).get("documents", []) if loaded.retriever else [],
        answers=result.get(loaded.reader, {}).get("answers", []) if loaded.reader else [],
        embedding=result.get(loaded.embedding, {}).get("documents", []) if loaded.embedding else None,
    )


def run_query(
    loaded: LoadedSystem, question: str, documents: list[Document] | None = None
) -> tuple[list[Document], list[Any]]:
    """:func:`run_pipeline`'s scored documents and answers."""
    result = run_pipeline(loaded, question, documents)
    return result.documents, result.answers


def report_rows(loaded: list[LoadedSystem]) -> list[tuple[str, LoadedSystem, str | None]]:
    """The report's rows: (name, system, None) per pipeline, then (``NAME [COMPONENT]``, system, component) for each
    pipeline's embedding list scored beside its own."""
    rows: list[tuple[str, LoadedSystem, str | None]] = [(s.system.name, s, None) for s in loaded]
    return rows + [(view_name(s.system.name, s.embedding), s, s.embedding) for s in loaded if s.embedding]


def scored_entry(loaded: LoadedSystem, view: str | None = None) -> dict[str, Any] | None:
    """A report row's ``scored``: the component whose documents it scored, that component's role, where the list
    goes (the prompt builder or reader; None: the pipeline's output); an embedding list scored beside a pipeline's
    own has ``of`` (that pipeline) instead of ``into``. None for readers asked on the gold paragraph (nothing
    retrieved)."""
    part = loaded.part
    if part is None:
        return None
    if view is None:
        return {"component": part.scored, "role": part.scored_role, "into": part.into}
    return {"component": view, "role": "retriever", "of": loaded.system.name}


def _top_answer(answers: list[Any]) -> Any | None:
    return next((a for a in answers if getattr(a, "data", None) is not None), None)


def score_question(
    query: Query, documents: list[Document], answers: list[Any], sources: dict[str, str] | None = None
) -> dict[str, Any]:
    """One question's row. With ``sources`` (chunk id -> its corpus document's id, where the indexing pipeline splits
    documents) the ranked list scored (``retrieved``, ``scores``, ``rank``, and so relevance and agreement) is the
    source documents, each at its best-ranked chunk, and ``chunks`` keeps the chunk ids as retrieved."""
    ids = [d.id for d in documents]
    scores = [round(float(d.score), 6) if d.score is not None else None for d in documents]
    if sources is not None:
        best = metrics.best_per_source(ids, sources)
        chunks, ids, scores = ids, [sources.get(ids[i], ids[i]) for i in best], [scores[i] for i in best]
    row: dict[str, Any] = {
        "retrieved": ids[:10],
        "scores": scores[:10],
        "rank": metrics.first_relevant_rank(ids, query.gold_doc_ids),
    }
    if sources is not None:
        row["chunks"] = chunks[:10]
    if query.answers:
        row["answer_recall@10"] = metrics.answer_in_passages([d.content or "" for d in documents], query.answers, 10)
    top = _top_answer(answers)
    if top is not None or answers:
        text = top.data if top is not None else None
        row["answer"] = text
        row["answer_score"] = float(top.score) if top is not None else None
        row["answer_doc"] = top.document.id if top is not None and top.document is not None else None
        if sources is not None and row["answer_doc"] is not None:
            row["answer_doc"] = sources.get(row["answer_doc"], row["answer_doc"])
        row["em"] = metrics.exact_match(text, query.answers)
        row["f1"] = metrics.f1_score(text, query.answers)
        # Haystack sorts its no-answer (``no_answer: true``, no text) among the answers by score: first = "no answer"
        row["no_answer"] = bool(answers) and getattr(answers[0], "data", None) is None
    return row


def retrieval_metrics(queries: list[Query], retrieved: list[list[str]]) -> dict[str, float]:
    """Recall@k and MRR@10 through Haystack's evaluators (binary: any grade > 0 is relevant), comparing documents by
    id; nDCG@10 with the questions' grades as gains (:func:`distill.common.metrics.ndcg_at_k`, BEIR's ``ndcg_cut_10``:
    Haystack's evaluator never cuts its ideal DCG at 10)."""
    gold_docs = [[Document(id=g, content=g) for g in q.gold_doc_ids] for q in queries]
    out: dict[str, float] = {}
    for k in KS:
        ret = [[Document(id=i, content=i) for i in ids[:k]] for ids in retrieved]
        out[f"recall@{k}"] = DocumentRecallEvaluator(document_comparison_field="id").run(gold_docs, ret)["score"]
    ret10 = [[Document(id=i, content=i) for i in ids[:10]] for ids in retrieved]
    out["mrr@10"] = DocumentMRREvaluator(document_comparison_field="id").run(gold_docs, ret10)["score"]
    ndcg = [metrics.ndcg_at_k(ids, q.gold_doc_ids, 10, q.gold_grades()) for q, ids in zip(queries, retrieved)]
    out["ndcg@10"] = sum(ndcg) / len(ndcg)
    return out


@dataclass
class TimedRun:
    """What :func:`run_interleaved` measured: a row per question (with each pipeline's run under ``runs``) and each
    pipeline's latencies in milliseconds, per query and per component."""

    per_question: list[dict[str, Any]]
    query_ms: dict[str, list[float]]
    component_ms: dict[str, dict[str, list[float]]]


def run_interleaved(
    loaded: list[LoadedSystem], data: Dataset, *, warmup: int, gold: bool, progress: bool = True
) -> TimedRun:
    """Every question through every pipeline, question by question (a drift in machine load hits all pipelines
    alike), after ``warmup`` questions whose timings are discarded; ``gold`` gives each question its gold paragraph
    as the only document. A pipeline's embedding list scored beside its own (:func:`report_rows`) comes from the same
    run, timed as the sum of the spans of the components up to it."""
    from tqdm.auto import tqdm

    def gold_docs(q: Query) -> list[Document] | None:
        return [data.document(q.gold_doc_ids[0])] if gold else None

    per_question: list[dict[str, Any]] = [
        {"id": q.id, "question": q.text, "gold_doc_ids": list(q.gold_doc_ids), "answers": list(q.answers), "runs": {}}
        | ({"gold_grades": list(q.grades)} if q.grades else {})
        for q in data.queries
    ]
    rows = report_rows(loaded)
    query_ms: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    component_ms: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name, _, _ in rows}

    def record(i: int, name: str, s: LoadedSystem, result: tuple[list[Document], list[Any]], ms: float, spans: dict):
        query_ms[name].append(ms)
        for component, span_ms in spans.items():
            component_ms[name][component].append(span_ms)
        row = score_question(data.queries[i], result[0], result[1], s.sources)
        row["latency_ms"] = round(ms, 3)
        row["component_ms"] = {c: round(span_ms, 3) for c, span_ms in spans.items()}
        per_question[i]["runs"][name] = row

    with timing_tracer() as tracer:
        for q in data.queries[:warmup]:
            for s in loaded:
                run_query(s, q.text, gold_docs(q))
        tracer.pop()
        for i, q in enumerate(tqdm(data.queries, desc="questions", unit="q", disable=not progress)):
            for s in loaded:
                start = time.perf_counter()
                result = run_pipeline(s, q.text, gold_docs(q))
                elapsed = (time.perf_counter() - start) * 1000
                spans = tracer.pop()
                record(i, s.system.name, s, (result.documents, result.answers), elapsed, spans)
                if s.part is not None and s.embedding is not None and result.embedding is not None:
                    upstream = {c: ms for c, ms in spans.items() if c in s.part.upstream}
                    name = view_name(s.system.name, s.embedding)
                    record(i, name, s, (result.embedding, []), sum(upstream.values()), upstream)
    return TimedRun(per_question, query_ms, component_ms)


def summarise(
    loaded: list[LoadedSystem],
    data: Dataset,
    run: TimedRun,
    *,
    command: str,
    config: dict[str, Any] | None,
    context: str,
    warmup: int,
) -> dict[str, Any]:
    """The report of a run: how it was made (command, config, data, machine, versions), then each pipeline's quality,
    latency summaries, models and indexing time."""
    report: dict[str, Any] = {
        "command": command,
        "config": config or {},
        "context": context,
        "dataset": data.summary(),
        "warmup_queries": warmup,
        "machine": machine_info(),
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pipelines": {},
    }
    for name, s, view in report_rows(loaded):
        upstream = s.part.upstream if s.part is not None and view is not None else None
        rows = [pq["runs"][name] for pq in run.per_question]
        report["pipelines"][name] = {
            "query_yaml": str(s.system.query_yaml),
            "indexing_yaml": str(s.system.indexing_yaml) if s.system.indexing_yaml else None,
            "quality": _quality(s, data.queries, rows, answers=view is None),
            "latency": {
                "query": metrics.latency_summary(run.query_ms[name]),
                "components": {c: metrics.latency_summary(v) for c, v in run.component_ms[name].items()},
            },
            "models": {c: m for c, m in s.models.items() if upstream is None or c in upstream},
            "index_seconds": round(s.index_seconds, 2),
            "scored": scored_entry(s, view),
        }
        if s.indexed is not None:  # documents, chunks, and how many chunk embeddings the cache served
            report["pipelines"][name]["indexed"] = s.indexed.summary()
    return report


def _quality(
    s: LoadedSystem, queries: list[Query], rows: list[dict[str, Any]], *, answers: bool = True
) -> dict[str, float]:
    """A report row's quality over its per-question rows: retrieval figures where the questions have gold passages,
    answer recall where they have answers, and EM / F1 (in %) for a pipeline with a reader (``answers``: the row is
    the pipeline's own, not its embedding list)."""
    quality: dict[str, float] = {}
    if s.retriever and any(q.gold_doc_ids for q in queries):
        quality.update(retrieval_metrics(queries, [r["retrieved"] for r in rows]))
    if s.retriever and any(q.answers for q in queries):
        vals = [r["answer_recall@10"] for r in rows if "answer_recall@10" in r]
        quality["answer_recall@10"] = sum(vals) / len(vals) if vals else 0.0
    if s.reader and answers and any(q.answers for q in queries):
        quality["exact_match"] = 100 * sum(r.get("em", 0.0) for r in rows) / len(rows)
        quality["f1"] = 100 * sum(r.get("f1", 0.0) for r in rows) / len(rows)
    return quality


def evaluate(
    systems: list[System],
    data: Dataset,
    *,
    warmup: int = 5,
    out_dir: Path | None = None,
    command: str = "",
    config: dict[str, Any] | None = None,
    progress: bool = True,
    context: str = "retrieved",
    versus: str | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """Evaluate every system on ``data`` and return the report (written to ``out_dir`` when given).

    ``context="retrieved"`` runs each whole pipeline; ``context="gold"`` asks each pipeline's reader alone, with the
    question's gold paragraph as its only document (reader quality without retrieval errors). With ``versus`` (a
    pipeline's name) the report also holds every other pipeline's paired difference from it
    (:func:`distill.evaluation.report.paired_differences`). Every retrieving pipeline's agreement with ``reference``
    (default the first pipeline) is reported too (:mod:`distill.evaluation.agreement`); questions without gold get no
    relevance figures."""
    if not data.queries:
        raise DistillError(f"data set {data.name} has no questions to evaluate")
    names = [s.name for s in systems]
    for flag, value in (("--versus", versus), ("--reference", reference)):
        if value is not None and value not in names:
            raise DistillError(f"{flag} {value!r} names none of the pipelines: {', '.join(names)}")
    loaded = load_systems(systems, data.documents, progress=progress, context=context)
    gold = context == "gold"
    if gold:
        missing = [q.id for q in data.queries if not q.gold_doc_ids]
        if missing:
            raise DistillError(f"--context gold needs every question's paragraph; {missing[:3]} have none")
    run = run_interleaved(loaded, data, warmup=warmup, gold=gold, progress=progress)
    report = summarise(loaded, data, run, command=command, config=config, context=context, warmup=warmup)
    add_agreement(report, run.per_question, reference if reference is not None else loaded[0].system.name)
    report["relative"] = relative_quality(report, run.per_question)
    if versus is not None:
        report["differences"] = paired_differences(report, run.per_question, versus)
    if out_dir is not None:
        write_report(report, run.per_question, out_dir)
    return report
