"""Small hand-made tensors and constants shared by the loss tests."""

from __future__ import annotations

import math

import numpy as np
import torch

LN3 = math.log(3)
# KL([0.75, 0.25] || [0.5, 0.5]): teacher softmax([ln 3, 0]) against a uniform student.
KL_3_1 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)


def t64(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def orthonormal_rows(rows: int, cols: int, seed: int) -> torch.Tensor:
    """A (rows, cols) matrix W with W W^T = I: x @ W keeps every inner product of x while widening it."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(cols, cols)))
    return torch.from_numpy(q[:rows])


def qkv(batch: int, length: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return tuple(randn(batch, length, width, seed=seed + i) for i in range(3))
