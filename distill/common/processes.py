"""Which of several launched processes this one is, read from the environment that ``torchrun`` and
``accelerate launch`` set (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``), so that work done before
the trainer starts its process group (the teacher pass, files written once per run) can be split or done once.

A teacher pass is split over the processes of one machine by default, since each machine has its own teacher cache
(``DISTILL_HOME``). With the cache on a file system that every machine mounts (and whose ``flock`` locks hold across
machines), ``DISTILL_SHARED_CACHE=1`` splits it over all processes of all machines.
"""

from __future__ import annotations

import os

from distill.errors import DistillError


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise DistillError(f"the environment variable {name}={value!r} must be an integer (set by torchrun)") from None


def is_main_process() -> bool:
    """True in a process that runs alone, and in the first process (global rank 0) of a launch."""
    return _int_env("RANK", 0) == 0


def teacher_shard() -> tuple[int, int]:
    """``(index, count)``: this process's share of a teacher pass and the number of processes sharing it."""
    if os.environ.get("DISTILL_SHARED_CACHE", "") not in ("", "0"):
        index, count = _int_env("RANK", 0), _int_env("WORLD_SIZE", 1)
    else:
        index, count = _int_env("LOCAL_RANK", 0), _int_env("LOCAL_WORLD_SIZE", _int_env("WORLD_SIZE", 1))
    if count < 1 or not 0 <= index < count:
        raise DistillError(
            f"process {index} of {count}: the launcher's RANK/LOCAL_RANK and WORLD_SIZE/LOCAL_WORLD_SIZE disagree; "
            "launch with torchrun or accelerate launch"
        )
    return index, count


def teacher_device() -> str:
    """Where a teacher pass runs: this process's own GPU (``cuda:LOCAL_RANK``) when there is one, else the CPU."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{_int_env('LOCAL_RANK', 0) % torch.cuda.device_count()}"


PRECISIONS = ("fp32", "bf16")


def precision_key(precision: str) -> dict[str, str]:
    """What a teacher's precision adds to its cache namespace: nothing for fp32 (so caches written before the setting
    existed stay valid), ``{"precision": "bf16"}`` otherwise. Never the device or the number of processes."""
    if precision not in PRECISIONS:
        raise DistillError(f"recipe.teacher_precision must be fp32 or bf16, got {precision!r}")
    return {} if precision == "fp32" else {"precision": precision}
