"""Haystack tutorial 27, "Creating Your First QA Pipeline with Retrieval-Augmentation", as YAML (Haystack 3).

    python examples/haystack-tutorials/first-rag/make_pipelines.py    # writes indexing.yaml and query.yaml here

The tutorial's components and connections, with two changes: the embedder is the project's teacher
(all-mpnet-base-v2 instead of all-MiniLM-L6-v2), and the one document store both pipelines share has a fixed index
name (Haystack's default is a random one, which would change the files at every run). The tutorial writes the
embedded documents with ``document_store.write_documents``; the indexing pipeline here does the same through a
``DocumentWriter``. Nothing loads a model or calls OpenAI: building ``OpenAIChatGenerator`` needs no key.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from haystack import Pipeline  # noqa: E402
from haystack.components.builders import ChatPromptBuilder  # noqa: E402
from haystack.components.generators.chat import OpenAIChatGenerator  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever  # noqa: E402
from haystack.components.writers import DocumentWriter  # noqa: E402
from haystack.dataclasses import ChatMessage  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402
from haystack_integrations.components.embedders.sentence_transformers import (  # noqa: E402
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)

MODEL = "sentence-transformers/all-mpnet-base-v2"
TEMPLATE = """
Given the following information, answer the question.

Context:
{% for document in documents %}
    {{ document.content }}
{% endfor %}

Question: {{question}}
Answer:
"""


def pipelines() -> dict[str, Pipeline]:
    document_store = InMemoryDocumentStore(index="seven-wonders")
    indexing = Pipeline()
    indexing.add_component("doc_embedder", SentenceTransformersDocumentEmbedder(model=MODEL))
    indexing.add_component("writer", DocumentWriter(document_store))
    indexing.connect("doc_embedder.documents", "writer.documents")

    basic_rag_pipeline = Pipeline()
    basic_rag_pipeline.add_component("text_embedder", SentenceTransformersTextEmbedder(model=MODEL))
    basic_rag_pipeline.add_component("retriever", InMemoryEmbeddingRetriever(document_store))
    basic_rag_pipeline.add_component("prompt_builder", ChatPromptBuilder(template=[ChatMessage.from_user(TEMPLATE)]))
    basic_rag_pipeline.add_component("llm", OpenAIChatGenerator(model="gpt-4o-mini"))
    basic_rag_pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
    basic_rag_pipeline.connect("retriever", "prompt_builder")
    basic_rag_pipeline.connect("prompt_builder.prompt", "llm.messages")
    return {"indexing": indexing, "query": basic_rag_pipeline}


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
