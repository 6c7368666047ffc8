import json
import os
from pathlib import Path

import pytest
from ui_workspace import write_student_folder

from distill.errors import DistillError
from distill.ui import catalog, figures


def write_report(path, pipelines=2, created=None, quality=None, models=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"quality": quality or {}, **({"models": models} if models else {})}
    report = {"pipelines": {f"p{i}": entry for i in range(pipelines)}}
    if created:
        report["created"] = created
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
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


def adapt_run(root, name="mine"):
    """What `distill adapt ... --out runs/adapt/NAME` leaves: reports before and after training, and OUT/student."""
    run = root / "runs" / "adapt" / name
    before = write_report(run / "before" / "report.json", created="2026-12-01T08:00:00+0000")
    after = write_report(run / "eval" / "report.json", created="2026-12-01T09:00:00+0000")
    write_student_folder(run / "student")
    (run / "config.yaml").write_text("seed: 0\n", encoding="utf-8")
    return run, before, after


def test_default_globs_find_runs_wherever_out_put_them(tmp_path):
    run, before, after = adapt_run(tmp_path)
    demo = write_report(tmp_path / "runs" / "demo-eval" / "report.json", created="2026-11-30T08:00:00+0000")
    trained = tmp_path / "runs" / "students" / "minilm"
    write_student_folder(trained / "student")
    (trained / "checkpoint").mkdir()
    for hidden in (run / "student", trained / "checkpoint", tmp_path / "runs" / ".trash"):
        write_report(hidden / "report.json")  # inside a model, a checkpoint, a hidden folder: never listed
    reports = catalog.expand(catalog.DEFAULT_REPORTS, base_dir=tmp_path)
    assert sorted(catalog.display_path(p, tmp_path) for p in reports) == sorted(
        catalog.display_path(p, tmp_path) for p in (before, after, demo)
    )
    assert catalog.newest_report(catalog.read_reports(reports, base_dir=tmp_path)).label == "runs/adapt/mine/eval"
    students = catalog.student_runs(catalog.expand(catalog.DEFAULT_STUDENTS, base_dir=tmp_path, dirs=True))
    assert set(students) == {run, trained}  # OUT/student listed as its run folder OUT, each once
    os.utime(trained / "student" / "metrics.json", (9e9, 9e9))
    students = catalog.student_runs(catalog.expand(catalog.DEFAULT_STUDENTS, base_dir=tmp_path, dirs=True))
    assert students == [trained, run]  # newest first
    assert catalog.load_student(students[1]).files == run / "student"


def test_deep_globs_stop_at_their_depth_and_never_open_models_or_checkpoints(tmp_path, monkeypatch):
    deep = tmp_path.joinpath("runs", *"abcdefg")  # 7 folders below runs/: one past MAX_DEPTH
    write_report(deep / "report.json")
    write_report(deep.parent / "report.json")
    run, _, _ = adapt_run(tmp_path)
    for n in range(300):  # a big run: many files where `**` must not look
        (run / "student" / f"shard-{n}.bin").touch()
        (run / "checkpoint" / f"step-{n}").mkdir(parents=True)
    scanned = []
    real_scandir = os.scandir
    monkeypatch.setattr(catalog.os, "scandir", lambda path: scanned.append(Path(path)) or real_scandir(path))
    found = catalog.expand("runs/**/report.json", base_dir=tmp_path)
    assert deep.parent / "report.json" in found and deep / "report.json" not in found
    assert run / "student" not in scanned and run / "checkpoint" not in scanned
    listed = {tmp_path / "runs", *(tmp_path.joinpath("runs", *"abcdef"[:n]) for n in range(1, 6))}  # f: too deep
    listed |= {run.parent, run, run / "before", run / "eval"}
    assert sorted(scanned) == sorted(listed)  # each once; no student, checkpoint or step folder
    assert catalog.MAX_DEPTH == 6


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


