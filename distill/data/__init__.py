"""Corpora and questions: SQuAD, BEIR folders, JSONL, query logs (:mod:`distill.data.datasets`)."""

from distill._moved import reexport

__all__ = [
    "QUERY_FIELDS",
    "SQUAD_ATTRIBUTION",
    "SQUAD_SHA256",
    "Dataset",
    "Query",
    "QueryList",
    "iter_jsonl",
    "load_beir",
    "load_corpus",
    "load_dataset",
    "load_jsonl",
    "load_queries",
    "load_squad",
    "load_squad_file",
    "parse_squad",
    "with_queries",
]
__getattr__ = reexport(__name__, "distill.data.datasets", __all__)
