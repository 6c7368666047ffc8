"""Agreement with a reference pipeline: how closely each pipeline's top 10 follows the reference's (the teacher's).

Evaluation without relevance labels measures a student by the teacher's rankings, and with labels it says how much
of the teacher's behaviour a student kept beside how relevant its passages are. Per question and pipeline, against
the reference's top 10 (:mod:`distill.common.metrics` holds the maths):

- ``overlap@10``: the share of the reference's top 10 that the pipeline also retrieved;
- ``silver_ndcg@10``: nDCG@10 against the reference's top 10 as graded silver labels (the reference's rank 1 gains 10,
  rank 2 gains 9, ..., rank 10 gains 1);
- ``rank_correlation@10``: Spearman's rank correlation over the union of both top-10 lists, a document missing from a
  list taking rank 11.

The reference's own entry holds its agreement with itself, the ceiling (1 each; overlap@10 is below 1 only where
fewer than 10 passages were retrieved, as in a corpus of fewer), so every pipeline of a report has a row;
tables mark it as the reference (:func:`distill.evaluation.report.agreement_table`). Like
:mod:`distill.evaluation.report`, nothing here
imports Haystack or runs a model.
"""

from __future__ import annotations

from typing import Any

from distill.common import metrics
from distill.errors import DistillError
from distill.evaluation.report import counterpart, pipeline_of

K = 10
AGREEMENT_KEYS = tuple(m.key for m in metrics.AGREEMENT_METRICS)


def question_agreement(retrieved: list[str], reference: list[str], k: int = K) -> dict[str, float]:
    """The agreement of one question's top ``k`` with the reference's top ``k``, by agreement key."""
    return {
        "overlap@10": metrics.overlap_at_k(retrieved, reference, k),
        "silver_ndcg@10": metrics.silver_ndcg_at_k(retrieved, reference, k),
        "rank_correlation@10": metrics.rank_correlation_at_k(retrieved, reference, k),
    }


def retrieving_pipelines(per_question: list[dict[str, Any]], names: list[str]) -> list[str]:
    """The pipelines that retrieved a document for some question (readers asked on the gold paragraph retrieve none:
    their rows carry an empty ``retrieved``)."""
    return [n for n in names if any(row["runs"].get(n, {}).get("retrieved") for row in per_question)]


def add_agreement(report: dict[str, Any], per_question: list[dict[str, Any]], reference: str) -> None:
    """Put each retrieving pipeline's agreement with ``reference`` into the per-question rows (``run["agreement"]``)
    and its mean into the report (``report["pipelines"][name]["agreement"]``, with ``reference`` and ``questions``).

    Like is compared with like (:func:`distill.evaluation.report.counterpart`): a pipeline's own list with
    ``reference``'s, an embedding retriever's list (``student [embedding_retriever]``) with ``reference``'s embedding
    retriever list, which becomes that row's reference. Nothing is added when ``reference`` retrieves nothing (a
    gold-context report of readers)."""
    names = list(report["pipelines"])
    if reference not in names:
        raise DistillError(f"--reference {reference!r} names none of the pipelines: {', '.join(names)}")
    retrieving = retrieving_pipelines(per_question, names)
    if reference not in retrieving:
        return
    for name in retrieving:
        against = counterpart(report, name, pipeline_of(report, reference))
        if against is None or against not in retrieving:
            continue
        sums = dict.fromkeys(AGREEMENT_KEYS, 0.0)
        for row in per_question:
            run, ref = row["runs"][name], row["runs"][against]
            values = question_agreement(run["retrieved"], ref["retrieved"])
            run["agreement"] = {key: round(value, 6) for key, value in values.items()}
            for key, value in values.items():
                sums[key] += value
        report["pipelines"][name]["agreement"] = {
            "reference": against,
            **{key: total / len(per_question) for key, total in sums.items()},
            "questions": len(per_question),
        }
