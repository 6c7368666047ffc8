"""The Haystack components the project serves, laid out as Haystack's own ``components/<kind>``: a vectorised
in-memory retriever (:mod:`~distill.components.retrievers`), ONNX embedders for ``distill export`` folders
(:mod:`~distill.components.onnx_embedders`) and the no-answer-margin reader (:mod:`~distill.components.readers`).

Pipelines written before the stage packages name these classes by their old paths; they stay in Haystack's component
registry under those names too, so such a YAML still loads.
"""

from haystack.core.component import component

from distill.components.onnx_embedders import OnnxDocumentEmbedder, OnnxTextEmbedder
from distill.components.readers import NoAnswerMarginExtractiveReader
from distill.components.retrievers import FastInMemoryEmbeddingRetriever, use_fast_retrievers

OLD_TYPES = {
    "distill.components.FastInMemoryEmbeddingRetriever": FastInMemoryEmbeddingRetriever,
    "distill.components_onnx.OnnxTextEmbedder": OnnxTextEmbedder,
    "distill.components_onnx.OnnxDocumentEmbedder": OnnxDocumentEmbedder,
    "distill.components_reader.NoAnswerMarginExtractiveReader": NoAnswerMarginExtractiveReader,
}
for _name, _cls in OLD_TYPES.items():
    component.registry.setdefault(_name, _cls)

__all__ = [
    "FastInMemoryEmbeddingRetriever",
    "NoAnswerMarginExtractiveReader",
    "OnnxDocumentEmbedder",
    "OnnxTextEmbedder",
    "use_fast_retrievers",
]
