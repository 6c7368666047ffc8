import json
import math

import pytest
from conftest import write_judged_beir

from distill.data.datasets import load_beir, load_queries, with_queries
from distill.errors import DistillError
from distill.evaluation import runner as evaluation
from distill.evaluation.agreement import add_agreement, question_agreement
from distill.evaluation.report import agreement_table, load_questions, paired_differences
from distill.pipelines import loading as pipelines

RELEVANCE = {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "answer_recall@10", "exact_match", "f1"}


def rows(*questions: dict[str, list[str]]) -> list[dict]:
    return [
        {"id": f"q{i}", "gold_doc_ids": [], "runs": {n: {"retrieved": r} for n, r in q.items()}}
        for i, q in enumerate(questions)
    ]


def test_add_agreement_by_hand():
    per_question = rows(
        {"teacher": ["a", "b", "c"], "student": ["b", "a", "d"], "other": ["a", "b", "c"]},
        {"teacher": ["x", "y"], "student": ["z"], "other": ["x", "y"]},
    )
    report = {"pipelines": {"teacher": {}, "student": {}, "other": {}}}
    add_agreement(report, per_question, "teacher")
    student = report["pipelines"]["student"]["agreement"]
    assert student["reference"] == "teacher" and student["questions"] == 2
    assert student["overlap@10"] == pytest.approx((2 / 10 + 0 / 10) / 2)
    first = question_agreement(["b", "a", "d"], ["a", "b", "c"])
    assert per_question[0]["runs"]["student"]["agreement"] == {k: round(v, 6) for k, v in first.items()}
    # Silver gains a 10, b 9, c 8: retrieved b, a, d -> DCG 9 + 10/log2(3); ideal 10 + 9/log2(3) + 8/2.
    silver = (9 + 10 / math.log2(3)) / (10 + 9 / math.log2(3) + 4)
    assert student["silver_ndcg@10"] == pytest.approx((silver + 0.0) / 2)
    # The reference's own row holds the trivially perfect values; a copy of it scores the same.
    for name in ("teacher", "other"):
        entry = report["pipelines"][name]["agreement"]
        assert [entry[k] for k in ("overlap@10", "silver_ndcg@10", "rank_correlation@10")] == [0.2 * 1.25, 1.0, 1.0]
    with pytest.raises(DistillError, match="--reference 'nobody' names none of the pipelines: teacher, student"):
        add_agreement(report, per_question, "nobody")
    text = agreement_table(report)
    assert text.startswith("agreement with teacher, top 10") and "teacher (reference)" in text
    assert "silver nDCG: teacher's ranks 1-10 as gains 10-1" in text


def test_readers_on_the_gold_paragraph_get_no_agreement():
    # As distill eval writes them with --context gold: an empty retrieved list (or none, in older reports).
    per_question = [
        {"id": "q", "runs": {"teacher": {"em": 1.0, "retrieved": []}, "student": {"em": 0.0, "retrieved": []}}},
        {"id": "r", "runs": {"teacher": {"em": 1.0}, "student": {"em": 0.0}}},
    ]
    report = {"pipelines": {"teacher": {}, "student": {}}}
    add_agreement(report, per_question, "teacher")
    assert report == {"pipelines": {"teacher": {}, "student": {}}} and agreement_table(report) == ""


@pytest.fixture(scope="module")
def systems(tiny_pipelines, tiny_embedder, tiny_embedder_wide, tmp_path_factory):
    """Retrieval pipelines of the wide (teacher) and narrow (student) tiny embedders, each in an index of its own."""
    out = {}
    for name, model in (("teacher", tiny_embedder_wide), ("student", tiny_embedder)):
        folder = tmp_path_factory.mktemp(name)
        for path in tiny_pipelines.glob("*.yaml"):
            data = pipelines.swap(pipelines.read_pipeline_dict(path), model=str(model), index=f"agree-{name}")
            (folder / path.name).write_text(pipelines.dump_pipeline_dict(data))
        out[name] = evaluation.System.parse(f"{name}={folder / 'retrieval.yaml'}")
    return [out["teacher"], out["student"]]


def test_graded_relevance_and_agreement_through_real_pipelines(systems, tmp_path):
    # Three questions with one text, so one ranking of the three passages, and each question grades another passage
    # 2 (the others 1): whatever that ranking, one question finds its grade-2 passage at rank 1, one at 2, one at 3.
    queries = [{"_id": f"q{i}", "text": "which passage"} for i in range(3)]
    qrels = "".join(f"q{i}\t{doc}\t{2 if j == i else 1}\n" for i in range(3) for j, doc in enumerate("ABC"))
    data = load_beir(write_judged_beir(tmp_path / "beir", qrels, queries), "dev")
    report = evaluation.evaluate(systems, data, warmup=0, out_dir=tmp_path / "out", progress=False)
    ideal = 2 + 1 / math.log2(3) + 1 / 2
    graded = (1 + (1 + 2 / math.log2(3) + 1 / 2) / ideal + (1 + 1 / math.log2(3) + 2 / 2) / ideal) / 3
    for name in ("teacher", "student"):
        quality = report["pipelines"][name]["quality"]
        assert quality["ndcg@10"] == pytest.approx(graded)  # binary relevance would give 1.0: all three retrieved
        assert quality["recall@1"] == quality["mrr@10"] == 1.0  # recall and MRR stay binary
    questions = load_questions(tmp_path / "out")
    assert [q["gold_grades"] for q in questions] == [[2.0, 1.0, 1.0], [1.0, 2.0, 1.0], [1.0, 1.0, 2.0]]
    # Both retrieve all three passages: overlap 3/10 each; the teacher's own row is the ceiling.
    student = report["pipelines"]["student"]["agreement"]
    assert student["reference"] == "teacher" and student["overlap@10"] == pytest.approx(0.3)
    assert report["pipelines"]["teacher"]["agreement"]["silver_ndcg@10"] == pytest.approx(1.0)
    expected = question_agreement(
        questions[0]["runs"]["student"]["retrieved"], questions[0]["runs"]["teacher"]["retrieved"]
    )
    assert student["silver_ndcg@10"] == pytest.approx(expected["silver_ndcg@10"])


