import math

import numpy as np
import pytest
from haystack import Document
from haystack.components.evaluators import DocumentMRREvaluator, DocumentNDCGEvaluator, DocumentRecallEvaluator

from distill.common import metrics


def test_normalize_answer_follows_squad():
    assert metrics.normalize_answer("The  Mediterranean Sea!") == "mediterranean sea"
    assert metrics.normalize_answer("an apple, a pear") == "apple pear"


def test_exact_match_and_f1_take_the_best_gold():
    golds = ["the Mediterranean Sea", "Mediterranean"]
    assert metrics.exact_match("Mediterranean sea.", golds) == 1.0
    assert metrics.exact_match("the sea", golds) == 0.0
    # "sea" vs "mediterranean sea": precision 1, recall 1/2 -> F1 2/3; vs "mediterranean": 0.
    assert metrics.f1_score("the sea", golds) == pytest.approx(2 / 3)
    assert metrics.f1_score(None, golds) == 0.0
    assert metrics.exact_match(None, golds) == 0.0


def test_ranking_metrics_by_hand():
    retrieved = ["d3", "d1", "d7"]
    assert metrics.first_relevant_rank(retrieved, ["d1"]) == 2
    assert metrics.recall_at_k(retrieved, ["d1"], 1) == 0.0
    assert metrics.recall_at_k(retrieved, ["d1"], 2) == 1.0
    assert metrics.reciprocal_rank(retrieved, ["d1"]) == 0.5
    assert metrics.ndcg_at_k(retrieved, ["d1"]) == pytest.approx(1 / math.log2(3))
    assert metrics.ndcg_at_k(retrieved, ["d9"]) == 0.0


def test_best_per_source_keeps_each_documents_best_ranked_chunk():
    sources = {"a1": "A", "a2": "A", "b1": "B"}
    assert metrics.best_per_source(["a2", "b1", "a1", "c", "b1"], sources) == [0, 1, 3]
    assert metrics.best_per_source(["x", "y"], {}) == [0, 1]  # ids it does not know are documents of their own
    assert metrics.best_per_source([], sources) == []


def test_haystack_evaluators_agree_with_our_computation():
    """The eval uses Haystack's evaluators; check them against the hand computation on a made-up case."""
    retrieved = [["a", "b", "c"], ["x", "y", "z"], ["m", "n", "o"]]
    gold = [["b"], ["z", "x"], ["q"]]
    as_docs = lambda rows: [[Document(id=i, content=i) for i in row] for row in rows]  # noqa: E731
    recall = DocumentRecallEvaluator(document_comparison_field="id").run(as_docs(gold), as_docs(retrieved))
    mrr = DocumentMRREvaluator(document_comparison_field="id").run(as_docs(gold), as_docs(retrieved))
    ndcg = DocumentNDCGEvaluator(document_comparison_field="id").run(as_docs(gold), as_docs(retrieved))
    ours_recall = [metrics.recall_at_k(r, g, 3) for r, g in zip(retrieved, gold)]
    ours_mrr = [metrics.reciprocal_rank(r, g) for r, g in zip(retrieved, gold)]
    ours_ndcg = [metrics.ndcg_at_k(r, g) for r, g in zip(retrieved, gold)]
    assert recall["individual_scores"] == ours_recall == [1.0, 1.0, 0.0]
    assert mrr["individual_scores"] == pytest.approx(ours_mrr) and ours_mrr == [0.5, 1.0, 0.0]
    assert ndcg["individual_scores"] == pytest.approx(ours_ndcg)
    # Two relevant at ranks 1 and 3: DCG = 1 + 1/2, IDCG = 1 + 1/log2(3).
    assert ours_ndcg[1] == pytest.approx(1.5 / (1 + 1 / math.log2(3)))


