"""The maths of every loss as pure functions of tensors, callable without a model (and tested that way).

Each loss module in this package checks its inputs and calls one of these; nothing here reads an output mapping,
holds a parameter or raises on bad data. Shapes: B a batch, L token positions, D a width (student and teacher widths
may differ where a docstring says so), N rows of a stacked embedding matrix.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# Floor of squared distances and of mean distances in RKD: keeps square roots and divisions differentiable at 0.
RKD_EPS = 1e-12


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
