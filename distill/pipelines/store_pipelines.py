"""The default pipelines on a server or Qdrant store: the in-memory ones of :func:`distill.pipelines.loading.
build_default_pipelines` with each store and embedding retriever replaced by a real instance's ``to_dict``.

- ``pgvector``: ``PgvectorDocumentStore`` + ``PgvectorEmbeddingRetriever``; the connection string is the store's
  ``Secret.from_env_var("PG_CONN_STR")`` (only the variable's name is written), ``recreate_table=False`` so that
  loading the query YAML never wipes the table, exact search by default (``search_strategy="hnsw"`` for an index).
- ``qdrant``: ``QdrantDocumentStore`` in local mode (``path``, no server) + ``QdrantEmbeddingRetriever``,
  ``recreate_index=False``.

    python -c "from distill.pipelines.store_pipelines import write_store_pipelines; write_store_pipelines('pgvector',
    'p/')"
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from distill.errors import DistillError
from distill.pipelines.haystack_yaml import parse_pipeline_yaml
from distill.pipelines.loading import (
    TEACHER_EMBEDDER,
    build_default_pipelines,
    dump_pipeline_dict,
    fit_devices,
)
from distill.pipelines.stores import model_width

STORES = ("pgvector", "qdrant")
QDRANT_PATH = "runs/qdrant"
TEACHER_WIDTH = 768
TEACHER_STORE = "distill_teacher"


def make_store(kind: str, name: str, width: int, **settings: Any) -> tuple[Any, type]:
    """A document store of ``kind`` for collection ``name`` and its embedding retriever's class."""
    if kind == "pgvector":
        from haystack_integrations.components.retrievers.pgvector import PgvectorEmbeddingRetriever
        from haystack_integrations.document_stores.pgvector import PgvectorDocumentStore

        settings = {"recreate_table": False, "vector_function": "cosine_similarity", **settings}
        store = PgvectorDocumentStore(
            table_name=name,
            embedding_dimension=width,
            keyword_index_name=f"{name}_keyword",
            hnsw_index_name=f"{name}_hnsw",
            **settings,
        )
        return store, PgvectorEmbeddingRetriever
    if kind == "qdrant":
        from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
        from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

        name = name.replace("_", "-")
        settings = {"path": QDRANT_PATH, "recreate_index": False, "similarity": "cosine", **settings}
        return QdrantDocumentStore(index=name, embedding_dim=width, progress_bar=False, **settings), (
            QdrantEmbeddingRetriever
        )
    raise DistillError(f"store must be one of {', '.join(STORES)}, got {kind!r}")


def with_store(data: dict[str, Any], kind: str, name: str, width: int, **settings: Any) -> dict[str, Any]:
    """A copy of a pipeline dict whose stores are ``kind`` and whose in-memory embedding retrievers are its own."""
    store, retriever_class = make_store(kind, name, width, **settings)
    out = copy.deepcopy(data)
    for component_name, component in out["components"].items():
        params = component.get("init_parameters") or {}
        if str(component.get("type", "")).endswith("InMemoryEmbeddingRetriever"):
            retriever = retriever_class(document_store=store, top_k=params.get("top_k", 10))
            out["components"][component_name] = retriever.to_dict()
        elif "document_store" in params:
            params["document_store"] = store.to_dict()
    return out


def build_store_pipelines(
    kind: str,
    embedder: str = TEACHER_EMBEDDER,
    name: str = TEACHER_STORE,
    top_k: int = 10,
    width: int | None = None,
    **settings: Any,
) -> dict[str, str]:
    """The teacher's indexing and retrieval pipelines on a ``kind`` store, as YAML text.

    The example tables are named ``distill_*`` (collections ``distill-*``), so ``distill eval`` owns and empties them
    (:mod:`distill.pipelines.stores`); give a table of your own another name and evaluation only upserts into it."""
    width = width or (TEACHER_WIDTH if embedder == TEACHER_EMBEDDER else model_width(embedder)) or TEACHER_WIDTH
    texts = build_default_pipelines(embedder=embedder, index=name, top_k=top_k)
    out = {}
    for pipeline in ("indexing", "retrieval"):
        data = with_store(parse_pipeline_yaml(texts[pipeline], pipeline), kind, name, width, **settings)
        out[pipeline] = dump_pipeline_dict(fit_devices(data))
    return out


def write_store_pipelines(kind: str, folder: str | Path, **kwargs: Any) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for pipeline, text in build_store_pipelines(kind, **kwargs).items():
        path = folder / f"{pipeline}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
