import math
import subprocess
import sys
from pathlib import Path

import pytest

from distill.errors import DistillError
from distill.evaluation import report


def pipeline(quality: dict, p50: float, parameters: int, components: dict | None = None) -> dict:
    """One pipeline's entry as distill.evaluation.runner.evaluate writes it."""
    return {
        "query_yaml": "q.yaml",
        "indexing_yaml": "indexing.yaml",
        "quality": quality,
        "latency": {
            "query": {"p50_ms": p50, "p95_ms": 2 * p50, "mean_ms": p50, "n": 3},
            "components": components or {"text_embedder": {"p50_ms": 0.75 * p50}, "retriever": {"p50_ms": 0.25 * p50}},
        },
        "models": {"text_embedder": {"model": "m", "path": "/m", "parameters": parameters}},
        "index_seconds": 0.0,
    }


@pytest.fixture()
def evaluated() -> dict:
    """A report shaped like evaluate's: a teacher, a student (both extractive QA) and a retrieval-only pipeline."""
    retrieval = {"recall@1": 0.5, "recall@5": 0.75, "recall@10": 1.0, "mrr@10": 0.625, "ndcg@10": 0.7}
    return {
        "context": "retrieved",
        "dataset": {"fingerprint": "abc", "questions": 2},
        "pipelines": {
            "teacher": pipeline({**retrieval, "exact_match": 50.0, "f1": 62.5}, 100.0, 110_000_000),
            "student": pipeline({**retrieval, "exact_match": 25.0, "f1": 40.0}, 40.0, 23_000_000),
            "student-retrieval": pipeline(retrieval, 20.0, 22_700_000),
        },
    }


def test_comparison_table_lists_every_pipeline(evaluated):
    rep = evaluated
    table = report.comparison_table(rep)
    assert table.splitlines()[0].startswith("pipeline") and "nDCG@10" in table and "F1" in table
    assert all(name in table for name in rep["pipelines"])
    md = report.comparison_table(rep, markdown=True)
    assert md.count("\n") == 1 + len(rep["pipelines"])


def test_load_report_errors(tmp_path):
    with pytest.raises(DistillError, match="does not exist"):
        report.load_report(tmp_path)
    (tmp_path / "report.json").write_text("{")
    with pytest.raises(DistillError, match="not valid JSON"):
        report.load_report(tmp_path)
    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(DistillError, match="no 'pipelines'"):
        report.load_report(tmp_path / "report.json")


def test_answer_sources_by_hand():
    def run(doc, f1, score):
        return {"answer_doc": doc, "f1": f1, "answer_score": score}

    rep = {
        "context": "retrieved",
        "pipelines": {
            "teacher": {"quality": {"f1": 50.0}},
            "student": {"quality": {"f1": 50.0}},
            "retriever": {"quality": {"ndcg@10": 1.0}},
        },
    }
    questions = [
        {"gold_doc_ids": ["g1"], "runs": {"teacher": run("x", 0.0, 0.9), "student": run("g1", 1.0, 0.6)}},
        {"gold_doc_ids": ["g2", "g3"], "runs": {"teacher": run("g3", 1.0, 0.7), "student": run("g2", 0.5, 0.8)}},
        {"gold_doc_ids": ["g4"], "runs": {"teacher": run(None, 0.0, None), "student": run("y", 0.0, 0.4)}},
    ]
    sources = report.answer_sources(rep, questions)
    assert set(sources) == {"teacher", "student"}  # a retrieval pipeline has no answers
    assert sources["teacher"] == {
        "no_answer_first": None,  # rows written before the no-answer was recorded: no rate, not zero
        "from_gold": 1,
        "questions": 3,
        "f1_from_gold": 100.0,
        "mean_answer_score": 0.8,
    }
    assert sources["student"]["from_gold"] == 2 and sources["student"]["f1_from_gold"] == pytest.approx(75.0)
    assert sources["student"]["mean_answer_score"] == pytest.approx(0.6)
    assert report.answer_source_lines(sources).splitlines()[1] == (
        "student: answer from a gold passage on 2 of 3 questions, F1 75.0 on those; mean top-answer score 0.600"
    )
    for q, refused in zip(questions, (False, True, True)):
        q["runs"]["student"]["no_answer"] = refused
    sources = report.answer_sources(rep, questions)
    assert sources["student"]["no_answer_first"] == 2 and sources["teacher"]["no_answer_first"] is None
    assert report.answer_source_lines(sources).splitlines()[1].endswith("; no-answer ranked first on 2 (66.7%)")
    assert report.answer_sources({**rep, "context": "gold"}, questions) == {}
    del questions[0]["runs"]["student"]
    with pytest.raises(DistillError, match="lack a run of 'student'"):
        report.answer_sources(rep, questions)


