"""Feature-based losses (hidden states): values on hand-made layers, projections and errors."""

from __future__ import annotations

import pytest
import torch
from loss_tensors import randn, t64

from distill.training.losses import (
    HiddenStateMSELoss,
)


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
