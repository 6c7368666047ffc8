"""Process-wide settings that must be in place before haystack, transformers or numpy are imported.

Imported first by ``distill/__init__.py``. Every value is a default: a variable the user already set wins.
"""

import os

# Haystack posts telemetry on import unless told not to.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
# Without a reachable hub, a missing model otherwise costs ~100 s of retries before failing. DISTILL_ONLINE=1 lets
# Hugging Face ids download as usual where a hub is reachable.
if os.environ.get("DISTILL_ONLINE") != "1":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# OpenBLAS threads fight torch's for the same cores: measured on 2 cores, the teacher pipeline's p50 fell from
# 145 to 84 ms with one OpenBLAS thread (docs/benchmarks/speed.md, "Platform traps").
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
