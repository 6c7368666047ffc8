"""A corpus written through a user's indexing pipeline, with the document embeddings served by the teacher cache."""

from __future__ import annotations

import dataclasses
from typing import Any

from haystack import Document
from haystack.core.errors import PipelineRuntimeError

from distill.pipelines.checks import run_failure, warm_up
from distill.pipelines.loading import load_pipeline
from distill.pipelines.stores import empty_owned_stores, write_in_batches
from distill.teacher.chunks import Chunks, Preprocessing, copy_documents, preprocess
from distill.teacher.embedders import document_embeddings, uncached_positions

__all__ = ["Indexed", "copy_documents", "index_corpus"]


@dataclasses.dataclass
class Indexed:
    """What indexing a corpus wrote, where the pipeline preprocesses it: the chunks, and how many of their embeddings
    the embedder computed now (the rest came from the teacher cache)."""

    chunks: Chunks
    embedded: int | None = None  # None: the whole pipeline ran, past the cache

    def summary(self) -> dict[str, Any]:
        out = self.chunks.summary()
        if self.embedded is not None:
            out |= {"embedded": self.embedded, "embeddings_cached": len(self.chunks.documents) - self.embedded}
        return out


def index_corpus(
    data: dict[str, Any], documents: list[Document], *, progress: bool = True, name: str = "indexing pipeline"
) -> Indexed | None:
    """Run an indexing pipeline over ``documents``; where it preprocesses them (cleaner, splitter, ... before its
    document embedder), return what that made of them (None where it does not).

    When the pipeline is the usual document embedder -> writer, with or without preprocessing before the embedder,
    the embeddings go through the teacher cache, keyed by the embedder's settings, weights and each document's
    embedded text: the embedder component itself computes every missing row
    (:func:`distill.teacher.embedders.document_embeddings`, which training on a user's corpus shares), so the stored
    vectors are exactly what the pipeline would write, and a second evaluation (or the UI) re-indexes a corpus the
    size of SQuAD dev in seconds instead of minutes. The preprocessing's chunks come from the chunk cache
    (:mod:`distill.teacher.chunks`): the same ids, content and meta the pipeline would write.
    """

    components = data["components"]
    embedders = [n for n, c in components.items() if c.get("type", "").endswith("DocumentEmbedder")]
    writers = [n for n, c in components.items() if c.get("type", "").endswith("DocumentWriter")]
    # before anything is built: a splitter that would download at warm-up is one line
    prep = Preprocessing.of(data, embedders[0], name) if len(embedders) == 1 else None
    pipeline = load_pipeline(data, name=name)
    docs = copy_documents(documents)
    warm_up(pipeline, name)
    empty_owned_stores(pipeline)  # in-memory stores and the tables distill named; never a user's table
    chunks = preprocess(prep, docs) if prep is not None else None
    usual = len(embedders) == 1 and len(writers) == 1
    if prep is None:
        usual = usual and len(components) == 2
    else:
        feeds_writer = {"sender": f"{embedders[0]}.documents", "receiver": f"{writers[0]}.documents"}
        usual = usual and set(components) == {*prep.names, *embedders, *writers} and feeds_writer in data["connections"]
    if not usual:
        first = next(iter(pipeline.inputs()))
        if chunks is not None:  # the documents it can preprocess, as the chunks above were made
            docs = [d for d in docs if (d.content or "").strip()]
        try:
            pipeline.run({first: {"documents": docs}})
        except PipelineRuntimeError as e:
            raise run_failure(e, name) from e
        return Indexed(chunks) if chunks is not None else None
    if chunks is not None:
        docs = copy_documents(chunks.documents)
    embedder = pipeline.get_component(embedders[0])
    embedded = len(uncached_positions(data, embedders[0], docs)) if chunks is not None else None
    rows = document_embeddings(data, embedders[0], docs, component=embedder, progress=progress)
    embedded_docs = [dataclasses.replace(doc, embedding=row.tolist()) for doc, row in zip(docs, rows)]
    write_in_batches(pipeline.get_component(writers[0]), embedded_docs, f"{name}: component {writers[0]!r}")
    return Indexed(chunks, embedded) if chunks is not None else None
