"""Run two or more YAML pipelines on the same questions and report quality and latency side by side.

Each *system* is a query pipeline (retrieval or extractive QA) plus the indexing pipeline that fills its document
store. The corpus is indexed once per distinct indexing pipeline; every question then runs through every system,
interleaved question by question so that a drift in machine load hits all systems alike. Latency comes from a
Haystack tracer (per component) and a wall clock around ``Pipeline.run`` (per query), after discarded warm-up queries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document, Pipeline, tracing
from haystack.components.evaluators import DocumentMRREvaluator, DocumentNDCGEvaluator, DocumentRecallEvaluator

from distill import metrics
from distill.data import Dataset, Query
from distill.errors import DistillError
from distill.models import model_footprint
from distill.pipelines import fit_devices, is_reader, load_pipeline, read_pipeline_dict, resolve_models

logger = logging.getLogger(__name__)

KS = (1, 5, 10)
CONTEXTS = ("retrieved", "gold")
QUESTION_SOCKETS = ("text", "query")


@dataclass
class System:
    """A named query pipeline and the indexing pipeline that fills its store."""

    name: str
    query_yaml: Path
    indexing_yaml: Path | None

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


def _question_inputs(pipeline: Pipeline, name: str) -> list[tuple[str, str]]:
    pairs = []
    for component, sockets in pipeline.inputs().items():
        for socket, info in sockets.items():
            if socket in QUESTION_SOCKETS and info.get("is_mandatory", False):
                pairs.append((component, socket))
    if not pairs:
        raise DistillError(f"pipeline {name!r} has no open 'text' or 'query' input to feed the question into")
    return pairs


def _models_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    resolved = resolve_models(data)
    for name, component in data["components"].items():
        model = (component.get("init_parameters") or {}).get("model")
        if not isinstance(model, str):
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
            out.add(str((store.get("init_parameters") or {}).get("index")))
    return out


def _copy_documents(documents: list[Document]) -> list[Document]:
    return [Document(id=d.id, content=d.content, meta=dict(d.meta)) for d in documents]


def _embedder_namespace(data: dict[str, Any], name: str) -> dict[str, Any]:
    """What a document embedder's output depends on: its settings and its weights."""
    from distill.models import model_fingerprint

    params = dict(data["components"][name].get("init_parameters") or {})
    for volatile in ("device", "progress_bar", "batch_size", "token"):
        params.pop(volatile, None)
    model = resolve_models(data)["components"][name]["init_parameters"]["model"]
    fingerprint = model_fingerprint(model) if Path(model).is_dir() else model
    return {"kind": "document-embeddings", "params": params, "weights": fingerprint}


