"""Extractive readers: SQuAD windows, a fine-tuned teacher, and its distillation into a student (also across
tokenizers), all through the shared :class:`~distill.trainer.Trainer` and :class:`~distill.cache.TeacherCache`.

A question and its context become *windows* the way Haystack's ``TransformersExtractiveReader`` makes them at
inference: ``[CLS] question [SEP] context-slice [SEP]`` of at most ``max_length`` tokens, consecutive slices sharing
``stride`` tokens. A window's label is the answer's first and last token, or position 0 when the answer is not
wholly inside it (cut by the window's edge, or in another window).

The teacher's start/end logits are computed once per window and cached, keyed by the teacher's fingerprint and the
window's token ids. When the student tokenizes differently, the teacher's distributions are carried over through
characters: each teacher token votes for the character where it starts (start logits) or ends (end logits), and a
student token collects the votes of the characters it covers (:func:`map_span_logits`).
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from distill import metrics
from distill.cache import TeacherCache
from distill.data import Dataset, Query, load_dataset
from distill.errors import DistillError
from distill.losses import LOSSES, build_loss, save_loss_parameters
from distill.models import model_fingerprint, resolve_model

logger = logging.getLogger(__name__)

PAD_LOGIT = -1.0e4  # teacher logits beyond a window's last token (never read: every loss masks to the window)
NO_TOKEN = (-1, -1)  # the offset of a token outside the context


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


def permuted_questions(data: Dataset, seed: int) -> list[Query]:
    """The data set's questions in a seeded order: the first N are "N questions" for fine-tuning and distillation
    alike, so that unlabelled questions taken after them never repeat one."""
    order = list(range(len(data.queries)))
    random.Random(seed).shuffle(order)
    return [data.queries[i] for i in order]


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
        if example.answer_start is None:
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
    if types is not None:
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


# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------


def is_reader_folder(path: str | Path) -> bool:
    config = Path(path) / "config.json"
    if not config.exists():
        return False
    architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    return any(a.endswith("ForQuestionAnswering") for a in architectures)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise DistillError(
            f"{type(model).__name__}: cannot find its encoder layers (base_model.encoder.layer); layer selection and "
            "attention relations support BERT-, MPNet- and RoBERTa-style encoders"
        )
    return layers


def keep_layers(model: nn.Module, layers: list[int]) -> nn.Module:
    """Keep only ``layers`` of the model's encoder (in place)."""
    current = encoder_layers(model)
    if max(layers) >= len(current):
        raise DistillError(
            f"layers {layers} name layer {max(layers)}, but the model has {len(current)} layers (0..{len(current) - 1})"
        )
    base = getattr(model, "base_model", model)
    base.encoder.layer = nn.ModuleList([current[i] for i in layers])
    model.config.num_hidden_layers = len(layers)
    return model


