"""Distil a sentence-embedding teacher into a student: data, teacher outputs (cached), students, the training task.

Three kinds of student:
- another pretrained model (e.g. all-MiniLM-L6-v2: another tokenizer and width),
- a copy of the teacher with layers dropped (``{from_teacher: {layers: [0, 4, 8, 11]}}``: same tokenizer and width),
- a query-only student (``query_only: true``): only the query encoder is trained, into the teacher's space, so the
  documents keep the teacher's embeddings and index; a linear head (initialised by ridge regression on the training
  queries) maps a narrower student into the teacher's width.

Why one module over 400 lines: it holds the embedder's whole chain, as :mod:`distill.training.tasks.reader` does the
reader's: the teacher's cached embeddings, the training pairs and dev slice, the students, the module that mixes
the losses and the task the trainer runs; what both tasks share is in :mod:`distill.training.tasks.common`.
"""

from __future__ import annotations

import copy
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from distill.common import metrics
from distill.common.models import model_fingerprint, resolve_model
from distill.common.processes import precision_key, teacher_device
from distill.data.datasets import Dataset, load_dataset
from distill.errors import DistillError
from distill.pipelines.checks import check_query_only_static
from distill.teacher.cache import TeacherCache
from distill.training.losses import KIND, LOSSES, build_recipe_losses, save_loss_parameters
from distill.training.static import build_static, is_static
from distill.training.tasks.common import (
    QKVRecorder,
    keep_layers,
    length_grouped_batches,
    loss_requirements,
    split_losses,
    weighted_losses,
)

if TYPE_CHECKING:
    from distill.pipelines.user import UserPipelines

logger = logging.getLogger(__name__)


def load_sentence_transformer(spec: str, max_length: int | None = None):
    from sentence_transformers import SentenceTransformer

    path = resolve_model(spec)
    if not (Path(path) / "modules.json").exists():
        raise DistillError(f"{spec} is not a sentence-transformers model folder (no modules.json)")
    model = SentenceTransformer(path, device="cpu")
    if max_length:
        set_max_length(model, max_length)
    return model


def set_max_length(model, max_length: int) -> None:
    """A model's token limit; a static model has none (StaticEmbedding's is a read-only infinity)."""
    if not is_static(model):
        model.max_seq_length = max_length


def embedding_dim(model) -> int:
    return int(model.get_embedding_dimension())


def drop_layers(teacher, layers: list[int]):
    """A copy of a sentence-transformers teacher that keeps only ``layers`` of its transformer encoder."""
    student = copy.deepcopy(teacher)
    keep_layers(student[0].auto_model, layers, field="recipe.student.from_teacher.layers", owner="the teacher")
    return student


def ridge_projection(queries: Tensor, targets: Tensor, ridge: float = 0.1) -> Tensor:
    """The (teacher_dim, student_dim) weight ``W`` minimising ``||X W^T - Y||^2 + lam ||W||^2``.

    ``lam = ridge * trace(X^T X) / student_dim`` (the mean eigenvalue): sentence embeddings are anisotropic, and
    all-MiniLM-L6-v2's queries span fewer than 384 directions, so plain least squares puts weights of order 1e7 on
    directions with no variance. Such a head turns the first optimiser step into noise (the query-only student
    collapsed from nDCG@10 0.66 to 0.05 within five steps); with the ridge term its spectral norm is ~1.5 and the
    fit to held-out queries is better, not worse (measured in the README)."""
    x, y = queries.double(), targets.double()
    gram = x.T @ x
    lam = ridge * float(gram.diagonal().sum()) / x.shape[1]
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    return torch.linalg.solve(gram + lam * eye, x.T @ y).T.float()


def add_projection(student, teacher_dim: int, queries: Tensor, targets: Tensor, ridge: float = 0.1) -> None:
    """Append Dense(student_dim -> teacher_dim) + Normalize, initialised by ridge regression on (queries, targets)."""
    append_head(student, ridge_projection(queries, targets, ridge))


def append_head(student, weight: Tensor) -> None:
    """Append Dense with this (out, in) weight and no bias, then Normalize."""
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    dense = Dense(weight.shape[1], weight.shape[0], bias=False, activation_function=nn.Identity())
    with torch.no_grad():
        dense.linear.weight.copy_(weight)
    student.append(dense)
    student.append(Normalize())


def same_tokenizer(a, b) -> bool:
    return a[0].tokenizer.get_vocab() == b[0].tokenizer.get_vocab()