def index_corpus(data: dict[str, Any], documents: list[Document], *, progress: bool = True) -> None:
    """Run an indexing pipeline over ``documents``.

    When the pipeline is the usual document embedder -> writer, the embeddings go through the teacher cache, keyed by
    the embedder's settings, weights and each document's embedded text: the embedder component itself computes every
    missing row, so the stored vectors are exactly what the pipeline would write, and a second evaluation (or the UI)
    re-indexes a corpus the size of SQuAD dev in seconds instead of minutes.
    """
    import numpy as np

    from distill.cache import TeacherCache

    pipeline = load_pipeline(data)
    components = data["components"]
    embedders = [n for n, c in components.items() if c.get("type", "").endswith("DocumentEmbedder")]
    writers = [n for n, c in components.items() if c.get("type", "").endswith("DocumentWriter")]
    docs = _copy_documents(documents)
    if len(components) != 2 or len(embedders) != 1 or len(writers) != 1:
        first = next(iter(pipeline.inputs()))
        pipeline.run({first: {"documents": docs}})
        return
    embedder = pipeline.get_component(embedders[0])
    embedder.warm_up()
    embedder.progress_bar = False  # the cache draws one bar over the whole corpus
    meta_fields = (components[embedders[0]].get("init_parameters") or {}).get("meta_fields_to_embed") or []
    keys = [json.dumps([d.content, {f: d.meta.get(f) for f in meta_fields}], sort_keys=True) for d in docs]

    def compute(positions: list[int]) -> np.ndarray:
        embedded = embedder.run(documents=[docs[i] for i in positions])["documents"]
        return np.asarray([d.embedding for d in embedded], dtype=np.float32)

    dim = compute([0]).shape[1]
    cache = TeacherCache(
        TeacherCache.default_root(), namespace=_embedder_namespace(data, embedders[0]) | {"dim": dim}, row_shape=(dim,)
    )
    rows = cache.get(keys, compute, batch_size=64, progress=progress, desc=f"embedding documents ({embedders[0]})")
    embedded = [dataclasses.replace(doc, embedding=row.tolist()) for doc, row in zip(docs, rows)]
    pipeline.get_component(writers[0]).run(documents=embedded)


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
            data, reader = reader_only(read_pipeline_dict(system.query_yaml), system.name)
            pipeline = load_pipeline(data)
            pipeline.warm_up()
            loaded.append(LoadedSystem(system, pipeline, [(reader, "query")], None, reader, models=_models_of(data)))
        return loaded
    if not documents:
        raise DistillError("the corpus is empty: nothing to index")
    indexed: dict[str, float] = {}
    index_owner: dict[str, str] = {}
    loaded = []
    for system in systems:
        query_data = read_pipeline_dict(system.query_yaml)
        index_seconds = 0.0
        if system.indexing_yaml is not None:
            index_data = read_pipeline_dict(system.indexing_yaml)
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
                index_corpus(index_data, documents, progress=progress)
                indexed[key] = time.perf_counter() - start
                index_seconds = indexed[key]
        pipeline = load_pipeline(query_data)
        pipeline.warm_up()
        components = query_data["components"]
        retriever = next((n for n, c in components.items() if "Retriever" in c.get("type", "")), None)
        reader = next((n for n, c in components.items() if is_reader(c)), None)
        loaded.append(
            LoadedSystem(
                system=system,
                pipeline=pipeline,
                query_inputs=_question_inputs(pipeline, system.name),
                retriever=retriever,
                reader=reader,
                models=_models_of(query_data),
                index_seconds=index_seconds,
            )
        )
    for item in loaded:  # after all indexing: stores of one shared index fill each other
        retriever = item.retriever
        store = getattr(item.pipeline.get_component(retriever), "document_store", None) if retriever else None
        if store is not None and store.count_documents() == 0:  # else every question silently retrieves nothing
            name, query = item.system.name, item.system.query_yaml
            raise DistillError(
                f"pipeline {name!r}: the document store of its retriever {retriever!r} is empty and no indexing "
                f"pipeline filled it; put indexing.yaml beside {query} or pass {name}={query},INDEXING.yaml"
            )
    return loaded


def run_query(
    loaded: LoadedSystem, question: str, documents: list[Document] | None = None
) -> tuple[list[Document], list[Any]]:
    """One question through a pipeline; ``documents`` go straight to a reader-only pipeline (gold context)."""
    data: dict[str, dict[str, Any]] = defaultdict(dict)
    for component, socket in loaded.query_inputs:
        data[component][socket] = question
    if documents is not None:
        data[loaded.reader]["documents"] = _copy_documents(documents)
    outputs = {c for c in (loaded.retriever, loaded.reader) if c}
    result = loaded.pipeline.run(dict(data), include_outputs_from=outputs)
    documents = result.get(loaded.retriever, {}).get("documents", []) if loaded.retriever else []
    answers = result.get(loaded.reader, {}).get("answers", []) if loaded.reader else []
    return documents, answers


def _top_answer(answers: list[Any]) -> Any | None:
    return next((a for a in answers if getattr(a, "data", None) is not None), None)


def score_question(query: Query, documents: list[Document], answers: list[Any]) -> dict[str, Any]:
    ids = [d.id for d in documents]
    row: dict[str, Any] = {
        "retrieved": ids[:10],
        "scores": [round(float(d.score), 6) if d.score is not None else None for d in documents[:10]],
        "rank": metrics.first_relevant_rank(ids, query.gold_doc_ids),
    }
    if query.answers:
        row["answer_recall@10"] = metrics.answer_in_passages([d.content or "" for d in documents], query.answers, 10)
    top = _top_answer(answers)
    if top is not None or answers:
        text = top.data if top is not None else None
        row["answer"] = text
        row["answer_score"] = float(top.score) if top is not None else None
        row["answer_doc"] = top.document.id if top is not None and top.document is not None else None
        row["em"] = metrics.exact_match(text, query.answers)
        row["f1"] = metrics.f1_score(text, query.answers)
    return row


