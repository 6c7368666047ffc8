"""The Haystack 2.x twin of examples/rag/make_pipelines.py: run it with haystack-ai 2.31 (not this project's Haystack).

    pip install "haystack-ai==2.31.*" sentence-transformers    # in a separate environment
    OPENAI_API_KEY=placeholder python examples/rag-2x/make_pipelines.py examples/rag-2x

2.x's OpenAIGenerator resolves its key when it is built (nothing is called); the YAML keeps only the variable's name.
"""

import sys
from pathlib import Path

from haystack import Pipeline
from haystack.components.builders import PromptBuilder
from haystack.components.embedders import SentenceTransformersDocumentEmbedder, SentenceTransformersTextEmbedder
from haystack.components.generators import OpenAIGenerator
from haystack.components.joiners import DocumentJoiner
from haystack.components.preprocessors import DocumentCleaner, DocumentSplitter
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.components.writers import DocumentWriter
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DuplicatePolicy

MODEL = "sentence-transformers/all-mpnet-base-v2"
INDEX = "rag-documents"
PROMPT = """Answer the question from the documents below. Say "I don't know" if they do not hold the answer.

Documents:
{% for document in documents %}
- {{ document.meta.get('title', '') }}: {{ document.content }}
{% endfor %}

Question: {{ query }}
Answer:"""


def store():
    return InMemoryDocumentStore(index=INDEX, embedding_similarity_function="cosine")


indexing = Pipeline()
indexing.add_component("cleaner", DocumentCleaner())
indexing.add_component("splitter", DocumentSplitter(split_by="word", split_length=150, split_overlap=20))
indexing.add_component("embedder", SentenceTransformersDocumentEmbedder(model=MODEL, meta_fields_to_embed=["title"]))
indexing.add_component("writer", DocumentWriter(document_store=store(), policy=DuplicatePolicy.OVERWRITE))
indexing.connect("cleaner.documents", "splitter.documents")
indexing.connect("splitter.documents", "embedder.documents")
indexing.connect("embedder.documents", "writer.documents")

shared = store()
query = Pipeline()
query.add_component("text_embedder", SentenceTransformersTextEmbedder(model=MODEL))
query.add_component("embedding_retriever", InMemoryEmbeddingRetriever(document_store=shared, top_k=10))
query.add_component("bm25_retriever", InMemoryBM25Retriever(document_store=shared, top_k=10))
query.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=5))
query.add_component("prompt_builder", PromptBuilder(template=PROMPT, required_variables=["query", "documents"]))
query.add_component("llm", OpenAIGenerator(model="gpt-4o-mini"))
query.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
query.connect("embedding_retriever.documents", "joiner.documents")
query.connect("bm25_retriever.documents", "joiner.documents")
query.connect("joiner.documents", "prompt_builder.documents")
query.connect("prompt_builder.prompt", "llm.prompt")

folder = Path(sys.argv[1])
(folder / "indexing.yaml").write_text(indexing.dumps(), encoding="utf-8")
(folder / "query.yaml").write_text(query.dumps(), encoding="utf-8")
