"""benchmarks.shared_questions: runs over overlapping question samples compared on the questions they share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import shared_questions
from distill.errors import DistillError
from distill.evaluation.report import write_report


def _run(out: Path, pipelines: dict[str, dict[str, float]], *, context: str = "retrieved", answers=None) -> Path:
    """An eval run folder: ``pipelines`` maps a name to each question id's F1 (EM is F1 == 1)."""
    ids = sorted({i for scores in pipelines.values() for i in scores})
    rows = [
        {
            "id": i,
            "gold_doc_ids": [f"d{i}"],
            "answers": (answers or {}).get(i, [f"answer {i}"]),
            "runs": {
                name: {
                    "f1": scores[i],
                    "em": float(scores[i] == 1.0),
                    "answer_doc": f"d{i}" if scores[i] else "x",
                    "answer_score": 0.5,
                    "no_answer": False,
                }
                for name, scores in pipelines.items()
            },
        }
        for i in ids
    ]
    report = {
        "context": context,
        "dataset": {"source": "squad.json", "documents": 3, "questions": len(ids), "fingerprint": str(len(ids))},
        "pipelines": {name: {"quality": {"f1": 0.0, "exact_match": 0.0}} for name in pipelines},
    }
    write_report(report, rows, out)
    return out


def test_compares_on_the_shared_questions_only(tmp_path: Path) -> None:
    small = _run(tmp_path / "teacher", {"teacher": {"a": 1.0, "b": 0.5}})
    large = _run(tmp_path / "students", {"student": {"a": 0.0, "b": 0.5, "c": 1.0}})
    result = shared_questions.compare([small, large], "student", resamples=200)
    assert result["questions"] == 2  # c is in one run only
    teacher, student = result["pipelines"]["teacher"], result["pipelines"]["student"]
    assert teacher["f1"] == pytest.approx(75.0) and teacher["exact_match"] == pytest.approx(50.0)
    assert student["f1"] == pytest.approx(25.0)  # 0.0 and 0.5, not c's 1.0
    d = teacher["f1_minus_versus"]
    assert d["difference"] == pytest.approx(50.0) and (d["better"], d["worse"]) == (1, 0)
    assert d["low"] <= d["difference"] <= d["high"]
    assert teacher["answer_sources"]["from_gold"] == 2 and student["answer_sources"]["from_gold"] == 1
    assert "f1_minus_versus" not in student


def test_cli_writes_the_report_and_a_bad_run_is_one_line(tmp_path: Path, capsys) -> None:
    a = _run(tmp_path / "a", {"teacher": {"a": 1.0}})
    b = _run(tmp_path / "b", {"student": {"a": 0.0}})
    out = tmp_path / "shared.json"
    shared_questions.main([str(a), str(b), "--versus", "student", "--out", str(out)])
    assert json.loads(out.read_text())["pipelines"]["teacher"]["f1_minus_versus"]["difference"] == pytest.approx(100)
    assert "1 questions shared" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        shared_questions.main([str(a), str(b), "--versus", "nobody"])
    assert exit_.value.code == 2 and "no pipeline named 'nobody'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"pipelines": {"teacher": {"a": 0.0}}}, "repeats"),
        ({"pipelines": {"student": {"z": 0.0}}}, "share no question"),
        ({"pipelines": {"student": {"a": 0.0}}, "context": "gold"}, "context"),
        ({"pipelines": {"student": {"a": 0.0}}, "answers": {"a": ["another answer"]}}, "other gold"),
    ],
)
def test_runs_that_do_not_compare_are_refused(tmp_path: Path, second: dict, message: str) -> None:
    a = _run(tmp_path / "a", {"teacher": {"a": 1.0}})
    b = _run(tmp_path / "b", second.pop("pipelines"), **second)
    with pytest.raises(DistillError, match=message):
        shared_questions.compare([a, b], "teacher")
