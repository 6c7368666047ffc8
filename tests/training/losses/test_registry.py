"""The registry and the trainer's interface: names, kinds, tasks, build_loss, and gradients through every loss."""

from __future__ import annotations

import pytest
import torch
from loss_tensors import qkv, randn

from distill.errors import DistillError
from distill.training.losses import (
    KIND,
    LOSSES,
    TASKS,
    ListwiseKLLoss,
    LossConfigError,
    build_loss,
    build_recipe_losses,
    losses_for,
)


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


# The losses each recipe task took when recipes.py listed them itself (READER_LOSSES, and LOSSES minus the first
# two of those for embedders), before the loss classes declared their tasks.
EMBEDDER_LOSSES = [
    "embedding_mse",
    "cosine",
    "listwise_kl",
    "margin_mse",
    "rkd_distance",
    "rkd_angle",
    "similarity_matrix",
    "hidden_state_mse",
    "attention_relation",
    "token_similarity",
]
READER_LOSSES = {"start_end_kl", "start_end_ce", "attention_relation", "token_similarity", "hidden_state_mse"}


def test_losses_for_gives_each_task_the_losses_it_took() -> None:
    assert losses_for("embedder") == EMBEDDER_LOSSES
    assert set(losses_for("reader")) == READER_LOSSES
    assert losses_for("reader") == [name for name in LOSSES if name in READER_LOSSES]
    with pytest.raises(ValueError, match="unknown task 'finetune_reader' for losses; tasks: embedder, reader"):
        losses_for("finetune_reader")


def test_every_loss_declares_the_tasks_it_serves() -> None:
    for name, cls in LOSSES.items():
        assert cls.tasks and set(cls.tasks) <= set(TASKS), name
        assert isinstance(cls.tasks, tuple), name
    shared = {name for name, cls in LOSSES.items() if set(cls.tasks) == set(TASKS)}
    assert shared == {"hidden_state_mse", "attention_relation", "token_similarity"}
    assert {name for name in LOSSES if name not in shared} == {
        name for name, cls in LOSSES.items() if len(cls.tasks) == 1
    }


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
        "qkv": [qkv(2, 5, width, seed=seed + 10 * i) for i in range(1, 3)],
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


def test_recipe_losses_take_the_widths_the_task_fills_and_keep_their_own():
    entries = [
        {"name": "embedding_mse", "weight": 0.5},
        {"name": "hidden_state_mse", "weight": 1.0, "student_dim": 4, "layer_map": {1: 2}},
    ]
    filled = {
        "embedding_mse": {"student_dim": 4, "teacher_dim": 8},
        "hidden_state_mse": {"student_dim": 2, "teacher_dim": 8},
    }
    (n1, w1, l1), (n2, w2, l2) = build_recipe_losses(entries, filled)
    assert (n1, w1, n2, w2) == ("embedding_mse", 0.5, "hidden_state_mse", 1.0)
    assert l1.projection.in_features == 4 and l1.projection.out_features == 8
    assert l2.projections[0].in_features == 4  # the entry's own student_dim wins over the filled one
    with pytest.raises(LossConfigError, match="needs argument 'student_dim'"):
        build_recipe_losses([{"name": "hidden_state_mse", "weight": 1.0, "layer_map": {1: 2}}])
