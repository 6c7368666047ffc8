"""Pipelines run on the same questions, side by side: the runner (:mod:`~distill.evaluation.runner`), agreement with
a reference pipeline (:mod:`~distill.evaluation.agreement`) and the reports (:mod:`~distill.evaluation.report`)."""

from distill._moved import reexport

__all__ = [
    "CONTEXTS",
    "KS",
    "LoadedSystem",
    "System",
    "TimingTracer",
    "evaluate",
    "load_systems",
    "reader_only",
    "retrieval_metrics",
    "run_query",
    "score_question",
    "timing_tracer",
]
__getattr__ = reexport(__name__, "distill.evaluation.runner", __all__)
