"""Distill the large models of a Haystack RAG pipeline into small students, swap them back, and measure both."""

from distill import _env  # noqa: F401  (must run before haystack/transformers are imported)
from distill.errors import DistillError

__all__ = ["DistillError"]
__version__ = "0.1.0"
