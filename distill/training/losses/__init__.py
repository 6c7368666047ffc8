"""Distillation losses: one ``nn.Module`` per objective, its maths in a pure function of tensors.

Every loss is called as ``loss(student, teacher)`` with two mappings of model outputs and returns a scalar; the
interface, the output keys and the errors are in :mod:`distill.training.losses.base`. The losses are grouped by what the
student matches (Gou et al., "Knowledge Distillation: A Survey", 2021):

- :mod:`~distill.training.losses.response`: the teacher's outputs (embeddings, scores, span distributions);
- :mod:`~distill.training.losses.relation`: the relations between outputs (distances, angles, similarities, attention);
- :mod:`~distill.training.losses.feature`: intermediate features (hidden states);

and :mod:`~distill.training.losses.functional` holds their maths. Each loss class names the recipe tasks it serves in
``tasks``; :func:`losses_for` lists a task's losses.

Use :func:`build_loss` to make a loss from a recipe entry; ``LOSSES`` and ``KIND`` list what exists.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from torch import nn

from distill.training.losses.base import (
    TASKS,
    DistillationLoss,
    LossConfigError,
    MissingOutputError,
    Outputs,
    check_temperature,
)
from distill.training.losses.feature import HiddenStateMSELoss
from distill.training.losses.functional import (
    RKD_EPS,
    attention_relation_kl,
    cosine_distance,
    cosine_matrix,
    dot_scores,
    embedding_mse,
    listwise_kl,
    margin_mse,
    masked_mse,
    pairwise_distances,
    probs_to_logits,
    relation_log_probs,
    rkd_angle,
    rkd_distance,
    similarity_matrix_mse,
    span_cross_entropy,
    span_kl,
    span_mask,
    symmetric_listwise_kl,
    token_similarity_mse,
    triplet_angle_cosines,
)
from distill.training.losses.relation import (
    AttentionRelationLoss,
    RKDAngleLoss,
    RKDDistanceLoss,
    SimilarityMatrixLoss,
    TokenSimilarityLoss,
)
from distill.training.losses.response import (
    CosineDistanceLoss,
    EmbeddingMSELoss,
    ListwiseKLLoss,
    MarginMSELoss,
    StartEndCELoss,
    StartEndKLLoss,
)

__all__ = [
    "KIND",
    "LOSSES",
    "RKD_EPS",
    "TASKS",
    "AttentionRelationLoss",
    "CosineDistanceLoss",
    "DistillationLoss",
    "EmbeddingMSELoss",
    "HiddenStateMSELoss",
    "ListwiseKLLoss",
    "LossConfigError",
    "MarginMSELoss",
    "MissingOutputError",
    "Outputs",
    "RKDAngleLoss",
    "RKDDistanceLoss",
    "SimilarityMatrixLoss",
    "StartEndCELoss",
    "StartEndKLLoss",
    "TokenSimilarityLoss",
    "attention_relation_kl",
    "build_loss",
    "cosine_distance",
    "cosine_matrix",
    "dot_scores",
    "embedding_mse",
    "listwise_kl",
    "losses_for",
    "margin_mse",
    "masked_mse",
    "pairwise_distances",
    "probs_to_logits",
    "relation_log_probs",
    "rkd_angle",
    "rkd_distance",
    "save_loss_parameters",
    "similarity_matrix_mse",
    "span_cross_entropy",
    "span_kl",
    "span_mask",
    "symmetric_listwise_kl",
    "token_similarity_mse",
    "triplet_angle_cosines",
]

# The recipe names, in the order listings and error messages show them.
LOSSES: dict[str, type[DistillationLoss]] = {
    "embedding_mse": EmbeddingMSELoss,
    "cosine": CosineDistanceLoss,
    "listwise_kl": ListwiseKLLoss,
    "margin_mse": MarginMSELoss,
    "rkd_distance": RKDDistanceLoss,
    "rkd_angle": RKDAngleLoss,
    "similarity_matrix": SimilarityMatrixLoss,
    "hidden_state_mse": HiddenStateMSELoss,
    "attention_relation": AttentionRelationLoss,
    "token_similarity": TokenSimilarityLoss,
    "start_end_kl": StartEndKLLoss,
    "start_end_ce": StartEndCELoss,
}

KIND: dict[str, str] = {name: cls.kind for name, cls in LOSSES.items()}


def save_loss_parameters(names: Sequence[str], losses: Sequence[nn.Module], path: Any) -> bool:
    """Save the losses' trained parameters (e.g. hidden-state projections) to a safetensors file; False if none."""
    tensors = {
        f"{name}.{key}": value.detach().cpu().contiguous()
        for name, loss in zip(names, losses)
        for key, value in loss.state_dict().items()
    }
    if not tensors:
        return False
    from safetensors.torch import save_file

    save_file(tensors, str(path))
    return True


