"""A corpus written through a user's indexing pipeline, with the document embeddings served by the teacher cache."""

from __future__ import annotations

import dataclasses
from typing import Any

from haystack import Document
from haystack.core.errors import PipelineRuntimeError

from distill.pipelines.checks import run_failure, warm_up
from distill.pipelines.loading import load_pipeline
from distill.pipelines.stores import empty_owned_stores, write_in_batches
from distill.teacher.embedders import document_embeddings


def copy_documents(documents: list[Document]) -> list[Document]:
    return [Document(id=d.id, content=d.content, meta=dict(d.meta)) for d in documents]


def index_corpus(
    data: dict[str, Any], documents: list[Document], *, progress: bool = True, name: str = "indexing pipeline"
) -> None:
    """Run an indexing pipeline over ``documents``.

    When the pipeline is the usual document embedder -> writer, the embeddings go through the teacher cache, keyed by
    the embedder's settings, weights and each document's embedded text: the embedder component itself computes every
    missing row (:func:`distill.teacher.embedders.document_embeddings`, which training on a user's corpus shares), so
    the stored vectors are exactly what the pipeline would write, and a second evaluation (or the UI) re-indexes a
    corpus the size of SQuAD dev in seconds instead of minutes.
    """

    pipeline = load_pipeline(data, name=name)
    components = data["components"]
    embedders = [n for n, c in components.items() if c.get("type", "").endswith("DocumentEmbedder")]
    writers = [n for n, c in components.items() if c.get("type", "").endswith("DocumentWriter")]
    docs = copy_documents(documents)
    warm_up(pipeline, name)
    empty_owned_stores(pipeline)  # in-memory stores and the tables distill named; never a user's table
    if len(components) != 2 or len(embedders) != 1 or len(writers) != 1:
        first = next(iter(pipeline.inputs()))
        try:
            pipeline.run({first: {"documents": docs}})
        except PipelineRuntimeError as e:
            raise run_failure(e, name) from e
        return
    embedder = pipeline.get_component(embedders[0])
    rows = document_embeddings(data, embedders[0], docs, component=embedder, progress=progress)
    embedded = [dataclasses.replace(doc, embedding=row.tolist()) for doc, row in zip(docs, rows)]
    write_in_batches(pipeline.get_component(writers[0]), embedded, f"{name}: component {writers[0]!r}")
