"""Response-based losses: the student matches the teacher's outputs themselves.

Embedders match the teacher's sentence embeddings (:class:`EmbeddingMSELoss`, :class:`CosineDistanceLoss`) or the
scores they give (:class:`ListwiseKLLoss` over in-batch passages, :class:`MarginMSELoss` over positive/negative
margins); extractive readers match the teacher's start and end distributions (:class:`StartEndKLLoss`), or gold spans
alone for the undistilled baseline (:class:`StartEndCELoss`). The maths is in :mod:`distill.training.losses.functional`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from distill.training.losses.base import (
    DistillationLoss,
    LossConfigError,
    MissingOutputError,
    Outputs,
    check_dim,
    check_keys,
    check_temperature,
)
from distill.training.losses.functional import (
    cosine_distance,
    dot_scores,
    embedding_mse,
    listwise_kl,
    margin_mse,
    probs_to_logits,
    span_cross_entropy,
    span_kl,
    span_mask,
    symmetric_listwise_kl,
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
    tasks = ("embedder",)

    def __init__(
        self,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        keys: str | Sequence[str] = ("query", "passage"),
    ) -> None:
        super().__init__()
        self.requires = check_keys(keys, self._name)
        if (student_dim is None) != (teacher_dim is None):
            raise LossConfigError(
                f"EmbeddingMSELoss: give both student_dim and teacher_dim (to learn a projection) or neither, got "
                f"student_dim={student_dim}, teacher_dim={teacher_dim}"
            )
        self.student_dim = None if student_dim is None else check_dim(student_dim, "student_dim", self._name)
        self.teacher_dim = None if teacher_dim is None else check_dim(teacher_dim, "teacher_dim", self._name)
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
    tasks = ("embedder",)

    def __init__(self, keys: str | Sequence[str] = ("query", "passage")) -> None:
        super().__init__()
        self.requires = check_keys(keys, self._name)

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
    tasks = ("embedder",)

    def __init__(self, temperature: float = 1.0, use_negatives: bool = True, symmetric: bool = False) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature, self._name)
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
    tasks = ("embedder",)

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
    tasks = ("reader",)

    def __init__(self, temperature: float = 1.5, alpha: float = 0.75) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature, self._name)
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
    tasks = ("reader",)

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
