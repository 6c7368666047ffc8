"""Haystack components that keep a small student's latency about the model, not the plumbing around it.

Haystack's ``InMemoryEmbeddingRetriever`` rebuilds a numpy matrix from every stored embedding on each query: over the
2,067 SQuAD dev paragraphs that costs ~30 ms (768-d) and ~16 ms (384-d), as much as the MiniLM student's whole
forward pass (measured: docs/benchmarks/speed.md, "Platform traps"). :class:`FastInMemoryEmbeddingRetriever` is a
drop-in replacement
that keeps the matrix between queries and returns the same Documents with the same scores in the same order, so a
teacher/student latency comparison measures the models. :func:`use_fast_retrievers` swaps it into a pipeline dict.

Why one module over 400 lines: one Haystack component with Haystack's whole contract (init parameters, filters,
filter policy, serialisation, async run), each part tested against Haystack's own retriever.
"""

from __future__ import annotations

import copy
import functools
import logging
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from haystack import Document, component, default_from_dict, default_to_dict
from haystack.document_stores.errors import DocumentStoreError
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.in_memory.document_store import DOT_PRODUCT_SCALING_FACTOR
from haystack.document_stores.types import FilterPolicy, apply_filter_policy

from distill.errors import DistillError

logger = logging.getLogger(__name__)

HAYSTACK_RETRIEVER_TYPE = "haystack.components.retrievers.in_memory.embedding_retriever.InMemoryEmbeddingRetriever"

# Candidates that are rescored exactly per query. More than this (a huge top_k, or hundreds of documents tied
# within float32 error) goes through Haystack's own path: exactness beats speed in a case that is rare anyway.
MAX_RESCORED = 512
# Unit roundoff of float32 with a factor 2 of margin: the float32 pre-selection widens its cut by this much per
# dimension so that it can never drop a document of the exact top_k.
_F32_ROUNDOFF = 2.0**-23


class EmbeddingDimensionError(DistillError, DocumentStoreError):
    """The query embedding's width differs from the stored documents' (usually: the wrong model for this index).

    A :class:`DocumentStoreError` like Haystack's own error for the same mistake, so code written for Haystack's
    retriever still catches it, and a :class:`DistillError`, so the CLI prints it without a stack trace.
    """


@dataclass(frozen=True)
class _EmbeddingIndex:
    """A snapshot of a store's embeddings, valid while the store holds exactly ``documents`` (by identity)."""

    documents: list[Document]  # every stored Document, in storage order; strong references keep identity sound
    embedded: list[Document]  # the ones with an embedding, in storage order (Haystack's tie-break order)
    matrix: np.ndarray  # float32, one row per embedded Document; unit rows (or zero rows) for cosine
    rows: np.ndarray  # the same rows in float64, for the exact rescoring (no list -> array conversion per query)
    max_row_norm: float
    similarity: str

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])


