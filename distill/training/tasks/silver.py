"""Training data labelled by the teacher alone: a corpus, optional unlabelled queries, and no relevance labels.

- *Queries*: the user's own (a text file, JSONL, or a BEIR split's query ids without their qrels), else or besides
  pseudo-queries cut from the corpus: a passage's title, or one of its sentences (the inverse cloze task, Lee et al.,
  "Latent Retrieval for Weakly Supervised Open Domain Question Answering", ACL 2019). Each query keeps its kind.
- *Candidates*: every query's top-k passages under the teacher over the whole corpus (exact search over the cached
  teacher passage embeddings). The teacher's top-1 is the query's positive, a passage drawn from ranks 2..k its hard
  negative, and the teacher's scores over everything in the batch are the soft labels of the recipe's losses.
- *Checkpoint choice*: held-out training queries, scored by agreement with the teacher over the union of their
  teacher top-10s (silver nDCG@10: the teacher's rank-1 passage has gain 10, rank 10 gain 1).

The corpus is checked first: empty texts are skipped, duplicates kept once, both counted, and passages longer than
the teacher's or the student's token limit counted (they are cut, as the pipeline cuts them). Where the user's
indexing pipeline preprocesses its documents (a cleaner, a splitter: :mod:`distill.teacher.chunks`), the passages
are the chunks it writes: the teacher ranks chunks, pseudo-queries are cut from chunks, and a passage budget keeps
whole documents with all their chunks.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from haystack import Document

from distill.errors import DistillError
from distill.training.tasks.queries import QUERY_KINDS, pseudo_queries, query_variants, read_queries

logger = logging.getLogger(__name__)

# --- the corpus -----------------------------------------------------------------------------------------------------


@dataclass
class CorpusCheck:
    """A corpus after the checks: the passages kept and what was skipped or will be cut."""

    documents: list[Document]
    empty: int = 0
    duplicates: int = 0
    cut: dict[str, int] = field(default_factory=dict)  # model -> passages longer than its token limit
    left_out: int = 0  # passages a budget (data.passages) left out of training
    # where the indexing pipeline preprocesses: the corpus documents the chunks in ``documents`` were cut from (what
    # an evaluation indexes through the pipeline), and what the preprocessing made of them (Chunks.summary)
    sources: list[Document] | None = None
    chunking: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = {
            "passages": len(self.documents),
            "skipped_empty": self.empty,
            "skipped_duplicates": self.duplicates,
            "left_out_by_budget": self.left_out,
            "cut": dict(self.cut),
        }
        return out | ({"chunking": dict(self.chunking)} if self.sources is not None else {})


def check_corpus(documents: list[Document], texts: list[str]) -> CorpusCheck:
    """Drop empty passages and duplicates of an earlier passage's embedded text (``texts``), counting both."""
    if not documents:
        raise DistillError("the corpus is empty: give a BEIR folder, a JSONL of passages or a SQuAD file with passages")
    kept, seen = [], set()
    check = CorpusCheck([])
    for doc, text in zip(documents, texts):
        if not (doc.content or "").strip():
            check.empty += 1
        elif text in seen:
            check.duplicates += 1
        else:
            seen.add(text)
            kept.append(doc)
    if not kept:
        raise DistillError(f"every passage of the corpus is empty ({check.empty} passages)")
    check.documents = kept
    return check


def count_cut(texts: list[str], tokenizer: Any, limit: int | None) -> int:
    """How many texts are longer than ``limit`` tokens (special tokens included) for ``tokenizer``."""
    if not limit or not texts:
        return 0
    counts = tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
    return sum(len(ids) > limit for ids in counts)


# --- the teacher's ranking ------------------------------------------------------------------------------------------


