"""Response-based losses (embeddings, scores, reader spans): exact values on hand-made outputs and their errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from loss_tensors import KL_3_1, LN3, t64

from distill.training.losses import (
    CosineDistanceLoss,
    EmbeddingMSELoss,
    ListwiseKLLoss,
    MarginMSELoss,
    MissingOutputError,
    StartEndCELoss,
    StartEndKLLoss,
    listwise_kl,
    symmetric_listwise_kl,
)


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