@dataclass
class Pairs:
    """Training pairs: question i's positive passage is ``passages[positive[i]]``."""

    queries: list[str]
    passages: list[str]
    positive: list[int]
    negative: list[int] | list[list[int]] | None = None  # one hard negative per question, or several


def training_pairs(
    data: Dataset,
    questions: int | None,
    seed: int,
    siblings: bool = False,
    exclude: frozenset[str] | set[str] = frozenset(),
) -> Pairs:
    """A seeded sample of ``questions`` (question, gold passage) pairs; with ``siblings``, also every other question
    whose gold passage is one of the sample's (more questions, no more passages for the teacher to embed).

    Questions whose gold passage is in ``exclude`` (a held-out dev slice) are dropped *after* sampling, so that the
    rest of the sample, and the teacher cache it hits, is the same as without the hold-out."""
    labelled = [q for q in data.queries if q.gold_doc_ids]
    if not labelled:
        raise DistillError(
            f"data set {data.name} has no questions with a relevant passage: embedder distillation needs (question, "
            "passage) pairs (SQuAD, BEIR, or JSONL lines with both 'question' and 'passage')"
        )
    if questions is not None and questions < len(labelled):
        chosen = sorted(random.Random(seed).sample(range(len(labelled)), questions))
        if siblings:
            passages = {labelled[i].gold_doc_ids[0] for i in chosen}
            chosen = [i for i, q in enumerate(labelled) if q.gold_doc_ids[0] in passages]
        labelled = [labelled[i] for i in chosen]
    if exclude:
        labelled = [q for q in labelled if q.gold_doc_ids[0] not in exclude]
        if not labelled:
            raise DistillError(f"holding out the dev slice leaves no training question in {data.name}")
    index: dict[str, int] = {}
    passages: list[str] = []
    positive = []
    for q in labelled:
        doc_id = q.gold_doc_ids[0]
        if doc_id not in index:
            index[doc_id] = len(passages)
            passages.append(data.document(doc_id).content or "")
        positive.append(index[doc_id])
    return Pairs([q.text for q in labelled], passages, positive)


class TeacherEmbeddings:
    """The teacher's embeddings of any texts, through the on-disk cache; the teacher loads only when needed."""

    def __init__(self, spec: str, *, batch_size: int = 32, cache_root: Path | None = None, precision: str = "fp32"):
        self.spec = spec
        self.precision_key = precision_key(precision)
        self.precision = precision
        self.path = resolve_model(spec)
        self.fingerprint = model_fingerprint(self.path)
        self.batch_size = batch_size
        self.root = cache_root or TeacherCache.default_root()
        self._model = None
        with open(Path(self.path) / "config.json", encoding="utf-8") as f:
            self.dim = int(json.load(f)["hidden_size"])
        for dense_cfg in sorted(Path(self.path).glob("*Dense*/config.json")):
            self.dim = int(json.loads(dense_cfg.read_text())["out_features"])

    @property
    def model(self):
        if self._model is None:
            self._model = load_sentence_transformer(self.path)
            self.dim = embedding_dim(self._model)
            # Inference only: on this process's GPU when there is one; bf16 only when the recipe asks (another key).
            self._model.to(teacher_device())
            if self.precision == "bf16":
                self._model.to(torch.bfloat16)
        return self._model

    def _namespace(self, max_length: int) -> dict[str, Any]:
        namespace = {"kind": "st-embeddings", "teacher": self.fingerprint, "max_length": max_length, "dim": self.dim}
        return namespace | self.precision_key

    def cached_lengths(self) -> list[int]:
        """The maximum lengths at which this teacher's embeddings are already cached on disk."""
        lengths = set()
        for manifest in self.root.glob("st-embeddings-*/manifest.json"):
            try:
                namespace = json.loads(manifest.read_text(encoding="utf-8"))["namespace"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a broken cache folder: TeacherCache rebuilds it when it is next opened
            length = namespace.get("max_length") if isinstance(namespace, dict) else None
            if isinstance(length, int) and namespace == self._namespace(length):
                lengths.add(length)
        return sorted(lengths)

    def token_counts(self, texts: list[str]) -> list[int]:
        """Each text's length in the teacher's tokens, special tokens included (what ``max_length`` truncates)."""
        from transformers import AutoTokenizer

        tokenizer = self._model.tokenizer if self._model is not None else AutoTokenizer.from_pretrained(self.path)
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]]

    def encode(self, texts: list[str], max_length: int, desc: str) -> np.ndarray:
        """The teacher's embeddings of ``texts``, each truncated to ``max_length`` tokens, through the cache.

        A text that fits in fewer tokens has the same embedding at every longer maximum length, so when this
        teacher's embeddings are already cached at a shorter length ``L0``, the texts of at most ``L0`` tokens are
        read from (or added to) that cache and only the longer ones are embedded at ``max_length``: raising a
        recipe's passage length re-embeds the long passages only."""
        shorter = [length for length in self.cached_lengths() if length < max_length]
        if shorter and texts:
            fit = max(shorter)
            counts = self.token_counts(texts)
            short = [i for i, n in enumerate(counts) if n <= fit]
            if short:
                long = [i for i, n in enumerate(counts) if n > fit]
                logger.info("%s: %d of %d texts fit in %d tokens", desc, len(short), len(texts), fit)
                out = np.empty((len(texts), self.dim), dtype=np.float32)
                out[short] = self._encode_at([texts[i] for i in short], fit, desc)
                if long:
                    out[long] = self._encode_at([texts[i] for i in long], max_length, desc)
                return out
        return self._encode_at(texts, max_length, desc)

    def _encode_at(self, texts: list[str], max_length: int, desc: str) -> np.ndarray:
        cache = TeacherCache(self.root, namespace=self._namespace(max_length), row_shape=(self.dim,))

        def compute(positions: list[int]) -> np.ndarray:
            model = self.model
            model.max_seq_length = max_length
            with torch.no_grad():
                rows = model.encode(
                    [texts[p] for p in positions],
                    batch_size=self.batch_size,
                    convert_to_tensor=True,
                    show_progress_bar=False,
                )
            return rows.float().cpu().numpy()

        batch_size = max(64, self.batch_size)
        return cache.get(texts, compute, batch_size=batch_size, desc=desc, lengths=[len(t) for t in texts])


