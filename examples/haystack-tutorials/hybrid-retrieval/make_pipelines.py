"""Haystack tutorial 33, "Creating a Hybrid Retrieval Pipeline", as YAML written by Haystack 2.x: run it with
haystack-ai 2.31 (not this project's Haystack 3).

    pip install --no-deps --target /tmp/h2 "haystack-ai==2.31.0"    # Haystack 2.31 beside this project's 3.x
    PYTHONPATH=/tmp/h2 python examples/haystack-tutorials/hybrid-retrieval/make_pipelines.py

The tutorial's components, settings and connections (2.x class paths, ``TransformersSimilarityRanker`` with
BAAI/bge-reranker-base), with two changes: the embedder is the project's teacher (all-mpnet-base-v2 instead of
bge-small-en-v1.5) and the one document store both pipelines share has a fixed index name. Nothing loads a model.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from haystack import Pipeline  # noqa: E402
from haystack.components.embedders import (  # noqa: E402
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)
from haystack.components.joiners import DocumentJoiner  # noqa: E402
from haystack.components.preprocessors.document_splitter import DocumentSplitter  # noqa: E402
from haystack.components.rankers import TransformersSimilarityRanker  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever  # noqa: E402
from haystack.components.writers import DocumentWriter  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402

MODEL = "sentence-transformers/all-mpnet-base-v2"


def pipelines() -> dict[str, Pipeline]:
    document_store = InMemoryDocumentStore(index="pubmed-abstracts")
    indexing_pipeline = Pipeline()
    indexing_pipeline.add_component(
        "document_splitter", DocumentSplitter(split_by="word", split_length=512, split_overlap=32)
    )
    indexing_pipeline.add_component("document_embedder", SentenceTransformersDocumentEmbedder(model=MODEL))
    indexing_pipeline.add_component("document_writer", DocumentWriter(document_store))
    indexing_pipeline.connect("document_splitter", "document_embedder")
    indexing_pipeline.connect("document_embedder", "document_writer")

    hybrid_retrieval = Pipeline()
    hybrid_retrieval.add_component("text_embedder", SentenceTransformersTextEmbedder(model=MODEL))
    hybrid_retrieval.add_component("embedding_retriever", InMemoryEmbeddingRetriever(document_store))
    hybrid_retrieval.add_component("bm25_retriever", InMemoryBM25Retriever(document_store))
    hybrid_retrieval.add_component("document_joiner", DocumentJoiner())
    hybrid_retrieval.add_component("ranker", TransformersSimilarityRanker(model="BAAI/bge-reranker-base"))
    hybrid_retrieval.connect("text_embedder", "embedding_retriever")
    hybrid_retrieval.connect("bm25_retriever", "document_joiner")
    hybrid_retrieval.connect("embedding_retriever", "document_joiner")
    hybrid_retrieval.connect("document_joiner", "ranker")
    return {"indexing": indexing_pipeline, "query": hybrid_retrieval}


def main(folder: Path = Path(__file__).parent) -> list[Path]:
    written = []
    for name, pipeline in pipelines().items():
        path = folder / f"{name}.yaml"
        path.write_text(pipeline.dumps(), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)