def test_graded_ndcg_by_hand_and_against_haystack():
    retrieved = ["a", "b", "c"]
    gold, grades = ["b", "c", "d"], [2.0, 1.0, 1.0]
    # DCG = 2/log2(3) + 1/log2(4); ideal: 2/log2(2) + 1/log2(3) + 1/log2(4).
    graded = (2 / math.log2(3) + 1 / 2) / (2 + 1 / math.log2(3) + 1 / 2)
    binary = (1 / math.log2(3) + 1 / 2) / (1 + 1 / math.log2(3) + 1 / 2)
    assert metrics.ndcg_at_k(retrieved, gold, 10, grades) == pytest.approx(graded) == pytest.approx(0.562727, abs=1e-6)
    assert metrics.ndcg_at_k(retrieved, gold, 10) == pytest.approx(binary) == pytest.approx(0.530721, abs=1e-6)
    # Haystack's evaluator reads the same grades from the ground-truth documents' score.
    truth = [Document(id=g, content=g, score=s) for g, s in zip(gold, grades)]
    ret = [Document(id=i, content=i) for i in retrieved]
    assert DocumentNDCGEvaluator(document_comparison_field="id").run([truth], [ret])["score"] == pytest.approx(graded)
    # With more relevant documents than k, the ideal DCG keeps the best k (trec_eval's ndcg_cut), unlike Haystack's.
    many = [f"g{i}" for i in range(12)]
    assert metrics.ndcg_at_k(many[:10], many, 10) == pytest.approx(1.0)
    truth = [Document(id=g, content=g) for g in many]
    haystack = DocumentNDCGEvaluator(document_comparison_field="id").run(
        [truth], [[Document(id=i, content=i) for i in many[:10]]]
    )
    assert haystack["score"] < 0.95
    with pytest.raises(ValueError):
        metrics.ndcg_at_k(retrieved, gold, 10, [1.0])


def test_agreement_metrics_by_hand():
    assert metrics.overlap_at_k(["a", "b", "c", "x"], ["c", "a", "y", "z"], 4) == 0.5
    assert metrics.overlap_at_k(["a"], ["a", "b"], 10) == 0.1  # always out of k
    # Silver gains for k = 3: a 3, b 2, c 1. Retrieved b, a, x: DCG = 2 + 3/log2(3); ideal 3 + 2/log2(3) + 1/2.
    silver = (2 + 3 / math.log2(3)) / (3 + 2 / math.log2(3) + 1 / 2)
    assert metrics.silver_ndcg_at_k(["b", "a", "x"], ["a", "b", "c"], 3) == pytest.approx(silver)
    assert metrics.silver_ndcg_at_k(["a", "b", "c"], ["a", "b", "c"], 3) == pytest.approx(1.0)
    assert metrics.silver_gains(["a", "b"], 10) == (["a", "b"], [10.0, 9.0])
    # Union a, b, c, d; ranks (1, 2, 3, 4) against (2, 1, 4, 3): covariance 3, variance 5 -> 0.6.
    assert metrics.rank_correlation_at_k(["a", "b", "c"], ["b", "a", "d"], 3) == pytest.approx(0.6)
    # k = 2, union a, x, y; ranks (1, 2, 3) against (1, 3, 2) (a missing document at rank k + 1 = 3) -> 0.5.
    assert metrics.rank_correlation_at_k(["a", "x"], ["a", "y"], 2) == pytest.approx(0.5)
    # Nothing in common: ranks (1, 2, 3, 3) against (3, 3, 1, 2) -> -2.25 / 2.75.
    assert metrics.rank_correlation_at_k(["a", "b"], ["c", "d"], 2) == pytest.approx(-2.25 / 2.75)
    assert metrics.rank_correlation_at_k(["a", "b", "c"], ["a", "b", "c"], 3) == pytest.approx(1.0)
    assert metrics.rank_correlation_at_k([], ["a"], 10) == 0.0  # a constant rank vector: no correlation to take
    assert metrics.rank_correlation_at_k([], [], 10) == 1.0


def test_lenient_answer_recall():
    passages = ["Paris is the capital.", "The Nile flows north."]
    assert metrics.answer_in_passages(passages, ["the nile"], 2) == 1.0
    assert metrics.answer_in_passages(passages, ["the nile"], 1) == 0.0
    assert metrics.answer_in_passages(passages, ["a"], 2) == 0.0  # normalises to empty: never counts


def test_percentiles_match_numpy():
    import numpy as np

    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    assert metrics.percentile(values, 50) == pytest.approx(np.percentile(values, 50))
    assert metrics.percentile(values, 95) == pytest.approx(np.percentile(values, 95))
    summary = metrics.latency_summary(values)
    assert summary["n"] == 6 and summary["mean_ms"] == pytest.approx(27 / 6)