def build_loss(name: str, **kwargs: Any) -> DistillationLoss:
    """Make the loss registered as ``name`` with constructor arguments ``kwargs`` (e.g. from a recipe entry)."""
    if name not in LOSSES:
        raise LossConfigError(f"unknown loss {name!r}; known losses: {', '.join(LOSSES)}")
    cls = LOSSES[name]
    parameters = {
        key: p
        for key, p in inspect.signature(cls).parameters.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    accepted = ", ".join(parameters) or "no arguments"
    unexpected = [key for key in kwargs if key not in parameters]
    if unexpected:
        raise LossConfigError(
            f"loss {name!r} ({cls.__name__}) got unexpected argument {unexpected[0]!r}; it accepts: {accepted}"
        )
    missing = [p.name for p in parameters.values() if p.default is inspect.Parameter.empty and p.name not in kwargs]
    if missing:
        raise LossConfigError(f"loss {name!r} ({cls.__name__}) needs argument {missing[0]!r}; it accepts: {accepted}")
    return cls(**kwargs)


def build_recipe_losses(
    entries: Sequence[dict[str, Any]], filled: dict[str, dict[str, Any]] | None = None
) -> list[tuple[str, float, DistillationLoss]]:
    """``recipe.losses`` as ``(name, weight, loss)``; ``filled[name]`` gives the settings an entry leaves to the task
    (a loss's widths, which only the loaded models know), an entry's own settings winning."""
    out = []
    for entry in entries:
        name = entry["name"]
        kwargs = {**(filled or {}).get(name, {}), **{k: v for k, v in entry.items() if k not in ("name", "weight")}}
        out.append((name, entry["weight"], build_loss(name, **kwargs)))
    return out


def check_loss_settings(name: str, settings: dict[str, Any], where: str) -> None:
    """What a recipe entry can be checked for before any model is loaded: the loss knows every setting, and each
    setting has the type of its default (a number where the default is a number). The settings a task fills in
    (widths, layer counts) are checked when the loss is built."""
    cls = LOSSES[name]
    parameters = {
        key: p
        for key, p in inspect.signature(cls).parameters.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    for key, value in settings.items():
        if key not in parameters:
            raise LossConfigError(f"{where}.{key}: {name} has no setting {key!r}; it accepts: {', '.join(parameters)}")
        default = parameters[key].default
        number = isinstance(default, (int, float)) and not isinstance(default, bool)
        if number and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise LossConfigError(f"{where}.{key} must be a number, got {value!r}")
        if isinstance(default, bool) and not isinstance(value, bool):
            raise LossConfigError(f"{where}.{key} must be true or false, got {value!r}")
        if key == "temperature":
            check_temperature(value, where)


def losses_for(task: str) -> list[str]:
    """The names of the losses a ``task`` recipe may use ("embedder" or "reader"), in the order of ``LOSSES``."""
    if task not in TASKS:
        raise LossConfigError(f"unknown task {task!r} for losses; tasks: {', '.join(TASKS)}")
    return [name for name, cls in LOSSES.items() if task in cls.tasks]