def top_k(query_emb: np.ndarray, passage_emb: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` passages per query by dot product (cosine for normalised embeddings): (indices, scores)."""
    k = min(k, passage_emb.shape[0])
    idx = np.empty((query_emb.shape[0], k), dtype=np.int64)
    val = np.empty((query_emb.shape[0], k), dtype=np.float32)
    for start in range(0, query_emb.shape[0], chunk):
        scores = query_emb[start : start + chunk] @ passage_emb.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        idx[start : start + chunk] = np.take_along_axis(part, order, axis=1)
        val[start : start + chunk] = np.take_along_axis(scores, idx[start : start + chunk], axis=1)
    return idx, val


def silver_ndcg(retrieved: list[int], reference: list[int], k: int = 10) -> float:
    """nDCG@k of ``retrieved`` against the reference's top-k as graded silver labels (rank 1 gain k, rank k gain 1)."""
    gain = {doc: k - r for r, doc in enumerate(reference[:k])}
    dcg = sum(gain.get(doc, 0) / math.log2(r + 2) for r, doc in enumerate(retrieved[:k]))
    ideal = sum((k - r) / math.log2(r + 2) for r in range(min(k, len(reference))))
    return dcg / ideal if ideal else 0.0


def overlap(retrieved: list[int], reference: list[int], k: int = 10) -> float:
    return len(set(retrieved[:k]) & set(reference[:k])) / k


@dataclass
class SilverDev:
    """Held-out queries and a passage pool (the union of their teacher top-10s), scored by agreement with the
    teacher: the student ranks the pool, and its top-10 is compared with the teacher's."""

    queries: list[str]
    pool: list[int]  # corpus positions
    reference: list[list[int]]  # per query, the teacher's top-10 as positions in ``pool``

    def score(self, query_emb: np.ndarray, pool_emb: np.ndarray) -> dict[str, float]:
        retrieved, _ = top_k(query_emb, pool_emb, 10)
        n = len(self.queries)
        return {
            "silver_ndcg@10": sum(silver_ndcg(list(r), ref) for r, ref in zip(retrieved, self.reference)) / n,
            "overlap@10": sum(overlap(list(r), ref) for r, ref in zip(retrieved, self.reference)) / n,
        }


@dataclass
class SilverData:
    """What :class:`~distill.training.tasks.embedder.EmbedderTask` trains on when the teacher labels the data."""

    queries: list[str]
    kinds: list[str]
    passages: list[str]
    t_query: np.ndarray
    t_passage: np.ndarray
    positive: list[int]
    negative: list[int] | list[list[int]] | None  # one per query, or several (data.negatives_per_query)
    dev: SilverDev
    t_dev_query: np.ndarray
    summary: dict[str, Any]
    passage_ids: list[str] = field(default_factory=list)  # ids of ``passages``: chunk ids where the pipeline splits


def split_dev(
    n: int, dev_questions: int, seed: int, prefer: list[int], eligible: list[int] | None = None
) -> tuple[list[int], list[int]]:
    """Seeded held-out positions (from ``prefer``, the user's own queries, when there are enough; else from
    ``eligible``, by default all) and the rest."""
    pool = prefer if len(prefer) >= 2 * dev_questions else (list(range(n)) if eligible is None else eligible)
    size = min(dev_questions, max(1, len(pool) // 5))
    held = set(random.Random(seed).sample(pool, size))
    return sorted(held), [i for i in range(n) if i not in held]


def label_with_teacher(
    queries: list[tuple[str, str]],
    passages: list[str],
    t_query: np.ndarray,
    t_passage: np.ndarray,
    *,
    candidates: int,
    hard_negatives: bool,
    dev_questions: int,
    seed: int,
    negatives_per_query: int = 1,
    negatives_from: str = "teacher",
    s_query: np.ndarray | None = None,
    s_passage: np.ndarray | None = None,
) -> SilverData:
    """Training queries labelled by the teacher's ranking over the whole corpus, and the held-out dev slice.

    Hard negatives come from the teacher's ranks 2..candidates (``negatives_from="teacher"``), from where the
    untrained student disagrees (``"student"``: its own top-``candidates`` passages over the whole corpus that the
    teacher ranks below its top 10, given the student's embeddings ``s_query``/``s_passage``), or half from each
    (``"both"``, the teacher's first). The teacher scores every negative, wherever it was found: its scores are the
    soft labels. A query whose student top-k holds no such passage takes the teacher's ranks instead (counted)."""
    if len(queries) < 2:
        raise DistillError(f"the teacher needs at least 2 training queries to label, got {len(queries)}")
    dev_pos, train_pos = _split(queries, dev_questions, seed)
    idx, _ = top_k(t_query, t_passage, max(candidates, 10))
    rng = random.Random(seed + 1)
    positive = [int(idx[i, 0]) for i in train_pos]
    negative = None
    mined: dict[str, int] = {}
    if hard_negatives:
        depth = min(candidates, idx.shape[1])
        if depth < 2:
            raise DistillError("recipe.data.candidates must be at least 2 for hard negatives")
        if negatives_from == "teacher" and negatives_per_query == 1:
            negative = [int(idx[i, rng.randrange(1, depth)]) for i in train_pos]
        elif negatives_from == "teacher":  # distinct ranks 2..depth for each query, in the teacher's order
            negative = [
                [int(idx[i, r]) for r in sorted(rng.sample(range(1, depth), min(negatives_per_query, depth - 1)))]
                for i in train_pos
            ]
        else:
            if s_query is None or s_passage is None:
                raise DistillError(f"negatives_from={negatives_from!r} needs the student's embeddings")
            s_idx, _ = top_k(s_query[train_pos], s_passage, depth)
            negative, mined = _student_negatives(
                [idx[i] for i in train_pos], s_idx, depth, negatives_per_query, negatives_from, rng
            )
    pool = sorted({int(p) for i in dev_pos for p in idx[i, :10]})
    where = {p: n for n, p in enumerate(pool)}
    dev = SilverDev([queries[i][0] for i in dev_pos], pool, [[where[int(p)] for p in idx[i, :10]] for i in dev_pos])
    kinds = Counter(queries[i][1] for i in train_pos)
    summary = {
        "training_queries": {kind: kinds.get(kind, 0) for kind in QUERY_KINDS},
        "dev_queries": len(dev_pos),
        "dev_pool_passages": len(pool),
        "candidates": candidates,
        "distinct_positives": len(set(positive)),
    }
    if negatives_from != "teacher" and hard_negatives:
        summary["negatives"] = {"from": negatives_from, **mined}
    return SilverData(
        queries=[queries[i][0] for i in train_pos],
        kinds=[queries[i][1] for i in train_pos],
        passages=passages,
        t_query=t_query[train_pos],
        t_passage=t_passage,
        positive=positive,
        negative=negative,
        dev=dev,
        t_dev_query=t_query[dev_pos],
        summary=summary,
    )


def _student_negatives(
    teacher_ranks: list[np.ndarray],
    student_ranks: np.ndarray,
    depth: int,
    per_query: int,
    source: str,
    rng: random.Random,
) -> tuple[list[int] | list[list[int]], dict[str, int]]:
    """Each query's hard negatives where the student disagrees with the teacher: passages in the student's top
    ``depth`` that are not in the teacher's top 10 (nor its top-1, the positive), drawn at random and kept in the
    student's order; with ``source="both"`` the first half (rounded up) are the teacher's ranks 2..depth. Too few
    disagreements: the rest come from the teacher's ranks. Returns the negatives and how many came from where."""
    negatives: list[list[int]] = []
    counts = {"student": 0, "teacher": 0, "queries_without_disagreement": 0}
    for t_rank, s_rank in zip(teacher_ranks, student_ranks):
        agreed = {int(p) for p in t_rank[:10]}
        disagree = [int(p) for p in s_rank[:depth] if int(p) not in agreed]
        counts["queries_without_disagreement"] += not disagree
        from_teacher = (per_query + 1) // 2 if source == "both" else 0
        from_student = min(per_query - from_teacher, len(disagree))
        picked = sorted(rng.sample(range(len(disagree)), from_student))
        chosen = [disagree[r] for r in picked]
        spare = [r for r in range(1, depth) if int(t_rank[r]) not in chosen]
        ranks = sorted(rng.sample(spare, min(per_query - len(chosen), len(spare))))
        chosen = [int(t_rank[r]) for r in ranks] + chosen
        counts["student"] += from_student
        counts["teacher"] += len(chosen) - from_student
        negatives.append(chosen)
    if per_query == 1:
        return [n[0] for n in negatives], counts
    return negatives, counts


@dataclass
class Teacher:
    """How the teacher embeds and what text a student sees: a user's pipeline components
    (:class:`~distill.teacher.embedders.PipelineTeacher`) or a model spec at the recipe's maximum lengths."""

    passages: Any  # (documents) -> np.ndarray
    queries: Any  # (texts) -> np.ndarray
    passage_texts: Any  # (documents) -> list[str]
    query_texts: Any  # (texts) -> list[str]
    tokenizer: Any  # () -> the teacher's tokenizer, for counting cut passages
    max_length: int | None
    chunker: Any = None  # (documents) -> Chunks: the indexing pipeline's preprocessing; None: the corpus as it is


def training_queries(data_cfg: dict[str, Any], documents: list[Document]) -> tuple[list[tuple[str, str]], dict]:
    """A recipe's training queries as (text, kind), before the teacher sees them (deterministic: the same recipe and
    corpus give the same queries), and what reading the query file skipped."""
    queries: list[tuple[str, str]] = []
    read: dict[str, Any] = {}
    if data_cfg["queries"] is not None:
        found = read_queries(data_cfg["queries"])
        queries += [(q, "user") for q in found.texts]
        read = {
            "source": found.source,
            "read": len(found.texts),
            "blank": found.blank,
            "duplicates": found.duplicates,
            "not_utf8": found.not_utf8,
        }
    if data_cfg["pseudo_queries"] != 0:
        queries += pseudo_queries(documents, data_cfg["pseudo_queries"], data_cfg["pseudo_kind"], data_cfg["seed"])
    if data_cfg["questions"] is not None and len(queries) > data_cfg["questions"]:
        picked = sorted(random.Random(data_cfg["seed"]).sample(range(len(queries)), data_cfg["questions"]))
        queries = [queries[i] for i in picked]
    if data_cfg.get("query_variants"):  # after the held-out split is fixed: it never holds out a variant
        skip = set(held_out(data_cfg, queries)) if len(queries) >= 2 else set()
        queries += query_variants(queries, data_cfg["query_variants"], data_cfg["seed"], skip)
    return queries, read


def _split(queries: list[tuple[str, str]], dev_questions: int, seed: int) -> tuple[list[int], list[int]]:
    """:func:`split_dev` over ``queries``: variants (appended last) are never held out, so adding them leaves the
    held-out positions as they were."""
    user = [i for i, (_, kind) in enumerate(queries) if kind == "user"]
    eligible = [i for i, (_, kind) in enumerate(queries) if kind != "variant"]
    return split_dev(len(queries), dev_questions, seed, user, eligible)


def held_out(data_cfg: dict[str, Any], queries: list[tuple[str, str]]) -> list[int]:
    """The positions of the training queries that :func:`label_with_teacher` holds out for the dev slice."""
    return _split(queries, data_cfg["dev_questions"] or 100, data_cfg["seed"])[0]


def corpus_documents(data_cfg: dict[str, Any], passage_texts: Any, chunker: Any = None) -> CorpusCheck:
    """The recipe's corpus, checked, cut into the chunks the indexing pipeline writes where ``chunker`` (its
    preprocessing, :attr:`Teacher.chunker`) is given, and sampled down to ``data.passages`` where that is set."""
    from distill.data.datasets import load_corpus

    corpus = load_corpus(data_cfg["train"])
    checked = check_corpus(corpus, passage_texts(corpus))
    checked.empty += corpus.skipped_empty  # Haystack documents without content, left out while reading
    if chunker is not None:
        return _chunked(checked, chunker(checked.documents), passage_texts, data_cfg)
    documents = checked.documents
    if data_cfg["passages"] is not None and data_cfg["passages"] < len(documents):
        keep = sorted(random.Random(data_cfg["seed"]).sample(range(len(documents)), data_cfg["passages"]))
        checked.left_out = len(documents) - len(keep)
        checked.documents = [documents[i] for i in keep]
    return checked


def _chunked(checked: CorpusCheck, chunks: Any, passage_texts: Any, data_cfg: dict[str, Any]) -> CorpusCheck:
    """``checked``'s documents replaced by their chunks (empty and duplicate chunks skipped, counted); a passage
    budget keeps whole documents, in a seeded order, while their chunks fit in it (at least one document), so that
    the documents an evaluation indexes are those whose chunks the teacher embedded."""
    inner = check_corpus(chunks.documents, passage_texts(chunks.documents))
    source = {d.id: s for d, s in zip(chunks.documents, chunks.sources)}
    sources = checked.documents
    budget = data_cfg["passages"]
    if budget is not None and budget < len(inner.documents):
        per_source = Counter(source[d.id] for d in inner.documents)
        order = list(range(len(sources)))
        random.Random(data_cfg["seed"]).shuffle(order)
        kept: set[str] = set()
        total = 0
        for i in order:
            if kept and total + per_source[sources[i].id] > budget:
                break
            kept.add(sources[i].id)
            total += per_source[sources[i].id]
        checked.left_out = len(inner.documents) - total
        inner.documents = [d for d in inner.documents if source[d.id] in kept]
        sources = [d for d in sources if d.id in kept]
    checked.documents, checked.sources = inner.documents, sources
    skipped = {"skipped_empty_chunks": inner.empty, "duplicate_chunks": inner.duplicates, "cached": chunks.cached}
    checked.chunking = chunks.summary() | skipped
    return checked


def build_silver(recipe: dict[str, Any], teacher: Teacher, student: Any = None) -> SilverData:
    """A recipe's teacher-labelled training data (data.labels: teacher): corpus checked, queries read and/or cut
    from the corpus, all embedded by the teacher (through the cache), the teacher's top-k as labels. ``student``
    ((texts, max_length, desc) -> embeddings, the untrained student through the cache) mines negatives where
    ``data.negatives_from`` asks for the student's."""
    data_cfg = recipe["data"]
    checked = corpus_documents(data_cfg, teacher.passage_texts, teacher.chunker)
    documents = checked.documents
    if checked.empty or checked.duplicates:
        logger.warning(
            "corpus %s: skipped %d empty and %d duplicate passages",
            data_cfg["train"],
            checked.empty,
            checked.duplicates,
        )
    texts = teacher.passage_texts(documents)
    checked.cut["teacher"] = count_cut(texts, teacher.tokenizer(), teacher.max_length)
    queries, read = training_queries(data_cfg, documents)
    t_passage = teacher.passages(documents)
    t_query = teacher.queries([q for q, _ in queries])
    query_texts = teacher.query_texts([q for q, _ in queries])
    negatives_from = data_cfg.get("negatives_from", "teacher")
    s_query = s_passage = None
    if negatives_from != "teacher" and data_cfg["hard_negatives"]:
        if student is None:
            raise DistillError(f"recipe.data.negatives_from: {negatives_from} needs the student to embed the corpus")
        lengths = recipe["max_length"]
        s_passage = student(texts, lengths["passage"], "student (untrained): corpus, for its negatives")
        s_query = student(query_texts, lengths["query"], "student (untrained): queries, for its negatives")
    silver = label_with_teacher(
        [(t, kind) for t, kind in zip(query_texts, (kind for _, kind in queries))],
        texts,
        t_query,
        t_passage,
        candidates=data_cfg["candidates"],
        hard_negatives=data_cfg["hard_negatives"],
        dev_questions=data_cfg["dev_questions"] or 100,
        seed=data_cfg["seed"],
        negatives_per_query=data_cfg.get("negatives_per_query", 1),
        negatives_from=negatives_from,
        s_query=s_query,
        s_passage=s_passage,
    )
    silver.summary = {"corpus": checked.summary(), "query_file": read, **silver.summary}
    silver.passage_ids = [d.id for d in documents]
    return silver
