"""Quality and latency metrics as pure functions (no Haystack, no models), so tests can check them by hand, and the
one table of how each quality metric of a report is named and printed (:data:`QUALITY_METRICS`).

Answer normalisation and F1 follow the official SQuAD v1.1 evaluation script (Rajpurkar et al., 2016).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, Unpack

if TYPE_CHECKING:  # numpy is imported where a bootstrap runs: the SQuAD metrics need none
    import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and the articles a/an/the, collapse white space (official SQuAD v1.1)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str | None, golds: Iterable[str]) -> float:
    if prediction is None:
        return 0.0
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str | None, golds: Iterable[str]) -> float:
    """Token F1, the maximum over the gold answers (official SQuAD v1.1)."""
    if prediction is None:
        return 0.0
    return max((_f1(prediction, g) for g in golds), default=0.0)


def first_relevant_rank(retrieved: Sequence[str], gold: Iterable[str]) -> int | None:
    """1-based rank of the first relevant id, or None."""
    gold = set(gold)
    for rank, doc_id in enumerate(retrieved, start=1):
        if doc_id in gold:
            return rank
    return None


def best_per_source(retrieved: Sequence[str], sources: Mapping[str, str]) -> list[int]:
    """The positions in ``retrieved`` (chunk ids, best first) of each source document's best-ranked chunk, in rank
    order: the list that document-level judgements (BEIR qrels on whole documents) score, each document once.
    ``sources`` maps a chunk's id to its document's; an id it lacks is a document of its own.

    >>> best_per_source(["a1", "b1", "a2", "c"], {"a1": "A", "a2": "A", "b1": "B"})
    [0, 1, 3]
    """
    seen: set[str] = set()
    out = []
    for i, chunk in enumerate(retrieved):
        source = sources.get(chunk, chunk)
        if source not in seen:
            seen.add(source)
            out.append(i)
    return out


def recall_at_k(retrieved: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1 if any relevant document is among the top k (single-hit recall, as in Haystack's evaluator)."""
    rank = first_relevant_rank(retrieved[:k], gold)
    return float(rank is not None)