def test_unlabelled_queries_report_agreement_and_no_relevance(systems, tmp_path, tiny_squad):
    from distill.data.datasets import load_squad_file

    path = tmp_path / "log.txt"
    path.write_text("Where was Mozart born?\n\nWhat is the capital of France?\nwho painted it\n", encoding="utf-8")
    data = with_queries(load_squad_file(tiny_squad), load_queries(path))
    report = evaluation.evaluate(systems, data, warmup=0, out_dir=tmp_path / "out", progress=False, reference="student")
    for name, entry in report["pipelines"].items():
        assert not RELEVANCE & set(entry["quality"]), name  # absent, not zeros
        assert entry["agreement"]["reference"] == "student" and entry["agreement"]["questions"] == 3
    assert report["pipelines"]["student"]["agreement"]["rank_correlation@10"] == 1.0
    assert report["relative"] == {} and report["dataset"]["blank_query_lines"] == 1
    questions = load_questions(tmp_path / "out")
    overlaps = [q["runs"]["teacher"]["agreement"]["overlap@10"] for q in questions]
    assert report["pipelines"]["teacher"]["agreement"]["overlap@10"] == pytest.approx(sum(overlaps) / 3)
    with pytest.raises(DistillError, match="--reference 'nobody' names none of the pipelines: teacher, student"):
        evaluation.evaluate(systems, data, progress=False, reference="nobody")


def test_agreement_differences_against_a_third_pipeline():
    per_question = rows(
        {"teacher": ["a", "b"], "s1": ["a", "b"], "s2": ["b", "x"]},
        {"teacher": ["c", "d"], "s1": ["c", "y"], "s2": ["c", "d"]},
    )
    report = {"pipelines": {"teacher": {"quality": {}}, "s1": {"quality": {}}, "s2": {"quality": {}}}}
    add_agreement(report, per_question, "teacher")
    differences = paired_differences(report, per_question, "s1", resamples=200)
    s2 = differences["s2"]
    assert s2["agreement_reference"] == "teacher"
    # overlap@10: s1 0.2 and 0.1, s2 0.1 and 0.2 -> mean difference 0.
    assert s2["overlap@10"]["difference"] == pytest.approx(0.0) and s2["overlap@10"]["better"] == 1
    # Against the reference itself, agreement is 1 by definition: no difference is taken.
    assert "overlap@10" not in paired_differences(report, per_question, "teacher", resamples=50).get("s1", {})
    assert json.dumps(differences)  # JSON-safe, as report.json holds it


def test_embedding_lists_agree_with_the_references_embedding_list():
    """Fused with fused, embedding list with embedding list: each row's reference is the reference pipeline's row
    of the same kind, and the tables say so."""
    fused = {"component": "joiner", "role": "joiner", "into": "prompt_builder"}
    view = {"component": "embedding_retriever", "role": "retriever"}
    report = {
        "pipelines": {
            "teacher": {"scored": fused},
            "student": {"scored": fused},
            "teacher [embedding_retriever]": {"scored": {**view, "of": "teacher"}},
            "student [embedding_retriever]": {"scored": {**view, "of": "student"}},
        }
    }
    per_question = rows(
        {
            "teacher": ["a", "b"],
            "student": ["a", "b"],
            "teacher [embedding_retriever]": ["a", "b"],
            "student [embedding_retriever]": ["c", "d"],
        }
    )
    add_agreement(report, per_question, "teacher")
    entries = {name: entry["agreement"] for name, entry in report["pipelines"].items()}
    assert entries["student"]["reference"] == "teacher" and entries["student"]["overlap@10"] == 0.2
    assert entries["student [embedding_retriever]"]["reference"] == "teacher [embedding_retriever]"
    assert entries["student [embedding_retriever]"]["overlap@10"] == 0.0
    assert entries["teacher [embedding_retriever]"]["reference"] == "teacher [embedding_retriever]"
    table = agreement_table(report)
    assert "agreement with teacher, top 10" in table and "agreement with teacher [embedding_retriever], top 10" in table
    assert "teacher [embedding_retriever] (reference)" in table
    # --reference names a pipeline or one of its lists: the same pairs either way
    add_agreement(report, per_question, "teacher [embedding_retriever]")
    assert report["pipelines"]["student"]["agreement"]["reference"] == "teacher"
