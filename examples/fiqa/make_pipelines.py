"""Write this folder's YAMLs as a Haystack 3 user with FiQA's answers would: build the pipelines, save ``dumps()``.

    python examples/fiqa/make_pipelines.py     # writes indexing.yaml, query.yaml and query-hybrid.yaml beside it

One indexing pipeline (cleaner -> embedder -> writer: no splitter, see README.md) and two query pipelines on its
store: ``query.yaml`` (embedding retriever -> prompt -> generator) and ``query-hybrid.yaml`` (embedding and BM25
retrievers fused by reciprocal rank fusion -> prompt -> generator). Nothing here loads a model or calls OpenAI:
building ``OpenAIChatGenerator`` needs no key, only running it does.
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
from haystack.components.preprocessors import DocumentCleaner  # noqa: E402
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
INDEX = "fiqa-answers"  # the indexing and query pipelines' stores share their documents through this name
TOP_K = 10  # the prompt receives ten answers: the list nDCG@10 scores
PROMPT = """You answer questions about personal finance from the forum answers below. Say "I don't know" if they do
not hold the answer, and say which answer you used.

Answers:
{% for document in documents %}
[{{ loop.index }}] {{ document.content }}
{% endfor %}

Question: {{ query }}
Answer:"""


def store() -> InMemoryDocumentStore:
    return InMemoryDocumentStore(index=INDEX, embedding_similarity_function="cosine")


def indexing_pipeline() -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("cleaner", DocumentCleaner())
    pipeline.add_component("embedder", SentenceTransformersDocumentEmbedder(model=MODEL))
    pipeline.add_component("writer", DocumentWriter(document_store=store(), policy=DuplicatePolicy.OVERWRITE))
    pipeline.connect("cleaner.documents", "embedder.documents")
    pipeline.connect("embedder.documents", "writer.documents")
    return pipeline


def _prompt_and_generator(pipeline: Pipeline) -> None:
    pipeline.add_component(
        "prompt_builder",
        ChatPromptBuilder(template=[ChatMessage.from_user(PROMPT)], required_variables=("query", "documents")),
    )
    pipeline.add_component("llm", OpenAIChatGenerator(model="gpt-4o-mini"))
    pipeline.connect("prompt_builder.prompt", "llm.messages")


def query_pipeline() -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("text_embedder", SentenceTransformersTextEmbedder(model=MODEL))
    pipeline.add_component("embedding_retriever", InMemoryEmbeddingRetriever(document_store=store(), top_k=TOP_K))
    _prompt_and_generator(pipeline)
    pipeline.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
    pipeline.connect("embedding_retriever.documents", "prompt_builder.documents")
    return pipeline


def hybrid_query_pipeline() -> Pipeline:
    shared = store()
    pipeline = Pipeline()
    pipeline.add_component("text_embedder", SentenceTransformersTextEmbedder(model=MODEL))
    pipeline.add_component("embedding_retriever", InMemoryEmbeddingRetriever(document_store=shared, top_k=TOP_K))
    pipeline.add_component("bm25_retriever", InMemoryBM25Retriever(document_store=shared, top_k=TOP_K))
    pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=TOP_K))
    _prompt_and_generator(pipeline)
    pipeline.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
    pipeline.connect("embedding_retriever.documents", "joiner.documents")
    pipeline.connect("bm25_retriever.documents", "joiner.documents")
    pipeline.connect("joiner.documents", "prompt_builder.documents")
    return pipeline


def main(folder: Path) -> list[Path]:
    written = []
    pipelines = {"indexing": indexing_pipeline(), "query": query_pipeline(), "query-hybrid": hybrid_query_pipeline()}
    for name, pipeline in pipelines.items():
        path = folder / f"{name}.yaml"
        path.write_text(pipeline.dumps(), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)