def retrieval_metrics(queries: list[Query], retrieved: list[list[str]]) -> dict[str, float]:
    """Recall@k, MRR@10 and nDCG@10 through Haystack's evaluators, comparing documents by id."""
    gold_docs = [[Document(id=g, content=g) for g in q.gold_doc_ids] for q in queries]
    out: dict[str, float] = {}
    for k in KS:
        ret = [[Document(id=i, content=i) for i in ids[:k]] for ids in retrieved]
        out[f"recall@{k}"] = DocumentRecallEvaluator(document_comparison_field="id").run(gold_docs, ret)["score"]
    ret10 = [[Document(id=i, content=i) for i in ids[:10]] for ids in retrieved]
    out["mrr@10"] = DocumentMRREvaluator(document_comparison_field="id").run(gold_docs, ret10)["score"]
    out["ndcg@10"] = DocumentNDCGEvaluator(document_comparison_field="id").run(gold_docs, ret10)["score"]
    return out


def machine_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in (
        "haystack-ai",
        "sentence-transformers-haystack",
        "transformers-haystack",
        "transformers",
        "sentence-transformers",
        "torch",
        "accelerate",
        "numpy",
        "tokenizers",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out


def recipe_bench_main(
    module: str, doc: str, run: Callable[[str, list[str]], dict[str, Any]], summary: str, argv: list[str] | None
) -> dict[str, Any]:
    """Command line shared by the recipe-driven benchmarks: `python -m MODULE RECIPE [key=value ...] [--out FILE]`.

    Runs `run(recipe, overrides)`, records the command that made the report in it, prints `report[summary]` and
    writes the report as JSON to `--out` when given.
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = run(args.recipe, args.overrides)
    report["command"] = f"python -m {module} " + " ".join(
        [args.recipe, *args.overrides] + (["--out", str(args.out)] if args.out else [])
    )
    print(json.dumps(report[summary], indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


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
) -> dict[str, Any]:
    """Evaluate every system on ``data`` and return the report (written to ``out_dir`` when given).

    ``context="retrieved"`` runs each whole pipeline; ``context="gold"`` asks each pipeline's reader alone, with the
    question's gold paragraph as its only document (reader quality without retrieval errors). With ``versus`` (a
    pipeline's name) the report also holds every other pipeline's paired difference from it
    (:func:`paired_differences`)."""
    if not data.queries:
        raise DistillError(f"data set {data.name} has no questions to evaluate")
    if versus is not None and versus not in {s.name for s in systems}:
        raise DistillError(f"--versus {versus!r} names none of the pipelines: {', '.join(s.name for s in systems)}")
    loaded = load_systems(systems, data.documents, progress=progress, context=context)
    gold = context == "gold"
    if gold:
        missing = [q.id for q in data.queries if not q.gold_doc_ids]
        if missing:
            raise DistillError(f"--context gold needs every question's paragraph; {missing[:3]} have none")

    def gold_docs(q: Query) -> list[Document] | None:
        return [data.document(q.gold_doc_ids[0])] if gold else None

    per_question: list[dict[str, Any]] = [
        {"id": q.id, "question": q.text, "gold_doc_ids": list(q.gold_doc_ids), "answers": list(q.answers), "runs": {}}
        for q in data.queries
    ]
    query_ms: dict[str, list[float]] = {s.system.name: [] for s in loaded}
    component_ms: dict[str, dict[str, list[float]]] = {s.system.name: defaultdict(list) for s in loaded}

    from tqdm.auto import tqdm

    with timing_tracer() as tracer:
        for q in data.queries[:warmup]:
            for s in loaded:
                run_query(s, q.text, gold_docs(q))
        tracer.pop()
        for i, q in enumerate(tqdm(data.queries, desc="questions", unit="q", disable=not progress)):
            for s in loaded:
                start = time.perf_counter()
                documents, answers = run_query(s, q.text, gold_docs(q))
                elapsed = (time.perf_counter() - start) * 1000
                per_component = tracer.pop()
                query_ms[s.system.name].append(elapsed)
                for component, ms in per_component.items():
                    component_ms[s.system.name][component].append(ms)
                row = score_question(q, documents, answers)
                row["latency_ms"] = round(elapsed, 3)
                row["component_ms"] = {c: round(ms, 3) for c, ms in per_component.items()}
                per_question[i]["runs"][s.system.name] = row

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
    for s in loaded:
        name = s.system.name
        rows = [pq["runs"][name] for pq in per_question]
        quality: dict[str, float] = {}
        if s.retriever:
            quality.update(retrieval_metrics(data.queries, [r["retrieved"] for r in rows]))
            if any(q.answers for q in data.queries):
                vals = [r["answer_recall@10"] for r in rows if "answer_recall@10" in r]
                quality["answer_recall@10"] = sum(vals) / len(vals) if vals else 0.0
        if s.reader:
            quality["exact_match"] = 100 * sum(r.get("em", 0.0) for r in rows) / len(rows)
            quality["f1"] = 100 * sum(r.get("f1", 0.0) for r in rows) / len(rows)
        report["pipelines"][name] = {
            "query_yaml": str(s.system.query_yaml),
            "indexing_yaml": str(s.system.indexing_yaml) if s.system.indexing_yaml else None,
            "quality": quality,
            "latency": {
                "query": metrics.latency_summary(query_ms[name]),
                "components": {c: metrics.latency_summary(v) for c, v in component_ms[name].items()},
            },
            "models": s.models,
            "index_seconds": round(s.index_seconds, 2),
        }
    report["relative"] = relative_quality(report, per_question)
    if versus is not None:
        report["differences"] = paired_differences(report, per_question, versus)
    if out_dir is not None:
        write_report(report, per_question, out_dir)
    return report


# Per-question scores that a paired bootstrap compares, by the report's quality key.
_PER_QUESTION: dict[str, Callable[[dict[str, Any], dict[str, Any]], float]] = {
    "ndcg@10": lambda question, run: metrics.ndcg_at_k(run.get("retrieved", []), question["gold_doc_ids"], 10),
    "f1": lambda question, run: run.get("f1", 0.0),
}


def _paired_scores(
    report: dict[str, Any], per_question: list[dict[str, Any]], reference: str, name: str
) -> dict[str, tuple[list[float], list[float]]]:
    """Per-question scores of ``reference`` and ``name`` for every quality key both report, in question order."""
    out = {}
    for key, score in _PER_QUESTION.items():
        if key not in report["pipelines"][reference]["quality"] or key not in report["pipelines"][name]["quality"]:
            continue
        runs = [(q, q["runs"].get(reference), q["runs"].get(name)) for q in per_question]
        if any(a is None or b is None for _, a, b in runs):
            raise DistillError(f"per-question results lack a run of {reference!r} or {name!r}")
        out[key] = ([score(q, a) for q, a, _ in runs], [score(q, b) for q, _, b in runs])
    return out


def relative_quality(
    report: dict[str, Any], per_question: list[dict[str, Any]], *, resamples: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """What share of the first pipeline's nDCG@10 and F1 each other pipeline keeps, with a 95% paired bootstrap
    interval over the questions (:func:`distill.metrics.paired_bootstrap_ratio`): is a student's gap to its teacher
    larger than the noise of this question sample?"""
    names = list(report["pipelines"])
    if len(names) < 2:
        return {}
    reference = names[0]
    out: dict[str, dict[str, Any]] = {}
    for name in names[1:]:
        entry: dict[str, Any] = {"reference": reference}
        for key, (ref_scores, scores) in _paired_scores(report, per_question, reference, name).items():
            if sum(ref_scores) <= 0:
                continue
            entry[key] = metrics.paired_bootstrap_ratio(ref_scores, scores, resamples=resamples, seed=seed)
        if len(entry) > 1:
            out[name] = entry
    return out


def paired_differences(
    report: dict[str, Any],
    per_question: list[dict[str, Any]],
    versus: str,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """How far each other pipeline's nDCG@10 and F1 lie from pipeline ``versus``'s on the same questions, in points,
    with a 95% paired bootstrap interval (:func:`distill.metrics.paired_bootstrap_difference`): does one student
    beat another by more than the noise of this question sample?"""
    names = list(report["pipelines"])
    if versus not in names:
        raise DistillError(f"no pipeline named {versus!r} in this report; it has: {', '.join(names)}")
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if name == versus:
            continue
        entry: dict[str, Any] = {"reference": versus}
        for key, (ref_scores, scores) in _paired_scores(report, per_question, versus, name).items():
            entry[key] = metrics.paired_bootstrap_difference(ref_scores, scores, resamples=resamples, seed=seed)
        if len(entry) > 1:
            out[name] = entry
    return out


def answer_sources(report: dict[str, Any], per_question: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Where each reader pipeline took its top answer from, end to end: on how many questions a gold passage, the
    mean F1 on those questions, and the mean score of the top answer. Readers that read well but rank answers
    across passages badly show here: few answers from a gold passage, good F1 on them. Empty for a gold-context
    report (there the only passage is the gold one)."""
    if report.get("context") == "gold":
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, pipeline in report["pipelines"].items():
        if "f1" not in pipeline["quality"]:
            continue
        runs = [(q, q["runs"].get(name)) for q in per_question]
        if any(r is None for _, r in runs):
            raise DistillError(f"per-question results lack a run of {name!r}")
        gold = [r for q, r in runs if r.get("answer_doc") is not None and r["answer_doc"] in q["gold_doc_ids"]]
        scores = [r["answer_score"] for _, r in runs if r.get("answer_score") is not None]
        out[name] = {
            "from_gold": len(gold),
            "questions": len(runs),
            "f1_from_gold": 100 * sum(r.get("f1", 0.0) for r in gold) / len(gold) if gold else None,
            "mean_answer_score": sum(scores) / len(scores) if scores else None,
        }
    return out


def answer_source_lines(sources: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, s in sources.items():
        f1 = f", F1 {s['f1_from_gold']:.1f} on those" if s["f1_from_gold"] is not None else ""
        score = f"; mean top-answer score {s['mean_answer_score']:.3f}" if s["mean_answer_score"] is not None else ""
        lines.append(f"{name}: answer from a gold passage on {s['from_gold']} of {s['questions']} questions{f1}{score}")
    return "\n".join(lines)


_LABELS = {"ndcg@10": "nDCG@10", "f1": "F1"}


def _bootstrap_lines(entries: dict[str, dict[str, Any]], sign: str, part: Callable[[dict[str, Any]], str]) -> str:
    """One line per pipeline: ``NAME SIGN REFERENCE: nDCG@10 ..., F1 ...; paired bootstrap over N questions``."""
    lines = []
    for name, entry in entries.items():
        shown = {key: r for key, r in entry.items() if key in _LABELS}
        parts = ", ".join(f"{_LABELS[key]} {part(r)}" for key, r in shown.items())
        n = next(iter(shown.values()))["questions"]
        lines.append(f"{name} {sign} {entry['reference']}: {parts}; paired bootstrap over {n} questions")
    return "\n".join(lines)


def difference_lines(differences: dict[str, dict[str, Any]]) -> str:
    return _bootstrap_lines(
        differences,
        "-",
        lambda d: (
            f"{100 * d['difference']:+.2f} ({100 * d['confidence']:.0f}% CI {100 * d['low']:+.2f} to "
            f"{100 * d['high']:+.2f}; better on {d['better']}, worse on {d['worse']})"
        ),
    )


def relative_lines(relative: dict[str, dict[str, Any]]) -> str:
    return _bootstrap_lines(
        relative,
        "/",
        lambda r: (
            f"{100 * r['ratio']:.1f}% ({100 * r['confidence']:.0f}% CI {100 * r['low']:.1f}-{100 * r['high']:.1f}%)"
        ),
    )


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_report(report: dict[str, Any], per_question: list[dict[str, Any]], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    _atomic_write(out_dir / "questions.jsonl", "".join(json.dumps(row) + "\n" for row in per_question))


def load_questions(report_path: str | Path) -> list[dict[str, Any]] | None:
    """The per-question results written beside a report (``questions.jsonl``), or None when there are none."""
    path = Path(report_path)
    path = (path if path.is_dir() else path.parent) / "questions.jsonl"
    if not path.exists():
        return None
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise DistillError(f"{path} is not valid JSON lines: {e}") from None


def load_report(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    if not path.exists():
        raise DistillError(f"report {path} does not exist: run `distill eval ... --out {path.parent}` first")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DistillError(f"report {path} is not valid JSON: {e}") from None
    if not isinstance(report, dict) or not isinstance(report.get("pipelines"), dict):
        raise DistillError(f"report {path} has no 'pipelines' section: is it a `distill eval` report?")
    return report


def merge_reports(paths: Sequence[str | Path]) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """One report (and its per-question rows) from several ``distill eval`` runs over the same questions, so that
    pipelines evaluated apart can be compared question by question: the first report's pipelines come first (its
    first is the reference of the shares), then each next report's. The runs must share the data set (by
    fingerprint), the context and the question ids, and no pipeline name may repeat. Latencies stay as each run
    measured them (runs apart may have met a different machine load)."""
    if len(paths) == 1:
        return load_report(paths[0]), load_questions(paths[0])
    reports = [load_report(p) for p in paths]
    first, first_path = reports[0], paths[0]
    merged = {**first, "pipelines": {}, "merged_from": [str(p) for p in paths]}
    merged.pop("relative", None)
    merged.pop("differences", None)
    for path, report in zip(paths, reports):
        for key in ("fingerprint", "questions"):
            if report.get("dataset", {}).get(key) != first.get("dataset", {}).get(key):
                raise DistillError(
                    f"{path} and {first_path} were not evaluated on the same questions (dataset {key} "
                    f"{report.get('dataset', {}).get(key)} against {first.get('dataset', {}).get(key)})"
                )
        if report.get("context") != first.get("context"):
            raise DistillError(
                f"{path} read with context {report.get('context')!r}, {first_path} with {first.get('context')!r}"
            )
        for name, entry in report["pipelines"].items():
            if name in merged["pipelines"]:
                raise DistillError(f"pipeline {name!r} is in more than one of the reports; each name must be unique")
            merged["pipelines"][name] = entry
    rows = [load_questions(p) for p in paths]
    if any(r is None for r in rows):
        return merged, None
    by_id = [{row["id"]: row for row in r} for r in rows]
    for path, table in zip(paths[1:], by_id[1:]):
        if set(table) != set(by_id[0]):
            raise DistillError(f"{path} and {first_path} hold different question ids in questions.jsonl")
    questions = [
        {**row, "runs": {name: run for table in by_id for name, run in table[row["id"]]["runs"].items()}}
        for row in rows[0]
    ]
    return merged, questions


TABLE_METRICS = [
    ("recall@1", "R@1", "{:.3f}"),
    ("recall@10", "R@10", "{:.3f}"),
    ("mrr@10", "MRR@10", "{:.3f}"),
    ("ndcg@10", "nDCG@10", "{:.3f}"),
    ("answer_recall@10", "AnsR@10", "{:.3f}"),
    ("exact_match", "EM", "{:.1f}"),
    ("f1", "F1", "{:.1f}"),
]


def comparison_table(report: dict[str, Any], *, markdown: bool = False) -> str:
    """The report's pipelines side by side: quality, latency, speed-up against the first pipeline, size."""
    pipelines = report["pipelines"]
    names = list(pipelines)
    present = [m for m in TABLE_METRICS if any(m[0] in p["quality"] for p in pipelines.values())]
    header = ["pipeline", *[label for _, label, _ in present], "p50 ms", "p95 ms", "speed-up", "params (M)"]
    base_p50 = pipelines[names[0]]["latency"]["query"]["p50_ms"]
    rows = []
    for name in names:
        p = pipelines[name]
        lat = p["latency"]["query"]
        params = sum(m.get("parameters", 0) for m in p["models"].values()) / 1e6
        rows.append(
            [
                name,
                *[fmt.format(p["quality"][key]) if key in p["quality"] else "-" for key, _, fmt in present],
                f"{lat['p50_ms']:.1f}",
                f"{lat['p95_ms']:.1f}",
                f"{base_p50 / lat['p50_ms']:.2f}x",
                f"{params:.1f}",
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt_row = lambda r: "  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt_row(header), fmt_row(["-" * w for w in widths]), *[fmt_row(r) for r in rows]])


def component_table(report: dict[str, Any]) -> str:
    lines = []
    for name, p in report["pipelines"].items():
        parts = [f"{c} {v['p50_ms']:.1f}" for c, v in p["latency"]["components"].items()]
        lines.append(f"{name}: per-component p50 ms: " + ", ".join(parts))
    return "\n".join(lines)