def load_reader(spec: str, *, layers: list[int] | None = None, require_head: bool = False):
    """(model, tokenizer, folder) for an extractive reader, or an encoder given a fresh QA head."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder = resolve_model(spec)
    if require_head and not is_reader_folder(folder):
        raise DistillError(
            f"{spec} is not an extractive reader (its config.json names no *ForQuestionAnswering architecture): a "
            "reader teacher must be fine-tuned for extractive QA first (`distill finetune-reader`), and embedder "
            "teachers distil embedder students (`task: embedder`)"
        )
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized qa_outputs" is expected for an encoder
    try:
        model = AutoModelForQuestionAnswering.from_pretrained(folder)
    except (OSError, ValueError) as e:
        raise DistillError(f"cannot load {spec} as an extractive reader: {e}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if not tokenizer.is_fast:
        raise DistillError(f"{spec}: its tokenizer is not a fast tokenizer; readers need character offsets")
    if layers is not None:
        keep_layers(model, layers)
    return model, tokenizer, folder


def same_tokenization(a, b) -> bool:
    return type(a).__name__ == type(b).__name__ and a.get_vocab() == b.get_vocab() and a("A b") == b("A b")


def qkv_linears(model: nn.Module) -> list[tuple[nn.Module, nn.Module, nn.Module]]:
    """The query, key and value projections of every encoder layer (BERT: attention.self.query; MPNet: attn.q)."""
    out = []
    for i, layer in enumerate(encoder_layers(model)):
        found: dict[str, nn.Module] = {}
        for name, module in layer.named_modules():
            last = name.rsplit(".", 1)[-1]
            if (
                isinstance(module, nn.Linear)
                and "attention" in name
                and last in ("query", "key", "value", "q", "k", "v")
            ):
                found.setdefault(last[0], module)
        if set(found) != {"q", "k", "v"}:
            raise DistillError(f"layer {i} of {type(model).__name__}: cannot find its query/key/value projections")
        out.append((found["q"], found["k"], found["v"]))
    return out


class _QKVRecorder:
    """Forward hooks that keep the last output of every q, k, v projection."""

    def __init__(self, model: nn.Module):
        self.outputs: list[list[Tensor | None]] = []
        for i, triple in enumerate(qkv_linears(model)):
            self.outputs.append([None, None, None])
            for j, linear in enumerate(triple):
                linear.register_forward_hook(self._hook(i, j))

    def _hook(self, i: int, j: int):
        def hook(module, inputs, output):
            self.outputs[i][j] = output

        return hook

    def take(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        out = [tuple(x) for x in self.outputs]
        for row in self.outputs:
            row[:] = [None, None, None]
        return out  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------------------------
# Teacher logits, cached
# ---------------------------------------------------------------------------------------------------------------------


def _run_reader(model: nn.Module, windows: Windows, rows: list[int], pad_id: int, batch_size: int) -> np.ndarray:
    """(len(rows), 2, max_len) start/end logits, padded with PAD_LOGIT; batches of similar length."""
    length = max(len(windows.input_ids[w]) for w in rows)
    out = np.full((len(rows), 2, length), PAD_LOGIT, dtype=np.float32)
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: len(windows.input_ids[rows[i]]))
    model.eval()
    with torch.no_grad():
        for k in range(0, len(order), batch_size):
            chunk = order[k : k + batch_size]
            inputs, _ = pad_windows(windows, [rows[i] for i in chunk], pad_id)
            result = model(**{key: v.to(device) for key, v in inputs.items()})
            start, end = result.start_logits.float().cpu().numpy(), result.end_logits.float().cpu().numpy()
            for i, r in enumerate(chunk):
                n = len(windows.input_ids[rows[r]])
                out[r, 0, :n], out[r, 1, :n] = start[i, :n], end[i, :n]
    return out


class TeacherReader:
    """A fine-tuned reader's start/end logits per window, through the on-disk cache (keyed by the teacher's
    fingerprint, the window length and the window's token ids); the model loads only when a window is missing."""

    def __init__(self, spec: str, *, max_length: int, batch_size: int = 32, cache_root: Path | None = None):
        from transformers import AutoTokenizer

        self.spec = spec
        self.path = resolve_model(spec)
        if not is_reader_folder(self.path):
            load_reader(spec, require_head=True)  # raises the explanatory error
        self.fingerprint = model_fingerprint(self.path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.max_length = max_length
        self.batch_size = batch_size
        self.cache = TeacherCache(
            cache_root or TeacherCache.default_root(),
            namespace={"kind": "reader-logits", "teacher": self.fingerprint, "max_length": max_length},
            row_shape=(2, max_length),
        )
        self._model = None

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            self._model, _, _ = load_reader(self.path, require_head=True)
            self._model.eval()
            if torch.cuda.is_available():  # the teacher pass is inference only: put it on the GPU when there is one
                self._model.to("cuda")
        return self._model

    def logits(self, windows: Windows, *, desc: str = "teacher", progress: bool = True) -> np.ndarray:
        if len(windows) == 0:
            return np.zeros((0, 2, self.max_length), dtype=np.float32)
        too_long = [w for w in range(len(windows)) if len(windows.input_ids[w]) > self.max_length]
        if too_long:
            raise DistillError(f"window {too_long[0]} is longer than the teacher cache's max_length {self.max_length}")
        # The cache computes missing rows chunk by chunk in the order it is given: ordered by length, each chunk
        # holds windows of similar length and pads little (in question order, a 12-layer teacher ran ~1.5x slower).
        order = sorted(range(len(windows)), key=lambda w: len(windows.input_ids[w]))
        keys = [" ".join(map(str, windows.input_ids[w])) for w in order]

        def compute(positions: list[int]) -> np.ndarray:
            rows = [order[p] for p in positions]
            logits = _run_reader(self.model, windows, rows, self.tokenizer.pad_token_id, self.batch_size)
            full = np.full((len(positions), 2, self.max_length), PAD_LOGIT, dtype=np.float32)
            full[:, :, : logits.shape[2]] = logits
            return full

        ordered = self.cache.get(keys, compute, batch_size=max(64, self.batch_size), progress=progress, desc=desc)
        out = np.empty_like(ordered)
        out[order] = ordered
        return out

    def scores(
        self, examples: list[ReaderExample], windows: Windows, recipe: dict[str, Any], *, progress: bool = True
    ) -> dict[str, float]:
        """SQuAD EM / F1 of the teacher on windows of ``examples`` in its tokenization (logits through the cache)."""
        logits = self.logits(windows, desc="teacher: dev windows", progress=progress)
        return qa_scores(examples, decode_answers(examples, windows, logits, recipe["max_answer_length"]))


# ---------------------------------------------------------------------------------------------------------------------
# The training task
# ---------------------------------------------------------------------------------------------------------------------


class ReaderDistillation(nn.Module):
    """The student reader and its weighted losses; ``forward(batch)`` returns the loss terms.

    The teacher's span outputs come with the batch (cached logits, or probabilities mapped onto the student's tokens);
    a teacher model is run online only for losses that compare token states (attention relations, token
    similarities, hidden states), and is kept outside the module's parameters so it is neither trained nor saved.
    """

    def __init__(self, student: nn.Module, losses: list[tuple[str, float, nn.Module]], teacher: nn.Module | None):
        super().__init__()
        self.student = student
        self.names = [name for name, _, _ in losses]
        self.weights = [weight for _, weight, _ in losses]
        self.losses = nn.ModuleList([loss for _, _, loss in losses])
        needs = {key for _, _, loss in losses for key in getattr(loss, "requires", ())}
        self.need_hidden = "hidden_states" in needs
        self.need_qkv = "qkv" in needs
        self._student_qkv = _QKVRecorder(student) if self.need_qkv else None
        object.__setattr__(self, "_teacher", teacher)
        self._teacher_qkv = _QKVRecorder(teacher) if teacher is not None and self.need_qkv else None

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        inputs = batch["inputs"]
        out = self.student(**inputs, output_hidden_states=self.need_hidden)
        student: dict[str, Any] = {
            "start_logits": out.start_logits,
            "end_logits": out.end_logits,
            "context_mask": batch["context_mask"],
            "attention_mask": inputs["attention_mask"],
        }
        if "start_positions" in batch:
            student["start_positions"], student["end_positions"] = batch["start_positions"], batch["end_positions"]
        if self.need_hidden:
            student["hidden_states"] = list(out.hidden_states)
        if self._student_qkv is not None:
            student["qkv"] = self._student_qkv.take()
        teacher: dict[str, Any] = dict(batch.get("teacher", {}))
        if self._teacher is not None:
            teacher_model = self._teacher
            device = inputs["input_ids"].device
            if next(teacher_model.parameters()).device != device:
                teacher_model.to(device)
            with torch.no_grad():
                t_out = teacher_model(**inputs, output_hidden_states=self.need_hidden)
            if self.need_hidden:
                teacher["hidden_states"] = list(t_out.hidden_states)
            if self._teacher_qkv is not None:
                teacher["qkv"] = self._teacher_qkv.take()
        return {
            name: weight * loss(student, teacher)
            for name, weight, loss in zip(self.names, self.weights, self.losses)
            if weight > 0
        }


def _group_batches(windows: Windows, rows: list[int], batch_size: int, seed: int) -> list[list[int]]:
    from distill.embedder import length_grouped_batches

    lengths = [len(windows.input_ids[w]) for w in rows]
    local = length_grouped_batches(lengths, list(range(len(rows))), batch_size, seed)
    return [[rows[i] for i in batch] for batch in local]


def dev_slice_examples(data_cfg: dict[str, Any]) -> list[ReaderExample]:
    """The dev slice that picks a reader's best checkpoint: the first ``dev_questions`` of ``data.dev`` in the seeded
    order, with their gold paragraph as context (questions without an answer are left out)."""
    dev = load_dataset(data_cfg["dev"])
    queries = permuted_questions(dev, data_cfg["seed"])[: data_cfg["dev_questions"] or len(dev.queries)]
    return [e for e in reader_examples(dev, queries, labelled=False, counts=Counter()) if e.answers]


def reader_scores(
    model: nn.Module, pad_id: int, examples: list[ReaderExample], windows: Windows, max_answer_length: int
) -> dict[str, float]:
    """SQuAD EM / F1 of a reader on windows of ``examples`` (its own tokenization), decoded as in training."""
    if len(windows) == 0:
        return {"exact_match": 0.0, "f1": 0.0}
    logits = _run_reader(model, windows, list(range(len(windows))), pad_id, 32)
    return qa_scores(examples, decode_answers(examples, windows, logits, max_answer_length))


def score_readers_on_dev_slice(recipe: dict[str, Any], models: list[str]) -> dict[str, dict[str, float]]:
    """SQuAD EM / F1 of the teacher (logits from the cache) and of each reader folder on a reader recipe's dev slice
    (gold paragraph as context), decoded as during training: e.g. to compare a weight average with its ingredients
    before a full evaluation."""
    shape = {k: recipe[k] for k in ("max_length", "stride", "max_query_length")}
    examples = dev_slice_examples(recipe["data"])
    teacher = TeacherReader(recipe["teacher"], max_length=recipe["max_length"], batch_size=recipe["teacher_batch_size"])
    out = {"teacher": teacher.scores(examples, make_windows(teacher.tokenizer, examples, **shape), recipe)}
    for model in models:
        reader, tokenizer, _ = load_reader(str(model), require_head=True)
        windows = make_windows(tokenizer, examples, **shape)
        out[str(model)] = reader_scores(reader, tokenizer.pad_token_id, examples, windows, recipe["max_answer_length"])
    return out


class ReaderTask:
    """Everything the shared Trainer needs to fine-tune (``finetune=True``: gold answers only) or distil a reader."""

    best_metric = "f1"

    def __init__(self, recipe: dict[str, Any], *, progress: bool = True):
        self.recipe = recipe
        self.finetune = recipe["task"] == "finetune_reader"
        self.progress = progress
        data_cfg = recipe["data"]
        self.counts: Counter = Counter()
        shape = {"max_length": recipe["max_length"], "stride": recipe["stride"]}
        shape["max_query_length"] = recipe["max_query_length"]

        # --- losses, and what they need --------------------------------------------------------------------------
        entries = [{"name": "start_end_ce", "weight": 1.0}] if self.finetune else recipe["losses"]
        active = [e for e in entries if e["weight"] > 0]
        self.needs_teacher = any(LOSSES[e["name"]].needs_teacher for e in active)
        self.needs_online_teacher = any(LOSSES[e["name"]].needs_aligned_tokens for e in active)

        # --- the teacher ------------------------------------------------------------------------------------------
        self.teacher: TeacherReader | None = None
        if self.needs_teacher:
            self.teacher = TeacherReader(
                recipe["teacher"], max_length=recipe["max_length"], batch_size=recipe["teacher_batch_size"]
            )

        # --- the student ------------------------------------------------------------------------------------------
        self.student, self.tokenizer = self._build_student()
        self.cross_tokenizer = self.teacher is not None and not same_tokenization(
            self.tokenizer, self.teacher.tokenizer
        )
        if self.cross_tokenizer:
            aligned = [e["name"] for e in active if LOSSES[e["name"]].needs_aligned_tokens]
            if aligned:
                raise DistillError(
                    f"recipe.losses: {', '.join(aligned)} compare token positions, but the teacher "
                    f"({recipe['teacher']}) and the student tokenize differently; use start_end_kl (mapped through "
                    "characters) or a student that shares the teacher's tokenizer"
                )

        # --- training data ----------------------------------------------------------------------------------------
        train = load_dataset(data_cfg["train"])
        ordered = permuted_questions(train, data_cfg["seed"])
        n = data_cfg["questions"] or len(ordered)
        labelled = reader_examples(
            train, ordered[:n], labelled=True, strict=data_cfg["strict_answers"], counts=self.counts
        )
        unlabelled: list[ReaderExample] = []
        if not self.finetune and data_cfg["unlabelled"] is not None:
            unlabelled = self._unlabelled(data_cfg, train, ordered, n)
        if not labelled and not unlabelled:
            raise DistillError(
                f"data set {data_cfg['train']} gives no usable training question (skipped: {dict(self.counts)})"
            )
        self.examples = labelled + unlabelled
        self.windows = make_windows(self.tokenizer, self.examples, **shape)
        self.labelled_rows = [w for w in range(len(self.windows)) if self.windows.start[w] >= 0]
        self.unlabelled_rows = [w for w in range(len(self.windows)) if self.windows.start[w] < 0]
        if self.counts:
            print(f"training data: skipped or corrected {dict(self.counts)}", flush=True)
        logger.info(
            "%d labelled + %d unlabelled questions -> %d windows",
            len(labelled),
            len(unlabelled),
            len(self.windows),
        )

        # --- teacher outputs on the student's windows -------------------------------------------------------------
        self.teacher_logits: np.ndarray | None = None
        self.teacher_probs: list[np.ndarray] | None = None
        if self.teacher is not None:
            self.teacher_logits, self.teacher_probs = self._teacher_outputs(self.examples, self.windows, shape, "train")

        # --- dev slice: gold paragraph as context -----------------------------------------------------------------
        self.dev_examples = dev_slice_examples(data_cfg)
        self.dev_windows = make_windows(self.tokenizer, self.dev_examples, **shape)
        self.teacher_dev: dict[str, float] = {}
        if self.teacher is not None:
            t_windows = self._teacher_windows(self.dev_examples, self.dev_windows, shape)
            self.teacher_dev = self.teacher.scores(self.dev_examples, t_windows, recipe, progress=progress)

        self._module = ReaderDistillation(
            self.student, self._build_losses(active), self.teacher.model if self.needs_online_teacher else None
        )

    # --- construction helpers -----------------------------------------------------------------------------------------
    def _build_student(self):
        recipe = self.recipe
        if self.finetune:
            model, tokenizer, _ = load_reader(recipe["model"], layers=recipe["layers"])
            return model, tokenizer
        spec = recipe["student"]
        if isinstance(spec, dict) and "from_teacher" in spec:
            model, tokenizer, _ = load_reader(
                recipe["teacher"], layers=spec["from_teacher"]["layers"], require_head=True
            )
        elif isinstance(spec, dict):
            model, tokenizer, _ = load_reader(spec["model"], layers=spec["layers"])
        else:
            model, tokenizer, _ = load_reader(spec)
        return model, tokenizer

    def _unlabelled(
        self, data_cfg: dict[str, Any], train: Dataset, ordered: list[Query], n: int
    ) -> list[ReaderExample]:
        source = data_cfg["unlabelled"]
        count = data_cfg["unlabelled_questions"]
        if source == data_cfg["train"]:
            data, queries = train, ordered[n:]
        else:
            data = load_dataset(source)
            queries = permuted_questions(data, data_cfg["seed"])
        if count is not None:
            if count > len(queries):
                raise DistillError(
                    f"recipe.data.unlabelled_questions is {count}, but {source} has only {len(queries)} questions "
                    "beyond the labelled ones"
                )
            queries = queries[:count]
        return reader_examples(data, queries, labelled=False, counts=self.counts)

    def _teacher_windows(self, examples: list[ReaderExample], windows: Windows, shape: dict[str, int]) -> Windows:
        return windows if not self.cross_tokenizer else make_windows(self.teacher.tokenizer, examples, **shape)

    def _teacher_outputs(
        self, examples: list[ReaderExample], windows: Windows, shape: dict[str, int], what: str
    ) -> tuple[np.ndarray | None, list[np.ndarray] | None]:
        assert self.teacher is not None
        t_windows = self._teacher_windows(examples, windows, shape)
        logits = self.teacher.logits(t_windows, desc=f"teacher: {what} windows", progress=self.progress)
        if not self.cross_tokenizer:
            return logits, None
        return None, map_teacher_probs(t_windows, logits, windows)

    def _build_losses(self, entries: list[dict[str, Any]]) -> list[tuple[str, float, nn.Module]]:
        out = []
        student_dim = int(self.student.config.hidden_size)
        for entry in entries:
            name = entry["name"]
            kwargs = {k: v for k, v in entry.items() if k not in ("name", "weight")}
            if name == "hidden_state_mse":
                kwargs.setdefault("student_dim", student_dim)
                kwargs.setdefault("teacher_dim", int(self.teacher.model.config.hidden_size))
            out.append((name, entry["weight"], build_loss(name, **kwargs)))
        return out

    # --- the Task protocol --------------------------------------------------------------------------------------------
    def model(self) -> nn.Module:
        return self._module

    def batches(self, epoch: int) -> list[list[int]]:
        seed = self.recipe["seed"] * 1000 + epoch
        batch_size = self.recipe["batch_size"]
        rows = self.labelled_rows
        # Labelled and unlabelled windows train in separate batches: the hard-label part of a loss needs every row
        # of its batch labelled.
        out = _group_batches(self.windows, rows, batch_size, seed)
        if self.needs_teacher and self.unlabelled_rows:
            out += _group_batches(self.windows, self.unlabelled_rows, batch_size, seed + 1)
        random.Random(seed).shuffle(out)
        return out

    def collate(self, batch: list[int]) -> dict[str, Any]:
        inputs, context = pad_windows(self.windows, batch, self.tokenizer.pad_token_id)
        length = inputs["input_ids"].shape[1]
        out: dict[str, Any] = {"size": len(batch), "inputs": inputs, "context_mask": context}
        if all(self.windows.start[w] >= 0 for w in batch):
            out["start_positions"] = torch.tensor([self.windows.start[w] for w in batch])
            out["end_positions"] = torch.tensor([self.windows.end[w] for w in batch])
        if self.teacher_logits is not None:
            rows = torch.from_numpy(self.teacher_logits[batch][:, :, :length])
            out["teacher"] = {"start_logits": rows[:, 0], "end_logits": rows[:, 1]}
        elif self.teacher_probs is not None:
            probs = torch.zeros((len(batch), 2, length))
            for i, w in enumerate(batch):
                row = torch.from_numpy(self.teacher_probs[w])
                probs[i, :, : row.shape[1]] = row
            out["teacher"] = {"start_probs": probs[:, 0], "end_probs": probs[:, 1]}
        return out

    def batch_examples(self, batch: dict[str, Any]) -> int:
        return int(batch["size"])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        student = model.student if isinstance(model, ReaderDistillation) else model
        return reader_scores(
            student, self.tokenizer.pad_token_id, self.dev_examples, self.dev_windows, self.recipe["max_answer_length"]
        )

    def save(self, model: nn.Module, folder: Path) -> None:
        module = model if isinstance(model, ReaderDistillation) else self._module
        folder.mkdir(parents=True, exist_ok=True)
        module.student.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        # e.g. hidden-state projections: trained with the student, kept beside it
        save_loss_parameters(module.names, module.losses, folder / "distillation_losses.safetensors")