def test_relative_quality_by_hand():
    def run(retrieved: list[str], f1: float) -> dict:
        return {"retrieved": retrieved, "f1": f1}

    rep = {
        "pipelines": {
            "teacher": {"quality": {"ndcg@10": 1.0, "f1": 1.0}},
            "student": {"quality": {"ndcg@10": 0.8, "f1": 0.5}},
        }
    }
    questions = [
        {"gold_doc_ids": ["g"], "runs": {"teacher": run(["g", "x"], 1.0), "student": run(["x", "g"], 0.5)}},
        {"gold_doc_ids": ["g"], "runs": {"teacher": run(["g", "x"], 1.0), "student": run(["g", "x"], 0.5)}},
    ]
    relative = report.relative_quality(rep, questions, resamples=200)["student"]
    # The student ranks the gold paragraph 2nd on one question (nDCG 1/log2(3)) and 1st on the other.
    expected = (1 / math.log2(3) + 1) / 2
    assert relative["ndcg@10"]["ratio"] == pytest.approx(expected)
    assert relative["ndcg@10"]["low"] == pytest.approx(1 / math.log2(3)) and relative["ndcg@10"]["high"] == 1.0
    assert relative["f1"]["ratio"] == relative["f1"]["low"] == relative["f1"]["high"] == pytest.approx(0.5)
    text = report.relative_lines({"student": relative})
    assert text.startswith("student / teacher: nDCG@10 ") and "F1 50.0% (95% CI 50.0-50.0%)" in text
    # The same questions as paired differences against the teacher, in points.
    differences = report.paired_differences(rep, questions, "teacher", resamples=200)["student"]
    assert differences["reference"] == "teacher"
    assert differences["f1"]["difference"] == differences["f1"]["low"] == pytest.approx(-0.5)
    assert differences["ndcg@10"]["difference"] == pytest.approx(expected - 1)
    assert (differences["ndcg@10"]["better"], differences["ndcg@10"]["worse"]) == (0, 1)
    assert report.paired_differences(rep, questions, "student")["teacher"]["f1"]["difference"] == pytest.approx(0.5)
    text = report.difference_lines({"student": differences})
    assert text.startswith("student - teacher: nDCG@10 -") and "F1 -50.00 (95% CI -50.00 to -50.00; " in text
    with pytest.raises(DistillError, match="no pipeline named 'hard-label'"):
        report.paired_differences(rep, questions, "hard-label")
    del questions[1]["runs"]["student"]
    with pytest.raises(DistillError, match="lack a run"):
        report.relative_quality(rep, questions)


def test_comparison_table_columns_speed_up_and_missing_values(evaluated):
    lines = report.comparison_table(evaluated).splitlines()
    assert lines[0].split() == ["pipeline", "R@1", "R@10", "MRR@10", "nDCG@10", "EM", "F1", "p50", "ms", "p95", "ms",
                                "speed-up", "params", "(M)"]  # fmt: skip
    assert lines[2].split() == ["teacher", "0.500", "1.000", "0.625", "0.700", "50.0", "62.5", "100.0", "200.0",
                                "1.00x", "110.0"]  # fmt: skip
    assert lines[4].split()[5:] == ["-", "-", "20.0", "40.0", "5.00x", "22.7"]  # no reader: no EM, no F1
    md = report.comparison_table(evaluated, markdown=True).splitlines()
    assert md[0].startswith("| pipeline | R@1 |") and md[1] == "|" + "---|" * 11
    assert md[3] == "| student | 0.500 | 1.000 | 0.625 | 0.700 | 25.0 | 40.0 | 40.0 | 80.0 | 2.50x | 23.0 |"