def reciprocal_rank(retrieved: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    rank = first_relevant_rank(retrieved[:k], gold)
    return 1.0 / rank if rank else 0.0


def ndcg_at_k(
    retrieved: Sequence[str], gold: Iterable[str], k: int = 10, grades: Sequence[float] | None = None
) -> float:
    """nDCG@k with linear gains: ``grades`` (aligned with ``gold``; default 1 each) are the gains.

    DCG = sum over the top k of ``grade / log2(rank + 1)``, each relevant id counted at its first rank only;
    the ideal DCG sorts the grades and keeps the best k (``ndcg_cut_k`` of trec_eval, which BEIR reports).
    Haystack's ``DocumentNDCGEvaluator`` uses the same gains but an ideal DCG over *all* relevant documents, which
    for a question with more than k of them can never reach 1; with at most k they agree.
    """
    gold = list(gold)
    gains: dict[str, float] = {}
    for doc_id, grade in zip(gold, grades if grades else [1.0] * len(gold), strict=True):
        gains[doc_id] = max(gains.get(doc_id, grade), grade)
    if not gains:
        return 0.0
    dcg, counted = 0.0, set()
    for i, doc_id in enumerate(retrieved[:k]):
        if doc_id in gains and doc_id not in counted:
            counted.add(doc_id)
            dcg += gains[doc_id] / math.log2(i + 2)
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


# ---------------------------------------------------------------------------- agreement with a reference pipeline
# Without relevance labels, a student is measured by how closely its top k follows a reference pipeline's (the
# teacher's): the reference's top k is the silver standard.


def overlap_at_k(retrieved: Sequence[str], reference: Sequence[str], k: int = 10) -> float:
    """``|top k of retrieved ∩ top k of reference| / k``: the share of the reference's top k also retrieved."""
    return len(set(retrieved[:k]) & set(reference[:k])) / k


def silver_gains(reference: Sequence[str], k: int = 10) -> tuple[list[str], list[float]]:
    """The reference's top k as graded silver labels: rank 1 gains k, rank 2 gains k - 1, ..., rank k gains 1."""
    top = list(dict.fromkeys(reference[:k]))
    return top, [float(k - i) for i in range(len(top))]


def silver_ndcg_at_k(retrieved: Sequence[str], reference: Sequence[str], k: int = 10) -> float:
    """nDCG@k (:func:`ndcg_at_k`) against the reference's top k as graded silver labels (:func:`silver_gains`:
    gains 10, 9, ..., 1 for k = 10). 1 when ``retrieved`` ranks the reference's top k in its order; a swap near the
    top costs more than one near the bottom."""
    gold, grades = silver_gains(reference, k)
    return ndcg_at_k(retrieved, gold, k, grades) if gold else float(not retrieved[:k])


def rank_correlation_at_k(retrieved: Sequence[str], reference: Sequence[str], k: int = 10) -> float:
    """Spearman's rank correlation of two top-k lists over the union of their documents.

    Each document of the union takes its 1-based rank in each list, or ``k + 1`` where that list's top k lacks it;
    the result is the Pearson correlation of the two rank vectors (Spearman's rho, exact with the ties that the
    missing ranks make). 1: same documents in the same order; near 0 or below: little in common. Where a rank vector
    is constant (a list that retrieved nothing, or one document each) it is 1 if the vectors are equal, else 0.
    """
    a = list(dict.fromkeys(retrieved[:k]))
    b = list(dict.fromkeys(reference[:k]))
    union = list(dict.fromkeys(a + b))
    if not union:
        return 1.0
    rank_a = {d: i + 1 for i, d in enumerate(a)}
    rank_b = {d: i + 1 for i, d in enumerate(b)}
    x = [rank_a.get(d, k + 1) for d in union]
    y = [rank_b.get(d, k + 1) for d in union]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((v - mx) ** 2 for v in x)
    syy = sum((v - my) ** 2 for v in y)
    if sxx == 0 or syy == 0:
        return float(x == y)
    return sum((u - mx) * (v - my) for u, v in zip(x, y)) / math.sqrt(sxx * syy)


def answer_in_passages(passages: Sequence[str], answers: Iterable[str], k: int) -> float:
    """Lenient recall: 1 if a normalised gold answer occurs in a normalised top-k passage."""
    golds = [normalize_answer(a) for a in answers]
    golds = [g for g in golds if g]
    if not golds:
        return 0.0
    for passage in passages[:k]:
        text = normalize_answer(passage)
        if any(g in text for g in golds):
            return 1.0
    return 0.0


@dataclass(frozen=True)
class QualityMetric:
    """How one quality key of a report (``report["pipelines"][name]["quality"][key]``) is named and printed."""

    key: str
    label: str  # figures, metric cards, the UI
    short: str | None  # column of the CLI's fixed-width comparison table; None: not a column there
    fmt: str


# Every quality key a report can hold, in display order: the one table that the CLI, the UI and the figures name
# metrics from.
QUALITY_METRICS: tuple[QualityMetric, ...] = (
    QualityMetric("recall@1", "Recall@1", "R@1", "{:.3f}"),
    QualityMetric("recall@5", "Recall@5", None, "{:.3f}"),  # the CLI table keeps to R@1 and R@10
    QualityMetric("recall@10", "Recall@10", "R@10", "{:.3f}"),
    QualityMetric("mrr@10", "MRR@10", "MRR@10", "{:.3f}"),
    QualityMetric("ndcg@10", "nDCG@10", "nDCG@10", "{:.3f}"),
    QualityMetric("answer_recall@10", "Answer recall@10", "AnsR@10", "{:.3f}"),
    QualityMetric("exact_match", "Exact match", "EM", "{:.1f}"),
    QualityMetric("f1", "F1", "F1", "{:.1f}"),
)

# The agreement keys (``report["pipelines"][name]["agreement"][key]``), named as the quality keys are. Every label
# is shown with the reference's name ("agreement with teacher"), never as relevance.
AGREEMENT_METRICS: tuple[QualityMetric, ...] = (
    QualityMetric("overlap@10", "Overlap@10", "overlap@10", "{:.3f}"),
    QualityMetric("silver_ndcg@10", "Silver nDCG@10", "silver nDCG@10", "{:.3f}"),
    QualityMetric("rank_correlation@10", "Rank correlation@10", "rank corr@10", "{:.3f}"),
)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(values_ms, 50),
        "p95_ms": percentile(values_ms, 95),
        "mean_ms": sum(values_ms) / len(values_ms) if values_ms else float("nan"),
        "n": len(values_ms),
    }


class BootstrapOptions(TypedDict, total=False):
    """The paired bootstraps' keyword options; their defaults live in one place, :func:`_paired_resamples`."""

    resamples: int  # resamples of the questions (default 2000)
    confidence: float  # central share of the resampled statistics the interval spans (default 0.95)
    seed: int  # seed of the resampling (default 0): the same seed draws the same resamples for both statistics


