"""Where a result was measured: the machine and the library versions, recorded in reports and model cards.

No Haystack import here (torch only when asked for the machine), so a model card or the UI stays cheap to import.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from pathlib import Path
from typing import Any

# The libraries whose versions change a student's numbers (the pipeline, the models, the maths under them).
LIBRARIES = (
    "haystack-ai",
    "sentence-transformers-haystack",
    "transformers-haystack",
    "transformers",
    "sentence-transformers",
    "torch",
    "accelerate",
    "numpy",
    "tokenizers",
)


def machine_info() -> dict[str, Any]:
    """The CPU, thread settings and platform that a latency was measured on (latencies mean little without it)."""
    import torch

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def library_versions() -> dict[str, str]:
    """The installed version of each of :data:`LIBRARIES`; a library that is not installed is left out."""
    import importlib.metadata as md

    out = {}
    for name in LIBRARIES:
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out
