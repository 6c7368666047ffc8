"""The interface every distillation loss shares: :class:`DistillationLoss`, its errors and its checks on outputs.

Every loss is called as ``loss(student, teacher)`` with two mappings of model outputs and returns a scalar. The keys
a loss reads are in its class attribute ``requires`` (optional extras in ``optional``); a missing key raises
:class:`MissingOutputError` naming the key, the side and the loss. Teacher outputs are targets: every loss detaches
them. Losses with ``needs_aligned_tokens = True`` compare token positions, so the trainer must refuse them when the
teacher and student tokenizers differ.

Output keys
-----------
Embedders (sentence level; student and teacher widths D may differ):

- ``"query"`` (B, D): query embeddings.
- ``"passage"`` (B, D): passage embeddings; row i is query i's positive.
- ``"negative"`` (B, D), optional: hard negatives; row i is a hard negative of query i.
- ``"text"`` (N, D), optional: embeddings of plain texts, for ``EmbeddingMSELoss(keys=("text",))``.

Token level (teacher and student share a tokenizer, so L is the same on both sides):

- ``"hidden_states"``: list of (B, L, D) tensors, one per layer, index 0 is the embedding layer.
- ``"attention_mask"`` (B, L): 1 on real tokens, 0 on padding. Read from the student (the teacher's is the same).
- ``"qkv"``: list per transformer layer of ``(q, k, v)``, each (B, L, D_model): the query/key/value linear
  projections before the split into attention heads.

Readers (extractive QA):

- ``"start_logits"``, ``"end_logits"`` (B, L).
- ``"context_mask"`` (B, L) bool: True on context tokens that may hold an answer. Read from the student. Position 0
  (the CLS / no-answer slot of SQuAD 2.0) is always treated as valid, so no row is ever empty.
- ``"start_positions"``, ``"end_positions"`` (B,) long: hard labels, absent for unlabelled data. Looked up in the
  student mapping first, then the teacher's.
- ``"start_probs"``, ``"end_probs"`` (B, L_student), teacher only: for cross-tokenizer distillation, the teacher's
  span distributions already mapped onto the student's tokens, given instead of teacher logits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from distill.errors import DistillError

# Values are tensors, or lists of tensors for the per-layer keys ("hidden_states", "qkv").
Outputs = Mapping[str, Any]

# The recipe tasks a loss can serve; each loss class names its own in ``tasks``.
TASKS = ("embedder", "reader")


class LossConfigError(DistillError, ValueError):
    """A loss was built with, or given, a value it cannot use; the message says which and what to do."""


class MissingOutputError(DistillError, KeyError):
    """A loss needs an output key that the student or teacher mapping lacks."""

    def __str__(self) -> str:  # KeyError's own __str__ would quote the whole message
        return str(self.args[0])


def _detach(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, (list, tuple)):
        return type(value)(_detach(v) for v in value)
    return value


def check_keys(keys: str | Sequence[str], loss_name: str) -> tuple[str, ...]:
    result = (keys,) if isinstance(keys, str) else tuple(keys)
    if not result or not all(isinstance(k, str) for k in result):
        raise LossConfigError(f"{loss_name}: keys must be a non-empty list of output names, got {keys!r}")
    return result


def check_temperature(temperature: float, loss_name: str) -> float:
    if not temperature > 0:
        raise LossConfigError(f"{loss_name}: temperature must be > 0, got {temperature}")
    return float(temperature)


def check_dim(value: int, name: str, loss_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LossConfigError(f"{loss_name}: {name} must be a positive integer (the embedding width), got {value!r}")
    return value


class DistillationLoss(nn.Module):
    """Base of every loss here: the trainer's interface and the shared checks on outputs.

    Class attributes:
        requires: the output keys ``forward`` reads from ``student`` and ``teacher``.
        optional: keys used when present.
        needs_aligned_tokens: True when the loss compares token positions, so teacher and student must share a
            tokenizer.
        needs_teacher: False for hard-label losses, which ignore the teacher mapping.
        kind: "response", "relation" or "feature": what the student matches, the teacher's outputs, the relations
            between them, or its intermediate features.
        tasks: the recipe tasks (of ``TASKS``) the loss serves; a recipe may only use the losses of its task. Empty
            here so that a new loss serves nothing until it says what.
    """

    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    needs_aligned_tokens: bool = False
    needs_teacher: bool = True
    kind: str = "response"
    tasks: tuple[str, ...] = ()

    @property
    def _name(self) -> str:
        return type(self).__name__

    def _get(self, outputs: Outputs, key: str, side: str) -> Any:
        if key not in outputs:
            present = ", ".join(sorted(outputs)) or "nothing"
            raise MissingOutputError(
                f"{self._name} needs {key!r} in the {side} outputs, which hold: {present}. "
                f"Compute {key!r} for the {side}, or choose a loss whose requires matches the outputs."
            )
        value = outputs[key]
        return _detach(value) if side == "teacher" else value

    def _embedding_pair(self, student: Outputs, teacher: Outputs, key: str) -> tuple[Tensor, Tensor]:
        s, t = self._get(student, key, "student"), self._get(teacher, key, "teacher")
        if s.ndim != 2 or t.ndim != 2:
            raise LossConfigError(
                f"{self._name}: {key!r} must be (batch, dim) embeddings, got student {tuple(s.shape)} and teacher "
                f"{tuple(t.shape)}; pool token states into one vector per text first"
            )
        if s.shape[0] != t.shape[0]:
            raise LossConfigError(
                f"{self._name}: {key!r} has {s.shape[0]} student rows but {t.shape[0]} teacher rows; the teacher must "
                "embed the same texts in the same order"
            )
        return s, t

    def _present_embedding_pairs(self, student: Outputs, teacher: Outputs) -> list[tuple[str, Tensor, Tensor]]:
        """The listed keys present on both sides; a key on one side only is an error, none at all is too."""
        pairs = []
        for key in self.requires:
            if key in student or key in teacher:
                pairs.append((key, *self._embedding_pair(student, teacher, key)))
        if not pairs:
            raise MissingOutputError(
                f"{self._name} found none of {list(self.requires)} in the outputs (student holds: "
                f"{', '.join(sorted(student)) or 'nothing'}); compute one of them or set keys= to what exists"
            )
        return pairs

    def _concatenated_rows(self, student: Outputs, teacher: Outputs) -> tuple[Tensor, Tensor]:
        pairs = [self._embedding_pair(student, teacher, key) for key in self.requires]
        return torch.cat([s for s, _ in pairs]), torch.cat([t for _, t in pairs])

    def _layer(self, layers: Sequence[Any], index: int, side: str, key: str) -> Any:
        if not -len(layers) <= index < len(layers):
            raise LossConfigError(
                f"{self._name}: {side} layer {index} is out of range, the {side} gives {len(layers)} {key!r} entries "
                f"(valid: {-len(layers)} to {len(layers) - 1})"
            )
        return layers[index]

    def _check_aligned(self, student_tensor: Tensor, teacher_tensor: Tensor, mask: Tensor, what: str) -> None:
        if student_tensor.shape[:2] != teacher_tensor.shape[:2] or student_tensor.shape[:2] != mask.shape:
            raise LossConfigError(
                f"{self._name} compares token positions but student {what} is {tuple(student_tensor.shape)}, teacher "
                f"{what} is {tuple(teacher_tensor.shape)} and attention_mask is {tuple(mask.shape)}; teacher and "
                "student must share a tokenizer and batch (use a sentence-level loss otherwise)"
            )
