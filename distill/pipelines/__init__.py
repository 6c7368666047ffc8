"""Haystack YAML in and out: the user's pipelines read and checked, stores, and the teacher -> student swap
(:mod:`~distill.pipelines.loading`, :mod:`~distill.pipelines.checks`, :mod:`~distill.pipelines.stores`)."""

from distill._moved import reexport

__all__ = [
    "ALLOWED_MODULES",
    "NothingToSwap",
    "build_default_pipelines",
    "dump_pipeline_dict",
    "fit_devices",
    "is_embedder",
    "is_reader",
    "is_text_embedder",
    "load_pipeline",
    "pipeline_from_dict",
    "read_pipeline_dict",
    "resolve_models",
    "swap",
    "swap_files",
    "type_name",
    "write_default_pipelines",
]
__getattr__ = reexport(__name__, "distill.pipelines.loading", __all__)