def test_paired_bootstrap_ratio_by_hand():
    # Every resample of two questions where the other system scores exactly half: the ratio is 0.5 in all of them.
    r = metrics.paired_bootstrap_ratio([0.8, 0.4], [0.4, 0.2], resamples=50)
    assert r["ratio"] == pytest.approx(0.5) and r["low"] == pytest.approx(0.5) and r["high"] == pytest.approx(0.5)
    assert r["questions"] == 2 and r["resamples"] == 50 and r["confidence"] == 0.95
    # Identical systems keep 100% with no spread.
    same = metrics.paired_bootstrap_ratio([1.0, 0.0, 0.5], [1.0, 0.0, 0.5])
    assert (same["ratio"], same["low"], same["high"]) == (1.0, 1.0, 1.0)


def test_paired_bootstrap_difference_by_hand():
    # The other system scores 0.25 higher on every question: every resample's mean difference is exactly 0.25.
    d = metrics.paired_bootstrap_difference([0.5, 0.25, 0.0], [0.75, 0.5, 0.25], resamples=50)
    assert (d["difference"], d["low"], d["high"]) == pytest.approx((0.25, 0.25, 0.25))
    assert (d["better"], d["worse"], d["questions"], d["resamples"]) == (3, 0, 3, 50)
    # One question won by 1, one lost by 1, one tied: mean 0; the interval spans both signs and stays within [-1, 1].
    mixed = metrics.paired_bootstrap_difference([0.0, 1.0, 0.5], [1.0, 0.0, 0.5], resamples=500, seed=1)
    assert mixed["difference"] == 0.0 and (mixed["better"], mixed["worse"]) == (1, 1)
    assert -1.0 <= mixed["low"] < 0.0 < mixed["high"] <= 1.0
    # A reference that scores zero everywhere is no obstacle to a difference (unlike a ratio).
    assert metrics.paired_bootstrap_difference([0.0, 0.0], [1.0, 0.0])["difference"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="equally long"):
        metrics.paired_bootstrap_difference([1.0], [1.0, 0.0])


def test_paired_bootstrap_difference_shares_the_ratios_resamples():
    rng = np.random.default_rng(2)
    ref = rng.uniform(size=300)
    other = np.clip(ref + rng.normal(0.02, 0.1, size=300), 0, 1)
    d = metrics.paired_bootstrap_difference(ref, other, seed=5)
    r = metrics.paired_bootstrap_ratio(ref, other, seed=5)
    assert d["low"] < d["difference"] < d["high"]
    # The same resamples of the questions: with equal sums per resample, difference = (ratio - 1) * mean(reference)
    # holds for the point estimate, and the two intervals agree in sign.
    assert d["difference"] == pytest.approx((r["ratio"] - 1) * ref.mean())
    assert (d["low"] > 0) == (r["low"] > 1) and (d["high"] > 0) == (r["high"] > 1)


def test_paired_bootstrap_interval_covers_the_ratio_and_narrows_with_more_questions():
    rng = np.random.default_rng(1)
    ref = rng.uniform(size=400)
    other = ref * rng.uniform(0.8, 1.1, size=400)
    small = metrics.paired_bootstrap_ratio(ref[:40], other[:40], seed=3)
    large = metrics.paired_bootstrap_ratio(ref, other, seed=3)
    for r in (small, large):
        assert r["low"] < r["ratio"] < r["high"]
    assert large["high"] - large["low"] < small["high"] - small["low"]
    # Seeded: the same call gives the same interval.
    assert metrics.paired_bootstrap_ratio(ref[:40], other[:40], seed=3) == small
    # Pairing matters: shuffling one side's questions (same means) widens the interval.
    unpaired = metrics.paired_bootstrap_ratio(ref, rng.permutation(other), seed=3)
    assert unpaired["high"] - unpaired["low"] > large["high"] - large["low"]


@pytest.mark.parametrize(
    ("reference", "other", "kwargs", "message"),
    [
        ([1.0, 1.0], [1.0], {}, "equally long"),
        ([], [], {}, "at least one question"),
        ([0.0, 0.0], [1.0, 1.0], {}, "sum to zero"),
        ([1.0], [1.0], {"confidence": 1.5}, "confidence"),
        ([1.0], [1.0], {"resamples": 0}, "resamples"),
    ],
)
def test_paired_bootstrap_rejects_bad_input(reference, other, kwargs, message):
    with pytest.raises(ValueError, match=message):
        metrics.paired_bootstrap_ratio(reference, other, **kwargs)
