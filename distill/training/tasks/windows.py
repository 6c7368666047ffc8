"""A reader's windows and span decoding: SQuAD examples with checked answers, the windows a question and its
context become, the best answer span over an example's windows, and the teacher's span distributions carried onto
another tokenizer's windows through characters.

A question and its context become *windows* the way Haystack's ``TransformersExtractiveReader`` makes them at
inference: ``[CLS] question [SEP] context-slice [SEP]`` of at most ``max_length`` tokens, consecutive slices sharing
``stride`` tokens. A window's label is the answer's first and last token, or position 0 when the answer is not
wholly inside it (cut by the window's edge, or in another window), and position 0 in every window of a negative
(a retrieved passage without the answer, ``no_answer``).

When the student tokenizes differently from the teacher, the teacher's distributions are carried over through
characters: each teacher token votes for the character where it starts (start logits) or ends (end logits), and a
student token collects the votes of the characters it covers (:func:`map_span_logits`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from distill.common import metrics
from distill.data.datasets import Dataset, Query
from distill.errors import DistillError

NO_TOKEN = (-1, -1)  # the offset of a token outside the context
# TransformersExtractiveReader calls its model with input_ids and attention_mask only, so a BERT reader serves with
# every token type 0. Training, the teacher's logits and the dev slice read windows the same way: a reader fed the
# context's type ids (1) while it learns would meet other inputs in the pipeline, and rank passages otherwise there.
FEED_TOKEN_TYPES = False
# TransformersExtractiveReader's default: a span's score is sigmoid(calibration_factor * (start + end logit)).
CALIBRATION_FACTOR = 0.1


# ---------------------------------------------------------------------------------------------------------------------
# Examples: (question, context, answer) with the answer checked against its stated offset
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class ReaderExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]  # every gold answer text (EM/F1 take the best)
    answer_start: int | None = None  # the training answer's character offset; None: unlabelled
    answer_text: str | None = None
    # A retrieved passage without the answer (distill/training/tasks/negatives.py): every window's hard target is
    # position 0.
    no_answer: bool = False


def check_answer(context: str, text: str, start: int | None, qid: str, *, strict: bool, counts: Counter) -> int | None:
    """The offset of ``text`` in ``context``: ``start`` when the text is there, else (unless ``strict``) the nearest
    occurrence, counted as ``answer offset corrected``; None (counted as ``answer not in context``) when absent."""
    if not text.strip():
        if strict:
            raise DistillError(f"question {qid}: its answer text is empty")
        counts["empty answer"] += 1
        return None
    if start is not None and 0 <= start and context[start : start + len(text)] == text:
        return start
    found = [i for i in range(len(context)) if context.startswith(text, i)]
    if strict:
        where = f"it occurs at {found[:5]}" if found else "it does not occur in the context"
        raise DistillError(f"question {qid}: answer {text!r} is not at its stated offset {start} ({where})")
    if not found:
        counts["answer not in context"] += 1
        return None
    counts["answer offset corrected"] += 1
    return min(found, key=lambda i: abs(i - (start or 0)))


def reader_examples(
    data: Dataset, queries: list[Query], *, labelled: bool, strict: bool = False, counts: Counter | None = None
) -> list[ReaderExample]:
    """One example per question with its gold paragraph as context. Skips (and counts) what cannot train a reader:
    no paragraph, an empty context and, when ``labelled``, a missing or misplaced answer."""
    counts = counts if counts is not None else Counter()
    out = []
    for q in queries:
        if not q.gold_doc_ids:
            counts["no context"] += 1
            continue
        context = data.document(q.gold_doc_ids[0]).content or ""
        if not context.strip():
            if strict:
                raise DistillError(f"question {q.id}: its context is empty")
            counts["empty context"] += 1
            continue
        if not labelled:
            out.append(ReaderExample(q.id, q.text, context, tuple(q.answers)))
            continue
        if not q.answers:
            counts["no answer"] += 1
            continue
        stated = q.answer_starts[0] if q.answer_starts else None
        start = check_answer(context, q.answers[0], stated, q.id, strict=strict, counts=counts)
        if start is None:
            continue
        out.append(ReaderExample(q.id, q.text, context, tuple(q.answers), start, q.answers[0]))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Windows:
    """Tokenized windows; ``offsets`` are character spans in the example's context (``NO_TOKEN`` outside it)."""

    example: list[int] = field(default_factory=list)
    input_ids: list[list[int]] = field(default_factory=list)
    token_type_ids: list[list[int]] | None = None
    offsets: list[list[tuple[int, int]]] = field(default_factory=list)
    start: list[int] = field(default_factory=list)  # label positions; -1 for an unlabelled example
    end: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def context_span(self, w: int) -> tuple[int, int]:
        spans = [o for o in self.offsets[w] if o != NO_TOKEN]
        return (spans[0][0], spans[-1][1]) if spans else (0, 0)


