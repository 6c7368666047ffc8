"""The teacher as a user's pipelines hold it: the document embedder of their indexing YAML and the text embedder of
their query YAML, each run by Haystack exactly as the pipeline runs it (prefix, suffix, meta fields, normalisation,
truncation), with every row through the teacher cache.

:func:`document_embeddings` is also how ``distill eval`` indexes a corpus, under the same cache namespace and keys, so
the teacher's pass over a user's corpus (half an hour for 3,600 abstracts on 2 cores) is paid once for training and
for evaluation alike. Where the indexing pipeline cleans or splits documents before its embedder, what the teacher
embeds is the chunks it writes (:attr:`PipelineTeacher.chunker`, :mod:`distill.teacher.chunks`).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document

from distill.errors import DistillError
from distill.pipelines.loading import fit_devices, pipeline_from_dict, resolve_models, type_name
from distill.pipelines.user import UserPipeline, UserPipelines, read_user_pipelines
from distill.teacher.chunks import Chunks, Preprocessing, preprocess

logger = logging.getLogger(__name__)

DOCUMENT_EMBEDDER = "SentenceTransformersDocumentEmbedder"
TEXT_EMBEDDER = "SentenceTransformersTextEmbedder"
DOCUMENT_EMBEDDER_TYPE = (
    "haystack_integrations.components.embedders.sentence_transformers.sentence_transformers_document_embedder."
    + DOCUMENT_EMBEDDER
)
_VOLATILE = ("device", "progress_bar", "batch_size", "token", "intra_op_num_threads")


def embedder_namespace(data: dict[str, Any], name: str) -> dict[str, Any]:
    """What an embedder component's output depends on: its settings and its weights."""
    from distill.common.models import model_fingerprint

    params = dict(data["components"][name].get("init_parameters") or {})
    for volatile in _VOLATILE:
        params.pop(volatile, None)
    model = resolve_models(data)["components"][name]["init_parameters"]["model"]
    fingerprint = model_fingerprint(model) if Path(model).is_dir() else model
    return {"kind": "document-embeddings", "params": params, "weights": fingerprint}


def document_keys(documents: list[Document], meta_fields: list[str]) -> list[str]:
    """Cache keys of documents for a document embedder: what it embeds (content and the embedded meta fields)."""
    return [json.dumps([d.content, {f: d.meta.get(f) for f in meta_fields}], sort_keys=True) for d in documents]


def build_component(data: dict[str, Any], name: str) -> Any:
    """One component of a pipeline dict, built (with the allowlist, devices fitted, models resolved) and warmed up."""
    only = {"components": {name: copy.deepcopy(data["components"][name])}, "connections": []}
    component = pipeline_from_dict(resolve_models(fit_devices(only)), name=f"component {name!r}").get_component(name)
    if hasattr(component, "warm_up"):
        component.warm_up()
    return component


def document_embeddings(
    data: dict[str, Any],
    name: str,
    documents: list[Document],
    *,
    component: Any = None,
    progress: bool = True,
    desc: str | None = None,
) -> np.ndarray:
    """The embeddings that the document embedder ``name`` of pipeline ``data`` gives ``documents``, one row each.

    Missing rows are computed by the component itself (``component``, or one built from ``data``), so they are
    exactly what the pipeline would write to its store; the rest are read from the teacher cache."""
    from distill.teacher.cache import TeacherCache

    params = data["components"][name].get("init_parameters") or {}
    meta_fields = list(params.get("meta_fields_to_embed") or [])
    keys = document_keys(documents, meta_fields)
    namespace = embedder_namespace(data, name)
    built: list[Any] = [component]

    def embedder() -> Any:
        if built[0] is None:
            built[0] = build_component(data, name)
        built[0].progress_bar = False  # the cache draws one bar over the whole corpus
        return built[0]

    def compute(positions: list[int]) -> np.ndarray:
        batch = [
            Document(id=documents[i].id, content=documents[i].content, meta=dict(documents[i].meta)) for i in positions
        ]
        embedded = embedder().run(documents=batch)["documents"]
        return np.asarray([d.embedding for d in embedded], dtype=np.float32)

    dim = cached_width(namespace)
    if dim is None:
        dim = int(compute([0]).shape[1]) if documents else 0
    cache = TeacherCache(TeacherCache.default_root(), namespace=namespace | {"dim": dim}, row_shape=(dim,))
    desc = desc or f"embedding documents ({name})"
    # longest first: in corpus order a chunk of 64 short answers pads to its one long one
    return cache.get(keys, compute, batch_size=64, progress=progress, desc=desc, lengths=[len(k) for k in keys])


