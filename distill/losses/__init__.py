"""Distillation losses: one ``nn.Module`` per objective, its maths in a pure function of tensors.

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

Use :func:`build_loss` to make a loss from a recipe entry; ``LOSSES`` and ``KIND`` list what exists.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.errors import DistillError

# Values are tensors, or lists of tensors for the per-layer keys ("hidden_states", "qkv").
Outputs = Mapping[str, Any]

RKD_EPS = 1e-12


class LossConfigError(DistillError, ValueError):
    """A loss was built with, or given, a value it cannot use; the message says which and what to do."""


class MissingOutputError(DistillError, KeyError):
    """A loss needs an output key that the student or teacher mapping lacks."""

    def __str__(self) -> str:  # KeyError's own __str__ would quote the whole message
        return str(self.args[0])


# ---------------------------------------------------------------------------------------------------------------------
# Pure functions: the maths, callable on plain tensors.
# ---------------------------------------------------------------------------------------------------------------------


def embedding_mse(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared error over all elements of two (N, D) embedding matrices of the same width."""
    return F.mse_loss(student, teacher)


def cosine_distance(student: Tensor, teacher: Tensor) -> Tensor:
    """``mean_i (1 - cos(s_i, t_i))`` over the rows of two (N, D) matrices."""
    return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()


def dot_scores(query: Tensor, passage: Tensor, negative: Tensor | None = None) -> Tensor:
    """In-batch scores ``q @ [p; n]^T``, shape (B, B + M): every query against every passage, then every negative."""
    candidates = passage if negative is None else torch.cat([passage, negative], dim=0)
    return query @ candidates.T


def _kl_rows(teacher_log_probs: Tensor, student_log_probs: Tensor) -> Tensor:
    """``KL(teacher || student)`` of each row over the last dimension."""
    return (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(-1)


def _masked_log_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """``log_softmax`` over the last dimension with entries where ``mask`` is False left out.

    Left-out entries are filled with the dtype's lowest finite value rather than -inf: they still get probability 0,
    but ``0 * log 0`` never turns into NaN and a row with nothing left stays finite.
    """
    return F.log_softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=-1)


def listwise_kl(student_scores: Tensor, teacher_scores: Tensor, temperature: float = 1.0) -> Tensor:
    """``T^2 * mean_i KL(softmax(t_i / T) || softmax(s_i / T))`` over the rows of two (B, C) score matrices."""
    student_log_probs = F.log_softmax(student_scores / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_scores / temperature, dim=-1)
    return temperature**2 * _kl_rows(teacher_log_probs, student_log_probs).mean()


def symmetric_listwise_kl(student_scores: Tensor, teacher_scores: Tensor, temperature: float = 1.0) -> Tensor:
    """The mean of :func:`listwise_kl` over the rows (each query against all B + M passages) and over the first B
    columns (each in-batch passage against the B queries) of two (B, B + M) score matrices."""
    b = student_scores.shape[0]
    rows = listwise_kl(student_scores, teacher_scores, temperature)
    columns = listwise_kl(student_scores[:, :b].T, teacher_scores[:, :b].T, temperature)
    return 0.5 * (rows + columns)


def margin_mse(student_pos: Tensor, student_neg: Tensor, teacher_pos: Tensor, teacher_neg: Tensor) -> Tensor:
    """``mean_i ((s_pos_i - s_neg_i) - (t_pos_i - t_neg_i))^2`` over (B,) score vectors."""
    return F.mse_loss(student_pos - student_neg, teacher_pos - teacher_neg)


def _off_diagonal(n: int, device: torch.device) -> Tensor:
    return ~torch.eye(n, dtype=torch.bool, device=device)


def pairwise_distances(x: Tensor) -> Tensor:
    """Euclidean distances between the rows of an (N, D) matrix, (N, N) with a zero diagonal.

    Built from the Gram matrix (as in Park et al.'s code) and clamped before the square root, so that the zero
    diagonal has a finite gradient, unlike ``torch.cdist``.
    """
    squared_norms = x.pow(2).sum(-1)
    squared = (squared_norms[:, None] + squared_norms[None, :] - 2 * x @ x.T).clamp_min(RKD_EPS)
    return squared.sqrt().masked_fill(~_off_diagonal(x.shape[0], x.device), 0)


