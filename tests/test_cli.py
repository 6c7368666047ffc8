import json
import subprocess
import sys
from pathlib import Path

import pytest

from distill import cli


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distill.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", ["", *cli.COMMANDS])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"] if command else ["--help"])
    assert exit_info.value.code == 0
    assert "usage: distill" in capsys.readouterr().out


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    assert cli.main(["data", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("distill data: error:") and "does not exist" in err
    assert cli.main(["eval", f"a={tmp_path / 'none.yaml'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["models", "no-such"]) == 2
    assert cli.main(["report", str(tmp_path)]) == 2


def test_swap_then_data_then_eval_then_report(tiny_pipelines, tiny_embedder_wide, tiny_squad, tmp_path, capsys):
    out = tmp_path / "student"
    assert cli.main(["swap", str(tiny_pipelines), "--model", str(tiny_embedder_wide), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.yaml")) == ["extractive_qa.yaml", "indexing.yaml", "retrieval.yaml"]
    capsys.readouterr()
    assert cli.main(["data", str(tiny_squad), "--questions", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["questions"] == 3
    report_dir = tmp_path / "eval"
    code = cli.main(
        [
            "eval",
            f"teacher={tiny_pipelines / 'retrieval.yaml'}",
            f"student={out / 'retrieval.yaml'}",
            "--data",
            str(tiny_squad),
            "--warmup",
            "1",
            "--out",
            str(report_dir),
            "--versus",
            "teacher",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "nDCG@10" in printed and "student" in printed
    report = json.loads((report_dir / "report.json").read_text())
    assert set(report["differences"]) == {"student"} and "student - teacher: nDCG@10 " in printed
    assert report["differences"]["student"]["ndcg@10"]["questions"] == report["dataset"]["questions"]
    assert report["command"].startswith("distill") and report["config"]["warmup"] == 1
    assert "student / teacher: nDCG@10 " in printed and "paired bootstrap over" in printed
    assert cli.main(["report", str(report_dir), "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("| pipeline |")
    # A report written before the bootstrap existed: `distill report` computes it from questions.jsonl.
    del report["relative"]
    (report_dir / "report.json").write_text(json.dumps(report))
    assert cli.main(["report", str(report_dir)]) == 0
    assert "student / teacher: nDCG@10 " in capsys.readouterr().out
    # Paired differences against a named pipeline, from questions.jsonl.
    assert cli.main(["report", str(report_dir), "--versus", "student"]) == 0
    assert "teacher - student: nDCG@10 " in capsys.readouterr().out
    bad = [f"teacher={tiny_pipelines / 'retrieval.yaml'}", "--data", str(tiny_squad), "--versus", "students"]
    assert cli.main(["eval", *bad]) == 2
    assert "--versus 'students' names none of the pipelines: teacher" in capsys.readouterr().err
    assert cli.main(["report", str(report_dir), "--versus", "nobody"]) == 2
    assert "no pipeline named 'nobody'" in capsys.readouterr().err
    (report_dir / "questions.jsonl").unlink()
    assert cli.main(["report", str(report_dir), "--versus", "student"]) == 2
    assert "no questions.jsonl" in capsys.readouterr().err


def test_console_entry_point_runs_as_a_process():
    result = run("models", "definitely-not-a-source")
    assert result.returncode == 2
    assert "unknown offline source" in result.stderr and "Traceback" not in result.stderr


def test_reader_recipes_go_to_the_right_command(capsys):
    assert cli.main(["train", "recipes/reader-teacher-minilm.yaml"]) == 2
    assert "run `distill finetune-reader recipes/reader-teacher-minilm.yaml`" in capsys.readouterr().err
    assert cli.main(["finetune-reader", "recipes/embedder-squad.yaml"]) == 2
    assert "needs a recipe with task: finetune_reader" in capsys.readouterr().err
    assert cli.main(["finetune-reader", "recipes/reader-teacher-minilm.yaml", "stride=1000"]) == 2
    assert "recipe.stride" in capsys.readouterr().err


def test_report_compares_runs_evaluated_apart(tmp_path, tiny_squad, tiny_pipelines, capsys):
    def evaluate(name: str, folder: str, *extra: str) -> Path:
        out = tmp_path / folder
        args = [f"{name}={tiny_pipelines / 'retrieval.yaml'}", "--data", str(tiny_squad), "--warmup", "1"]
        assert cli.main(["eval", *args, "--out", str(out), *extra]) == 0
        return out

    first, second = evaluate("teacher", "first"), evaluate("again", "second")
    capsys.readouterr()
    assert cli.main(["report", str(first), str(second), "--versus", "teacher"]) == 0
    printed = capsys.readouterr().out
    # The same pipeline twice: one question set, both runs in one table, paired question by question.
    assert "2 reports on the same questions" in printed
    assert "again / teacher: nDCG@10 100.0%" in printed
    assert "again - teacher: nDCG@10 +0.00 (95% CI +0.00 to +0.00; better on 0, worse on 0)" in printed
    assert cli.main(["report", str(first), str(first)]) == 2
    assert "'teacher' is in more than one of the reports" in capsys.readouterr().err
    fewer = evaluate("fewer", "fewer", "--questions", "3")
    capsys.readouterr()
    assert cli.main(["report", str(first), str(fewer)]) == 2
    assert "were not evaluated on the same questions" in capsys.readouterr().err


@pytest.mark.parametrize(("value", "message"), [("-1", "must be >= 0, got -1"), ("abc", "must be a whole number")])
def test_eval_refuses_a_negative_or_non_numeric_warmup(value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "a=pipelines/retrieval.yaml", "--warmup", value])
    assert exit_info.value.code == 2
    assert f"argument --warmup: {message}" in capsys.readouterr().err.splitlines()[-1]


def test_eval_with_unlabelled_queries_prints_agreement(
    tiny_pipelines, tiny_embedder_wide, tiny_squad, tmp_path, capsys
):
    wide = tmp_path / "wide"
    assert cli.main(["swap", str(tiny_pipelines), "--model", str(tiny_embedder_wide), "--out", str(wide)]) == 0
    queries = tmp_path / "log.txt"
    queries.write_text("Where was Mozart born?\n\nWhere was Mozart born?\nwho painted it\n", encoding="utf-8")
    out = tmp_path / "eval"
    pipelines_given = [f"teacher={wide / 'retrieval.yaml'}", f"student={tiny_pipelines / 'retrieval.yaml'}"]
    args = ["eval", *pipelines_given, "--data", str(tiny_squad), "--queries", str(queries), "--warmup", "0"]
    capsys.readouterr()
    assert cli.main([*args, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"2 queries from {queries} (1 blank lines skipped, 1 duplicates dropped, 0 lines not UTF-8 skipped)" in (
        captured.err
    )
    assert "agreement with teacher, top 10" in captured.out and "teacher (reference)" in captured.out
    assert captured.out.startswith("pipeline  p50 ms")  # no labels: no relevance columns, not zeros
    report = json.loads((out / "report.json").read_text())
    assert set(report["pipelines"]["student"]["agreement"]) == {
        "reference",
        "overlap@10",
        "silver_ndcg@10",
        "rank_correlation@10",
        "questions",
    }
    assert cli.main(["report", str(out), "--markdown"]) == 0  # 6 passages: the ceiling of overlap@10 is 0.6
    printed = capsys.readouterr().out
    assert printed.startswith("| pipeline | p50 ms |") and "| teacher (reference) | 0.600 | 1.000 | 1.000 |" in printed
    assert cli.main(["report", str(out), "--reference", "student"]) == 0
    assert "agreement with student, top 10" in capsys.readouterr().out
    assert cli.main(["eval", *pipelines_given, "--data", str(tiny_squad), "--reference", "nobody"]) == 2
    assert "--reference 'nobody' names none of the pipelines: teacher, student" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert cli.main([*args[:-4], "--queries", str(tmp_path / "empty.txt")]) == 2
    assert "holds no queries" in capsys.readouterr().err


def test_a_swap_that_fails_leaves_no_out_folder(tmp_path, tiny_pipelines, tiny_embedder_wide, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes((tiny_pipelines / "retrieval.yaml").read_bytes() + b"\n# caf\xe9\n")
    out = tmp_path / "new" / "student"
    args = ["swap", str(tiny_pipelines / "indexing.yaml"), str(bad), "--model", str(tiny_embedder_wide)]
    assert cli.main([*args, "--out", str(out)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", ["swap", "eval", "average"])
def test_an_out_that_is_a_file_is_one_line(tmp_path, tiny_pipelines, tiny_embedder, tiny_squad, capsys, command):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    args = {
        "swap": ["swap", str(tiny_pipelines), "--model", str(tiny_embedder), "--out", str(taken / "sub")],
        "eval": ["eval", f"a={tiny_pipelines / 'retrieval.yaml'}", "--data", str(tiny_squad), "--out", str(taken)],
        "average": ["average", str(tiny_embedder), str(tiny_embedder), "--out", str(taken)],
    }[command]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "file" in err
    assert taken.read_text() == "mine"