def uncached_positions(data: dict[str, Any], name: str, documents: list[Document]) -> list[int]:
    """What :func:`document_embeddings` would compute for ``documents``: the position of each distinct embedded text
    (content and embedded meta fields) whose row the teacher cache does not hold yet."""
    from distill.teacher.cache import TeacherCache

    namespace = embedder_namespace(data, name)
    fields = list((data["components"][name].get("init_parameters") or {}).get("meta_fields_to_embed") or [])
    keys = document_keys(documents, fields)
    dim = cached_width(namespace)
    if dim is None:  # nothing cached for this embedder yet: every distinct text, at its first position
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        return list(first.values())
    cache = TeacherCache(TeacherCache.default_root(), namespace=namespace | {"dim": dim}, row_shape=(dim,))
    return cache.missing(keys)


def cached_width(namespace: dict[str, Any]) -> int | None:
    """The width of an embedder's rows already in the cache (so that a warm cache never loads the model)."""
    from distill.teacher.cache import TeacherCache

    for manifest in TeacherCache.default_root().glob("document-embeddings-*/manifest.json"):
        try:
            saved = json.loads(manifest.read_text(encoding="utf-8"))["namespace"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(saved, dict) and {k: v for k, v in saved.items() if k != "dim"} == json.loads(
            json.dumps(namespace, default=str)
        ):
            dim = saved.get("dim")
            if isinstance(dim, int) and dim > 0:
                return dim
    return None


def embedded_text(params: dict[str, Any], document: Document) -> str:
    """The text a sentence-transformers document embedder with ``params`` embeds for ``document`` (what a student
    swapped into the same component will see)."""
    fields = params.get("meta_fields_to_embed") or []
    meta = [str(document.meta[k]) for k in fields if k in document.meta and document.meta[k] is not None]
    separator = params.get("embedding_separator", "\n")
    return (params.get("prefix") or "") + separator.join([*meta, document.content or ""]) + (params.get("suffix") or "")


def _one_embedder(pipeline: UserPipeline, kind: str) -> str:
    """The name of the pipeline's ``kind`` embedder (``Document`` or ``Text``), checked to be one a student can
    replace."""
    path, components = pipeline.path, pipeline.data["components"]
    found = pipeline.named(f"{kind.lower()}_embedder")
    if not found:
        raise DistillError(
            f"{path} has no {kind.lower()} embedder (a component whose type ends in {kind}Embedder): give the "
            f"{'indexing' if kind == 'Document' else 'query'} pipeline whose embedder is the teacher"
        )
    if len(found) > 1:
        raise DistillError(
            f"{path} has {len(found)} {kind.lower()} embedders {list(found)}: name the teacher's with --component"
        )
    name = found[0]
    wanted = DOCUMENT_EMBEDDER if kind == "Document" else TEXT_EMBEDDER
    if type_name(components[name]) != wanted:
        raise DistillError(
            f"{path}: component {name!r} is a {type_name(components[name])}; the project distils "
            f"sentence-transformers embedders ({wanted}), whose model a student folder can replace"
        )
    model = (components[name].get("init_parameters") or {}).get("model")
    if not isinstance(model, str) or not model:
        raise DistillError(f"{path}: component {name!r} names no model (init_parameters.model)")
    return name


@dataclass
class PipelineTeacher:
    """The teacher of a user's retrieval: the document embedder of the indexing pipeline and the text embedder of the
    query pipeline (:class:`~distill.pipelines.user.UserPipelines`, read once by whoever builds this).

    Both must name the same model (the index and the queries live in one space). Query embeddings come from a
    document embedder built with the text embedder's own settings (prefix, suffix, normalisation, model), which
    embeds a document's content exactly as the text embedder embeds a text, in batches and through the cache."""

    pipelines: UserPipelines
    document_embedder: str
    text_embedder: str
    # what the indexing pipeline does to documents before its embedder (None: nothing), checked when read
    preprocessing: Preprocessing | None = None

    @classmethod
    def from_files(cls, indexing: str | Path, query: str | Path) -> PipelineTeacher:
        return cls.from_pipelines(read_user_pipelines(indexing, query))

    @classmethod
    def from_pipelines(cls, pipelines: UserPipelines) -> PipelineTeacher:
        doc_name = _one_embedder(pipelines.indexing, "Document")
        text_name = _one_embedder(pipelines.query, "Text")
        preprocessing = Preprocessing.of(pipelines.indexing.data, doc_name, str(pipelines.indexing.path))
        teacher = cls(pipelines, doc_name, text_name, preprocessing)
        if teacher.passage_model != teacher.query_model:
            raise DistillError(
                f"the indexing pipeline embeds documents with {teacher.passage_model} but the query pipeline embeds "
                f"queries with {teacher.query_model}: one teacher must embed both"
            )
        return teacher

    @property
    def indexing_path(self) -> Path:
        return self.pipelines.indexing.path

    @property
    def query_path(self) -> Path:
        return self.pipelines.query.path

    @property
    def indexing(self) -> dict[str, Any]:
        return self.pipelines.indexing.data

    @property
    def query(self) -> dict[str, Any]:
        return self.pipelines.query.data

    @property
    def passage_params(self) -> dict[str, Any]:
        return self.indexing["components"][self.document_embedder].get("init_parameters") or {}

    @property
    def query_params(self) -> dict[str, Any]:
        return self.query["components"][self.text_embedder].get("init_parameters") or {}

    @property
    def passage_model(self) -> str:
        return str(self.passage_params["model"])

    @property
    def query_model(self) -> str:
        return str(self.query_params["model"])

    @property
    def model_path(self) -> str:
        """The teacher's model as a local folder (or the id Haystack would load)."""
        return str(resolve_models(self.indexing)["components"][self.document_embedder]["init_parameters"]["model"])

    def max_length(self) -> int | None:
        """The teacher's own token limit (its sentence_bert_config ``max_seq_length``), None where it does not say."""
        config = Path(self.model_path) / "sentence_bert_config.json"
        try:
            return int(json.loads(config.read_text(encoding="utf-8"))["max_seq_length"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def passage_texts(self, documents: list[Document]) -> list[str]:
        return [embedded_text(self.passage_params, d) for d in documents]

    def query_texts(self, queries: list[str]) -> list[str]:
        params = self.query_params
        return [(params.get("prefix") or "") + q + (params.get("suffix") or "") for q in queries]

    @property
    def chunker(self) -> Callable[[list[Document]], Chunks] | None:
        """The indexing pipeline's preprocessing as a function of a corpus (None: the pipeline writes documents as
        they come): what the teacher embeds and a student trains on are the chunks it makes."""
        preprocessing = self.preprocessing
        return (lambda documents: preprocess(preprocessing, documents)) if preprocessing is not None else None

    def passages(self, documents: list[Document], *, progress: bool = True) -> np.ndarray:
        return document_embeddings(
            self.indexing, self.document_embedder, documents, progress=progress, desc="teacher: corpus"
        )

    def _query_pipeline(self) -> dict[str, Any]:
        """The text embedder as a document embedder with the same settings (content only, no meta fields)."""
        component = copy.deepcopy(self.query["components"][self.text_embedder])
        component["type"] = DOCUMENT_EMBEDDER_TYPE
        params = component.setdefault("init_parameters", {})
        params["meta_fields_to_embed"] = []
        params["embedding_separator"] = "\n"
        return {"components": {"query_embedder": component}, "connections": []}

    def queries(self, queries: list[str], *, progress: bool = True, desc: str = "teacher: queries") -> np.ndarray:
        documents = [Document(id=str(i), content=q) for i, q in enumerate(queries)]
        return document_embeddings(self._query_pipeline(), "query_embedder", documents, progress=progress, desc=desc)

    def uncached_queries(self, queries: list[str]) -> int:
        """How many distinct texts of ``queries`` :meth:`queries` would embed: those the teacher cache lacks."""
        documents = [Document(id=str(i), content=q) for i, q in enumerate(queries)]
        return len(uncached_positions(self._query_pipeline(), "query_embedder", documents))