def rkd_distance(student: Tensor, teacher: Tensor) -> Tensor:
    """RKD-D: smooth L1 between pairwise distances, each set divided by its mean over off-diagonal pairs.

    ``student`` (N, Ds) and ``teacher`` (N, Dt) with N >= 2. The loss is the mean over the N(N-1) ordered pairs.
    """
    off_diagonal = _off_diagonal(student.shape[0], student.device)
    student_d = pairwise_distances(student)[off_diagonal]
    teacher_d = pairwise_distances(teacher)[off_diagonal]
    student_d = student_d / student_d.mean().clamp_min(RKD_EPS)
    teacher_d = teacher_d / teacher_d.mean().clamp_min(RKD_EPS)
    return F.smooth_l1_loss(student_d, teacher_d)


def triplet_angle_cosines(x: Tensor) -> Tensor:
    """``out[i, j, k] = <u_ij, u_ik>`` with ``u_ij = (x_j - x_i) / |x_j - x_i|``: cos of the angle at x_i, (N, N, N)."""
    directions = F.normalize(x[None, :, :] - x[:, None, :], dim=-1)
    return directions @ directions.transpose(1, 2)


def _distinct_triplets(n: int, device: torch.device) -> Tensor:
    index = torch.arange(n, device=device)
    i, j, k = index[:, None, None], index[None, :, None], index[None, None, :]
    return (i != j) & (i != k) & (j != k)


def rkd_angle(student: Tensor, teacher: Tensor) -> Tensor:
    """RKD-A: smooth L1 between the cosines of the angles of all triplets of three distinct rows.

    ``student`` (N, Ds) and ``teacher`` (N, Dt) with N >= 3. Memory is O(N^2 D + N^3).
    """
    distinct = _distinct_triplets(student.shape[0], student.device)
    return F.smooth_l1_loss(triplet_angle_cosines(student)[distinct], triplet_angle_cosines(teacher)[distinct])


def cosine_matrix(rows: Tensor, cols: Tensor) -> Tensor:
    """Cosine similarities between every row of ``rows`` (N, D) and every row of ``cols`` (M, D): (N, M)."""
    return F.normalize(rows, dim=-1) @ F.normalize(cols, dim=-1).T


def similarity_matrix_mse(
    student_rows: Tensor, student_cols: Tensor, teacher_rows: Tensor, teacher_cols: Tensor
) -> Tensor:
    """MSE between the student's and the teacher's cosine similarity matrices."""
    return F.mse_loss(cosine_matrix(student_rows, student_cols), cosine_matrix(teacher_rows, teacher_cols))


def masked_mse(student: Tensor, teacher: Tensor, mask: Tensor) -> Tensor:
    """Squared error of (B, L, D) inputs averaged over features, then over positions where ``mask`` (B, L) is set."""
    valid = mask.bool()
    per_position = (student - teacher).pow(2).mean(-1)
    return torch.where(valid, per_position, 0).sum() / valid.sum().clamp_min(1)


