import json
import os

import pytest
from ui_workspace import write_student_folder

from distill import catalog
from distill.errors import DistillError


def write_report(path, pipelines=2):
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {"pipelines": {f"p{i}": {"quality": {}} for i in range(pipelines)}}
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def test_expand_globs_in_order_and_keeps_plain_missing_paths(tmp_path):
    write_report(tmp_path / "runs" / "b" / "report.json")
    write_report(tmp_path / "runs" / "a" / "report.json")
    write_report(tmp_path / "bench" / "x.json")
    patterns = os.pathsep.join(["runs/*/report.json", "bench/*.json", "missing/report.json", "runs/a/report.json"])
    found = catalog.expand(patterns, base_dir=tmp_path)
    assert [catalog.display_path(p, tmp_path) for p in found] == [
        "runs/a/report.json",
        "runs/b/report.json",
        "bench/x.json",
        "missing/report.json",
    ]
    assert catalog.expand("runs/*", base_dir=tmp_path, dirs=True) == [tmp_path / "runs" / "a", tmp_path / "runs" / "b"]
    assert catalog.expand("nothing/*", base_dir=tmp_path) == []


def test_read_reports_keeps_errors_beside_good_reports(tmp_path):
    good = write_report(tmp_path / "good" / "report.json")
    single = write_report(tmp_path / "single" / "report.json", pipelines=1)
    broken = tmp_path / "broken" / "report.json"
    broken.parent.mkdir()
    broken.write_text("{not json", encoding="utf-8")
    missing = tmp_path / "missing" / "report.json"
    entries = catalog.read_reports([single, broken, missing, good], base_dir=tmp_path)
    assert [e.label for e in entries] == ["single", "broken", "missing", "good"]
    assert [e.ok for e in entries] == [True, False, False, True]
    assert "is not valid JSON" in entries[1].error
    assert "does not exist" in entries[2].error
    assert catalog.live_report(entries) is entries[3]  # the first with two pipelines


def test_load_questions(tmp_path):
    report = write_report(tmp_path / "r" / "report.json")
    with pytest.raises(DistillError, match="questions.jsonl does not exist"):
        catalog.load_questions(report)
    rows = [{"id": "q1", "runs": {"p0": {"rank": 1}}}]
    (tmp_path / "r" / "questions.jsonl").write_text(json.dumps(rows[0]) + "\n\n", encoding="utf-8")
    assert catalog.load_questions(report) == rows
    assert catalog.load_questions(tmp_path / "r") == rows
    (tmp_path / "r" / "questions.jsonl").write_text('{"id": "q1"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DistillError, match="line 2 is not valid JSON"):
        catalog.load_questions(report)
    (tmp_path / "r" / "questions.jsonl").write_text('{"id": "q1"}\n', encoding="utf-8")
    with pytest.raises(DistillError, match="row 1 has no 'runs'"):
        catalog.load_questions(report)


def test_load_student_reads_every_file(tmp_path):
    student = catalog.load_student(write_student_folder(tmp_path / "s1"))
    assert student.name == "s1" and student.files == tmp_path / "s1" and student.problems == []
    assert student.card.startswith("# tiny-distilled")
    assert student.config["losses"][1] == {"name": "similarity_matrix", "weight": 0.5}
    assert student.metrics["dev"]["recall@10"] == 0.9
    assert student.log[0]["loss/listwise_kl"] == pytest.approx(0.6 / 10**0.5)
    assert [r["step"] for r in student.log if "dev/recall@10" in r] == [50, 100]


def test_load_student_in_the_trainers_layout(tmp_path):
    # The trainer keeps config.yaml and train_log.jsonl in the run folder and saves all four files in student/.
    run = tmp_path / "minilm-squad"
    write_student_folder(run / "student")
    (run / "config.yaml").write_text("seed: 1\n", encoding="utf-8")
    (run / "checkpoint").mkdir()
    student = catalog.load_student(run)
    assert student.name == "minilm-squad" and student.files == run / "student"
    assert student.problems == []
    assert student.config["seed"] == 0 and student.metrics["best_step"] == 100 and len(student.log) == 12


def test_load_student_lists_problems_instead_of_failing(tmp_path):
    folder = tmp_path / "s2"
    folder.mkdir()
    (folder / "metrics.json").write_text("{", encoding="utf-8")
    (folder / "train_log.jsonl").write_text('{"step": 1}\n[1]\n', encoding="utf-8")
    student = catalog.load_student(folder)
    assert student.metrics is None and student.log == []
    assert any("metrics.json is not valid JSON" in p for p in student.problems)
    assert any("line 2 must be a JSON object" in p for p in student.problems)
    assert any("has no README.md, config.yaml" in p for p in student.problems)
    with pytest.raises(DistillError, match="does not exist"):
        catalog.load_student(tmp_path / "nope")


def test_student_of_and_flatten(tmp_path):
    folders = [tmp_path / "students" / "a", tmp_path / "students" / "b"]
    assert catalog.student_of(str(folders[1]), folders) == folders[1]
    assert catalog.student_of(str(folders[0] / "checkpoint"), folders) == folders[0]
    assert catalog.student_of(str(tmp_path / "other"), folders) is None
    assert catalog.student_of(None, folders) is None
    assert catalog.flatten({"dev": {"recall@10": 0.9, "mrr": {"at10": 0.7}}, "steps": 3, "empty": {}}) == {
        "dev.recall@10": 0.9,
        "dev.mrr.at10": 0.7,
        "steps": 3,
        "empty": {},
    }
    assert catalog.flatten(5) == {"value": 5}