def _cut_questions(tokenizer, questions: list[str], max_query_length: int) -> list[str]:
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for question, offsets in zip(questions, enc["offset_mapping"]):
        out.append(question[: offsets[max_query_length - 1][1]] if len(offsets) > max_query_length else question)
    return out


def answer_positions(offsets: list[tuple[int, int]], start_char: int, end_char: int) -> tuple[int, int]:
    """The first and last context tokens of the answer ``[start_char, end_char)``, or (0, 0) when the window does not
    hold all of it."""
    context = [i for i, o in enumerate(offsets) if o != NO_TOKEN]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return 0, 0
    start = next(i for i in context if offsets[i][1] > start_char)
    end = next(i for i in reversed(context) if offsets[i][0] < end_char)
    return (start, end) if start <= end else (0, 0)


def make_windows(
    tokenizer, examples: list[ReaderExample], *, max_length: int, stride: int, max_query_length: int
) -> Windows:
    """Every example's windows, labelled where the example has an answer."""
    windows = Windows()
    if not examples:
        return windows
    if not getattr(tokenizer, "is_fast", False):
        raise DistillError(f"{type(tokenizer).__name__} is not a fast tokenizer: readers need character offsets")
    questions = _cut_questions(tokenizer, [e.question for e in examples], max_query_length)
    enc = tokenizer(
        questions,
        [e.context for e in examples],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    has_types = "token_type_ids" in enc
    windows.token_type_ids = [] if has_types else None
    for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
        sequence = enc.sequence_ids(w)
        offsets = [tuple(o) if s == 1 else NO_TOKEN for o, s in zip(enc["offset_mapping"][w], sequence)]
        example = examples[sample]
        if example.no_answer:
            start, end = 0, 0
        elif example.answer_start is None:
            start, end = -1, -1
        else:
            start, end = answer_positions(
                offsets, example.answer_start, example.answer_start + len(example.answer_text)
            )
        windows.example.append(sample)
        windows.input_ids.append(list(enc["input_ids"][w]))
        if has_types:
            windows.token_type_ids.append(list(enc["token_type_ids"][w]))
        windows.offsets.append(offsets)
        windows.start.append(start)
        windows.end.append(end)
    return windows


def pad_windows(
    windows: Windows, rows: list[int], pad_id: int, *, labels: bool = True
) -> tuple[dict[str, Tensor], Tensor]:
    """Model inputs for ``rows`` padded to their longest, and the (B, L) context mask."""
    length = max(len(windows.input_ids[w]) for w in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long)
    context = torch.zeros((len(rows), length), dtype=torch.bool)
    types = torch.zeros((len(rows), length), dtype=torch.long) if windows.token_type_ids is not None else None
    for i, w in enumerate(rows):
        n = len(windows.input_ids[w])
        ids[i, :n] = torch.tensor(windows.input_ids[w])
        attention[i, :n] = 1
        context[i, :n] = torch.tensor([o != NO_TOKEN for o in windows.offsets[w]])
        if types is not None:
            types[i, :n] = torch.tensor(windows.token_type_ids[w])
    inputs = {"input_ids": ids, "attention_mask": attention}
    if types is not None and FEED_TOKEN_TYPES:
        inputs["token_type_ids"] = types
    return inputs, context


# ---------------------------------------------------------------------------------------------------------------------
# Decoding spans and scoring
# ---------------------------------------------------------------------------------------------------------------------


def best_span(
    start_logits: np.ndarray, end_logits: np.ndarray, offsets: list[tuple[int, int]], max_answer_length: int
) -> tuple[float, int, int] | None:
    """The highest ``start + end`` logit span of context tokens with ``end - start < max_answer_length``:
    (score, first char, end char), or None when the window holds no context."""
    context = np.array([i for i, o in enumerate(offsets) if o != NO_TOKEN])
    if len(context) == 0:
        return None
    s, e = start_logits[context], end_logits[context]
    scores = s[:, None] + e[None, :]
    n = len(context)
    i, j = np.triu_indices(n)
    keep = (j - i) < max_answer_length
    i, j = i[keep], j[keep]
    best = int(np.argmax(scores[i, j]))
    a, b = context[i[best]], context[j[best]]
    return float(scores[i[best], j[best]]), offsets[a][0], offsets[b][1]


def decode_answers(
    examples: list[ReaderExample], windows: Windows, logits: np.ndarray | list[np.ndarray], max_answer_length: int
) -> list[str]:
    """The best span of each example over all its windows (``logits[w]`` is (2, >= len(window)))."""
    best: dict[int, tuple[float, int, int]] = {}
    for w in range(len(windows)):
        n = len(windows.input_ids[w])
        span = best_span(logits[w][0][:n], logits[w][1][:n], windows.offsets[w], max_answer_length)
        if span is not None and (windows.example[w] not in best or span[0] > best[windows.example[w]][0]):
            best[windows.example[w]] = span
    return [ex.context[best[i][1] : best[i][2]] if i in best else "" for i, ex in enumerate(examples)]


def span_score(logit_sum: float, calibration_factor: float = CALIBRATION_FACTOR) -> float:
    """A span's score as ``TransformersExtractiveReader`` gives it: ``sigmoid(calibration_factor * (start + end))`` of
    the raw logits, never normalised per window nor per passage, so answers of all passages are ranked by the raw
    logit sum (any ``calibration_factor > 0`` keeps that order; it only spreads the scores)."""
    return float(1.0 / (1.0 + np.exp(-calibration_factor * logit_sum)))


def no_answer_score(scores: list[float]) -> float:
    """``TransformersExtractiveReader``'s no-answer score (``no_answer: true``): the probability that every one of its
    top answers is wrong, ``prod(1 - score)``. It never reads the model's position-0 logit, so a reader trained on
    negatives says "no answer" there only by keeping every span of a passage without the answer low."""
    return float(np.prod([1.0 - s for s in scores]))


def best_across_passages(
    examples: list[ReaderExample],
    windows: Windows,
    logits: np.ndarray | list[np.ndarray],
    max_answer_length: int,
    calibration_factor: float = CALIBRATION_FACTOR,
    *,
    margin: bool = False,
) -> tuple[int, str, float] | None:
    """The top answer of one question asked against several passages (``examples``, one per passage), as the
    pipeline's reader ranks them: (passage index, text, score), or None when no window holds context. With
    ``margin``, as ``distill.components.readers.NoAnswerMarginExtractiveReader`` ranks them: each span's logit sum
    minus its window's position-0 ("no answer") sum."""
    best: tuple[float, int, int, int] | None = None
    for w in range(len(windows)):
        n = len(windows.input_ids[w])
        span = best_span(logits[w][0][:n], logits[w][1][:n], windows.offsets[w], max_answer_length)
        if span is None:
            continue
        score = span[0] - (float(logits[w][0][0]) + float(logits[w][1][0])) if margin else span[0]
        if best is None or score > best[0]:
            best = (score, windows.example[w], span[1], span[2])
    if best is None:
        return None
    score, example, a, b = best
    return example, examples[example].context[a:b], span_score(score, calibration_factor)


def qa_scores(examples: list[ReaderExample], predictions: list[str]) -> dict[str, float]:
    """SQuAD v1.1 exact match and F1 (official normalisation), in percent."""
    n = max(1, len(examples))
    return {
        "exact_match": 100 * sum(metrics.exact_match(p, e.answers) for p, e in zip(predictions, examples)) / n,
        "f1": 100 * sum(metrics.f1_score(p, e.answers) for p, e in zip(predictions, examples)) / n,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Across tokenizers: teacher span distributions onto the student's tokens, through characters
# ---------------------------------------------------------------------------------------------------------------------


def map_span_logits(
    teacher_logits: np.ndarray,
    teacher_offsets: list[tuple[int, int]],
    student_offsets: list[tuple[int, int]],
    side: str,
) -> np.ndarray:
    """Teacher start (or end) logits over its tokens -> logits over the student's tokens.

    Each teacher context token puts its logit on one character: the first it covers (``side="start"``) or the last
    (``side="end"``). A student context token gets ``logsumexp`` of the logits on the characters it covers, so its
    probability is the teacher's total probability of starting (ending) a span inside it: a student token that spans
    two teacher tokens collects both. Position 0 (the CLS / no-answer slot) carries over; student tokens that no teacher
    token starts (ends) in get ``-inf`` (probability 0).
    """
    if side not in ("start", "end"):
        raise ValueError(f"side must be 'start' or 'end', got {side!r}")
    chars, values = [], []
    for logit, (a, b) in zip(teacher_logits, teacher_offsets):
        if (a, b) != NO_TOKEN and b > a:
            chars.append(a if side == "start" else b - 1)
            values.append(float(logit))
    out = np.full(len(student_offsets), -np.inf, dtype=np.float64)
    out[0] = float(teacher_logits[0])
    if not chars:
        return out
    order = np.argsort(chars, kind="stable")
    chars_sorted, values_sorted = np.asarray(chars)[order], np.asarray(values, dtype=np.float64)[order]
    for s, (a, b) in enumerate(student_offsets):
        if s == 0 or (a, b) == NO_TOKEN or b <= a:
            continue
        lo, hi = np.searchsorted(chars_sorted, a, "left"), np.searchsorted(chars_sorted, b, "left")
        if hi > lo:
            out[s] = np.logaddexp.reduce(values_sorted[lo:hi])
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    finite = np.isfinite(logits)
    out = np.zeros_like(logits, dtype=np.float64)
    if finite.any():
        shifted = np.exp(logits[finite] - logits[finite].max())
        out[finite] = shifted / shifted.sum()
    return out


def map_teacher_probs(teacher: Windows, teacher_logits: np.ndarray, student: Windows) -> list[np.ndarray]:
    """For every student window, the teacher's start and end probabilities on its tokens, (2, len(window)).

    Each student window takes the teacher window of the same example whose context overlaps it most.
    """
    by_example: dict[int, list[int]] = {}
    for w, ex in enumerate(teacher.example):
        by_example.setdefault(ex, []).append(w)
    out = []
    for w in range(len(student)):
        a, b = student.context_span(w)
        candidates = by_example.get(student.example[w], [])
        if not candidates:
            raise DistillError(f"student window {w} has no teacher window: the two tokenizations cover other examples")

        spans = [teacher.context_span(t) for t in candidates]
        t = candidates[max(range(len(candidates)), key=lambda i: min(b, spans[i][1]) - max(a, spans[i][0]))]
        n_t = len(teacher.input_ids[t])
        rows = [
            _softmax(map_span_logits(teacher_logits[t][k][:n_t], teacher.offsets[t], student.offsets[w], side))
            for k, side in enumerate(("start", "end"))
        ]
        out.append(np.stack(rows).astype(np.float32))
    return out
