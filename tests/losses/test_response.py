"""Exact values of the distillation losses on small hand-made tensors, checked against hand or numpy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from distill.errors import DistillError
from distill.losses import (
    KIND,
    LOSSES,
    AttentionRelationLoss,
    CosineDistanceLoss,
    EmbeddingMSELoss,
    HiddenStateMSELoss,
    ListwiseKLLoss,
    MarginMSELoss,
    MissingOutputError,
    RKDAngleLoss,
    RKDDistanceLoss,
    SimilarityMatrixLoss,
    StartEndCELoss,
    StartEndKLLoss,
    TokenSimilarityLoss,
    build_loss,
    listwise_kl,
    rkd_angle,
    rkd_distance,
    symmetric_listwise_kl,
)

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


# --- response-based, embedders ------------------------------------------------------------------------------------


def test_embedding_mse_hand_value_averages_over_keys() -> None:
    student = {"query": t64([[1, 2], [0, 0]]), "passage": t64([[5, 5]])}
    teacher = {"query": t64([[0, 0], [0, 0]]), "passage": t64([[5, 5]])}
    # query: (1 + 4 + 0 + 0) / 4 = 1.25; passage: 0.
    assert EmbeddingMSELoss()(student, teacher).item() == pytest.approx(0.625)


def test_embedding_mse_uses_only_present_keys() -> None:
    loss = EmbeddingMSELoss(keys=("query", "passage", "text"))
    value = loss({"text": t64([[1.0, 3.0]])}, {"text": t64([[0.0, 0.0]])})
    assert value.item() == pytest.approx(5.0)


def test_embedding_mse_projection_value_and_gradient() -> None:
    loss = EmbeddingMSELoss(student_dim=2, teacher_dim=3, keys="query").double()
    weight = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    with torch.no_grad():
        loss.projection.weight.copy_(torch.from_numpy(weight))
    s, t = np.array([[1.0, 2.0]]), np.array([[0.0, 1.0, 2.0]])
    value = loss({"query": torch.from_numpy(s)}, {"query": torch.from_numpy(t)})
    assert value.item() == pytest.approx(np.mean((s @ weight.T - t) ** 2))  # ([1, 4, 3] - [0, 1, 2])^2 -> 11 / 3
    value.backward()
    assert loss.projection.weight.grad is not None and loss.projection.weight.grad.abs().sum() > 0


def test_embedding_mse_width_errors_say_how_to_fix() -> None:
    with pytest.raises(ValueError, match="student_dim=2, teacher_dim=3 to learn a projection"):
        EmbeddingMSELoss()({"query": t64([[1, 2]])}, {"query": t64([[1, 2, 3]])})
    with pytest.raises(ValueError, match="give both student_dim and teacher_dim"):
        EmbeddingMSELoss(student_dim=2)
    with pytest.raises(ValueError, match="built with student_dim=4"):
        EmbeddingMSELoss(student_dim=4, teacher_dim=3)({"query": t64([[1, 2]])}, {"query": t64([[1, 2, 3]])})


def test_embedding_key_errors() -> None:
    with pytest.raises(KeyError, match="EmbeddingMSELoss needs 'query' in the student outputs, which hold: passage"):
        EmbeddingMSELoss()({"passage": t64([[1, 2]])}, {"query": t64([[1, 2]])})
    with pytest.raises(MissingOutputError, match="found none of"):
        EmbeddingMSELoss()({"text": t64([[1, 2]])}, {"text": t64([[1, 2]])})
    with pytest.raises(ValueError, match="2 student rows but 1 teacher rows"):
        EmbeddingMSELoss()({"query": t64([[1, 2], [3, 4]])}, {"query": t64([[1, 2]])})


def test_cosine_distance_hand_value() -> None:
    student = {"query": t64([[1, 0], [1, 0], [2, 0]])}
    teacher = {"query": t64([[3, 0], [0, 1], [-1, 0]])}  # cos = 1, 0, -1 -> distances 0, 1, 2
    assert CosineDistanceLoss(keys=("query",))(student, teacher).item() == pytest.approx(1.0)


def test_cosine_distance_refuses_different_widths() -> None:
    with pytest.raises(ValueError, match="EmbeddingMSELoss"):
        CosineDistanceLoss()({"query": t64([[1, 0]])}, {"query": t64([[1, 0, 0]])})


def test_listwise_kl_known_2x2() -> None:
    teacher = t64([[LN3, 0], [0, LN3]])
    student = torch.zeros(2, 2, dtype=torch.float64)
    assert listwise_kl(student, teacher).item() == pytest.approx(KL_3_1)
    assert listwise_kl(teacher, teacher).item() == pytest.approx(0.0, abs=1e-12)
    # T = 2: the teacher becomes softmax([ln 3 / 2, 0]) = [sqrt3, 1] / (sqrt3 + 1); the loss is scaled by T^2.
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    expected = 4 * (p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p)))
    assert listwise_kl(student, teacher, temperature=2.0).item() == pytest.approx(expected)


def test_listwise_kl_module_across_widths_and_negatives() -> None:
    student = {"query": t64([[1, 0], [0, 1]]), "passage": torch.zeros(2, 2, dtype=torch.float64)}
    teacher = {"query": t64([[1, 0, 0], [0, 1, 0]]), "passage": t64([[LN3, 0, 0], [0, LN3, 0]])}
    assert ListwiseKLLoss()(student, teacher).item() == pytest.approx(KL_3_1)

    # One hard negative scoring 0 for both queries: teacher rows [ln 3, 0, 0] -> [0.6, 0.2, 0.2], student uniform.
    student["negative"] = t64([[0, 0]])
    teacher["negative"] = t64([[0, 0, 5]])
    with_negatives = 0.6 * math.log(0.6 * 3) + 2 * 0.2 * math.log(0.2 * 3)
    assert ListwiseKLLoss()(student, teacher).item() == pytest.approx(with_negatives)
    assert ListwiseKLLoss(use_negatives=False)(student, teacher).item() == pytest.approx(KL_3_1)
    del teacher["negative"]
    with pytest.raises(KeyError, match="'negative' in the teacher outputs"):
        ListwiseKLLoss()(student, teacher)


def test_symmetric_listwise_kl_matches_the_columns_too() -> None:
    # Both queries prefer passage 0 three to one: each row is KL_3_1; the columns are uniform for the teacher as for
    # the student, so the passage -> query direction adds 0 and the mean of both directions is KL_3_1 / 2.
    teacher = t64([[LN3, 0], [LN3, 0]])
    student = torch.zeros(2, 2, dtype=torch.float64)
    assert listwise_kl(student, teacher).item() == pytest.approx(KL_3_1)
    assert symmetric_listwise_kl(student, teacher).item() == pytest.approx(KL_3_1 / 2)
    assert symmetric_listwise_kl(student.T, teacher.T).item() == pytest.approx(KL_3_1 / 2)

    # In the module, negatives are extra columns of the query -> passage rows only: no query is paired with them.
    student_out = {"query": t64([[1, 0], [0, 1]]), "passage": torch.zeros(2, 2, dtype=torch.float64)}
    teacher_out = {"query": t64([[1, 0, 0], [0, 1, 0]]), "passage": t64([[LN3, 0, 0], [0, LN3, 0]])}
    assert ListwiseKLLoss(symmetric=True)(student_out, teacher_out).item() == pytest.approx(KL_3_1)
    student_out["negative"], teacher_out["negative"] = t64([[0, 0]]), t64([[0, 0, 5]])
    with_negatives = 0.6 * math.log(0.6 * 3) + 2 * 0.2 * math.log(0.2 * 3)
    value = ListwiseKLLoss(symmetric=True)(student_out, teacher_out).item()
    assert value == pytest.approx((with_negatives + KL_3_1) / 2)


def test_listwise_kl_memory_columns_add_to_the_softmax_without_a_gradient() -> None:
    student = {"query": t64([[1, 0], [0, 1]]), "passage": torch.zeros(2, 2, dtype=torch.float64)}
    teacher = {"query": t64([[1, 0, 0], [0, 1, 0]]), "passage": t64([[LN3, 0, 0], [0, LN3, 0]])}
    # Two remembered passages scoring 0 for both queries on both sides: teacher rows [3, 1, 1, 1] / 6, student uniform.
    memory = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    student["memory"], teacher["memory"] = memory, t64([[0, 0, 7], [0, 0, -2]])
    expected = 0.5 * math.log(0.5 * 4) + 3 * (1 / 6) * math.log(4 / 6)
    value = ListwiseKLLoss()(student, teacher)
    assert value.item() == pytest.approx(expected)
    assert not value.requires_grad  # nothing but the memory needed a gradient here, and the memory is detached
    # After the hard negatives: the same value as passing both as negatives.
    student["negative"], teacher["negative"] = t64([[0, 0]]), t64([[0, 0, 5]])
    both = ListwiseKLLoss()(student, teacher).item()
    merged = {"negative": torch.cat([student["negative"], memory.detach()])}
    merged_t = {"negative": torch.cat([teacher["negative"], teacher["memory"]])}
    alone = ListwiseKLLoss()(
        {"query": student["query"], "passage": student["passage"]} | merged,
        {"query": teacher["query"], "passage": teacher["passage"]} | merged_t,
    ).item()
    assert both == pytest.approx(alone)


def test_temperature_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ListwiseKLLoss: temperature must be > 0, got 0"):
        ListwiseKLLoss(temperature=0)
    with pytest.raises(ValueError, match="StartEndKLLoss: temperature must be > 0, got -1"):
        StartEndKLLoss(temperature=-1)


def test_margin_mse_hand_value() -> None:
    student = {"query": t64([[1, 0]]), "passage": t64([[1, 0]]), "negative": t64([[0, 1]])}  # margin 1 - 0 = 1
    teacher = {"query": t64([[2, 0, 0]]), "passage": t64([[1, 0, 0]]), "negative": t64([[0, 0, 0]])}  # margin 2
    assert MarginMSELoss()(student, teacher).item() == pytest.approx(1.0)
    assert MarginMSELoss()(teacher, teacher).item() == pytest.approx(0.0)


def test_margin_mse_requires_negative() -> None:
    batch = {"query": t64([[1, 0]]), "passage": t64([[1, 0]])}
    with pytest.raises(KeyError, match="MarginMSELoss needs 'negative'"):
        MarginMSELoss()(batch, batch)


# --- relation-based -------------------------------------------------------------------------------------------------


def test_rkd_distance_hand_value_across_widths() -> None:
    # Teacher points 0, 1, 3: distances 1, 3, 2, mean 2 -> 0.5, 1.5, 1.
    # Student points 0, 1, 2: distances 1, 2, 1, mean 4/3 -> 0.75, 1.5, 0.75.
    # smooth L1 of the differences 0.25, 0, -0.25 is 0.03125, 0, 0.03125, each pair counted in both orders.
    teacher = t64([[0, 0], [1, 0], [3, 0]])
    student = t64([[0], [1], [2]])
    assert rkd_distance(student, teacher).item() == pytest.approx(4 * 0.03125 / 6)


def test_rkd_distance_is_scale_rotation_and_translation_invariant() -> None:
    teacher = randn(6, 3, seed=0)
    assert rkd_distance(3 * teacher, teacher).item() == pytest.approx(0.0, abs=1e-10)
    student = 0.5 * teacher @ orthonormal_rows(3, 5, seed=1) + 2.0
    loss = RKDDistanceLoss()
    value = loss({"query": student[:3], "passage": student[3:]}, {"query": teacher[:3], "passage": teacher[3:]})
    assert value.item() == pytest.approx(0.0, abs=1e-10)


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


def test_rkd_angle_is_scale_and_translation_invariant() -> None:
    teacher = randn(5, 3, seed=4)
    student = {"passage": 2.5 * teacher - 1.0}
    assert RKDAngleLoss(keys="passage")(student, {"passage": teacher}).item() == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="at least 3 rows"):
        RKDAngleLoss(keys="passage")({"passage": teacher[:2]}, {"passage": teacher[:2]})


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


# --- feature-based --------------------------------------------------------------------------------------------------


def _hidden(layers: list[list[list[float]]]) -> list[torch.Tensor]:
    return [t64([layer]) for layer in layers]


def test_hidden_state_mse_hand_value_ignores_padding() -> None:
    mask = torch.tensor([[1, 1, 0]])
    student = {"hidden_states": _hidden([[[0, 0]] * 3, [[1, 1], [0, 0], [9, 9]]]), "attention_mask": mask}
    teacher = {"hidden_states": _hidden([[[0, 0]] * 3, [[7, 7]] * 3, [[0, 0], [0, 0], [-4, 4]]])}
    # Student layer 1 vs teacher layer 2 on the two real tokens: (1 + 0) / 2; the padded token differs but is ignored.
    for layer_map in ({1: 2}, [(1, 2)], [[-1, -1]]):
        loss = HiddenStateMSELoss(layer_map, student_dim=2, teacher_dim=2)
        assert loss(student, teacher).item() == pytest.approx(0.5)
    assert len(HiddenStateMSELoss({1: 2}, student_dim=2, teacher_dim=2).projections) == 0


def test_hidden_state_mse_projection_per_layer_gets_gradients() -> None:
    mask = torch.tensor([[1, 1, 1, 0]])
    student = {"hidden_states": [randn(1, 4, 2, seed=i) for i in range(3)], "attention_mask": mask}
    teacher = {"hidden_states": [randn(1, 4, 3, seed=10 + i) for i in range(5)]}
    loss = HiddenStateMSELoss({1: 2, 2: 4}, student_dim=2, teacher_dim=3).double()
    assert len(loss.projections) == 2
    loss(student, teacher).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.parameters())
    assert set(loss.state_dict()) == {"projections.0.weight", "projections.1.weight"}


def test_hidden_state_mse_errors() -> None:
    batch = {"hidden_states": [randn(1, 3, 2, seed=0)], "attention_mask": torch.ones(1, 3)}
    with pytest.raises(ValueError, match="student layer 3 is out of range"):
        HiddenStateMSELoss({3: 0}, student_dim=2, teacher_dim=2)(batch, batch)
    with pytest.raises(ValueError, match="share a tokenizer"):
        HiddenStateMSELoss({0: 0}, student_dim=2, teacher_dim=2)(batch, {"hidden_states": [randn(1, 4, 2, seed=0)]})
    with pytest.raises(ValueError, match="layer_map is empty"):
        HiddenStateMSELoss({}, student_dim=2, teacher_dim=2)
    with pytest.raises(KeyError, match="HiddenStateMSELoss needs 'attention_mask' in the student outputs"):
        HiddenStateMSELoss({0: 0}, student_dim=2, teacher_dim=2)({"hidden_states": batch["hidden_states"]}, batch)


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


def _qkv(batch: int, length: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return tuple(randn(batch, length, width, seed=seed + i) for i in range(3))


def test_attention_relation_matches_numpy_across_widths() -> None:
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    s_qkv, t_qkv = _qkv(2, 3, 4, seed=0), _qkv(2, 3, 6, seed=10)
    loss = AttentionRelationLoss(num_relation_heads=2)
    value = loss({"qkv": [s_qkv], "attention_mask": mask}, {"qkv": [_qkv(2, 3, 6, seed=99), t_qkv]})
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
    batch = {"qkv": [_qkv(1, 4, 6, seed=0)], "attention_mask": torch.tensor([[1, 1, 1, 0]])}
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


# --- readers --------------------------------------------------------------------------------------------------------


def _reader(start: list[float], end: list[float], context: list[bool], **labels: int) -> dict[str, torch.Tensor]:
    outputs = {"start_logits": t64([start]), "end_logits": t64([end]), "context_mask": torch.tensor([context])}
    for key, value in labels.items():
        outputs[key] = torch.tensor([value])
    return outputs


# Valid span positions: 0 (always) and 1 (context); position 2 is a question token.
CONTEXT = [False, True, False]


def test_start_end_kl_soft_hand_value_and_mixing() -> None:
    teacher = _reader([LN3, 0, 7], [LN3, 0, -3], CONTEXT)
    student = _reader([0, 0, -5], [2, 2, 9], CONTEXT)
    soft = StartEndKLLoss(temperature=1.0, alpha=1.0)(student, teacher).item()
    assert soft == pytest.approx(KL_3_1)

    labelled = {**student, "start_positions": torch.tensor([1]), "end_positions": torch.tensor([0])}
    # The student is uniform over the two span positions, so each cross-entropy is ln 2.
    mixed = StartEndKLLoss(temperature=1.0, alpha=0.75)(labelled, teacher).item()
    assert mixed == pytest.approx(0.75 * KL_3_1 + 0.25 * math.log(2))
    assert StartEndKLLoss(temperature=1.0, alpha=1.0)(labelled, teacher).item() == pytest.approx(soft)
    assert StartEndKLLoss(temperature=1.0, alpha=0.75)(student, teacher).item() == pytest.approx(soft)  # unlabelled


def test_start_end_kl_temperature_scaling() -> None:
    teacher = _reader([LN3, 0, 7], [LN3, 0, 7], CONTEXT)
    student = _reader([0, 0, 0], [0, 0, 0], CONTEXT)
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    expected = 4 * (p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p)))
    assert StartEndKLLoss(temperature=2.0, alpha=1.0)(student, teacher).item() == pytest.approx(expected)


def test_start_end_kl_ignores_masked_positions() -> None:
    teacher = _reader([1, 2, 3, 4], [0, 1, 5, 2], [False, True, False, True])
    student = _reader([2, 0, 1, 1], [1, 1, 1, 0], [False, True, False, True], start_positions=3, end_positions=3)
    value = StartEndKLLoss()(student, teacher)
    for outputs, fill in ((teacher, 40.0), (student, -25.0)):
        outputs["start_logits"][0, 2] = fill
        outputs["end_logits"][0, 2] = fill
    assert StartEndKLLoss()(student, teacher).item() == pytest.approx(value.item(), rel=1e-12)


def test_start_end_kl_empty_context_is_finite() -> None:
    teacher = _reader([1, 5, 3], [2, 2, 2], [False, False, False])
    student = _reader([0, 9, 0], [4, 0, 1], [False, False, False], start_positions=0, end_positions=0)
    student["start_logits"].requires_grad_(True)
    value = StartEndKLLoss(temperature=0.5)(student, teacher)
    value.backward()
    # Only position 0 is left: both distributions put all mass there, so the soft and hard terms are 0.
    assert value.item() == pytest.approx(0.0, abs=1e-12)
    assert torch.isfinite(student["start_logits"].grad).all()


def test_start_end_kl_teacher_probabilities_match_logits() -> None:
    context = [False, True, True, True, False]
    teacher_logits = _reader([0.5, 2.0, -1.0, 0.3, 8.0], [1.0, 0.0, 3.0, -2.0, 8.0], context)
    mask = torch.tensor([[True, True, True, True, False]])
    teacher_probs = {
        f"{side}_probs": torch.softmax(teacher_logits[f"{side}_logits"].masked_fill(~mask, -math.inf), -1)
        for side in ("start", "end")
    }
    student = _reader([0.1, 0.2, 0.3, 0.4, 0.5], [1.0, -1.0, 0.0, 2.0, 0.5], context)
    loss = StartEndKLLoss(temperature=1.5, alpha=1.0)
    assert loss(student, teacher_probs).item() == pytest.approx(loss(student, teacher_logits).item(), rel=1e-6)


def test_start_end_ce_hand_value_and_alpha_zero() -> None:
    student = _reader([0, LN3, 4], [LN3, 0, 4], CONTEXT, start_positions=1, end_positions=1)
    # Over positions {0, 1}: start softmax [1/4, 3/4] -> -ln(3/4); end softmax [3/4, 1/4] -> -ln(1/4).
    expected = (math.log(4 / 3) + math.log(4)) / 2
    assert StartEndCELoss()(student, {}).item() == pytest.approx(expected)
    teacher = _reader([3, 1, 0], [0, 1, 0], CONTEXT)
    assert StartEndKLLoss(alpha=0.0)(student, teacher).item() == pytest.approx(expected)


def test_reader_errors() -> None:
    teacher = _reader([0, 0, 0], [0, 0, 0], CONTEXT)
    with pytest.raises(ValueError, match=r"start_positions\[0\]=2 falls outside context_mask"):
        StartEndCELoss()(_reader([0, 0, 0], [0, 0, 0], CONTEXT, start_positions=2, end_positions=0), {})
    with pytest.raises(KeyError, match="StartEndCELoss needs 'start_positions'"):
        StartEndCELoss()(_reader([0, 0, 0], [0, 0, 0], CONTEXT), {})
    with pytest.raises(KeyError, match="'end_positions'"):
        StartEndKLLoss()(_reader([0, 0, 0], [0, 0, 0], CONTEXT, start_positions=1), teacher)
    with pytest.raises(KeyError, match="'start_probs'"):
        StartEndKLLoss()(teacher, {"end_logits": teacher["end_logits"]})
    with pytest.raises(ValueError, match=r"alpha \(the soft-loss weight\) must be in \[0, 1\], got 1.5"):
        StartEndKLLoss(alpha=1.5)


# --- registry and the trainer's interface ---------------------------------------------------------------------------


def test_registry_names_and_kinds() -> None:
    assert KIND == {
        "embedding_mse": "response",
        "cosine": "response",
        "listwise_kl": "response",
        "margin_mse": "response",
        "rkd_distance": "relation",
        "rkd_angle": "relation",
        "similarity_matrix": "relation",
        "hidden_state_mse": "feature",
        "attention_relation": "relation",
        "token_similarity": "relation",
        "start_end_kl": "response",
        "start_end_ce": "response",
    }
    assert set(LOSSES) == set(KIND)
    aligned = {name for name, cls in LOSSES.items() if cls.needs_aligned_tokens}
    assert aligned == {"hidden_state_mse", "attention_relation", "token_similarity"}
    assert {name for name, cls in LOSSES.items() if not cls.needs_teacher} == {"start_end_ce"}


def test_build_loss() -> None:
    loss = build_loss("listwise_kl", temperature=2.0, use_negatives=False)
    assert isinstance(loss, ListwiseKLLoss) and loss.temperature == 2.0 and not loss.use_negatives
    assert build_loss("rkd_distance", keys=["passage"]).requires == ("passage",)
    with pytest.raises(ValueError, match="unknown loss 'kl'; known losses: embedding_mse, cosine, listwise_kl"):
        build_loss("kl")
    with pytest.raises(
        ValueError, match="loss 'cosine' \\(CosineDistanceLoss\\) got unexpected argument 'temperature'"
    ):
        build_loss("cosine", temperature=2.0)
    with pytest.raises(ValueError, match="needs argument 'layer_map'"):
        build_loss("hidden_state_mse", student_dim=2, teacher_dim=2)
    with pytest.raises(DistillError):
        build_loss("nope")


def _embedder(width: int, seed: int) -> dict[str, torch.Tensor]:
    return {key: randn(4, width, seed=seed + i) for i, key in enumerate(("query", "passage", "negative"))}


def _tokens(width: int, seed: int) -> dict[str, object]:
    return {
        "hidden_states": [randn(2, 5, width, seed=seed + i) for i in range(3)],
        "qkv": [_qkv(2, 5, width, seed=seed + 10 * i) for i in range(1, 3)],
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
    }


def _span(seed: int) -> dict[str, torch.Tensor]:
    return {
        "start_logits": randn(2, 6, seed=seed),
        "end_logits": randn(2, 6, seed=seed + 1),
        "context_mask": torch.tensor([[0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.bool),
        "start_positions": torch.tensor([2, 0]),
        "end_positions": torch.tensor([4, 0]),
    }


GRADIENT_CASES = {
    "embedding_mse": ({"student_dim": 4, "teacher_dim": 6}, _embedder),
    "cosine": ({}, _embedder),
    "listwise_kl": ({"temperature": 2.0}, _embedder),
    "margin_mse": ({}, _embedder),
    "rkd_distance": ({}, _embedder),
    "rkd_angle": ({}, _embedder),
    "similarity_matrix": ({}, _embedder),
    "hidden_state_mse": ({"layer_map": {1: 2, -1: -1}, "student_dim": 4, "teacher_dim": 6}, _tokens),
    "attention_relation": ({"num_relation_heads": 2}, _tokens),
    "token_similarity": ({}, _tokens),
    "start_end_kl": ({}, lambda width, seed: _span(seed)),
    "start_end_ce": ({}, lambda width, seed: _span(seed)),
}


def _float_leaves(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _float_leaves(v)]
    return []


@pytest.mark.parametrize("name", list(GRADIENT_CASES))
def test_gradients_flow_for_every_loss(name: str) -> None:
    kwargs, make = GRADIENT_CASES[name]
    student, teacher = make(4, 1), make(4 if name == "cosine" else 6, 100)
    leaves = _float_leaves(list(student.values()))
    for leaf in leaves:
        leaf.requires_grad_(True)
    loss = build_loss(name, **kwargs).double()
    value = loss(student, teacher)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    grads = [leaf.grad for leaf in leaves if leaf.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in loss.parameters())
    assert set(loss.requires) <= set(student)
