"""Haystack tutorial 33's hybrid retrieval with a ranker, feeding tutorial 27's prompt and chat generator, with the
AnswerBuilder of tutorial 35 (Haystack 3).

    python examples/haystack-tutorials/hybrid-rag/make_pipelines.py    # writes indexing.yaml and query.yaml here

Tutorial 33 ends with "use this retrieval method in a RAG pipeline" and points to tutorial 27; this is that pipeline:
``SentenceTransformersTextEmbedder -> InMemoryEmbeddingRetriever`` and ``InMemoryBM25Retriever`` on the same store ->
``DocumentJoiner`` -> ``SentenceTransformersSimilarityRanker`` (Haystack 3's name for tutorial 33's
``TransformersSimilarityRanker``, same cross-encoder) -> ``ChatPromptBuilder`` -> ``OpenAIChatGenerator``, and the
generator's replies with the ranked documents into an ``AnswerBuilder`` as tutorial 35 (evaluating RAG pipelines)
wires it. Changes from the tutorials: the embedder is the project's teacher (all-mpnet-base-v2 instead of
bge-small-en-v1.5) and the shared store has a fixed index name. Nothing loads a model or calls OpenAI.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from haystack import Pipeline  # noqa: E402
from haystack.components.builders import AnswerBuilder, ChatPromptBuilder  # noqa: E402
from haystack.components.generators.chat import OpenAIChatGenerator  # noqa: E402
from haystack.components.joiners import DocumentJoiner  # noqa: E402
from haystack.components.preprocessors import DocumentSplitter  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever  # noqa: E402
from haystack.components.writers import DocumentWriter  # noqa: E402
from haystack.dataclasses import ChatMessage  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402
from haystack_integrations.components.embedders.sentence_transformers import (  # noqa: E402
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)
from haystack_integrations.components.rankers.sentence_transformers import (  # noqa: E402
    SentenceTransformersSimilarityRanker,
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
    document_store = InMemoryDocumentStore(index="hybrid-rag")
    indexing = Pipeline()
    indexing.add_component("document_splitter", DocumentSplitter(split_by="word", split_length=512, split_overlap=32))
    indexing.add_component("document_embedder", SentenceTransformersDocumentEmbedder(model=MODEL))
    indexing.add_component("document_writer", DocumentWriter(document_store))
    indexing.connect("document_splitter", "document_embedder")
    indexing.connect("document_embedder", "document_writer")

    rag = Pipeline()
    rag.add_component("text_embedder", SentenceTransformersTextEmbedder(model=MODEL))
    rag.add_component("embedding_retriever", InMemoryEmbeddingRetriever(document_store))
    rag.add_component("bm25_retriever", InMemoryBM25Retriever(document_store))
    rag.add_component("document_joiner", DocumentJoiner())
    rag.add_component("ranker", SentenceTransformersSimilarityRanker(model="BAAI/bge-reranker-base"))
    rag.add_component("prompt_builder", ChatPromptBuilder(template=[ChatMessage.from_user(TEMPLATE)]))
    rag.add_component("llm", OpenAIChatGenerator(model="gpt-4o-mini"))
    rag.add_component("answer_builder", AnswerBuilder())
    rag.connect("text_embedder", "embedding_retriever")
    rag.connect("bm25_retriever", "document_joiner")
    rag.connect("embedding_retriever", "document_joiner")
    rag.connect("document_joiner", "ranker")
    rag.connect("ranker", "prompt_builder.documents")
    rag.connect("prompt_builder.prompt", "llm.messages")
    rag.connect("llm.replies", "answer_builder.replies")
    rag.connect("ranker", "answer_builder.documents")
    return {"indexing": indexing, "query": rag}


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