def test_non_reports_are_set_apart_not_errors(tmp_path):
    # The probes' outputs beside the reports in benchmarks/results/: valid JSON, but no pipelines mapping.
    speed = write_json(tmp_path / "trainer-speed.json", {"command": "x", "ours": {}, "ratio": 1.1})
    lengths = write_json(tmp_path / "passage-length.json", {"command": "x", "pipelines": ["teacher"], "groups": []})
    empty = write_json(tmp_path / "empty.json", {"pipelines": {}})
    listed = write_json(tmp_path / "list.json", [1, 2])
    report = write_report(tmp_path / "report.json")
    entries = catalog.read_reports([speed, lengths, empty, listed, report], base_dir=tmp_path)
    assert [(e.ok, e.other, e.error) for e in entries] == [(False, True, None)] * 4 + [(True, False, None)]
    assert catalog.is_report({"pipelines": {"a": {}}}) and not catalog.is_report({"pipelines": {"a": 1}})
    assert not catalog.is_report({"pipelines": ["a"]}) and not catalog.is_report([])


def test_reports_grouped_own_runs_first_newest_first(tmp_path):
    early, middle, late = "2026-11-27T10:00:00+0000", "2026-11-29T10:00:00+0000", "2026-11-30T10:00:00+0000"
    reader = {"f1": 70.0, "exact_match": 56.0}
    paths = [
        write_report(tmp_path / "benchmarks" / "results" / "retrieval-new.json", created=late),
        write_report(tmp_path / "benchmarks" / "results" / "reader.json", created=middle, quality=reader),
        write_report(tmp_path / "benchmarks" / "results" / "retrieval-old.json", created=early),
        write_report(tmp_path / "benchmarks" / "results" / "reader-by-model.json", models={"reader": {"model": "m"}}),
        write_report(tmp_path / "runs" / "old" / "report.json", created=early),
        write_report(tmp_path / "runs" / "single" / "report.json", pipelines=1, created="2026-12-01T09:00:00+0000"),
        write_report(tmp_path / "runs" / "demo-eval" / "report.json", created="2026-12-01T08:00:00+0000"),
    ]
    entries = catalog.read_reports(paths, base_dir=tmp_path)
    groups = catalog.group_reports(entries)
    assert [(g.key, g.title, [e.label for e in g.entries]) for g in groups] == [
        ("runs", "Your runs", ["runs/single", "runs/demo-eval", "runs/old"]),
        (
            "retrieval",
            "Benchmark reports · retrieval",
            ["benchmarks/results/retrieval-new.json", "benchmarks/results/retrieval-old.json"],
        ),
        (
            "reader",
            "Benchmark reports · reader",
            ["benchmarks/results/reader.json", "benchmarks/results/reader-by-model.json"],
        ),
    ]
    assert catalog.newest_report(entries).label == "runs/single"
    assert catalog.live_report(entries).label == "runs/demo-eval"  # the newest with a teacher and a student
    benchmarks = [e for e in entries if e.group != "runs"]
    assert catalog.newest_report(benchmarks).label == "benchmarks/results/retrieval-new.json"
    newer = "2026-11-30T11:00:00+0000"
    reader_newest = write_report(tmp_path / "benchmarks" / "results" / "reader-new.json", created=newer, quality=reader)
    # Across tasks: the newest benchmark of any task, not the first group's.
    assert catalog.newest_report(catalog.read_reports([*paths[:4], reader_newest], tmp_path)).label == (
        "benchmarks/results/reader-new.json"
    )
    assert catalog.newest_report([]) is None and catalog.group_reports([]) == []


def test_reports_written_in_the_same_second_are_ordered_by_file_time(tmp_path):
    stamp = "2026-12-01T08:00:00+0000"
    first = write_report(tmp_path / "a" / "report.json", created=stamp)
    second = write_report(tmp_path / "b" / "report.json", created=stamp)
    os.utime(first, (1_000, 1_000))
    os.utime(second, (2_000, 2_000))
    entries = catalog.read_reports([first, second], base_dir=tmp_path)
    assert catalog.newest_report(entries).label == "b"
    unstamped = write_report(tmp_path / "c" / "report.json")  # no `created`: older than any stamped report
    assert catalog.newest_report(catalog.read_reports([unstamped, first], base_dir=tmp_path)).label == "a"