@dataclass(frozen=True)
class _PairedResamples:
    """Two systems' per-question scores and their sums over the same resamples of the questions (pairing kept)."""

    reference: np.ndarray  # per-question scores, shape (questions,)
    other: np.ndarray
    reference_sums: np.ndarray  # shape (resamples,)
    other_sums: np.ndarray
    confidence: float

    def interval(self, statistics: np.ndarray) -> dict[str, float]:
        """The percentile bootstrap interval: the central ``confidence`` share of the resampled ``statistics``."""
        import numpy as np

        tail = (1 - self.confidence) / 2 * 100
        return {"low": float(np.percentile(statistics, tail)), "high": float(np.percentile(statistics, 100 - tail))}

    def sizes(self) -> dict[str, float]:
        return {"confidence": self.confidence, "resamples": len(self.reference_sums), "questions": len(self.reference)}


def _paired_resamples(
    reference: Sequence[float],
    other: Sequence[float],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> _PairedResamples:
    """Check both score lists and resample the questions with replacement ``resamples`` times, the pairing kept."""
    import numpy as np

    ref = np.asarray(reference, dtype=np.float64)
    oth = np.asarray(other, dtype=np.float64)
    if ref.ndim != 1 or ref.shape != oth.shape:
        raise ValueError(f"need two equally long score lists, got {ref.shape} and {oth.shape}")
    if len(ref) == 0:
        raise ValueError("need at least one question")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    rng = np.random.default_rng(seed)
    ref_sums, oth_sums = np.empty(resamples), np.empty(resamples)
    chunk = max(1, 2_000_000 // len(ref))  # bound the (chunk, n) index matrix to ~16 MB
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, len(ref), size=(min(chunk, resamples - start), len(ref)))
        ref_sums[start : start + len(idx)] = ref[idx].sum(axis=1)
        oth_sums[start : start + len(idx)] = oth[idx].sum(axis=1)
    return _PairedResamples(ref, oth, ref_sums, oth_sums, confidence)


def paired_bootstrap_ratio(
    reference: Sequence[float], other: Sequence[float], **options: Unpack[BootstrapOptions]
) -> dict[str, float]:
    """How much of ``reference``'s mean score ``other`` keeps, with a paired bootstrap confidence interval.

    ``reference`` and ``other`` are per-question scores of two systems on the same questions (e.g. nDCG@10 or F1).
    The ratio is ``sum(other) / sum(reference)``; the interval resamples the *questions* with replacement (both
    systems keep their pairing) ``resamples`` times and takes the central ``confidence`` share of the ratios
    (percentile bootstrap; Efron and Tibshirani, An Introduction to the Bootstrap, 1993). Resamples whose reference
    sums to zero are dropped. Options: :class:`BootstrapOptions`.
    """
    import numpy as np

    paired = _paired_resamples(reference, other, **options)
    ref, oth = paired.reference, paired.other
    if ref.sum() <= 0:
        raise ValueError("the reference's scores sum to zero: a ratio against it is undefined")
    ref_sums, oth_sums = paired.reference_sums, paired.other_sums
    ratios = np.divide(oth_sums, ref_sums, out=np.full(len(ref_sums), np.nan), where=ref_sums > 0)
    ratios = ratios[~np.isnan(ratios)]
    return {"ratio": float(oth.sum() / ref.sum()), **paired.interval(ratios), **paired.sizes()}


def paired_bootstrap_difference(
    reference: Sequence[float], other: Sequence[float], **options: Unpack[BootstrapOptions]
) -> dict[str, float]:
    """How far ``other``'s mean score lies above (or below) ``reference``'s on the same questions, with the same
    paired percentile bootstrap as :func:`paired_bootstrap_ratio` (same seed, same resamples of the questions).

    Returns the mean difference ``mean(other - reference)``, its interval, and on how many questions ``other``
    scores higher (``better``) or lower (``worse``). An interval that excludes 0 says the gap is larger than the
    noise of this question sample. Options: :class:`BootstrapOptions`.
    """
    paired = _paired_resamples(reference, other, **options)
    ref, oth = paired.reference, paired.other
    differences = (paired.other_sums - paired.reference_sums) / len(ref)
    return {
        "difference": float((oth - ref).mean()),
        **paired.interval(differences),
        "better": int((oth > ref).sum()),
        "worse": int((oth < ref).sum()),
        **paired.sizes(),
    }
