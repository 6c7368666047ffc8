"""Document stores beyond memory: which setting names a store's collection, what a student gets, and the checks that
turn a server's failure into one line.

Three stores are known by name; any other store passes through unchanged.

| store | collection setting | width setting | a student's own collection |
| --- | --- | --- | --- |
| ``InMemoryDocumentStore`` | ``index`` | - | ``student-<model>`` |
| ``PgvectorDocumentStore`` | ``table_name`` (+ index names) | ``embedding_dimension`` | ``distill_student_<model>`` |
| ``QdrantDocumentStore`` | ``index`` | ``embedding_dim`` | ``distill-student-<model>`` |

Collections whose name starts with ``distill`` (what :func:`rename_store` writes) belong to the evaluation: ``distill
eval`` empties them before it indexes its corpus, as it empties in-memory stores. Any other table or collection is the
user's: it is never emptied or dropped; the corpus is written into it with the writer's own policy (upserts with the
default ``OVERWRITE``) and a warning names the documents that were there before.

PostgreSQL's connection string comes from the store's ``Secret`` (default: the ``PG_CONN_STR`` environment variable);
the YAML files hold only the variable's name. Qdrant in local mode (``path`` or ``location: ":memory:"``) allows one
client per folder per process, so every store of one folder in this process shares one client (:func:`connect_stores`).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from distill.errors import DistillError

logger = logging.getLogger(__name__)

OWNED_PREFIX = "distill"
PG_NAME_LIMIT = 63  # PostgreSQL truncates longer identifiers silently
NAME_KEYS = {"InMemoryDocumentStore": "index", "QdrantDocumentStore": "index", "PgvectorDocumentStore": "table_name"}
WIDTH_KEYS = {"QdrantDocumentStore": "embedding_dim", "PgvectorDocumentStore": "embedding_dimension"}

# A store's own errors and those its driver lets through (psycopg raises its own from a rollback on a lost connection).
DRIVER_MODULES = {"psycopg", "qdrant_client", "httpx", "grpc"}
WRITE_BATCH = 1000  # documents per write: a server commits each batch, so memory and a lost batch stay bounded

_QDRANT_CLIENTS: dict[str, Any] = {}


def store_type(store: dict[str, Any]) -> str:
    return str(store.get("type", "")).rsplit(".", 1)[-1]


def store_name(store: dict[str, Any]) -> str | None:
    """The collection a serialised store reads and writes (index, table), or None for an unknown store."""
    key = NAME_KEYS.get(store_type(store))
    params = store.get("init_parameters") or {}
    if key is None:
        return None
    default = "haystack_documents" if key == "table_name" else "Document" if "Qdrant" in store_type(store) else None
    return str(params.get(key, default))


def _pg_identifier(name: str) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if len(name) <= PG_NAME_LIMIT - 8:  # room for the _keyword / _hnsw suffixes of its indexes
        return name
    return f"{name[: PG_NAME_LIMIT - 17]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def student_name(store: dict[str, Any], model_slug: str) -> str:
    """The collection :func:`distill.pipelines.loading.swap` gives a student in this kind of store."""
    kind = store_type(store)
    if kind == "PgvectorDocumentStore":
        return _pg_identifier(f"{OWNED_PREFIX}_student_{model_slug}")
    if kind == "QdrantDocumentStore":
        return f"{OWNED_PREFIX}-student-{model_slug}"
    return f"student-{model_slug}"


def rename_store(store: dict[str, Any], name: str, width: int | None = None) -> None:
    """Point a serialised store at collection ``name`` (and, for a store that declares it, vectors of ``width``)."""
    kind = store_type(store)
    params = store.setdefault("init_parameters", {})
    if kind == "PgvectorDocumentStore":
        name = _pg_identifier(name)
        # Index names are unique per schema: the defaults of a second table would collide with the first's.
        params.update(table_name=name, keyword_index_name=f"{name}_keyword", hnsw_index_name=f"{name}_hnsw")
    else:
        params["index"] = name
    if width is not None and kind in WIDTH_KEYS:
        params[WIDTH_KEYS[kind]] = width


def move_stores(data: dict[str, Any], *, index: str | None, model_slug: str, width: int | None) -> None:
    """Point every document store of a pipeline dict at ``index`` (default: the student's own collection)."""
    for component in data["components"].values():
        store = (component.get("init_parameters") or {}).get("document_store")
        if isinstance(store, dict) and isinstance(store.get("init_parameters"), dict):
            rename_store(store, index or student_name(store, model_slug), width)


def model_width(model: str) -> int | None:
    """The embedding width of a model spec (alias, offline source, folder), None where it is not here or unknown."""
    from distill.common.models import HUB_ALIASES, resolve_model

    try:
        return embedding_width(resolve_model(HUB_ALIASES.get(model, model)))
    except DistillError:
        return None  # a model spec that is not here yet: the store's width stays as written


def embedding_width(folder: str | Path) -> int | None:
    """The width of a sentence-transformers folder's embeddings, read from its module configs (None if unknown)."""
    if not isinstance(folder, (str, Path)):
        return None  # not a model path (a malformed pipeline's model: Haystack's own checks name it)
    folder = Path(folder)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    width = None
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind == "StaticEmbedding":  # no config.json: its width is the embedding matrix's
            width = _static_width(folder / module.get("path", "") / "model.safetensors")
            continue
        try:
            config = json.loads((folder / module.get("path", "") / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if kind == "Pooling":
            base = config.get("word_embedding_dimension", config.get("embedding_dimension"))
            modes = sum(1 for k, v in config.items() if k.startswith("pooling_mode_") and v is True)
            width = base * max(modes, 1) if isinstance(base, int) else width
        elif kind == "Dense":
            width = config.get("out_features", width)
    return width


def _static_width(weights: Path) -> int | None:
    """The width of a StaticEmbedding's ``embedding.weight``, read from the safetensors header alone."""
    import struct

    try:
        with open(weights, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            shape = json.loads(f.read(length))["embedding.weight"]["shape"]
        return int(shape[1])
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
        return None


def is_owned(name: str | None) -> bool:
    return bool(name) and str(name).startswith(OWNED_PREFIX)


def _components(pipeline: Any) -> list[tuple[str, Any]]:
    return list(pipeline.walk())


def component_store(component: Any) -> Any:
    """A component's document store (Qdrant's retrievers keep it as ``_document_store``), or None."""
    store = getattr(component, "document_store", None)
    return store if store is not None else getattr(component, "_document_store", None)


def connect_stores(pipeline: Any, name: str) -> Any:
    """Share Qdrant local clients and check every pgvector store against its server; returns ``pipeline``.

    A pgvector store connects here (not at the first query), so a wrong connection string, a database without the
    ``vector`` extension or a table of another width fails as one line naming the fix before any work is done.
    """
    widths = {
        c: embedding_width(getattr(component, "model", "") or "")
        for c, component in _components(pipeline)
        if type(component).__name__.endswith(("TextEmbedder", "DocumentEmbedder"))
    }
    embedder_width = next((w for w in widths.values() if w), None)
    for component_name, component in _components(pipeline):
        store = component_store(component)
        kind = type(store).__name__
        if kind == "QdrantDocumentStore":
            _share_qdrant_client(store)
        elif kind == "PgvectorDocumentStore":
            from distill.pipelines.pgvector_checks import check_pgvector

            check_pgvector(store, f"{name}: component {component_name!r}", embedder_width)
    return pipeline


def _share_qdrant_client(store: Any) -> None:
    location = store.path or (store.location if store.location == ":memory:" else None)
    if location is None or store._client is not None:
        return  # a server: clients may be many
    key = location if location == ":memory:" else str(Path(location).resolve())
    if key not in _QDRANT_CLIENTS:
        store._initialize_client()
        if not _QDRANT_CLIENTS:
            atexit.register(_close_qdrant_clients)  # before the interpreter tears down what their close() needs
        _QDRANT_CLIENTS[key] = store._client
        return
    store._client = _QDRANT_CLIENTS[key]
    store._set_up_collection(
        store.index, store.embedding_dim, store.recreate_index, store.similarity, store.use_sparse_embeddings,
        store.sparse_idf, store.on_disk, store.payload_fields_to_index,
    )  # fmt: skip


def _close_qdrant_clients() -> None:
    for client in _QDRANT_CLIENTS.values():
        client.close()
    _QDRANT_CLIENTS.clear()


def empty_owned_stores(pipeline: Any) -> None:
    """Before an evaluation indexes its corpus: empty the collections it owns, leave the user's (see module doc)."""
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    for _, component in _components(pipeline):
        store = component_store(component)
        if store is None:
            continue
        if isinstance(store, InMemoryDocumentStore):
            store.delete_all_documents()  # in-memory stores of one index share documents inside a process
            continue
        collection = getattr(store, "table_name", None) or getattr(store, "index", None)
        if collection is None or type(store).__name__ not in NAME_KEYS:
            continue
        if is_owned(collection):
            store.delete_all_documents()
        elif (count := store.count_documents()) > 0:
            logger.warning(
                "%s %r is not one distill made (its name does not start with %r) and already holds %d documents: "
                "the corpus is written into it beside them, nothing is deleted",
                type(store).__name__,
                collection,
                OWNED_PREFIX,
                count,
            )


def write_in_batches(writer: Any, documents: list[Any], where: str, batch: int | None = None) -> int:
    """Write ``documents`` through a ``DocumentWriter`` ``batch`` at a time; a store failure is one line.

    A server that goes away mid-run (killed, restarted, network) leaves the batches before it committed; the line says
    how many and why a rerun is safe: ``distill eval`` empties the tables it owns before indexing, writes to any other
    with the writer's policy (``OVERWRITE`` upserts by id), and finds the embeddings in the teacher cache."""
    from haystack.document_stores.errors import DocumentStoreError

    batch = batch or WRITE_BATCH
    store = writer.document_store
    collection = getattr(store, "table_name", None) or getattr(store, "index", None)
    written = 0
    for start in range(0, len(documents), batch):
        try:
            writer.run(documents=documents[start : start + batch])
        except Exception as e:
            if not (isinstance(e, DocumentStoreError) or type(e).__module__.split(".")[0] in DRIVER_MODULES):
                raise
            cause = e.__cause__ if e.__cause__ is not None else e
            detail = " ".join(str(cause).split())[:300]
            raise DistillError(
                f"{where}: {type(store).__name__} {collection!r} failed after {written} of {len(documents)} documents "
                f"were written ({type(cause).__name__}: {detail}): check that the server is up and reachable, then "
                "rerun; the rerun rewrites the corpus without duplicates (distill's own tables are emptied first, "
                "others upserted by id) and reads the embeddings from the teacher cache"
            ) from None
        written = min(start + batch, len(documents))
    return written