def _split_heads(x: Tensor, num_heads: int) -> Tensor:
    batch, length, width = x.shape
    return x.reshape(batch, length, num_heads, width // num_heads).transpose(1, 2)


def relation_log_probs(a: Tensor, b: Tensor, attention_mask: Tensor, num_heads: int) -> Tensor:
    """``log softmax(A_h B_h^T / sqrt(d_head))`` per relation head h, padding keys left out: (B, H, L, L).

    ``a`` and ``b`` are (B, L, D) with D divisible by ``num_heads``; ``attention_mask`` is (B, L).
    """
    a_heads, b_heads = _split_heads(a, num_heads), _split_heads(b, num_heads)
    scores = a_heads @ b_heads.transpose(-1, -2) / math.sqrt(a_heads.shape[-1])
    return _masked_log_softmax(scores, attention_mask.bool()[:, None, None, :])


def attention_relation_kl(
    student_a: Tensor,
    student_b: Tensor,
    teacher_a: Tensor,
    teacher_b: Tensor,
    attention_mask: Tensor,
    num_heads: int,
) -> Tensor:
    """MiniLMv2 relation loss for one relation: KL(teacher || student) per query row, mean over heads and real rows."""
    kl = _kl_rows(
        relation_log_probs(teacher_a, teacher_b, attention_mask, num_heads),
        relation_log_probs(student_a, student_b, attention_mask, num_heads),
    )
    real_rows = attention_mask.bool()[:, None, :].expand_as(kl)
    return torch.where(real_rows, kl, 0).sum() / real_rows.sum().clamp_min(1)


def token_similarity_mse(student_hidden: Tensor, teacher_hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """MSE between per-example token-token cosine similarity matrices, over pairs of real tokens.

    ``student_hidden`` (B, L, Ds), ``teacher_hidden`` (B, L, Dt), ``attention_mask`` (B, L).
    """
    student_unit, teacher_unit = F.normalize(student_hidden, dim=-1), F.normalize(teacher_hidden, dim=-1)
    squared = (student_unit @ student_unit.transpose(1, 2) - teacher_unit @ teacher_unit.transpose(1, 2)).pow(2)
    real = attention_mask.bool()
    real_pairs = real[:, :, None] & real[:, None, :]
    return torch.where(real_pairs, squared, 0).sum() / real_pairs.sum().clamp_min(1)


def span_mask(context_mask: Tensor) -> Tensor:
    """Positions a span may start or end at: the context plus position 0, the CLS / no-answer slot of SQuAD 2.0.

    Keeping position 0 means no row is ever empty, so softmaxes stay finite on examples without context tokens.
    """
    mask = context_mask.bool().clone()
    mask[:, 0] = True
    return mask


def probs_to_logits(probs: Tensor) -> Tensor:
    """Log-probabilities usable as teacher logits, in float32; zero probabilities become log(float32 tiny) ≈ -87.

    ``softmax(log p / T)`` is ``p^(1/T)`` renormalised, which equals ``softmax(t / T)`` when ``p = softmax(t)``: a
    temperature acts on teacher probabilities exactly as it would on the logits they came from.
    """
    return probs.float().clamp_min(torch.finfo(torch.float32).tiny).log()


def span_kl(student_logits: Tensor, teacher_logits: Tensor, mask: Tensor, temperature: float) -> Tensor:
    """``T^2 * mean_b KL(softmax(t_b / T) || softmax(s_b / T))`` over the positions where ``mask`` (B, L) is set."""
    student_log_probs = _masked_log_softmax(student_logits / temperature, mask)
    teacher_log_probs = _masked_log_softmax(teacher_logits.to(student_log_probs.dtype) / temperature, mask)
    return temperature**2 * _kl_rows(teacher_log_probs, student_log_probs).mean()


def span_cross_entropy(logits: Tensor, positions: Tensor, mask: Tensor) -> Tensor:
    """Cross-entropy of (B, L) logits against (B,) gold positions, softmax over the positions where ``mask`` is set."""
    return F.cross_entropy(logits.masked_fill(~mask, torch.finfo(logits.dtype).min), positions)


# ---------------------------------------------------------------------------------------------------------------------
# Modules: one per loss, with the uniform interface the trainer relies on.
# ---------------------------------------------------------------------------------------------------------------------


def _detach(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, (list, tuple)):
        return type(value)(_detach(v) for v in value)
    return value


def _as_keys(keys: str | Sequence[str], loss_name: str) -> tuple[str, ...]:
    result = (keys,) if isinstance(keys, str) else tuple(keys)
    if not result or not all(isinstance(k, str) for k in result):
        raise LossConfigError(f"{loss_name}: keys must be a non-empty list of output names, got {keys!r}")
    return result


def _check_temperature(temperature: float, loss_name: str) -> float:
    if not temperature > 0:
        raise LossConfigError(f"{loss_name}: temperature must be > 0, got {temperature}")
    return float(temperature)


def _check_dim(value: int, name: str, loss_name: str) -> int:
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
        kind: "response", "relation" or "feature".
    """

    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    needs_aligned_tokens: bool = False
    needs_teacher: bool = True
    kind: str = "response"

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


class EmbeddingMSELoss(DistillationLoss):
    """MSE between student and teacher embeddings, through a learned projection when the widths differ.

    ``loss = mean_k MSE(W s_k, t_k)`` over the keys ``k`` present on both sides, where ``W`` is a learned
    ``nn.Linear(student_dim, teacher_dim, bias=False)`` when the widths differ and the identity otherwise. The
    projection is a parameter of the loss: the trainer must optimise the loss's parameters with the student's.

    Reference: Reimers & Gurevych, "Making Monolingual Sentence Embeddings Multilingual using Knowledge
    Distillation", EMNLP 2020 (sentence-transformers ``MSELoss``).

    Inputs: for each key in ``keys`` ("query", "passage", "text", ...) a (N, Ds) student and (N, Dt) teacher matrix.

    Example::

        loss = EmbeddingMSELoss(student_dim=384, teacher_dim=768)
        value = loss({"query": s_q, "passage": s_p}, {"query": t_q, "passage": t_p})
    """

    requires = ("query", "passage")  # the default keys; instances hold the configured ones

    def __init__(
        self,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        keys: str | Sequence[str] = ("query", "passage"),
    ) -> None:
        super().__init__()
        self.requires = _as_keys(keys, self._name)
        if (student_dim is None) != (teacher_dim is None):
            raise LossConfigError(
                f"EmbeddingMSELoss: give both student_dim and teacher_dim (to learn a projection) or neither, got "
                f"student_dim={student_dim}, teacher_dim={teacher_dim}"
            )
        self.student_dim = None if student_dim is None else _check_dim(student_dim, "student_dim", self._name)
        self.teacher_dim = None if teacher_dim is None else _check_dim(teacher_dim, "teacher_dim", self._name)
        self.projection = (
            nn.Linear(self.student_dim, self.teacher_dim, bias=False) if self.student_dim != self.teacher_dim else None
        )

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        losses = []
        for key, s, t in self._present_embedding_pairs(student, teacher):
            if self.projection is not None:
                if s.shape[-1] != self.student_dim or t.shape[-1] != self.teacher_dim:
                    raise LossConfigError(
                        f"EmbeddingMSELoss: {key!r} widths are student {s.shape[-1]}, teacher {t.shape[-1]} but the "
                        f"loss was built with student_dim={self.student_dim}, teacher_dim={self.teacher_dim}; set them "
                        "to the models' embedding sizes"
                    )
                s = self.projection(s)
            elif s.shape[-1] != t.shape[-1]:
                raise LossConfigError(
                    f"EmbeddingMSELoss: {key!r} has student width {s.shape[-1]} but teacher width {t.shape[-1]}; pass "
                    f"student_dim={s.shape[-1]}, teacher_dim={t.shape[-1]} to learn a projection"
                )
            losses.append(embedding_mse(s, t))
        return torch.stack(losses).mean()


class CosineDistanceLoss(DistillationLoss):
    """Mean cosine distance between each student embedding and the teacher's embedding of the same text.

    ``loss = mean_k mean_i (1 - cos(s_ki, t_ki))`` over the keys ``k`` present on both sides. Widths must match.

    Reference: the cosine embedding objective of DistilBERT (Sanh et al., 2019), applied to sentence embeddings.

    Inputs: for each key in ``keys`` a (N, D) student and (N, D) teacher matrix.

    Example::

        loss = CosineDistanceLoss()
        value = loss({"query": s_q, "passage": s_p}, {"query": t_q, "passage": t_p})
    """

    requires = ("query", "passage")  # the default keys; instances hold the configured ones

    def __init__(self, keys: str | Sequence[str] = ("query", "passage")) -> None:
        super().__init__()
        self.requires = _as_keys(keys, self._name)

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        losses = []
        for key, s, t in self._present_embedding_pairs(student, teacher):
            if s.shape[-1] != t.shape[-1]:
                raise LossConfigError(
                    f"CosineDistanceLoss: {key!r} has student width {s.shape[-1]} but teacher width {t.shape[-1]}; "
                    f"cosine needs equal widths. Use EmbeddingMSELoss(student_dim={s.shape[-1]}, "
                    f"teacher_dim={t.shape[-1]}), which learns a projection, or a relation loss (similarity_matrix, "
                    "rkd_distance, rkd_angle)"
                )
            losses.append(cosine_distance(s, t))
        return torch.stack(losses).mean()


class ListwiseKLLoss(DistillationLoss):
    """KL divergence between the teacher's and the student's softmax over in-batch (and hard negative) passages.

    ``S = q @ [p; n]^T`` (B, B + M) for each model, then
    ``loss = T^2 * mean_i KL(softmax(S^t_i / T) || softmax(S^s_i / T))``. Scores are plain dot products of the
    embeddings as given: pass L2-normalised embeddings to distil cosine scores. The T^2 factor keeps gradient sizes
    comparable across temperatures (Hinton et al., 2015). Works across widths: only scores are compared.

    With ``symmetric``, the passages' distributions over the B in-batch queries are matched too (the columns of the
    in-batch block), and the loss is the mean of both directions, as in CLIP's symmetric contrastive loss:
    ``loss = (KL_rows + T^2 * mean_j KL(softmax(S^t_{:B,j} / T) || softmax(S^s_{:B,j} / T))) / 2``.

    Reference: Hinton et al., "Distilling the Knowledge in a Neural Network", 2015; the listwise in-batch form follows
    sentence-transformers ``DistillKLDivLoss``; the symmetric form follows Radford et al., "Learning Transferable
    Visual Models From Natural Language Supervision" (CLIP), 2021.

    Inputs: "query" (B, D), "passage" (B, D); optional "negative" (M, D), appended as extra columns for every query
    when ``use_negatives`` and present on both sides; optional "memory" (K, D), more passages appended after them
    (a cross-batch memory of earlier batches' passages: the student's side is detached, so only the queries learn
    from it; Wang et al., "Cross-Batch Memory for Embedding Learning", CVPR 2020).

    Example::

        loss = ListwiseKLLoss(temperature=2.0)
        value = loss({"query": s_q, "passage": s_p}, {"query": t_q, "passage": t_p})
    """

    requires = ("query", "passage")
    optional = ("negative", "memory")

    def __init__(self, temperature: float = 1.0, use_negatives: bool = True, symmetric: bool = False) -> None:
        super().__init__()
        self.temperature = _check_temperature(temperature, self._name)
        self.use_negatives = use_negatives
        self.symmetric = symmetric

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        s_q, t_q = self._embedding_pair(student, teacher, "query")
        s_p, t_p = self._embedding_pair(student, teacher, "passage")
        s_extra, t_extra = [], []
        if self.use_negatives and ("negative" in student or "negative" in teacher):
            s_n, t_n = self._embedding_pair(student, teacher, "negative")
            s_extra.append(s_n)
            t_extra.append(t_n)
        if "memory" in student or "memory" in teacher:
            s_m, t_m = self._embedding_pair(student, teacher, "memory")
            s_extra.append(s_m.detach())
            t_extra.append(t_m)
        s_n = torch.cat(s_extra) if s_extra else None
        t_n = torch.cat(t_extra) if t_extra else None
        kl = symmetric_listwise_kl if self.symmetric else listwise_kl
        return kl(dot_scores(s_q, s_p, s_n), dot_scores(t_q, t_p, t_n), self.temperature)


class MarginMSELoss(DistillationLoss):
    """MSE between the student's and the teacher's score margins between a positive and a hard negative.

    ``loss = mean_i ((s_qi·s_pi - s_qi·s_ni) - (t_qi·t_pi - t_qi·t_ni))^2`` with dot-product scores.
    Works across widths.

    Reference: Hofstätter et al., "Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge
    Distillation", 2020.

    Inputs: "query", "passage", "negative", each (B, D); row i of "negative" is query i's hard negative.

    Example::

        loss = MarginMSELoss()
        value = loss({"query": s_q, "passage": s_p, "negative": s_n}, {"query": t_q, "passage": t_p, "negative": t_n})
    """

    requires = ("query", "passage", "negative")

    def __init__(self) -> None:
        super().__init__()

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        (s_q, t_q), (s_p, t_p), (s_n, t_n) = (self._embedding_pair(student, teacher, key) for key in self.requires)
        if s_n.shape[0] != s_q.shape[0]:
            raise LossConfigError(
                f"MarginMSELoss: 'negative' needs one row per query, got {s_n.shape[0]} negatives for "
                f"{s_q.shape[0]} queries"
            )
        return margin_mse((s_q * s_p).sum(-1), (s_q * s_n).sum(-1), (t_q * t_p).sum(-1), (t_q * t_n).sum(-1))


class RKDDistanceLoss(DistillationLoss):
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

    requires = ("query", "passage")  # the default keys; instances hold the configured ones
    kind = "relation"

    def __init__(self, keys: str | Sequence[str] = ("query", "passage")) -> None:
        super().__init__()
        self.requires = _as_keys(keys, self._name)

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        s, t = self._concatenated_rows(student, teacher)
        if s.shape[0] < 2:
            raise LossConfigError(f"RKDDistanceLoss needs at least 2 rows to form a pair, got {s.shape[0]}")
        return rkd_distance(s, t)


class RKDAngleLoss(DistillationLoss):
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

    requires = ("query", "passage")  # the default keys; instances hold the configured ones
    kind = "relation"

    def __init__(self, keys: str | Sequence[str] = ("query", "passage")) -> None:
        super().__init__()
        self.requires = _as_keys(keys, self._name)

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        s, t = self._concatenated_rows(student, teacher)
        if s.shape[0] < 3:
            raise LossConfigError(f"RKDAngleLoss needs at least 3 rows to form a triplet, got {s.shape[0]}")
        return rkd_angle(s, t)


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

    def __init__(self, keys: str | Sequence[str] = ("query", "passage"), cross: bool = True) -> None:
        super().__init__()
        self.requires = _as_keys(keys, self._name)
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

    def __init__(
        self,
        layer_map: Mapping[int, int] | Sequence[Sequence[int]],
        student_dim: int,
        teacher_dim: int,
    ) -> None:
        super().__init__()
        self.layer_map = _layer_pairs(layer_map)
        self.student_dim = _check_dim(student_dim, "student_dim", self._name)
        self.teacher_dim = _check_dim(teacher_dim, "teacher_dim", self._name)
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


def _span_labels(loss: DistillationLoss, student: Outputs, teacher: Outputs) -> tuple[Tensor, Tensor] | None:
    """Gold (start, end) positions from the student mapping, else the teacher's; None when neither holds any."""
    for outputs in (student, teacher):
        present = [key for key in ("start_positions", "end_positions") if key in outputs]
        if len(present) == 2:
            return outputs["start_positions"], outputs["end_positions"]
        if present:
            missing = "end_positions" if present == ["start_positions"] else "start_positions"
            raise MissingOutputError(f"{loss._name}: the outputs give {present[0]!r} but not {missing!r}; give both")
    return None


def _check_positions(loss: DistillationLoss, positions: Tensor, mask: Tensor, key: str) -> None:
    length = mask.shape[1]
    in_range = (positions >= 0) & (positions < length)
    if not bool(in_range.all()):
        bad = int(torch.nonzero(~in_range)[0, 0])
        raise LossConfigError(
            f"{loss._name}: {key}[{bad}]={int(positions[bad])} is outside the sequence (0..{length - 1}); point "
            "unanswerable or truncated answers at position 0"
        )
    valid = mask.gather(1, positions[:, None]).squeeze(1)
    if not bool(valid.all()):
        bad = int(torch.nonzero(~valid)[0, 0])
        raise LossConfigError(
            f"{loss._name}: {key}[{bad}]={int(positions[bad])} falls outside context_mask; labels must point at "
            "context tokens or at position 0 (no answer)"
        )


def _span_hard_loss(loss: DistillationLoss, student: Outputs, labels: tuple[Tensor, Tensor], mask: Tensor) -> Tensor:
    terms = []
    for side, positions in zip(("start", "end"), labels):
        _check_positions(loss, positions, mask, f"{side}_positions")
        terms.append(span_cross_entropy(loss._get(student, f"{side}_logits", "student"), positions, mask))
    return (terms[0] + terms[1]) / 2


class StartEndKLLoss(DistillationLoss):
    """Soft-target distillation of an extractive reader's start and end distributions, mixed with hard labels.

    ``soft = T^2 * mean_{start, end} mean_b KL(softmax(t_b / T) || softmax(s_b / T))`` over span positions,
    ``hard = mean_{start, end} CE(softmax(s_b), gold_b)``, and
    ``loss = alpha * soft + (1 - alpha) * hard``, or ``soft`` alone when the batch carries no gold positions.

    Span positions are the tokens where "context_mask" is True plus position 0 (the CLS / no-answer slot of SQuAD
    2.0), which is always kept so a row without context tokens stays finite. Other positions are filled with the
    lowest finite value (not -inf) before every softmax, so their logits never matter.

    Cross-tokenizer: when the teacher gives "start_probs"/"end_probs" (on the student's tokens) instead of logits,
    they are used as ``log p`` in place of the teacher logits. The temperature still applies to both sides:
    ``softmax(log p / T)`` is ``p^(1/T)`` renormalised, exactly ``softmax(t / T)`` when ``p = softmax(t)``, so the
    two teacher forms give the same loss. Teacher mass outside the span positions is dropped and the rest
    renormalised.

    Reference: Hinton et al., "Distilling the Knowledge in a Neural Network", 2015; defaults T=1.5, alpha=0.75 as
    used for deepset/tinyroberta-squad2.

    Inputs: student "start_logits", "end_logits" (B, L), "context_mask" (B, L) and optionally "start_positions",
    "end_positions" (B,); teacher "start_logits", "end_logits" (B, L) or "start_probs", "end_probs" (B, L).

    Example::

        loss = StartEndKLLoss(temperature=1.5, alpha=0.75)
        value = loss(student_outputs, teacher_outputs)
    """

    requires = ("start_logits", "end_logits", "context_mask")
    optional = ("start_positions", "end_positions", "start_probs", "end_probs")

    def __init__(self, temperature: float = 1.5, alpha: float = 0.75) -> None:
        super().__init__()
        self.temperature = _check_temperature(temperature, self._name)
        if not 0 <= alpha <= 1:
            raise LossConfigError(f"StartEndKLLoss: alpha (the soft-loss weight) must be in [0, 1], got {alpha}")
        self.alpha = float(alpha)

    def _teacher_logits(self, teacher: Outputs, side: str) -> Tensor:
        if f"{side}_logits" in teacher:
            return self._get(teacher, f"{side}_logits", "teacher")
        if f"{side}_probs" in teacher:
            return probs_to_logits(self._get(teacher, f"{side}_probs", "teacher"))
        raise MissingOutputError(
            f"StartEndKLLoss needs {side + '_logits'!r} (or {side + '_probs'!r} mapped onto the student's tokens) in "
            f"the teacher outputs, which hold: {', '.join(sorted(teacher)) or 'nothing'}"
        )

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        mask = span_mask(self._get(student, "context_mask", "student"))
        soft_terms = []
        for side in ("start", "end"):
            s, t = self._get(student, f"{side}_logits", "student"), self._teacher_logits(teacher, side)
            if s.shape != mask.shape or t.shape != mask.shape:
                raise LossConfigError(
                    f"StartEndKLLoss: {side} shapes differ: student logits {tuple(s.shape)}, teacher "
                    f"{tuple(t.shape)}, context_mask {tuple(mask.shape)}; map teacher probabilities onto the "
                    "student's tokens (start_probs/end_probs) when the tokenizers differ"
                )
            soft_terms.append(span_kl(s, t, mask, self.temperature))
        soft = (soft_terms[0] + soft_terms[1]) / 2
        labels = _span_labels(self, student, teacher)
        if labels is None:
            return soft
        return self.alpha * soft + (1 - self.alpha) * _span_hard_loss(self, student, labels, mask)


class StartEndCELoss(DistillationLoss):
    """Hard-label cross-entropy of an extractive reader's start and end logits: the undistilled baseline.

    ``loss = mean_{start, end} mean_b CE(softmax(s_b), gold_b)`` over span positions (context tokens plus position 0,
    as in :class:`StartEndKLLoss`, of which this is the ``alpha=0`` case). The teacher mapping is ignored.

    Reference: Devlin et al., "BERT", 2019 (SQuAD fine-tuning objective).

    Inputs: student "start_logits", "end_logits", "context_mask" (B, L); gold "start_positions", "end_positions" (B,)
    in the student mapping (or the teacher's).

    Example::

        loss = StartEndCELoss()
        value = loss(student_outputs, {})
    """

    requires = ("start_logits", "end_logits", "context_mask", "start_positions", "end_positions")
    needs_teacher = False

    def __init__(self) -> None:
        super().__init__()

    def forward(self, student: Outputs, teacher: Outputs) -> Tensor:
        mask = span_mask(self._get(student, "context_mask", "student"))
        labels = _span_labels(self, student, teacher)
        if labels is None:
            raise MissingOutputError(
                "StartEndCELoss needs 'start_positions' and 'end_positions' (gold labels); the batch has none. Use "
                "StartEndKLLoss for unlabelled data"
            )
        return _span_hard_loss(self, student, labels, mask)


# ---------------------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------------------

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