def _build_index(store: InMemoryDocumentStore) -> _EmbeddingIndex:
    documents = list(store.storage.values())
    embedded = [doc for doc in documents if doc.embedding is not None]
    similarity = store.embedding_similarity_function
    if len(embedded) < len(documents):
        logger.info(
            "%d of %d documents in index %r have no embedding; the retriever skips them, as Haystack's does",
            len(documents) - len(embedded),
            len(documents),
            store.index,
        )
    if not embedded:
        empty = np.zeros((0, 0), np.float32)
        return _EmbeddingIndex(documents, embedded, empty, empty.astype(np.float64), 0.0, similarity)
    widths = {len(doc.embedding) for doc in embedded}  # type: ignore[arg-type]
    if len(widths) > 1:
        raise DocumentStoreError(
            f"documents in index {store.index!r} have embeddings of different sizes {sorted(widths)}: "
            "embed all of them with the same model"
        )
    rows = np.asarray([doc.embedding for doc in embedded], dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if similarity == "cosine":
        rows /= np.where(norms == 0.0, 1.0, norms)  # zero vectors stay zero, as in Haystack
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return _EmbeddingIndex(documents, embedded, rows.astype(np.float32), rows, float(norms.max()), similarity)


def _scale(scores: np.ndarray, similarity: str) -> np.ndarray:
    """Haystack's ``scale_score``: ``(s + 1) / 2`` for cosine, ``sigmoid(s / 100)`` for dot product."""
    if similarity == "cosine":
        return (scores + 1) / 2
    return 1 / (1 + np.exp(-scores / DOT_PRODUCT_SCALING_FACTOR))


def _scored_copy(doc: Document, score: float, return_embedding: bool) -> Document:
    """A fresh Document, as Haystack's ``Document.from_dict(doc.to_dict())`` would give, at 1 % of its cost.

    Haystack's round trip deep-copies the whole embedding through ``dataclasses.asdict`` (~0.5 ms per 768-d
    Document); copying the mutable fields is enough to keep callers from editing the store through the result.
    """
    return replace(
        doc,
        score=score,
        embedding=list(doc.embedding) if return_embedding and doc.embedding is not None else None,
        meta=copy.deepcopy(doc.meta),
        blob=copy.deepcopy(doc.blob),
        sparse_embedding=copy.deepcopy(doc.sparse_embedding),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Haystack deep-copies every component's inputs. Its copier recurses into lists element by element and checks each
# element against the runtime Protocol ``Component`` (slow ``typing`` machinery): a 768-float query embedding costs
# ~7.4 ms per query on this CPU, a 384-float one ~3.9 ms (timeit of the copier on the retriever's input dict), more
# than the retrieval itself. Atoms (numbers, strings, None) deep-copy to themselves, so a list of atoms copies to
# a new list of the same objects: the fast path below returns exactly what Haystack's copier returns.
# ---------------------------------------------------------------------------------------------------------------------

_ATOMS = frozenset({int, float, str, bytes, bool, type(None), complex})


def _copy_atoms_fast(original):
    def deepcopy_with_exceptions(obj: Any) -> Any:
        kind = type(obj)
        if kind in _ATOMS:
            return obj
        if kind is list:  # Haystack's copier: type(obj)(copy(v) for v in obj)
            if all(type(v) in _ATOMS for v in obj):
                return list(obj)
            return [deepcopy_with_exceptions(v) for v in obj]
        if kind is dict:  # Haystack's copier: {k: copy(v) for k, v in obj.items()}
            return {k: deepcopy_with_exceptions(v) for k, v in obj.items()}
        return original(obj)

    deepcopy_with_exceptions.__wrapped__ = original  # type: ignore[attr-defined]
    deepcopy_with_exceptions.distill_fast_copy = True  # type: ignore[attr-defined]
    return deepcopy_with_exceptions


def fast_pipeline_copies() -> bool:
    """Give Haystack's pipelines the exact-result fast path for copying lists of numbers (e.g. query embeddings).

    Applied once per process when a pipeline holding a :class:`FastInMemoryEmbeddingRetriever` warms up (Haystack's
    ``Pipeline.run`` does before its first run), or by calling this; ``DISTILL_HAYSTACK_FAST_COPY=0`` turns it off.
    Returns whether the fast path is on.
    """
    import os

    from haystack.core.pipeline import base, pipeline

    if os.environ.get("DISTILL_HAYSTACK_FAST_COPY", "1") == "0":
        return False
    for module in (base, pipeline):
        current = getattr(module, "_deepcopy_with_exceptions", None)
        if current is not None and not getattr(current, "distill_fast_copy", False):
            module._deepcopy_with_exceptions = _copy_atoms_fast(current)
    return True


def _as_coroutine(run: Callable[..., dict[str, Any]]) -> Callable[..., Awaitable[dict[str, Any]]]:
    """``run`` as the ``run_async`` Haystack asks for: a coroutine with the very same parameters and output types.

    Haystack checks that both methods declare the same parameters; ``functools.wraps`` carries ``run``'s signature,
    annotations and ``@component.output_types`` over, so they are written once. Work that takes well under a
    millisecond runs on the event loop.
    """

    @functools.wraps(run)
    async def run_async(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return run(self, *args, **kwargs)

    run_async.__name__ = "run_async"
    run_async.__qualname__ = run.__qualname__.removesuffix("run") + "run_async"
    run_async.__doc__ = f"Same as :meth:`{run.__name__}`, as a coroutine that runs on the event loop."
    return run_async


@component
class FastInMemoryEmbeddingRetriever:
    """``InMemoryEmbeddingRetriever`` with the document matrix kept between queries.

    Same init parameters, inputs, outputs, scores (float64, like Haystack's), order (ties keep storage order) and
    serialisation as Haystack's retriever. Per query it checks that the store still holds the same Document objects
    (~35 us for 2,067 documents) and rebuilds the matrix only when a document was written, overwritten or deleted.
    Scoring is one float32 matrix-vector product that pre-selects every document that could be in the top_k given
    float32 rounding; those few are rescored in float64 (rows kept with the index), so scores and order match
    Haystack's rather than a float32 approximation of them.

    Falls back to the store's own ``embedding_retrieval`` when filters are given (and when the exact rescoring
    would cover more than ``MAX_RESCORED`` documents).

    Warming one up (a pipeline does before its first run) also turns on :func:`fast_pipeline_copies` (Haystack's
    per-component input copy, exact same result, without ~4-8 ms of per-float type checks on the query embedding).

    Not detected: editing a stored Document's embedding in place (``doc.embedding = ...``, which Haystack itself
    warns against, or ``doc.embedding[0] = ...``); call :meth:`clear_cache` after editing stored objects directly.

    Usage:
    ```python
    retriever = FastInMemoryEmbeddingRetriever(InMemoryDocumentStore(index="student"), top_k=10)
    retriever.run(query_embedding=[0.1, 0.2, ...])["documents"]
    ```
    """

    def __init__(
        self,
        document_store: InMemoryDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        scale_score: bool = False,
        return_embedding: bool = False,
        filter_policy: FilterPolicy = FilterPolicy.REPLACE,
    ) -> None:
        """
        :param document_store: The InMemoryDocumentStore to search.
        :param filters: Filters applied on every query (see ``filter_policy``). Filtered queries take Haystack's path.
        :param top_k: The maximum number of Documents to return; must be > 0.
        :param scale_score: Scale scores to [0, 1] as Haystack does: ``(s + 1) / 2`` for cosine, ``sigmoid(s / 100)``
            for dot product.
        :param return_embedding: Whether returned Documents keep their embedding.
        :param filter_policy: ``REPLACE`` (runtime filters override init filters) or ``MERGE`` (both apply).
        :raises TypeError: If ``document_store`` is not an InMemoryDocumentStore.
        :raises ValueError: If ``top_k`` is not > 0.
        """
        if not isinstance(document_store, InMemoryDocumentStore):
            raise TypeError(f"document_store must be an InMemoryDocumentStore, got {type(document_store).__name__}")
        if top_k <= 0:
            raise ValueError(f"top_k must be greater than 0, but got {top_k}")
        self.document_store = document_store
        self.filters = filters
        self.top_k = top_k
        self.scale_score = scale_score
        self.return_embedding = return_embedding
        self.filter_policy = filter_policy
        self._index: _EmbeddingIndex | None = None
        self._fast_copies_checked = False

    def to_dict(self) -> dict[str, Any]:
        """Serialise every init parameter, the document store as its own settings (Haystack's retriever's format)."""
        return default_to_dict(
            self,
            document_store=self.document_store,
            filters=self.filters,
            top_k=self.top_k,
            scale_score=self.scale_score,
            return_embedding=self.return_embedding,
            filter_policy=self.filter_policy.value,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FastInMemoryEmbeddingRetriever:
        """Rebuild from :meth:`to_dict` output (the nested document store is rebuilt by Haystack)."""
        data = {**data, "init_parameters": dict(data.get("init_parameters", {}))}
        params = data["init_parameters"]
        if isinstance(params.get("filter_policy"), str):
            params["filter_policy"] = FilterPolicy.from_str(params["filter_policy"])
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Build the matrix before the first query, so it does not land in the first query's latency, and turn on
        :func:`fast_pipeline_copies`.

        Pipelines call this on every run: after the first call it does nothing (``run`` checks freshness).
        """
        # The fast copy patches Haystack's pipeline module for the whole process, so it waits for warm_up rather than
        # __init__: building the component (from_dict, a test, a user trying it out) changes nothing in Haystack,
        # while every pipeline that runs it gets the fast copy before its first query, since Pipeline.run warms up
        # first. That covers ours (evaluation.load_systems warms each pipeline up before the timed queries, as the UI
        # does through it) and a user's own pipeline alike; an opt-in in distill.pipelines.loading' load path would
        # leave the
        # latter paying the ~4-8 ms per query that this retriever exists to remove.
        if not self._fast_copies_checked:
            fast_pipeline_copies()
            self._fast_copies_checked = True  # once: warm_up runs inside every timed Pipeline.run
        if self._index is None:
            self._index = _build_index(self.document_store)

    def clear_cache(self) -> None:
        """Forget the matrix; the next query rebuilds it (needed only after editing stored Documents in place)."""
        self._index = None

    def _current_index(self) -> _EmbeddingIndex:
        store = self.document_store
        stored = store.storage
        index = self._index
        if (
            index is None
            or index.similarity != store.embedding_similarity_function
            or len(index.documents) != len(stored)
            or not all(map(operator.is_, stored.values(), index.documents))
        ):
            index = _build_index(store)
            self._index = index  # one assignment: a concurrent query sees either the old or the new snapshot
        return index

    @component.output_types(documents=list[Document])
    def run(
        self,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        scale_score: bool | None = None,
        return_embedding: bool | None = None,
    ) -> dict[str, list[Document]]:
        """Return the ``top_k`` stored Documents most similar to ``query_embedding``.

        :param query_embedding: Embedding of the query, as wide as the stored embeddings.
        :param filters: Filters for this query, combined with the init filters by ``filter_policy``.
        :param top_k: The maximum number of Documents to return; 0 returns none.
        :param scale_score: Overrides the init setting for this query.
        :param return_embedding: Overrides the init setting for this query.
        :returns: ``{"documents": [...]}``, best first, each a copy carrying its ``score``.
        :raises ValueError: If ``query_embedding`` is not a non-empty list of floats or ``top_k`` is negative.
        :raises EmbeddingDimensionError: If the query's width differs from the stored embeddings'.
        """
        filters = apply_filter_policy(self.filter_policy, self.filters, filters)
        top_k = top_k if top_k is not None else self.top_k
        if top_k < 0:
            raise ValueError(f"top_k must be greater than or equal to 0, but got {top_k}")
        scale_score = scale_score if scale_score is not None else self.scale_score
        return_embedding = return_embedding if return_embedding is not None else self.return_embedding
        if len(query_embedding) == 0 or not isinstance(query_embedding[0], float):
            raise ValueError("query_embedding should be a non-empty list of floats.")

        def haystack_path() -> dict[str, list[Document]]:
            docs = self.document_store.embedding_retrieval(
                query_embedding=query_embedding,
                filters=filters,
                top_k=top_k,
                scale_score=scale_score,
                return_embedding=return_embedding,
            )
            return {"documents": docs}

        if filters:
            return haystack_path()

        index = self._current_index()
        if not index.embedded:
            logger.warning("No Documents found with embeddings. Returning empty list. Use a DocumentEmbedder first.")
            return {"documents": []}
        query = np.asarray(query_embedding, dtype=np.float64)
        if query.ndim != 1 or query.shape[0] != index.dim:
            raise EmbeddingDimensionError(
                f"the query embedding has {query.shape[-1]} dimensions but the documents in index "
                f"{self.document_store.index!r} have {index.dim}: embed queries with the model that embedded the "
                "documents (a student of another width needs its own index)"
            )
        if top_k == 0:
            return {"documents": []}
        if index.similarity == "cosine":
            norm = np.linalg.norm(query)
            query = query / (norm if norm != 0.0 else 1.0)

        candidates = self._candidates(index, query, top_k, scale_score)
        if candidates is None:
            return haystack_path()

        # Exact float64 scores for the few candidates, computed the way Haystack computes every score (the rows were
        # converted and, for cosine, normalised once when the index was built: per query that cost ~0.1-0.3 ms).
        scores = index.rows[candidates] @ query
        if scale_score:
            scores = _scale(scores, index.similarity)
        # Best first; equal scores keep storage order, as Haystack's stable sort does.
        best = np.lexsort((candidates, -scores))[:top_k]
        keep = return_embedding if return_embedding is not None else self.document_store.return_embedding
        docs = [_scored_copy(index.embedded[candidates[i]], float(scores[i]), keep) for i in best]
        return {"documents": docs}

    @staticmethod
    def _candidates(index: _EmbeddingIndex, query: np.ndarray, top_k: int, scale_score: bool) -> np.ndarray | None:
        """Positions (ascending) of every embedded Document that can be in the exact top_k, or None to fall back.

        A float32 score is within ``err = (dim + 4) * 2**-23 * |q| * max|row|`` of the exact one (standard dot
        product error bound with margin); scaling shrinks that by its largest slope. So the k-th largest float32
        score is within ``err`` of the exact k-th, and any exact top_k member scores at least ``kth - 2 * err``.
        """
        n = len(index.embedded)
        keys = (index.matrix @ query.astype(np.float32)).astype(np.float64)
        if top_k >= n:
            return np.arange(n) if n <= MAX_RESCORED else None
        err = (index.dim + 4) * _F32_ROUNDOFF * float(np.linalg.norm(query)) * index.max_row_norm
        if scale_score:
            keys = _scale(keys, index.similarity)
            slope = 0.5 if index.similarity == "cosine" else 0.25 / DOT_PRODUCT_SCALING_FACTOR
            err = err * slope + 1e-12  # + float64 rounding of the scaling itself
        kth = np.partition(keys, n - top_k)[n - top_k]
        if not np.isfinite(kth):
            return None
        candidates = np.flatnonzero(keys >= kth - 2 * err)
        return candidates if top_k <= len(candidates) <= MAX_RESCORED else None

    run_async = _as_coroutine(run)


FAST_RETRIEVER_TYPE = f"{FastInMemoryEmbeddingRetriever.__module__}.{FastInMemoryEmbeddingRetriever.__qualname__}"


def use_fast_retrievers(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of pipeline dict ``data`` whose InMemoryEmbeddingRetrievers are FastInMemoryEmbeddingRetrievers.

    Init parameters are kept as they are (the two classes share them). Load the result with
    ``allowed_modules=["distill.*"]``, since Haystack refuses classes outside its allowlist.
    """
    if not isinstance(data, dict) or not isinstance(data.get("components"), dict):
        raise DistillError("use_fast_retrievers needs a Haystack pipeline dict with a 'components' mapping")
    data = copy.deepcopy(data)
    for item in data["components"].values():
        if isinstance(item, dict) and item.get("type") == HAYSTACK_RETRIEVER_TYPE:
            item["type"] = FAST_RETRIEVER_TYPE
    return data