def test_table_metrics_come_from_the_one_table_of_metric_names():
    from distill.common.metrics import QUALITY_METRICS

    assert report.TABLE_METRICS == [
        ("recall@1", "R@1", "{:.3f}"),
        ("recall@10", "R@10", "{:.3f}"),
        ("mrr@10", "MRR@10", "{:.3f}"),
        ("ndcg@10", "nDCG@10", "{:.3f}"),
        ("answer_recall@10", "AnsR@10", "{:.3f}"),
        ("exact_match", "EM", "{:.1f}"),
        ("f1", "F1", "{:.1f}"),
    ]
    assert {key for key, _, _ in report.TABLE_METRICS} < {m.key for m in QUALITY_METRICS}


def test_component_table(evaluated):
    lines = report.component_table(evaluated).splitlines()
    assert lines[0] == "teacher: per-component p50 ms: text_embedder 75.0, retriever 25.0"
    assert len(lines) == 3


def test_bootstrap_lines_by_hand():
    ratio = {"ratio": 0.955, "low": 0.92, "high": 0.99, "confidence": 0.95, "questions": 200}
    difference = {"difference": -0.012, "low": -0.03, "high": 0.005, "better": 3, "worse": 9, "confidence": 0.95}
    assert report.relative_lines({"student": {"reference": "teacher", "f1": ratio}}) == (
        "student / teacher: F1 95.5% (95% CI 92.0-99.0%); paired bootstrap over 200 questions"
    )
    entry = {"reference": "hard", "ndcg@10": {**difference, "questions": 200}, "f1": {**difference, "questions": 200}}
    assert report.difference_lines({"soft": entry, "other": entry}).splitlines() == [
        f"{name} - hard: nDCG@10 -1.20 (95% CI -3.00 to +0.50; better on 3, worse on 9), "
        "F1 -1.20 (95% CI -3.00 to +0.50; better on 3, worse on 9); paired bootstrap over 200 questions"
        for name in ("soft", "other")
    ]


