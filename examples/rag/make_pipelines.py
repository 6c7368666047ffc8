"""Write this folder's two YAMLs as a Haystack 3 user would: build the pipelines in Python, save ``Pipeline.dumps()``.

    python examples/rag/make_pipelines.py            # writes examples/rag/indexing.yaml and examples/rag/query.yaml

Nothing here loads a model or calls OpenAI: building ``OpenAIChatGenerator`` needs no key, only running it does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from haystack import Pipeline  # noqa: E402
from haystack.components.builders import ChatPromptBuilder  # noqa: E402
from haystack.components.generators.chat import OpenAIChatGenerator  # noqa: E402
from haystack.components.joiners import DocumentJoiner  # noqa: E402
from haystack.components.preprocessors import DocumentCleaner, DocumentSplitter  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever  # noqa: E402
from haystack.components.writers import DocumentWriter  # noqa: E402
from haystack.dataclasses import ChatMessage  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402
from haystack.document_stores.types import DuplicatePolicy  # noqa: E402
from haystack_integrations.components.embedders.sentence_transformers import (  # noqa: E402
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)

MODEL = "sentence-transformers/all-mpnet-base-v2"
INDEX = "rag-documents"  # the indexing and query pipelines' stores share their documents through this name
PROMPT = """Answer the question from the documents below. Say "I don't know" if they do not hold the answer.

Documents:
{% for document in documents %}
- {{ document.meta.get('title', '') }}: {{ document.content }}
{% endfor %}

Question: {{ query }}
Answer:"""


def store() -> InMemoryDocumentStore:
    return InMemoryDocumentStore(index=INDEX, embedding_similarity_function="cosine")


def indexing_pipeline() -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("cleaner", DocumentCleaner())
    pipeline.add_component("splitter", DocumentSplitter(split_by="word", split_length=150, split_overlap=20))
    pipeline.add_component(
        "embedder", SentenceTransformersDocumentEmbedder(model=MODEL, meta_fields_to_embed=["title"])
    )
    pipeline.add_component("writer", DocumentWriter(document_store=store(), policy=DuplicatePolicy.OVERWRITE))
    pipeline.connect("cleaner.documents", "splitter.documents")
    pipeline.connect("splitter.documents", "embedder.documents")
    pipeline.connect("embedder.documents", "writer.documents")
    return pipeline


def query_pipeline() -> Pipeline:
    shared = store()
    pipeline = Pipeline()
    pipeline.add_component("text_embedder", SentenceTransformersTextEmbedder(model=MODEL))
    pipeline.add_component("embedding_retriever", InMemoryEmbeddingRetriever(document_store=shared, top_k=10))
    pipeline.add_component("bm25_retriever", InMemoryBM25Retriever(document_store=shared, top_k=10))
    pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=5))
    pipeline.add_component(
        "prompt_builder",
        ChatPromptBuilder(template=[ChatMessage.from_user(PROMPT)], required_variables=("query", "documents")),
    )
    pipeline.add_component("llm", OpenAIChatGenerator(model="gpt-4o-mini"))
    pipeline.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
    pipeline.connect("embedding_retriever.documents", "joiner.documents")
    pipeline.connect("bm25_retriever.documents", "joiner.documents")
    pipeline.connect("joiner.documents", "prompt_builder.documents")
    pipeline.connect("prompt_builder.prompt", "llm.messages")
    return pipeline


def main(folder: Path) -> list[Path]:
    written = []
    for name, pipeline in (("indexing", indexing_pipeline()), ("query", query_pipeline())):
        path = folder / f"{name}.yaml"
        path.write_text(pipeline.dumps(), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)
