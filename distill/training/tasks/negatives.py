"""Negative windows for readers: passages the pipeline's retriever returns for a question that hold no gold answer.

A reader trained on gold paragraphs alone never learns that a passage without the answer should score low, so in a
pipeline (ten retrieved passages) its span scores mean nothing across passages. Training on negatives as SQuAD 2.0
readers do fixes that: the hard-label target of every negative window is position 0 (CLS, "no answer"), and the soft
target is the teacher's full start/end distributions on that window, position 0 included.

Mining runs the retriever half of a Haystack query pipeline (its reader, if any, left out) over the training corpus,
once per (retriever, corpus): the ranked document indices of every question are cached in the
:class:`~distill.teacher.cache.TeacherCache` under a namespace that holds the retriever's fingerprint (both pipelines'
settings and the weights of every local model they name) and the corpus's. Choosing the negatives from the ranking
(skip the gold passages, skip and count a passage that contains a gold answer string) is redone on every run, so the
counts are always those of this run's questions.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distill.common.metrics import normalize_answer
from distill.data.datasets import Dataset, Query
from distill.errors import DistillError
from distill.teacher.cache import TeacherCache, canonical_json
from distill.training.tasks.windows import ReaderExample

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 10  # InMemoryEmbeddingRetriever's and InMemoryBM25Retriever's own default

# The counts a run reports (metrics.json "negatives", the model card): one name per bad-input case.
HOLDS_ANSWER = "negative holds a gold answer string (skipped)"
NONE_FOUND = "question without negatives (every retrieved passage is gold or holds an answer)"
FEWER = "question with fewer negatives than asked"


@dataclass
class NegativeSummary:
    """What mining gave: the settings, the negatives taken and the skips, by the names above."""

    per_question: int
    retriever: str
    questions: int = 0
    negatives: int = 0
    counts: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "per_question": self.per_question,
            "retriever": self.retriever,
            "questions": self.questions,
            "negatives": self.negatives,
            **{name: self.counts.get(name, 0) for name in (HOLDS_ANSWER, NONE_FOUND, FEWER)},
        }


def retrieval_half(data: dict[str, Any]) -> dict[str, Any]:
    """A query pipeline without its readers (and their connections): what ranks passages for a question."""
    from distill.pipelines.loading import is_reader

    readers = {n for n, c in data["components"].items() if is_reader(c)}
    components = {n: c for n, c in data["components"].items() if n not in readers}
    connections = [
        c
        for c in data.get("connections") or []
        if c["sender"].split(".")[0] not in readers and c["receiver"].split(".")[0] not in readers
    ]
    return {**data, "components": components, "connections": connections}


def _retriever_top_k(data: dict[str, Any], path: Path) -> int:
    retrievers = [c for c in data["components"].values() if "Retriever" in c.get("type", "")]
    if len(retrievers) != 1:
        raise DistillError(
            f"recipe.data.negatives.retriever: {path} must hold exactly one retriever component, has {len(retrievers)}"
        )
    top_k = (retrievers[0].get("init_parameters") or {}).get("top_k", DEFAULT_TOP_K)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0:
        raise DistillError(f"{path}: the retriever's top_k must be a positive int to mine negatives, got {top_k!r}")
    return top_k


def _models_fingerprint(data: dict[str, Any]) -> dict[str, str]:
    """The weights fingerprint of every local model folder the pipeline names (a hub id stands for itself)."""
    from distill.common.models import model_fingerprint
    from distill.pipelines.loading import resolve_models

    resolved = resolve_models(data)["components"]
    out = {}
    for name, component in data["components"].items():
        model = (component.get("init_parameters") or {}).get("model")
        if isinstance(model, str):
            folder = Path((resolved[name].get("init_parameters") or {}).get("model", model))
            out[name] = model_fingerprint(folder) if folder.is_dir() else model
    return out


def corpus_fingerprint(data: Dataset) -> str:
    digest = hashlib.sha256()
    for d in data.documents:
        digest.update(f"{d.id}\0{d.content}\0".encode())
    return digest.hexdigest()[:16]


class RetrieverNegatives:
    """The ranked corpus indices a retrieval pipeline returns for each question, through the cache; the pipelines
    are loaded and the corpus indexed only when a question is missing from it."""

    def __init__(self, retriever: str | Path, *, cache_root: Path | None = None):
        from distill.pipelines.loading import fit_devices, read_pipeline_dict

        self.path = Path(retriever)
        if not self.path.is_file():
            raise DistillError(
                f"recipe.data.negatives.retriever: {self.path} does not exist; give the pipeline's retrieval (or "
                "extractive QA) YAML, with its indexing.yaml beside it"
            )
        self.indexing = self.path.with_name("indexing.yaml")
        if not self.indexing.is_file():
            raise DistillError(
                f"recipe.data.negatives.retriever: no indexing.yaml beside {self.path} to fill its document store"
            )
        self.query_data = retrieval_half(read_pipeline_dict(self.path))
        self.index_data = read_pipeline_dict(self.indexing)
        self.top_k = _retriever_top_k(self.query_data, self.path)
        settings = canonical_json(
            {
                "query": fit_devices(self.query_data),
                "indexing": fit_devices(self.index_data),
                "models": {**_models_fingerprint(self.query_data), **_models_fingerprint(self.index_data)},
            }
        )
        self.fingerprint = hashlib.sha256(settings.encode()).hexdigest()[:16]
        self.cache_root = cache_root or TeacherCache.default_root()

    def rankings(self, data: Dataset, queries: list[Query], *, progress: bool = True) -> list[list[int]]:
        """For each question, the indices into ``data.documents`` of the passages retrieved for it, best first."""
        if not queries:
            return []
        cache = TeacherCache(
            self.cache_root,
            namespace={
                "kind": "reader-negatives",
                "retriever": self.fingerprint,
                "corpus": corpus_fingerprint(data),
                "top_k": self.top_k,
            },
            row_shape=(self.top_k,),
            dtype="float64",  # corpus indices, exact up to 2**53; -1 pads a short ranking
        )
        state: dict[str, Any] = {}

        def compute(positions: list[int]) -> np.ndarray:
            if "run" not in state:
                state["run"] = self._load(data, progress)
            out = np.full((len(positions), self.top_k), -1.0)
            for row, p in enumerate(positions):
                ranked = state["run"](queries[p].text)[: self.top_k]
                out[row, : len(ranked)] = ranked
            return out

        rows = cache.get([q.text for q in queries], compute, progress=progress, desc="retriever: negatives")
        return [[int(i) for i in row if i >= 0] for row in rows]

    def _load(self, data: Dataset, progress: bool):
        """A function question -> ranked corpus indices, through the retrieval pipeline over an indexed corpus."""
        from haystack.core.errors import PipelineRuntimeError

        from distill.pipelines.checks import question_inputs, run_failure, warm_up
        from distill.pipelines.loading import load_pipeline
        from distill.teacher.indexing import index_corpus

        logger.info("mining negatives: indexing %d documents with %s", len(data.documents), self.indexing)
        index_corpus(self.index_data, data.documents, progress=progress, name=str(self.indexing))
        pipeline = load_pipeline(self.query_data, name=str(self.path))
        warm_up(pipeline, str(self.path))
        inputs = question_inputs(pipeline, str(self.path))
        retriever = next(n for n, c in self.query_data["components"].items() if "Retriever" in c.get("type", ""))
        position = {d.id: i for i, d in enumerate(data.documents)}

        def run(question: str) -> list[int]:
            feed: dict[str, dict[str, Any]] = {}
            for component, socket in inputs:
                feed.setdefault(component, {})[socket] = question
            try:
                result = pipeline.run(feed, include_outputs_from={retriever})
            except PipelineRuntimeError as e:
                raise run_failure(e, str(self.path)) from e
            return [position[d.id] for d in result.get(retriever, {}).get("documents", []) if d.id in position]

        return run


def holds_answer(passage: str, answers: tuple[str, ...]) -> bool:
    """Whether a normalised gold answer occurs in the normalised passage (the lenient answer recall's test)."""
    text = normalize_answer(passage)
    return any(g and g in text for g in (normalize_answer(a) for a in answers))


def choose_negatives(data: Dataset, query: Query, ranked: list[int], per_question: int, counts: Counter) -> list[int]:
    """The first ``per_question`` retrieved passages that are not gold and hold no gold answer string; the skips and
    shortfalls are counted (:data:`HOLDS_ANSWER`, :data:`NONE_FOUND`, :data:`FEWER`)."""
    gold = set(query.gold_doc_ids)
    out = []
    for i in ranked:
        if len(out) == per_question:
            break
        document = data.documents[i]
        if document.id in gold:
            continue
        if holds_answer(document.content or "", query.answers):
            counts[HOLDS_ANSWER] += 1  # an answer string outside the gold passage: neither a clean negative nor gold
            continue
        out.append(i)
    if not out:
        counts[NONE_FOUND] += 1
    elif len(out) < per_question:
        counts[FEWER] += 1
    return out


def negative_examples(
    data: Dataset,
    queries: list[Query],
    miner: RetrieverNegatives,
    per_question: int,
    summary: NegativeSummary,
    *,
    labelled: bool,
    progress: bool = True,
) -> list[ReaderExample]:
    """One example per negative passage of each question: with ``labelled``, its hard target is "no answer" in every
    window; without, it trains on the teacher's distributions only (as the question's gold example does)."""
    out = []
    for query, ranked in zip(queries, miner.rankings(data, queries, progress=progress)):
        chosen = choose_negatives(data, query, ranked, per_question, summary.counts)
        summary.questions += 1
        summary.negatives += len(chosen)
        for k, i in enumerate(chosen):
            context = data.documents[i].content or ""
            out.append(
                ReaderExample(f"{query.id}#negative{k}", query.text, context, tuple(query.answers), no_answer=labelled)
            )
    return out