def test_distilled_models_relative_absolute_and_by_folder(tmp_path):
    trained = write_student_folder(tmp_path / "runs" / "students" / "demo" / "student")
    listed = tmp_path / "students" / "listed"
    listed.mkdir(parents=True)
    (tmp_path / "offshelf").mkdir()
    report = {
        "pipelines": {
            "teacher": {"models": {"text_embedder": {"model": "teacher", "path": str(tmp_path / "offshelf")}}},
            "minilm": {"models": {"text_embedder": {"model": "sentence-transformers/all-MiniLM-L6-v2"}}},
            "demo": {"models": {"text_embedder": {"model": "x", "path": "runs/students/demo/student"}}},
            "listed": {"models": {"text_embedder": {"path": str(listed / "checkpoint")}}},
            "bare": {},
        }
    }
    # `make demo` records the student relative to the repository root: it is found from there, by its files.
    assert catalog.distilled_models(report, [listed], base_dir=tmp_path) == [
        "runs/students/demo/student",
        str(listed / "checkpoint"),
    ]
    assert catalog.distilled_models(report, [], base_dir=tmp_path) == ["runs/students/demo/student"]
    assert catalog.distilled_models(report, [trained.parent], base_dir=tmp_path / "elsewhere") == []
    assert catalog.is_student_folder(trained) and not catalog.is_student_folder(listed)


def test_keeps_questions_only_beside_a_run_report(tmp_path):
    assert catalog.keeps_questions(tmp_path / "runs" / "demo-eval" / "report.json")
    assert catalog.keeps_questions(tmp_path)  # a run folder
    assert not catalog.keeps_questions(tmp_path / "benchmarks" / "results" / "demo-eval.json")


def test_report_questions(tmp_path):
    report = write_report(tmp_path / "r" / "report.json")
    with pytest.raises(DistillError, match="questions.jsonl does not exist"):
        catalog.report_questions(report)
    rows = [{"id": "q1", "runs": {"p0": {"rank": 1}}}]
    (tmp_path / "r" / "questions.jsonl").write_text(json.dumps(rows[0]) + "\n\n", encoding="utf-8")
    assert catalog.report_questions(report) == rows
    assert catalog.report_questions(tmp_path / "r") == rows
    (tmp_path / "r" / "questions.jsonl").write_text('{"id": "q1"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DistillError, match="questions.jsonl is not valid JSON"):
        catalog.report_questions(report)
    (tmp_path / "r" / "questions.jsonl").write_text('{"id": "q1"}\n', encoding="utf-8")
    with pytest.raises(DistillError, match="row 1 has no 'runs'"):
        catalog.report_questions(report)
    (tmp_path / "r" / "questions.jsonl").write_text("[1]\n", encoding="utf-8")
    with pytest.raises(DistillError, match="row 1 has no 'runs'"):
        catalog.report_questions(report)
    (tmp_path / "r" / "questions.jsonl").write_text("", encoding="utf-8")
    assert catalog.report_questions(report) == []  # an evaluation of no questions: nothing to list, no error


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


def test_an_export_of_a_distilled_student_is_distilled_and_one_of_the_teacher_is_not(tmp_path):
    """`make demo`'s distilled-int8 is the distilled student's own export: its distill_onnx.json names its source."""
    write_student_folder(tmp_path / "runs" / "students" / "demo" / "student")
    for name, source in (("distilled-int8", "runs/students/demo/student"), ("teacher-int8", "mpnet-base")):
        export = tmp_path / "runs" / "demo" / name
        export.mkdir(parents=True)
        (export / "distill_onnx.json").write_text(json.dumps({"precision": "int8", "source": source}))
    (tmp_path / "runs" / "demo" / "broken").mkdir()
    (tmp_path / "runs" / "demo" / "broken" / "distill_onnx.json").write_text("{not json")
    report = {
        "pipelines": {
            name: {"models": {"text_embedder": {"model": f"runs/demo/{name}", "path": f"runs/demo/{name}"}}}
            for name in ("distilled-int8", "teacher-int8", "broken")
        }
    }
    assert catalog.distilled_models(report, [], base_dir=tmp_path) == ["runs/demo/distilled-int8"]
    roles = figures.pipeline_roles(report, catalog.distilled_models(report, [], base_dir=tmp_path))
    assert roles["distilled-int8"] == figures.DISTILLED and roles["broken"] == figures.OFF_THE_SHELF
