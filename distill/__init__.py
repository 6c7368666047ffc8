"""Distill the large models of a Haystack RAG pipeline into small students, swap them back, and measure both.

The packages follow the flow, each importing only from those before it (``tests/test_layout.py`` checks it):
``common`` -> ``data`` -> ``components`` -> ``pipelines`` -> ``teacher`` -> ``training`` -> ``evaluation`` ->
``adapt`` -> ``cli`` -> ``ui``. Modules of the flat layout before 0.2 still import under their old names
(``distill.cache``, ``distill.components_onnx``, ...): see :mod:`distill._moved`.
"""

from distill import (
    _env,  # noqa: F401  (must run before haystack/transformers are imported)
    _moved,
)
from distill.errors import DistillError

_moved.install()

__all__ = ["DistillError"]
__version__ = "0.1.0"
