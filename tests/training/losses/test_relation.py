"""Relation-based losses (RKD, similarity matrices, attention relations, token similarities): values and invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from loss_tensors import orthonormal_rows, qkv, randn, t64

from distill.training.losses import (
    AttentionRelationLoss,
    RKDAngleLoss,
    RKDDistanceLoss,
    SimilarityMatrixLoss,
    TokenSimilarityLoss,
    rkd_distance,
)


def test_rkd_distance_is_scale_rotation_and_translation_invariant() -> None:
    teacher = randn(6, 3, seed=0)
    assert rkd_distance(3 * teacher, teacher).item() == pytest.approx(0.0, abs=1e-10)
    student = 0.5 * teacher @ orthonormal_rows(3, 5, seed=1) + 2.0
    loss = RKDDistanceLoss()
    value = loss({"query": student[:3], "passage": student[3:]}, {"query": teacher[:3], "passage": teacher[3:]})
    assert value.item() == pytest.approx(0.0, abs=1e-10)


def test_rkd_angle_is_scale_and_translation_invariant() -> None:
    teacher = randn(5, 3, seed=4)
    student = {"passage": 2.5 * teacher - 1.0}
    assert RKDAngleLoss(keys="passage")(student, {"passage": teacher}).item() == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="at least 3 rows"):
        RKDAngleLoss(keys="passage")({"passage": teacher[:2]}, {"passage": teacher[:2]})


def test_rkd_losses_need_enough_rows_for_a_pair_or_a_triplet() -> None:
    rows = randn(2, 3, seed=8)
    with pytest.raises(ValueError, match="RKDDistanceLoss needs at least 2 rows to form a pair, got 1"):
        RKDDistanceLoss(keys="passage")({"passage": rows[:1]}, {"passage": rows[:1]})
    with pytest.raises(ValueError, match="RKDAngleLoss needs at least 3 rows to form a triplet, got 2"):
        RKDAngleLoss(keys="passage")({"passage": rows}, {"passage": rows})
    both = {"query": rows[:1], "passage": rows[1:]}  # the rows of all keys count together
    assert RKDDistanceLoss()(both, both).item() == pytest.approx(0.0, abs=1e-12)
    assert RKDAngleLoss().requires == ("query", "passage") and RKDDistanceLoss(keys="text").requires == ("text",)


def test_similarity_matrix_hand_values() -> None:
    teacher = {"query": t64([[1, 0], [0, 1]]), "passage": t64([[2, 0], [0, 3]])}  # cross cosines: identity
    student = {"query": t64([[1, 0], [1, 0]]), "passage": t64([[1, 0], [0, 1]])}  # cross cosines: [[1, 0], [1, 0]]
    assert SimilarityMatrixLoss()(student, teacher).item() == pytest.approx(0.5)  # (0 + 0 + 1 + 1) / 4
    # Within the query set: student cosines [[1, 1/sqrt2], [1/sqrt2, 1]], teacher identity -> 2 * (1/2) / 4.
    within = SimilarityMatrixLoss(keys=("query",), cross=False)
    assert within({"query": t64([[1, 0], [1, 1]])}, teacher).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="exactly 2 outputs"):
        SimilarityMatrixLoss(keys=("query", "passage", "negative"))


def test_similarity_matrix_zero_for_width_changing_isometry() -> None:
    teacher = {"query": randn(3, 3, seed=5), "passage": randn(3, 3, seed=6)}
    widen = orthonormal_rows(3, 5, seed=7)
    student = {key: value @ widen for key, value in teacher.items()}
    assert SimilarityMatrixLoss()(student, teacher).item() == pytest.approx(0.0, abs=1e-12)
    assert SimilarityMatrixLoss(cross=False)(student, teacher).item() == pytest.approx(0.0, abs=1e-12)


def _numpy_relation_kl(student: tuple, teacher: tuple, mask: np.ndarray, heads: int) -> float:
    def relation(a: np.ndarray, b: np.ndarray, example: int, head: int, row: int, keys: np.ndarray) -> np.ndarray:
        width = a.shape[-1] // heads
        part = slice(head * width, (head + 1) * width)
        scores = b[example, keys, part] @ a[example, row, part] / math.sqrt(width)
        e = np.exp(scores - scores.max())
        return e / e.sum()

    total, rows = 0.0, 0
    for example in range(mask.shape[0]):
        keys = np.flatnonzero(mask[example])
        for head in range(heads):
            for row in keys:
                p = relation(*teacher, example, head, row, keys)
                q = relation(*student, example, head, row, keys)
                total += float(np.sum(p * np.log(p / q)))
                rows += 1
    return total / rows


def test_attention_relation_matches_numpy_across_widths() -> None:
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    s_qkv, t_qkv = qkv(2, 3, 4, seed=0), qkv(2, 3, 6, seed=10)
    loss = AttentionRelationLoss(num_relation_heads=2)
    value = loss({"qkv": [s_qkv], "attention_mask": mask}, {"qkv": [qkv(2, 3, 6, seed=99), t_qkv]})
    expected = np.mean(
        [
            _numpy_relation_kl((s_qkv[i].numpy(), s_qkv[i].numpy()), (t_qkv[i].numpy(), t_qkv[i].numpy()), mask, 2)
            for i in range(3)
        ]
    )
    assert value.item() == pytest.approx(expected, rel=1e-9)

    # Padding values never matter, and qk relations use q rows against k columns.
    noisy = tuple(x.clone() for x in s_qkv)
    for x in noisy:
        x[0, 2] = 50.0
    qk = AttentionRelationLoss(num_relation_heads=2, relations=["qk"])
    clean_value = qk({"qkv": [s_qkv], "attention_mask": mask}, {"qkv": [t_qkv]})
    assert qk({"qkv": [noisy], "attention_mask": mask}, {"qkv": [t_qkv]}).item() == pytest.approx(clean_value.item())
    qk_expected = _numpy_relation_kl(
        (s_qkv[0].numpy(), s_qkv[1].numpy()), (t_qkv[0].numpy(), t_qkv[1].numpy()), mask, 2
    )
    assert clean_value.item() == pytest.approx(qk_expected, rel=1e-9)


def test_attention_relation_identical_is_zero_and_errors() -> None:
    batch = {"qkv": [qkv(1, 4, 6, seed=0)], "attention_mask": torch.tensor([[1, 1, 1, 0]])}
    assert AttentionRelationLoss(num_relation_heads=3)(batch, batch).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="num_relation_heads=4"):
        AttentionRelationLoss(num_relation_heads=4)(batch, batch)
    with pytest.raises(ValueError, match="relations must be two-letter names"):
        AttentionRelationLoss(relations=("qq", "qo"))


def test_token_similarity_matches_numpy_and_ignores_padding() -> None:
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    s, t = randn(2, 4, 3, seed=1), randn(2, 4, 5, seed=2)
    total, pairs = 0.0, 0
    for example in range(2):
        keys = np.flatnonzero(mask[example])
        su = s[example, keys].numpy() / np.linalg.norm(s[example, keys].numpy(), axis=-1, keepdims=True)
        tu = t[example, keys].numpy() / np.linalg.norm(t[example, keys].numpy(), axis=-1, keepdims=True)
        total += float(np.sum((su @ su.T - tu @ tu.T) ** 2))
        pairs += len(keys) ** 2
    loss = TokenSimilarityLoss(layer_student=0, layer_teacher=1)
    student = {"hidden_states": [s], "attention_mask": torch.from_numpy(mask)}
    value = loss(student, {"hidden_states": [t.clone(), t]})
    assert value.item() == pytest.approx(total / pairs, rel=1e-9)

    widened = {"hidden_states": [t @ orthonormal_rows(5, 7, seed=3)], "attention_mask": torch.from_numpy(mask)}
    assert TokenSimilarityLoss()(widened, {"hidden_states": [t]}).item() == pytest.approx(0.0, abs=1e-12)