def _as_list(negative: int | list[int]) -> list[int]:
    return negative if isinstance(negative, list) else [negative]


def mine_hard_negatives(query_emb: np.ndarray, passage_emb: np.ndarray, positive: list[int]) -> list[int]:
    """For each query, the teacher's highest-scoring passage that is not its positive."""
    scores = query_emb @ passage_emb.T
    scores[np.arange(len(positive)), positive] = -np.inf
    return scores.argmax(axis=1).tolist()


def token_states(model, features: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
    """A sentence-transformers model's sentence embeddings and every layer's hidden states (index 0: embeddings),
    in one pass: the transformer with ``output_hidden_states``, then the model's other modules (pooling, dense,
    normalize) as its own forward would run them."""
    auto = model[0].auto_model
    names = ("input_ids", "attention_mask", "token_type_ids")
    out = auto(**{k: v for k, v in features.items() if k in names}, output_hidden_states=True, return_dict=True)
    feats = dict(features)
    feats["token_embeddings"] = out.last_hidden_state
    for module in list(model)[1:]:
        feats = module(feats)
    return feats["sentence_embedding"], list(out.hidden_states)


class PassageMemory:
    """The student's embeddings of the last ``capacity`` training passages (first in, first out), detached, with the
    ids that look up the teacher's cached embeddings of the same passages.

    :meth:`columns` gives the extra listwise-KL columns for a batch, leaving out the batch's own passages (a stale
    copy of a question's positive would be scored as a second, older positive). Each process of a data-parallel run
    keeps its own memory; a resumed run starts with an empty one."""

    def __init__(self, capacity: int, teacher_passages: np.ndarray):
        self.capacity = capacity
        self.teacher_passages = teacher_passages
        self.ids: list[int] = []
        self.embeddings: Tensor | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def columns(self, batch_ids: list[int], device: torch.device | None = None) -> tuple[Tensor, Tensor] | None:
        # ``device`` is unused: the stored embeddings are on the student's device already
        if self.embeddings is None:
            return None
        exclude = set(batch_ids)
        keep = [i for i, pid in enumerate(self.ids) if pid not in exclude]
        if not keep:
            return None
        student = self.embeddings[keep]
        teacher = torch.from_numpy(np.asarray(self.teacher_passages[[self.ids[i] for i in keep]]))
        return student, teacher.to(student.device)

    def push(self, batch_ids: list[int], embeddings: Tensor) -> None:
        embeddings = embeddings.detach()
        ids = self.ids + list(batch_ids)
        if self.embeddings is not None:
            embeddings = torch.cat([self.embeddings, embeddings.to(self.embeddings)])
        self.ids, self.embeddings = ids[-self.capacity :], embeddings[-self.capacity :]


class CorpusColumns:
    """A query-only student's listwise-KL columns over the whole corpus: the teacher's cached embedding of every
    passage, which is also what the student's queries search at serving time, so both sides of the loss score the
    same fixed rows. The student then learns the teacher's ranking of the whole index, not only of a batch's
    passages: the passages it wrongly ranks high anywhere in the corpus are pushed down. :meth:`columns` leaves out
    the batch's own passages and negatives (already columns); nothing is pushed."""

    def __init__(self, teacher_passages: np.ndarray):
        self.rows = torch.from_numpy(np.ascontiguousarray(teacher_passages, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.rows)

    def columns(self, batch_ids: list[int], device: torch.device | None = None) -> tuple[Tensor, Tensor] | None:
        if device is not None and self.rows.device != device:
            self.rows = self.rows.to(device)  # moved once, not every step
        keep = torch.ones(len(self.rows), dtype=torch.bool, device=self.rows.device)
        keep[torch.as_tensor(sorted(set(batch_ids)), dtype=torch.long, device=self.rows.device)] = False
        if not keep.any():
            return None
        rows = self.rows[keep]
        return rows, rows

    def push(self, batch_ids: list[int], embeddings: Tensor) -> None:
        return None


class EmbedderDistillation(nn.Module):
    """The student and its weighted losses; ``forward(batch)`` returns the loss terms.

    Losses that compare token states (hidden-state MSE, attention relations, token similarities) need the teacher
    online: it runs on the same tokenized passages (the student shares its tokenizer) and is kept outside the
    module's parameters, so it is neither trained nor saved."""

    def __init__(
        self,
        student,
        losses: list[tuple[str, float, nn.Module]],
        query_only: bool,
        teacher=None,
        memory: PassageMemory | CorpusColumns | None = None,
        anchor: float = 0.0,
    ):
        super().__init__()
        self.memory = memory
        # L2-SP (Li et al., ICML 2018): anchor * sum((w - w0)^2) holds the student near where it started, so that
        # adapting to one domain costs the others less. The start is kept outside the module's state (not saved).
        self.anchor = anchor
        start = [p.detach().clone() for p in student.parameters()] if anchor > 0 else []
        object.__setattr__(self, "_start", start)
        self.student = student
        self.names, self.weights, self.losses = split_losses(losses)
        self.query_only = query_only
        object.__setattr__(self, "_teacher", teacher)
        self._qkv = None
        if teacher is not None and "qkv" in loss_requirements(losses):
            self._qkv = (QKVRecorder(student[0].auto_model), QKVRecorder(teacher[0].auto_model))

    def embed(self, features: dict[str, Tensor]) -> Tensor:
        return self.student(dict(features))["sentence_embedding"]

    def _token_outputs(self, features: dict[str, Tensor], student: dict[str, Any], teacher: dict[str, Any]) -> Tensor:
        embedding, hidden = token_states(self.student, features)
        student["hidden_states"], student["attention_mask"] = hidden, features["attention_mask"]
        t_model = self._teacher
        device = features["input_ids"].device
        if next(t_model.parameters()).device != device:
            t_model.to(device)
        with torch.no_grad():
            _, t_hidden = token_states(t_model, features)
        teacher["hidden_states"] = t_hidden
        if self._qkv is not None:
            student["qkv"], teacher["qkv"] = self._qkv[0].take(), self._qkv[1].take()
        return embedding

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        teacher = dict(batch["teacher"])
        student = {"query": self.embed(batch["query"])}
        if self.query_only:
            student["passage"] = teacher["passage"]
            if "negative" in teacher:
                student["negative"] = teacher["negative"]
        elif self._teacher is not None:
            student["passage"] = self._token_outputs(batch["passage"], student, teacher)
        else:
            student["passage"] = self.embed(batch["passage"])
            if "negative" in batch:
                student["negative"] = self.embed(batch["negative"])
        if self.memory is not None:
            ids = batch["passage_ids"].tolist()
            extra = self.memory.columns(ids + batch.get("negative_ids", []), device=student["query"].device)
            if extra is not None:
                student["memory"], teacher["memory"] = extra
        terms = weighted_losses(self.names, self.weights, self.losses, student, teacher)
        if self.anchor > 0:
            params = list(self.student.parameters())
            if self._start[0].device != params[0].device:
                object.__setattr__(self, "_start", [w.to(params[0].device) for w in self._start])
            terms["anchor"] = self.anchor * sum(((p - w) ** 2).sum() for p, w in zip(params, self._start))
        if self.memory is not None and self.training:
            self.memory.push(ids, student["passage"])
        return terms


def retrieval_scores(query_emb: np.ndarray, passage_emb: np.ndarray, gold: list[int], k: int = 10) -> dict[str, float]:
    scores = query_emb @ passage_emb.T
    top = np.argsort(-scores, axis=1)[:, :k]
    ids = [[str(i) for i in row] for row in top]
    golds = [[str(g)] for g in gold]
    n = len(gold)
    return {
        "recall@1": sum(metrics.recall_at_k(r, g, 1) for r, g in zip(ids, golds)) / n,
        "recall@10": sum(metrics.recall_at_k(r, g, 10) for r, g in zip(ids, golds)) / n,
        "mrr@10": sum(metrics.reciprocal_rank(r, g, 10) for r, g in zip(ids, golds)) / n,
        "ndcg@10": sum(metrics.ndcg_at_k(r, g, 10) for r, g in zip(ids, golds)) / n,
    }


def retrieval_slice(dev: Dataset) -> tuple[list[str], list[str], list[int]]:
    """A dev slice as retrieval needs it: its passages, the questions whose gold passage is among them, and the
    position of each question's gold passage."""
    passages = [d.content or "" for d in dev.documents]
    position = {d.id: i for i, d in enumerate(dev.documents)}
    queries = [q for q in dev.queries if q.gold_doc_ids and q.gold_doc_ids[0] in position]
    return passages, [q.text for q in queries], [position[q.gold_doc_ids[0]] for q in queries]


def embed_for_retrieval(
    student, queries: list[str], passages: list[str] | np.ndarray, max_length: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The student's query embeddings and passage embeddings (each at the recipe's maximum length); passages given as
    an array (a query-only student's teacher embeddings) are passed through."""
    set_max_length(student, max_length["query"])
    query_emb = student.encode(queries, batch_size=64, convert_to_numpy=True)
    if isinstance(passages, np.ndarray):
        return query_emb, passages
    set_max_length(student, max_length["passage"])
    return query_emb, student.encode(passages, batch_size=32, convert_to_numpy=True)


def score_on_dev_slice(recipe: dict[str, Any], models: list[str]) -> dict[str, dict[str, float]]:
    """Retrieval metrics of the teacher and of each model on a recipe's dev slice (teacher embeddings from the cache),
    e.g. to compare a weight average with its ingredients before a full evaluation."""
    data_cfg, max_length = recipe["data"], recipe["max_length"]
    passages, queries, gold = retrieval_slice(dev_slice(load_dataset(data_cfg["train"]), data_cfg))
    teacher = TeacherEmbeddings(
        recipe["teacher"], batch_size=recipe["teacher_batch_size"], precision=recipe["teacher_precision"]
    )
    t_passages = teacher.encode(passages, max_length["passage"], "teacher: dev passages")
    out = {
        "teacher": retrieval_scores(
            teacher.encode(queries, max_length["query"], "teacher: dev questions"), t_passages, gold
        )
    }
    # A query-only student searches the teacher's index.
    student_passages = t_passages if recipe["query_only"] else passages
    for model in models:
        student = load_sentence_transformer(str(model))
        out[str(model)] = retrieval_scores(*embed_for_retrieval(student, queries, student_passages, max_length), gold)
    return out


def dev_slice(train: Dataset, data_cfg: dict[str, Any]) -> Dataset:
    """The dev slice that picks the best checkpoint: ``dev_articles`` whole articles of ``data.dev``, then a sample of
    ``dev_questions`` of their questions (over all their paragraphs).

    When ``data.dev`` is the training set itself (``squad-train``), those articles are held out of training (see
    :func:`training_pairs`), so that checkpoints are chosen on questions and paragraphs the student never trained on
    and the benchmark's own dev set stays unseen until the final evaluation."""
    dev = train if data_cfg["dev"] == data_cfg["train"] else load_dataset(data_cfg["dev"])
    if data_cfg["dev_articles"]:
        dev = dev.subset(articles=data_cfg["dev_articles"], seed=data_cfg["seed"])
    if data_cfg["dev_questions"] and data_cfg["dev_questions"] < len(dev.queries):
        dev = dev.subset(questions=data_cfg["dev_questions"], seed=data_cfg["seed"])
    return dev


def training_split(data_cfg: dict[str, Any]) -> tuple[Pairs, Dataset]:
    """A recipe's training pairs and dev slice, the dev slice's articles held out of training when both come from
    the same data set."""
    train = load_dataset(data_cfg["train"])
    dev = dev_slice(train, data_cfg)
    exclude = {d.id for d in dev.documents} if data_cfg["dev"] == data_cfg["train"] else set()
    if exclude:
        logger.info("held out %d paragraphs of %s for the dev slice", len(exclude), data_cfg["train"])
    pairs = training_pairs(
        train, data_cfg["questions"], data_cfg["seed"], siblings=data_cfg["sibling_questions"], exclude=exclude
    )
    return pairs, dev


class EmbedderTask:
    """Everything the shared :class:`~distill.training.trainer.Trainer` needs to distil an embedder.

    As a Haystack component: the constructor stores the recipe; :meth:`warm_up` loads the teacher and the student
    and encodes the training pairs and the dev slice with the teacher (through the cache), or lets the teacher label
    the data (``data.labels: teacher``). Whoever builds the task warms it up once, before training."""

    best_metric = "ndcg@10"

    def __init__(
        self, recipe: dict[str, Any], *, progress: bool = True, user_pipelines: UserPipelines | None = None
    ) -> None:
        self.recipe = recipe
        # recipe.pipelines as read (given, or read once here for a teacher: pipelines recipe), for the swap after
        self.user_pipelines = user_pipelines
        self.progress = progress
        self.silver = None
        if recipe["data"]["labels"] == "teacher":
            self.best_metric = "silver_ndcg@10"  # the checkpoint is chosen by agreement with the teacher
        self._module: EmbedderDistillation | None = None

    def warm_up(self) -> None:
        """Load the teacher and the student and compute the teacher's outputs; once (a second call does nothing)."""
        if self._module is not None:
            return
        recipe = self.recipe
        if recipe["data"]["labels"] == "teacher":
            self._label_with_teacher(recipe)
        else:
            self._encode_gold_pairs(recipe)
        self.student = self._build_student()
        self.tokenizer = self.student[0].tokenizer
        if self.silver is not None:
            from distill.training.tasks.silver import count_cut

            # a static student reads whole texts: nothing of them is cut
            max_p = recipe["max_length"]["passage"]
            cut = 0 if self.static else count_cut(self.pairs.passages, self.tokenizer, max_p)
            self.silver.summary["corpus"]["cut"]["student"] = cut
            max_q = recipe["max_length"]["query"]
            queries = [*self.pairs.queries, *self.dev_queries]  # held-out ones too, as the plan counts them
            long_queries = 0 if self.static else count_cut(queries, self.tokenizer, max_q)
            self.silver.summary["queries_cut"] = {"student": long_queries, "limit": max_q}
        losses = self._build_losses()
        online = any(LOSSES[name].needs_aligned_tokens for name, weight, _ in losses if weight > 0)
        memory: PassageMemory | CorpusColumns | None = None
        if recipe["passage_memory"] == "corpus":
            memory = CorpusColumns(self.t_passage)
        elif recipe["passage_memory"]:
            memory = PassageMemory(recipe["passage_memory"], self.t_passage)
        self._module = EmbedderDistillation(
            self.student,
            losses,
            recipe["query_only"],
            teacher=self.teacher.model if online else None,
            memory=memory,
            anchor=recipe["anchor"],
        )

    def _encode_gold_pairs(self, recipe: dict[str, Any]) -> None:
        """Gold labels: the training pairs (and mined hard negatives) and the dev slice, with the teacher's
        embeddings of every text and its scores on the dev slice."""
        data_cfg = recipe["data"]
        max_q, max_p = recipe["max_length"]["query"], recipe["max_length"]["passage"]
        self.teacher = TeacherEmbeddings(
            recipe["teacher"], batch_size=recipe["teacher_batch_size"], precision=recipe["teacher_precision"]
        )
        self.pairs, dev = training_split(data_cfg)
        logger.info("%d training pairs over %d passages", len(self.pairs.queries), len(self.pairs.passages))
        self.t_query = self.teacher.encode(self.pairs.queries, max_q, "teacher: training questions")
        self.t_passage = self.teacher.encode(self.pairs.passages, max_p, "teacher: training passages")
        if data_cfg["hard_negatives"]:
            self.pairs.negative = mine_hard_negatives(self.t_query, self.t_passage, self.pairs.positive)

        self.dev = dev
        self.dev_passages, self.dev_queries, self.dev_gold = retrieval_slice(dev)
        self.t_dev_query = self.teacher.encode(self.dev_queries, max_q, "teacher: dev questions")
        self.t_dev_passage = self.teacher.encode(self.dev_passages, max_p, "teacher: dev passages")
        self.teacher_dev = retrieval_scores(self.t_dev_query, self.t_dev_passage, self.dev_gold)

    def _label_with_teacher(self, recipe: dict[str, Any]) -> None:
        """No labels: the teacher ranks the corpus for every training query (:mod:`distill.training.tasks.silver`),
        and the checkpoint is chosen by agreement with the teacher on held-out queries."""
        from distill.training.tasks.silver import Teacher, build_silver

        max_q, max_p = recipe["max_length"]["query"], recipe["max_length"]["passage"]
        if recipe["teacher"] == "pipelines":
            from distill.pipelines.user import read_user_pipelines
            from distill.teacher.embedders import PipelineTeacher

            if self.user_pipelines is None:
                paths = recipe["pipelines"]
                self.user_pipelines = read_user_pipelines(paths["indexing"], paths["query"])
            own = PipelineTeacher.from_pipelines(self.user_pipelines)
            self.teacher = TeacherEmbeddings(
                own.model_path, batch_size=recipe["teacher_batch_size"], precision=recipe["teacher_precision"]
            )
            teacher = Teacher(
                own.passages,
                own.queries,
                own.passage_texts,
                own.query_texts,
                self._teacher_tokenizer,
                own.max_length(),
                chunker=own.chunker,
            )
        else:
            tea = self.teacher = TeacherEmbeddings(
                recipe["teacher"], batch_size=recipe["teacher_batch_size"], precision=recipe["teacher_precision"]
            )
            teacher = Teacher(
                lambda docs: tea.encode([d.content or "" for d in docs], max_p, "teacher: corpus"),
                lambda texts: tea.encode(texts, max_q, "teacher: queries"),
                lambda docs: [d.content or "" for d in docs],
                list,
                self._teacher_tokenizer,
                max_p,
            )
        student = None
        if recipe["data"].get("negatives_from", "teacher") != "teacher":
            untrained = TeacherEmbeddings(recipe["student"], batch_size=recipe["teacher_batch_size"])
            student = untrained.encode
        silver = self.silver = build_silver(recipe, teacher, student)
        self.pairs = Pairs(silver.queries, silver.passages, silver.positive, silver.negative)
        self.t_query, self.t_passage = silver.t_query, silver.t_passage
        self.dev_queries = silver.dev.queries
        self.dev_passages = [silver.passages[p] for p in silver.dev.pool]
        self.t_dev_query, self.t_dev_passage = silver.t_dev_query, silver.t_passage[silver.dev.pool]
        self.teacher_dev = silver.dev.score(self.t_dev_query, self.t_dev_passage)
        logger.info(
            "teacher-labelled: %d training queries %s over %d passages; dev %d queries over %d passages",
            len(silver.queries),
            silver.summary["training_queries"],
            len(silver.passages),
            len(self.dev_queries),
            len(self.dev_passages),
        )

    def _teacher_tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.teacher.path)

    def _build_student(self):
        recipe = self.recipe
        spec = recipe["student"]
        if isinstance(spec, dict) and "static" in spec:
            # initialised from the teacher (its cached token pass), as `distill static` builds it, then trained
            student = build_static(self.teacher.path, **spec["static"], load=lambda: self.teacher.model)
        elif isinstance(spec, dict):
            student = drop_layers(self.teacher.model, spec["from_teacher"]["layers"])
        else:
            student = load_sentence_transformer(spec)
        self.student_dim = embedding_dim(student)
        self.static = is_static(student)
        if recipe["query_only"] and self.static:
            # no projection head: the static student's rows are the teacher's own token outputs, in its space
            name = spec if isinstance(spec, str) else "recipe.student"
            check_query_only_static(name, self.student_dim, student[0].tokenizer.get_vocab(), self.teacher.path)
        elif recipe["query_only"] and self.student_dim != self.teacher.dim:
            student.max_seq_length = recipe["max_length"]["query"]
            with torch.no_grad():
                queries = student.encode(self.pairs.queries, batch_size=64, convert_to_tensor=True)
            add_projection(student, self.teacher.dim, queries.cpu(), torch.from_numpy(self.t_query))
            self.student_dim = self.teacher.dim
        return student

    def _build_losses(self) -> list[tuple[str, float, nn.Module]]:
        for entry in self.recipe["losses"]:
            name = entry["name"]
            if LOSSES[name].needs_aligned_tokens and self.static:
                raise DistillError(
                    f"recipe.losses: {name} ({KIND[name]}-based) compares token states, and a static student has "
                    "none: pick a sentence-level response or relation loss (embedding_mse, cosine, listwise_kl, "
                    "similarity_matrix)"
                )
            if LOSSES[name].needs_aligned_tokens and not same_tokenizer(self.teacher.model, self.student):
                raise DistillError(
                    f"recipe.losses: {name} ({KIND[name]}-based) compares token states, so the student must share "
                    "the teacher's tokenizer (e.g. student: {from_teacher: {layers: [...]}}); this student tokenizes "
                    "differently: pick a sentence-level response or relation loss"
                )
        names = {entry["name"] for entry in self.recipe["losses"]}
        filled = {}
        if "embedding_mse" in names:
            filled["embedding_mse"] = {"student_dim": self.student_dim, "teacher_dim": self.teacher.dim}
        if "hidden_state_mse" in names:
            filled["hidden_state_mse"] = {
                "student_dim": int(self.student[0].auto_model.config.hidden_size),
                "teacher_dim": int(self.teacher.model[0].auto_model.config.hidden_size),
            }
        return build_recipe_losses(self.recipe["losses"], filled)

    # --- the Task protocol -------------------------------------------------------------------------------------
    def model(self) -> nn.Module:
        if self._module is None:
            raise RuntimeError("EmbedderTask.warm_up() must run before training: it loads the models and the data")
        return self._module

    def batches(self, epoch: int) -> list[list[int]]:
        lengths = [len(self.pairs.passages[p]) for p in self.pairs.positive]
        return length_grouped_batches(
            lengths, self.pairs.positive, self.recipe["batch_size"], self.recipe["seed"] * 1000 + epoch
        )

    def _tokenize(self, texts: list[str], max_length: int) -> dict[str, Tensor]:
        if self.static:  # token ids end to end and each text's offset: what StaticEmbedding's EmbeddingBag takes
            return self.student[0].preprocess(texts)
        return dict(self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"))

    def collate(self, batch: list[int]) -> dict[str, Any]:
        pairs, max_len = self.pairs, self.recipe["max_length"]
        pos = [pairs.positive[i] for i in batch]
        out: dict[str, Any] = {
            "size": len(batch),
            "query": self._tokenize([pairs.queries[i] for i in batch], max_len["query"]),
            "passage_ids": torch.tensor(pos),
            "teacher": {
                "query": torch.from_numpy(self.t_query[batch]),
                "passage": torch.from_numpy(self.t_passage[pos]),
            },
        }
        if not self.recipe["query_only"]:
            out["passage"] = self._tokenize([pairs.passages[p] for p in pos], max_len["passage"])
        if pairs.negative is not None:
            neg = [n for i in batch for n in _as_list(pairs.negative[i])]
            out["teacher"]["negative"] = torch.from_numpy(self.t_passage[neg])
            out["negative_ids"] = neg
            if not self.recipe["query_only"]:
                out["negative"] = self._tokenize([pairs.passages[n] for n in neg], max_len["passage"])
        return out

    def batch_examples(self, batch: dict[str, Any]) -> int:
        return int(batch["size"])

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        passages = self.t_dev_passage if self.recipe["query_only"] else self.dev_passages
        queries, passages = embed_for_retrieval(module.student, self.dev_queries, passages, self.recipe["max_length"])
        if self.silver is not None:
            return self.silver.dev.score(queries, passages) | {f"teacher_{k}": v for k, v in self.teacher_dev.items()}
        out = retrieval_scores(queries, passages, self.dev_gold)
        return out | {f"teacher_{k}": v for k, v in self.teacher_dev.items()}

    def save(self, module: nn.Module, folder: Path) -> None:
        student = module.student
        set_max_length(student, self.recipe["max_length"]["passage"])
        student.save(str(folder), safe_serialization=True)
        save_loss_parameters(module.names, module.losses, folder / "distillation_losses.safetensors")