def test_write_report_then_load_it_back(tmp_path, evaluated):
    rows = [{"id": "q1", "runs": {"teacher": {"f1": 1.0}}}, {"id": "q2", "runs": {"teacher": {"f1": 0.0}}}]
    report.write_report(evaluated, rows, tmp_path / "out")
    assert report.load_report(tmp_path / "out") == evaluated
    assert report.load_questions(tmp_path / "out" / "report.json") == rows == report.load_questions(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["questions.jsonl", "report.json"]  # no temp file
    assert report.load_questions(tmp_path) is None
    (tmp_path / "out" / "questions.jsonl").write_text("{")
    with pytest.raises(DistillError, match="not valid JSON lines"):
        report.load_questions(tmp_path / "out")


def test_merge_reports_question_by_question(tmp_path, evaluated):
    pipelines = evaluated["pipelines"]
    first = {**evaluated, "pipelines": {"teacher": pipelines["teacher"]}, "relative": {}}
    second = {**evaluated, "pipelines": {"student": pipelines["student"]}}
    rows = lambda name: [{"id": q, "runs": {name: {"f1": 1.0}}} for q in ("q1", "q2")]  # noqa: E731
    report.write_report(first, rows("teacher"), tmp_path / "a")
    report.write_report(second, rows("student"), tmp_path / "b")
    merged, questions = report.merge_reports([tmp_path / "a", tmp_path / "b"])
    assert list(merged["pipelines"]) == ["teacher", "student"] and "relative" not in merged
    assert merged["merged_from"] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert [set(q["runs"]) for q in questions] == [{"teacher", "student"}] * 2
    assert report.merge_reports([tmp_path / "a"]) == (report.load_report(tmp_path / "a"), rows("teacher"))
    with pytest.raises(DistillError, match="more than one of the reports"):
        report.merge_reports([tmp_path / "a", tmp_path / "a"])
    report.write_report(
        {**second, "dataset": {"fingerprint": "other", "questions": 2}}, rows("student"), tmp_path / "c"
    )
    with pytest.raises(DistillError, match="not evaluated on the same questions"):
        report.merge_reports([tmp_path / "a", tmp_path / "c"])
    judged = lambda labels: {**evaluated["dataset"], "judgements": labels}  # noqa: E731
    report.write_report({**first, "dataset": judged("gold-a")}, rows("teacher"), tmp_path / "j1")
    report.write_report({**second, "dataset": judged("gold-b")}, rows("student"), tmp_path / "j2")
    with pytest.raises(DistillError, match="against other gold labels"):  # same texts, other qrels
        report.merge_reports([tmp_path / "j1", tmp_path / "j2"])
    assert list(report.merge_reports([tmp_path / "j1", tmp_path / "b"])[0]["pipelines"]) == ["teacher", "student"]
    report.write_report({**second, "context": "gold"}, rows("student"), tmp_path / "d")
    with pytest.raises(DistillError, match="read with context 'gold'"):
        report.merge_reports([tmp_path / "a", tmp_path / "d"])
    report.write_report(second, rows("student")[:1], tmp_path / "e")
    with pytest.raises(DistillError, match="different question ids"):
        report.merge_reports([tmp_path / "a", tmp_path / "e"])
    (tmp_path / "b" / "questions.jsonl").unlink()
    assert report.merge_reports([tmp_path / "a", tmp_path / "b"])[1] is None


def test_labelled_reports_merge_two_runs_with_the_same_pipeline_names(tmp_path, evaluated):
    """Two `distill adapt` runs each hold a teacher and a `distilled`: LABEL=REPORT names them LABEL/NAME, agreement
    references and per-question runs included, so that the students compare question by question."""
    pipelines = {n: {**e, "agreement": {"reference": "teacher"}} for n, e in evaluated["pipelines"].items()}
    run = {**evaluated, "pipelines": pipelines}
    rows = [
        {"id": q, "gold_doc_ids": ["d1"], "runs": {n: {"f1": f1, "retrieved": ["d1"]} for n in pipelines}}
        for q, f1 in (("q1", 1.0), ("q2", 0.0))
    ]
    report.write_report(run, rows, tmp_path / "a" / "eval")
    report.write_report(run, rows, tmp_path / "b" / "eval")
    merged, questions = report.merge_reports([f"one={tmp_path / 'a' / 'eval'}", f"two={tmp_path / 'b' / 'eval'}"])
    assert list(merged["pipelines"]) == [f"{label}/{n}" for label in ("one", "two") for n in pipelines]
    assert merged["pipelines"]["two/student"]["agreement"]["reference"] == "two/teacher"
    assert merged["merged_from"] == [f"one={tmp_path / 'a' / 'eval'}", f"two={tmp_path / 'b' / 'eval'}"]
    assert set(questions[0]["runs"]) == set(merged["pipelines"])
    assert report.paired_differences(merged, questions, "one/student")["two/student"]["f1"]["difference"] == 0.0
    # One labelled report alone: its stored shares and differences name the labelled pipelines too.
    stored = {"student": {"reference": "teacher", "agreement_reference": "teacher", "f1": {"ratio": 1.0}}}
    report.write_report({**run, "relative": stored, "differences": stored}, rows, tmp_path / "c")
    alone, _ = report.merge_reports([f"one={tmp_path / 'c'}"])
    for section in ("relative", "differences"):
        assert alone[section] == {
            "one/student": {**stored["student"], "reference": "one/teacher", "agreement_reference": "one/teacher"}
        }
    assert report.split_label("x=y/z") == ("x", Path("y/z"))
    assert report.split_label(tmp_path / "a") == (None, tmp_path / "a")
    assert report.split_label("dir/x=y") == (None, Path("dir/x=y"))  # "=" in a path, not a label
    with pytest.raises(DistillError, match="LABEL=REPORT"):
        report.merge_reports([tmp_path / "a" / "eval", tmp_path / "b" / "eval"])


def test_reading_reports_imports_no_haystack():
    """The UI and the model cards read reports: importing the reader must not pay for Haystack (or torch)."""
    code = "import sys, distill.evaluation.report; print(sorted(m for m in ('haystack', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_question_whose_no_answer_ranks_first_is_counted():
    from haystack import Document
    from haystack.dataclasses import ExtractedAnswer

    from distill.data.datasets import Query
    from distill.evaluation.runner import score_question

    doc = Document(id="g", content="Paris is the capital of France.")
    query = Query(id="q", text="capital of France?", gold_doc_ids=("g",), answers=("Paris",))
    real = ExtractedAnswer(query=query.text, score=0.4, data="Paris", document=doc)
    none = ExtractedAnswer(query=query.text, score=0.6, data=None, document=None)
    refused = score_question(query, [doc], [none, real])
    assert refused["no_answer"] is True and refused["answer"] == "Paris" and refused["f1"] == 1.0
    assert score_question(query, [doc], [real, none])["no_answer"] is False


def hybrid_report() -> tuple[dict, list[dict]]:
    """Teacher and student hybrid RAG pipelines (their fused lists) and each one's embedding retriever list, as
    `distill eval` writes them; a plain retrieval pipeline (its list is its embedding retriever's) beside them."""
    fused = {"component": "joiner", "role": "joiner", "into": "prompt_builder"}

    def view(of: str) -> dict:
        return {"component": "embedding_retriever", "role": "retriever", "of": of}

    rep = {
        "pipelines": {
            "teacher": {"quality": {"ndcg@10": 1.0}, "scored": fused},
            "student": {"quality": {"ndcg@10": 1.0}, "scored": fused},
            "plain": {"quality": {"ndcg@10": 0.5}, "scored": {"component": "r", "role": "retriever", "into": None}},
            "teacher [embedding_retriever]": {"quality": {"ndcg@10": 1.0}, "scored": view("teacher")},
            "student [embedding_retriever]": {"quality": {"ndcg@10": 0.5}, "scored": view("student")},
        }
    }
    # BM25 puts the gold passage first in both fused lists; the student's own list has it second.
    runs = {
        "teacher": ["g", "x"],
        "student": ["g", "x"],
        "plain": ["x", "g"],
        "teacher [embedding_retriever]": ["g", "x"],
        "student [embedding_retriever]": ["x", "g"],
    }
    questions = [{"gold_doc_ids": ["g"], "runs": {n: {"retrieved": r} for n, r in runs.items()}} for _ in range(2)]
    return rep, questions


def test_a_pipelines_embedding_list_is_compared_with_the_others_embedding_list():
    rep, questions = hybrid_report()
    assert report.pipeline_of(rep, "student [embedding_retriever]") == "student" == report.pipeline_of(rep, "student")
    assert report.counterpart(rep, "student", "teacher") == "teacher"
    assert report.counterpart(rep, "student [embedding_retriever]", "teacher") == "teacher [embedding_retriever]"
    # a plain pipeline's own list is its embedding retriever's: the counterpart of an embedding list
    assert report.counterpart(rep, "student [embedding_retriever]", "plain") == "plain"
    rep["pipelines"]["plain"]["scored"]["role"] = "ranker"
    assert report.counterpart(rep, "student [embedding_retriever]", "plain") is None
    relative = report.relative_quality(rep, questions, resamples=50)
    assert relative["student"]["reference"] == "teacher" and relative["student"]["ndcg@10"]["ratio"] == 1.0
    embedding = relative["student [embedding_retriever]"]
    assert embedding["reference"] == "teacher [embedding_retriever]"
    assert embedding["ndcg@10"]["ratio"] == pytest.approx(1 / math.log2(3))
    assert "teacher [embedding_retriever]" not in relative  # against itself: nothing to say
    differences = report.paired_differences(rep, questions, "student", resamples=50)
    assert differences["teacher [embedding_retriever]"]["reference"] == "student [embedding_retriever]"
    assert differences["teacher"]["ndcg@10"]["difference"] == 0.0
    assert "student [embedding_retriever]" not in differences


def test_scored_lines_name_each_list_and_say_nothing_for_plain_pipelines():
    rep, _ = hybrid_report()
    assert report.scored_lines(rep).splitlines() == [
        "teacher: scored the documents of 'joiner' (joiner, the list entering 'prompt_builder')",
        "student: scored the documents of 'joiner' (joiner, the list entering 'prompt_builder')",
        "plain: scored the documents of 'r' (retriever, the pipeline's output)",
        "teacher [embedding_retriever]: scored the list of embedding retriever 'embedding_retriever' in 'teacher', "
        "in the same run",
        "student [embedding_retriever]: scored the list of embedding retriever 'embedding_retriever' in 'student', "
        "in the same run",
    ]
    plain = {"component": "retriever", "role": "retriever", "into": "reader"}
    assert report.scored_lines({"pipelines": {"a": {"scored": plain}, "b": {}, "c": {"scored": None}}}) == ""
