"""Exact values of the pure loss functions on small hand-made tensors, checked against hand or numpy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from loss_tensors import KL_3_1, LN3, randn, t64

from distill.training.losses import (
    listwise_kl,
    masked_mse,
    pairwise_distances,
    rkd_angle,
    rkd_distance,
    span_mask,
)


def test_listwise_kl_known_2x2() -> None:
    teacher = t64([[LN3, 0], [0, LN3]])
    student = torch.zeros(2, 2, dtype=torch.float64)
    assert listwise_kl(student, teacher).item() == pytest.approx(KL_3_1)
    assert listwise_kl(teacher, teacher).item() == pytest.approx(0.0, abs=1e-12)
    # T = 2: the teacher becomes softmax([ln 3 / 2, 0]) = [sqrt3, 1] / (sqrt3 + 1); the loss is scaled by T^2.
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    expected = 4 * (p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p)))
    assert listwise_kl(student, teacher, temperature=2.0).item() == pytest.approx(expected)


def test_rkd_distance_hand_value_across_widths() -> None:
    # Teacher points 0, 1, 3: distances 1, 3, 2, mean 2 -> 0.5, 1.5, 1.
    # Student points 0, 1, 2: distances 1, 2, 1, mean 4/3 -> 0.75, 1.5, 0.75.
    # smooth L1 of the differences 0.25, 0, -0.25 is 0.03125, 0, 0.03125, each pair counted in both orders.
    teacher = t64([[0, 0], [1, 0], [3, 0]])
    student = t64([[0], [1], [2]])
    assert rkd_distance(student, teacher).item() == pytest.approx(4 * 0.03125 / 6)


def _numpy_rkd_angle(student: np.ndarray, teacher: np.ndarray) -> float:
    def cos_at(x: np.ndarray, i: int, j: int, k: int) -> float:
        u, v = x[j] - x[i], x[k] - x[i]
        return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))

    def smooth_l1(d: float) -> float:
        return 0.5 * d * d if abs(d) < 1 else abs(d) - 0.5

    n = len(student)
    terms = [
        smooth_l1(cos_at(student, i, j, k) - cos_at(teacher, i, j, k))
        for i in range(n)
        for j in range(n)
        for k in range(n)
        if len({i, j, k}) == 3
    ]
    return sum(terms) / len(terms)


def test_rkd_angle_matches_numpy() -> None:
    student, teacher = randn(4, 2, seed=2), randn(4, 5, seed=3)
    expected = _numpy_rkd_angle(student.numpy(), teacher.numpy())
    assert expected > 0
    assert rkd_angle(student, teacher).item() == pytest.approx(expected, rel=1e-9)


def test_pairwise_distances_zero_diagonal_with_a_finite_gradient() -> None:
    x = t64([[0, 0], [3, 4], [0, 1]]).requires_grad_(True)
    distances = pairwise_distances(x)
    expected = t64([[0, 5, 1], [5, 0, math.sqrt(18)], [1, math.sqrt(18), 0]])
    assert torch.allclose(distances, expected)
    distances.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_masked_mse_and_span_mask_leave_out_what_the_mask_drops() -> None:
    student, teacher = t64([[[1, 1], [2, 0], [9, 9]]]), t64([[[0, 0], [0, 0], [0, 0]]])
    # Per position (1 + 1) / 2 = 1 and (4 + 0) / 2 = 2 on the two real tokens; the padded one is ignored.
    assert masked_mse(student, teacher, torch.tensor([[1, 1, 0]])).item() == pytest.approx(1.5)
    context = torch.tensor([[False, True, False], [False, False, False]])
    assert span_mask(context).tolist() == [[True, True, False], [True, False, False]]
    assert not context[:, 0].any()  # the caller's mask is left as it was
