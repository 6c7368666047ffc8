"""Extractive readers: a fine-tuned teacher (its logits cached), and its distillation into a student (also across
tokenizers) or the fine-tuning of the teacher itself, through the shared :class:`~distill.training.trainer.Trainer` and
:class:`~distill.teacher.cache.TeacherCache`. The windows and span decoding are in
:mod:`distill.training.tasks.windows`.

The teacher's start/end logits are computed once per window and cached, keyed by the teacher's fingerprint and the
window's token ids.

Why one module over 400 lines: :class:`ReaderTask` (the data, the teacher outputs and the dev slice of one reader
run) is one class of ~270 lines; the teacher that fills it and the loaders it uses sit beside it.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from distill.common.models import model_fingerprint, resolve_model
from distill.common.processes import precision_key, teacher_device
from distill.data.datasets import Dataset, Query, load_dataset
from distill.errors import DistillError
from distill.teacher.cache import TeacherCache
from distill.training.losses import LOSSES, build_recipe_losses, save_loss_parameters
from distill.training.tasks.common import (
    QKVRecorder,
    keep_layers,
    length_grouped_rows,
    loss_requirements,
    split_losses,
    weighted_losses,
)
from distill.training.tasks.negatives import NegativeSummary, RetrieverNegatives, negative_examples
from distill.training.tasks.windows import (
    FEED_TOKEN_TYPES,
    ReaderExample,
    Windows,
    decode_answers,
    make_windows,
    map_teacher_probs,
    pad_windows,
    qa_scores,
    reader_examples,
)

logger = logging.getLogger(__name__)

PAD_LOGIT = -1.0e4  # teacher logits beyond a window's last token (never read: every loss masks to the window)


def permuted_questions(data: Dataset, seed: int) -> list[Query]:
    """The data set's questions in a seeded order: the first N are "N questions" for fine-tuning and distillation
    alike, so that unlabelled questions taken after them never repeat one."""
    order = list(range(len(data.queries)))
    random.Random(seed).shuffle(order)
    return [data.queries[i] for i in order]


# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------


def is_reader_folder(path: str | Path) -> bool:
    config = Path(path) / "config.json"
    if not config.exists():
        return False
    architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    return any(a.endswith("ForQuestionAnswering") for a in architectures)


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

    def __init__(
        self,
        spec: str,
        *,
        max_length: int,
        batch_size: int = 32,
        cache_root: Path | None = None,
        precision: str = "fp32",
    ):
        from transformers import AutoTokenizer

        self.spec = spec
        self.path = resolve_model(spec)
        if not is_reader_folder(self.path):
            load_reader(spec, require_head=True)  # raises the explanatory error
        self.fingerprint = model_fingerprint(self.path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.max_length = max_length
        self.batch_size = batch_size
        namespace = {"kind": "reader-logits", "teacher": self.fingerprint, "max_length": max_length}
        if "token_type_ids" in self.tokenizer("a", "b"):  # logits cached before readers stopped feeding them differ
            namespace["token_types"] = FEED_TOKEN_TYPES
        self.cache = TeacherCache(
            cache_root or TeacherCache.default_root(),
            namespace=namespace | precision_key(precision),
            row_shape=(2, max_length),
        )
        self.precision = precision
        self._model = None

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            self._model, _, _ = load_reader(self.path, require_head=True)
            self._model.eval()
            # Inference only: on this process's GPU when there is one; bf16 only when the recipe asks (another key).
            self._model.to(teacher_device())
            if self.precision == "bf16":
                self._model.to(torch.bfloat16)
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
        self.names, self.weights, self.losses = split_losses(losses)
        needs = loss_requirements(losses)
        self.need_hidden = "hidden_states" in needs
        self.need_qkv = "qkv" in needs
        self._student_qkv = QKVRecorder(student) if self.need_qkv else None
        object.__setattr__(self, "_teacher", teacher)
        self._teacher_qkv = QKVRecorder(teacher) if teacher is not None and self.need_qkv else None

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
        return weighted_losses(self.names, self.weights, self.losses, student, teacher)


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
    teacher = TeacherReader(
        recipe["teacher"],
        max_length=recipe["max_length"],
        batch_size=recipe["teacher_batch_size"],
        precision=recipe["teacher_precision"],
    )
    out = {"teacher": teacher.scores(examples, make_windows(teacher.tokenizer, examples, **shape), recipe)}
    for model in models:
        reader, tokenizer, _ = load_reader(str(model), require_head=True)
        windows = make_windows(tokenizer, examples, **shape)
        out[str(model)] = reader_scores(reader, tokenizer.pad_token_id, examples, windows, recipe["max_answer_length"])
    return out


class ReaderTask:
    """Everything the shared Trainer needs to fine-tune (``finetune=True``: gold answers only) or distil a reader.

    As a Haystack component: the constructor stores the recipe and what its losses need; :meth:`warm_up` loads the
    models, builds the training windows (mining negatives where the recipe asks) and runs the teacher over them and
    the dev slice, through the cache. Whoever builds the task warms it up once, before training."""

    best_metric = "f1"

    def __init__(self, recipe: dict[str, Any], *, progress: bool = True):
        self.recipe = recipe
        self.finetune = recipe["task"] == "finetune_reader"
        self.progress = progress
        entries = [{"name": "start_end_ce", "weight": 1.0}] if self.finetune else recipe["losses"]
        self.active_losses = [e for e in entries if e["weight"] > 0]
        self.needs_teacher = any(LOSSES[e["name"]].needs_teacher for e in self.active_losses)
        self.needs_online_teacher = any(LOSSES[e["name"]].needs_aligned_tokens for e in self.active_losses)
        # What warm_up finds in the data, for the run's metrics.json and card.
        self.counts: Counter = Counter()
        self.negatives: NegativeSummary | None = None
        self._module: ReaderDistillation | None = None

    @property
    def shape(self) -> dict[str, int]:
        """How questions and contexts are cut into windows (as the reader at inference)."""
        return {k: self.recipe[k] for k in ("max_length", "stride", "max_query_length")}

    def warm_up(self) -> None:
        """Load the teacher and the student, build the training windows and the teacher's outputs on them, and score
        the teacher on the dev slice; once (a second call does nothing)."""
        if self._module is not None:
            return
        self.teacher = self._setup_teacher()
        self.student, self.tokenizer = self._build_student()
        self.cross_tokenizer = self._setup_cross_tokenizer()
        self._setup_training_windows()
        self._setup_teacher_outputs()
        self._setup_dev_slice()
        self._module = ReaderDistillation(
            self.student,
            self._build_losses(self.active_losses),
            self.teacher.model if self.needs_online_teacher else None,
        )

    # --- warm-up steps ------------------------------------------------------------------------------------------------
    def _setup_teacher(self) -> TeacherReader | None:
        if not self.needs_teacher:
            return None
        recipe = self.recipe
        return TeacherReader(
            recipe["teacher"],
            max_length=recipe["max_length"],
            batch_size=recipe["teacher_batch_size"],
            precision=recipe["teacher_precision"],
        )

    def _setup_cross_tokenizer(self) -> bool:
        """Whether teacher and student tokenize differently; then no loss may compare token positions."""
        cross = self.teacher is not None and not same_tokenization(self.tokenizer, self.teacher.tokenizer)
        if cross:
            aligned = [e["name"] for e in self.active_losses if LOSSES[e["name"]].needs_aligned_tokens]
            if aligned:
                raise DistillError(
                    f"recipe.losses: {', '.join(aligned)} compare token positions, but the teacher "
                    f"({self.recipe['teacher']}) and the student tokenize differently; use start_end_kl (mapped "
                    "through characters) or a student that shares the teacher's tokenizer"
                )
        return cross

    def _setup_training_windows(self) -> None:
        """The training questions (labelled, unlabelled, negatives) as the student's windows, and which rows are
        which."""
        data_cfg = self.recipe["data"]
        train = load_dataset(data_cfg["train"])
        ordered = permuted_questions(train, data_cfg["seed"])
        n = data_cfg["questions"] or len(ordered)
        labelled = reader_examples(
            train, ordered[:n], labelled=True, strict=data_cfg["strict_answers"], counts=self.counts
        )
        sources = [(train, ordered[:n], labelled, True)]
        unlabelled: list[ReaderExample] = []
        if not self.finetune and data_cfg["unlabelled"] is not None:
            source, queries = self._unlabelled(data_cfg, train, ordered, n)
            unlabelled = reader_examples(source, queries, labelled=False, counts=self.counts)
            if unlabelled:
                sources.append((source, queries, unlabelled, False))
        if not labelled and not unlabelled:
            raise DistillError(
                f"data set {data_cfg['train']} gives no usable training question (skipped: {dict(self.counts)})"
            )
        negatives = self._mine_negatives(sources)
        self.examples = labelled + unlabelled + negatives
        self.windows = make_windows(self.tokenizer, self.examples, **self.shape)
        self.labelled_rows = [w for w in range(len(self.windows)) if self.windows.start[w] >= 0]
        self.unlabelled_rows = [w for w in range(len(self.windows)) if self.windows.start[w] < 0]
        first_negative = len(labelled) + len(unlabelled)
        self.negative_rows = [w for w in range(len(self.windows)) if self.windows.example[w] >= first_negative]
        if self.counts:
            print(f"training data: skipped or corrected {dict(self.counts)}", flush=True)
        logger.info(
            "%d labelled + %d unlabelled questions + %d negatives -> %d windows",
            len(labelled),
            len(unlabelled),
            len(negatives),
            len(self.windows),
        )

    def _mine_negatives(
        self, sources: list[tuple[Dataset, list[Query], list[ReaderExample], bool]]
    ) -> list[ReaderExample]:
        """Retrieved passages without the answer for each kept question of each (data, candidates, kept, labelled)
        source: hard target "no answer" for labelled questions, the teacher's outputs on them for all."""
        setting = self.recipe["data"]["negatives"]
        if setting is None:
            return []
        miner = RetrieverNegatives(setting["retriever"])
        self.negatives = NegativeSummary(setting["per_question"], setting["retriever"])
        negatives: list[ReaderExample] = []
        for data, candidates, kept, hard in sources:
            ids = {e.id for e in kept}
            negatives += negative_examples(
                data,
                [q for q in candidates if q.id in ids],
                miner,
                setting["per_question"],
                self.negatives,
                labelled=hard,
                progress=self.progress,
            )
        print(f"negatives: {self.negatives.as_dict()}", flush=True)
        return negatives

    def _setup_teacher_outputs(self) -> None:
        """The teacher's logits on the student's windows (its probabilities mapped onto them across tokenizers)."""
        self.teacher_logits: np.ndarray | None = None
        self.teacher_probs: list[np.ndarray] | None = None
        if self.teacher is not None:
            self.teacher_logits, self.teacher_probs = self._teacher_outputs(
                self.examples, self.windows, self.shape, "train"
            )

    def _setup_dev_slice(self) -> None:
        """The dev slice (gold paragraph as context) in the student's windows, and the teacher's scores on it."""
        self.dev_examples = dev_slice_examples(self.recipe["data"])
        self.dev_windows = make_windows(self.tokenizer, self.dev_examples, **self.shape)
        self.teacher_dev: dict[str, float] = {}
        if self.teacher is not None:
            t_windows = self._teacher_windows(self.dev_examples, self.dev_windows, self.shape)
            self.teacher_dev = self.teacher.scores(self.dev_examples, t_windows, self.recipe, progress=self.progress)

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
    ) -> tuple[Dataset, list[Query]]:
        """The data set and the questions that train without answers."""
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
        return data, queries

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
        filled = {}
        if any(entry["name"] == "hidden_state_mse" for entry in entries):  # the only loss that needs the teacher
            filled["hidden_state_mse"] = {
                "student_dim": int(self.student.config.hidden_size),
                "teacher_dim": int(self.teacher.model.config.hidden_size),
            }
        return build_recipe_losses(entries, filled)

    # --- the Task protocol --------------------------------------------------------------------------------------------
    def model(self) -> nn.Module:
        if self._module is None:
            raise RuntimeError("ReaderTask.warm_up() must run before training: it loads the models and the data")
        return self._module

    def batches(self, epoch: int) -> list[list[int]]:
        seed = self.recipe["seed"] * 1000 + epoch

        def grouped(rows: list[int], seed: int) -> list[list[int]]:
            lengths = [len(self.windows.input_ids[w]) for w in rows]
            return length_grouped_rows(rows, lengths, self.recipe["batch_size"], seed)

        # Labelled and unlabelled windows train in separate batches: the hard-label part of a loss needs every row
        # of its batch labelled.
        out = grouped(self.labelled_rows, seed)
        if self.needs_teacher and self.unlabelled_rows:
            out += grouped(self.unlabelled_rows, seed + 1)
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
