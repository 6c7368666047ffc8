"""Feature-based losses: the student matches the teacher's intermediate features, its hidden states layer by layer.

:class:`HiddenStateMSELoss` compares mapped student and teacher layers token by token (teacher and student share a
tokenizer), through learned projections when the widths differ. The maths is in
:mod:`distill.training.losses.functional`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from distill.training.losses.base import DistillationLoss, LossConfigError, Outputs, check_dim
from distill.training.losses.functional import masked_mse


def _layer_pairs(layer_map: Mapping[int, int] | Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    items = layer_map.items() if isinstance(layer_map, Mapping) else layer_map
    pairs = []
    for item in items:
        if len(item) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in item):
            raise LossConfigError(
                f"HiddenStateMSELoss: layer_map entries must be (student_layer, teacher_layer) integer pairs, got "
                f"{item!r} in {layer_map!r}"
            )
        pairs.append((item[0], item[1]))
    if not pairs:
        raise LossConfigError("HiddenStateMSELoss: layer_map is empty; map at least one student layer to a teacher one")
    return pairs


class HiddenStateMSELoss(DistillationLoss):
    """MSE between mapped student and teacher hidden states on real (non-padding) tokens.

    ``loss = mean_{(l_s, l_t)} mean_{real b, i} mean_d (W_l h^s_{l_s, b, i} - h^t_{l_t, b, i})_d^2`` where ``W_l`` is a
    learned ``nn.Linear(student_dim, teacher_dim, bias=False)`` per mapped layer when the widths differ (kept in the
    ``projections`` ModuleList, saved and trained with the loss) and the identity otherwise.

    Reference: Jiao et al., "TinyBERT: Distilling BERT for Natural Language Understanding", 2020 (hidden-state loss);
    Romero et al., "FitNets", 2015 (learned projection of thin student features).

    Inputs: "hidden_states", a list of (B, L, D) tensors with index 0 the embedding layer (negative indices count from
    the last layer); "attention_mask" (B, L) from the student. Teacher and student must share a tokenizer.

    Example::

        loss = HiddenStateMSELoss({3: 6, 6: 12}, student_dim=384, teacher_dim=768)
        value = loss(student_outputs, teacher_outputs)
    """

    requires = ("hidden_states", "attention_mask")
    needs_aligned_tokens = True
    kind = "feature"
    tasks = ("embedder", "reader")

    def __init__(
        self,
        layer_map: Mapping[int, int] | Sequence[Sequence[int]],
        student_dim: int,
        teacher_dim: int,
    ) -> None:
        super().__init__()
        self.layer_map = _layer_pairs(layer_map)
        self.student_dim = check_dim(student_dim, "student_dim", self._name)
        self.teacher_dim = check_dim(teacher_dim, "teacher_dim", self._name)
        self.projections = nn.ModuleList(
            nn.Linear(student_dim, teacher_dim, bias=False) for _ in self.layer_map if student_dim != teacher_dim
        )

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        student_layers = self._get(student, "hidden_states", "student")
        teacher_layers = self._get(teacher, "hidden_states", "teacher")
        mask = self._get(student, "attention_mask", "student")
        losses = []
        for index, (student_layer, teacher_layer) in enumerate(self.layer_map):
            s = self._layer(student_layers, student_layer, "student", "hidden_states")
            t = self._layer(teacher_layers, teacher_layer, "teacher", "hidden_states")
            self._check_aligned(s, t, mask, "hidden states")
            if s.shape[-1] != self.student_dim or t.shape[-1] != self.teacher_dim:
                raise LossConfigError(
                    f"HiddenStateMSELoss: hidden widths are student {s.shape[-1]}, teacher {t.shape[-1]} but the loss "
                    f"was built with student_dim={self.student_dim}, teacher_dim={self.teacher_dim}; set them to the "
                    "models' hidden sizes"
                )
            if self.projections:
                s = self.projections[index](s)
            losses.append(masked_mse(s, t, mask))
        return torch.stack(losses).mean()
