"""Quality and latency metrics as pure functions (no Haystack, no models), so tests can check them by hand.

Answer normalisation and F1 follow the official SQuAD v1.1 evaluation script (Rajpurkar et al., 2016).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

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


def recall_at_k(retrieved: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1 if any relevant document is among the top k (single-hit recall, as in Haystack's evaluator)."""
    rank = first_relevant_rank(retrieved[:k], gold)
    return float(rank is not None)


def reciprocal_rank(retrieved: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    rank = first_relevant_rank(retrieved[:k], gold)
    return 1.0 / rank if rank else 0.0


def ndcg_at_k(retrieved: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    """Binary-relevance nDCG@k."""
    gold = set(gold)
    if not gold:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, doc_id in enumerate(retrieved[:k]) if doc_id in gold)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold), k)))
    return dcg / idcg


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
