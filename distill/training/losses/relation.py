"""Relation-based losses: the student matches the relations between the teacher's outputs, not the outputs.

Over sentence embeddings: pairwise distances (:class:`RKDDistanceLoss`), triplet angles (:class:`RKDAngleLoss`) and
cosine similarity matrices (:class:`SimilarityMatrixLoss`), all comparable across widths and tokenizers. Over tokens
(teacher and student share a tokenizer): MiniLMv2's self-attention relations of q, k, v
(:class:`AttentionRelationLoss`) and token-token cosine similarities of one layer (:class:`TokenSimilarityLoss`).
The maths is in :mod:`distill.training.losses.functional`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from distill.training.losses.base import DistillationLoss, LossConfigError, Outputs, check_keys
from distill.training.losses.functional import (
    attention_relation_kl,
    rkd_angle,
    rkd_distance,
    similarity_matrix_mse,
    token_similarity_mse,
)


class _RKDLoss(DistillationLoss):
    """What RKD-D and RKD-A share: the rows of the listed keys stacked, then compared through a relation of groups
    of ``min_rows`` rows (pairs, triplets) that each subclass defines in ``_relation_loss``."""

    requires = ("query", "passage")  # the default keys; instances hold the configured ones
    kind = "relation"
    tasks = ("embedder",)
    min_rows: int  # rows one group needs
    group: str  # what the group is called, for the error when there are too few rows

    def __init__(self, keys: str | Sequence[str] = ("query", "passage")) -> None:
        super().__init__()
        self.requires = check_keys(keys, self._name)

    def _relation_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        s, t = self._concatenated_rows(student, teacher)
        if s.shape[0] < self.min_rows:
            raise LossConfigError(
                f"{self._name} needs at least {self.min_rows} rows to form a {self.group}, got {s.shape[0]}"
            )
        return self._relation_loss(s, t)


class RKDDistanceLoss(_RKDLoss):
    """RKD-D: the student copies the teacher's pairwise distances between embeddings, up to a global scale.

    ``d_ij = |x_i - x_j| / mu`` with ``mu`` the mean distance over pairs i != j, then
    ``loss = mean_{i != j} smooth_l1(d^s_ij, d^t_ij)`` over the rows of all listed keys concatenated. Invariant to
    scaling, rotating and translating either model's embeddings; works across widths.

    Reference: Park et al., "Relational Knowledge Distillation", CVPR 2019.

    Inputs: for each key in ``keys`` a (N_k, Ds) student and (N_k, Dt) teacher matrix; at least 2 rows in total.

    Example::

        loss = RKDDistanceLoss(keys=("query", "passage"))
        value = loss({"query": s_q, "passage": s_p}, {"query": t_q, "passage": t_p})
    """

    min_rows = 2
    group = "pair"

    def _relation_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        return rkd_distance(student, teacher)


class RKDAngleLoss(_RKDLoss):
    """RKD-A: the student copies the angles the teacher's embeddings form in every triplet.

    ``a_ijk = <(x_j - x_i)/|x_j - x_i|, (x_k - x_i)/|x_k - x_i|>`` (cosine of the angle at x_i), then
    ``loss = mean smooth_l1(a^s_ijk, a^t_ijk)`` over triplets of distinct rows of the listed keys concatenated.
    Invariant to scaling, rotating and translating either model's embeddings; works across widths.

    Memory is O(N^2 D + N^3) for N rows in total: fine up to N ≈ 128 (batch size 64 with two keys).

    Reference: Park et al., "Relational Knowledge Distillation", CVPR 2019.

    Inputs: for each key in ``keys`` a (N_k, Ds) student and (N_k, Dt) teacher matrix; at least 3 rows in total.

    Example::

        loss = RKDAngleLoss(keys=("passage",))
        value = loss({"passage": s_p}, {"passage": t_p})
    """

    min_rows = 3
    group = "triplet"

    def _relation_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        return rkd_angle(student, teacher)


class SimilarityMatrixLoss(DistillationLoss):
    """MSE between the student's and the teacher's in-batch cosine similarity matrices.

    With ``cross=True`` (default) the matrix is ``cos(a_i, b_j)`` between the first and the second key (all queries
    against all passages, (B, B)); with ``cross=False`` it is ``cos(x_i, x_j)`` within the rows of all listed keys
    concatenated. Works across widths and tokenizers: only sentence-level similarities are compared.

    Reference: the relation objective of setfit's ``DistillationTrainer`` (teacher cosine similarities as the
    student's targets); Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019.

    Inputs: for each key in ``keys`` a (N_k, Ds) student and (N_k, Dt) teacher matrix.

    Example::

        loss = SimilarityMatrixLoss()
        value = loss({"query": s_q, "passage": s_p}, {"query": t_q, "passage": t_p})
    """

    requires = ("query", "passage")  # the default keys; instances hold the configured ones
    kind = "relation"
    tasks = ("embedder",)

    def __init__(self, keys: str | Sequence[str] = ("query", "passage"), cross: bool = True) -> None:
        super().__init__()
        self.requires = check_keys(keys, self._name)
        if cross and len(self.requires) != 2:
            raise LossConfigError(
                f"SimilarityMatrixLoss: cross=True compares the first key against the second, so keys must name "
                f"exactly 2 outputs, got {list(self.requires)}; set cross=False for similarities within one set"
            )
        self.cross = cross

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        if not self.cross:
            s, t = self._concatenated_rows(student, teacher)
            return similarity_matrix_mse(s, s, t, t)
        (s_a, t_a), (s_b, t_b) = (self._embedding_pair(student, teacher, key) for key in self.requires)
        return similarity_matrix_mse(s_a, s_b, t_a, t_b)


_QKV_INDEX = {"q": 0, "k": 1, "v": 2}


def _check_relations(relations: str | Sequence[str], loss_name: str) -> tuple[str, ...]:
    result = (relations,) if isinstance(relations, str) else tuple(relations)
    bad = [r for r in result if not (isinstance(r, str) and len(r) == 2 and set(r) <= set(_QKV_INDEX))]
    if not result or bad:
        raise LossConfigError(
            f"{loss_name}: relations must be two-letter names over q, k, v such as 'qq', 'kk', 'vv', got "
            f"{list(result) if result else relations!r}"
        )
    return result


class AttentionRelationLoss(DistillationLoss):
    """MiniLMv2 self-attention relation distillation, re-splitting q, k, v into a common number of relation heads.

    For each relation ``ab`` (default qq, kk, vv), split the (B, L, D) projections A and B of one layer into
    ``H = num_relation_heads`` heads of width ``d = D / H`` and form ``R_ab = softmax(A_h B_h^T / sqrt(d))`` over
    real keys (padding keys get probability 0). Then
    ``loss = mean_ab mean_{b, h, real rows i} KL(R^t_ab[b, h, i] || R^s_ab[b, h, i])``.
    Student and teacher widths may differ: both are re-split into the same H heads, so both relations are (L, L).

    Reference: Wang et al., "MiniLMv2: Multi-Head Self-Attention Relation Distillation for Compressing Pretrained
    Transformers", Findings of ACL 2021.

    Inputs: "qkv", a list per transformer layer of (q, k, v) each (B, L, D) before the head split (negative layer
    indices count from the last); "attention_mask" (B, L) from the student. Teacher and student must share a
    tokenizer. D of each model must be divisible by ``num_relation_heads``.

    Example::

        loss = AttentionRelationLoss(student_layer=-1, teacher_layer=-1, num_relation_heads=12)
        value = loss(student_outputs, teacher_outputs)
    """

    requires = ("qkv", "attention_mask")
    needs_aligned_tokens = True
    kind = "relation"
    tasks = ("embedder", "reader")

    def __init__(
        self,
        student_layer: int = -1,
        teacher_layer: int = -1,
        num_relation_heads: int = 12,
        relations: str | Sequence[str] = ("qq", "kk", "vv"),
    ) -> None:
        super().__init__()
        if isinstance(num_relation_heads, bool) or not isinstance(num_relation_heads, int) or num_relation_heads < 1:
            raise LossConfigError(
                f"AttentionRelationLoss: num_relation_heads must be a positive integer, got {num_relation_heads!r}"
            )
        self.student_layer = student_layer
        self.teacher_layer = teacher_layer
        self.num_relation_heads = num_relation_heads
        self.relations = _check_relations(relations, self._name)

    def _projections(self, outputs: Outputs, side: str, layer: int) -> Sequence[Tensor]:
        qkv = self._layer(self._get(outputs, "qkv", side), layer, side, "qkv")
        if len(qkv) != 3:
            raise LossConfigError(f"AttentionRelationLoss: each {side} 'qkv' entry must be (q, k, v), got {len(qkv)}")
        for name, x in zip("qkv", qkv):
            if x.ndim != 3 or x.shape[-1] % self.num_relation_heads:
                raise LossConfigError(
                    f"AttentionRelationLoss: {side} {name} is {tuple(x.shape)}, its width must be divisible by "
                    f"num_relation_heads={self.num_relation_heads}; choose a head count dividing both models' widths"
                )
        return qkv

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        s_qkv = self._projections(student, "student", self.student_layer)
        t_qkv = self._projections(teacher, "teacher", self.teacher_layer)
        mask = self._get(student, "attention_mask", "student")
        self._check_aligned(s_qkv[0], t_qkv[0], mask, "q")
        losses = []
        for a, b in self.relations:
            ia, ib = _QKV_INDEX[a], _QKV_INDEX[b]
            losses.append(
                attention_relation_kl(s_qkv[ia], s_qkv[ib], t_qkv[ia], t_qkv[ib], mask, self.num_relation_heads)
            )
        return torch.stack(losses).mean()


class TokenSimilarityLoss(DistillationLoss):
    """MSE between the student's and the teacher's token-token cosine similarity matrices of one layer.

    ``S_b = cos(h_bi, h_bj)`` (L, L) per example, then ``loss = mean over real token pairs of (S^s_b - S^t_b)^2``.
    Works across widths (only similarities are compared) but not across tokenizers.

    Reference: the token-similarity (hidden-state relation) objective of Tung & Mori, "Similarity-Preserving Knowledge
    Distillation", ICCV 2019, applied per sequence over tokens.

    Inputs: "hidden_states", a list of (B, L, D) tensors with index 0 the embedding layer; "attention_mask" (B, L)
    from the student.

    Example::

        loss = TokenSimilarityLoss(layer_student=-1, layer_teacher=-1)
        value = loss(student_outputs, teacher_outputs)
    """

    requires = ("hidden_states", "attention_mask")
    needs_aligned_tokens = True
    kind = "relation"
    tasks = ("embedder", "reader")

    def __init__(self, layer_student: int = -1, layer_teacher: int = -1) -> None:
        super().__init__()
        self.layer_student = layer_student
        self.layer_teacher = layer_teacher

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        s = self._layer(self._get(student, "hidden_states", "student"), self.layer_student, "student", "hidden_states")
        t = self._layer(self._get(teacher, "hidden_states", "teacher"), self.layer_teacher, "teacher", "hidden_states")
        mask = self._get(student, "attention_mask", "student")
        self._check_aligned(s, t, mask, "hidden states")
        return token_similarity_mse(s, t, mask)
