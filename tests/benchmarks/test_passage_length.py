import json

import pytest

from benchmarks.probes.passage_length import by_length, main
from distill.errors import DistillError


def _row(gold: str, **retrieved: list[str]) -> dict:
    return {"id": gold, "gold_doc_ids": [gold], "runs": {name: {"retrieved": ids} for name, ids in retrieved.items()}}


def test_by_length_splits_questions_by_their_gold_paragraphs_tokens() -> None:
    rows = [
        _row("a", teacher=["a"], student=["a"]),  # both rank 1
        _row("b", teacher=["b"], student=["x", "b"]),  # student rank 2: 1 / log2(3)
        _row("c", teacher=["x", "c"], student=["x"]),  # long: teacher rank 2, student misses
    ]
    result = by_length(rows, [10, 20, 300], max_length=256)
    fits, longer = result["groups"]["fits"], result["groups"]["longer"]
    assert fits["questions"] == 2 and longer["questions"] == 1
    student_fits = (1 + 1 / 1.584962500721156) / 2
    assert fits["pipelines"]["teacher"]["ndcg@10"] == pytest.approx(1.0)
    assert fits["pipelines"]["student"]["ndcg@10"] == pytest.approx(student_fits)
    assert fits["pipelines"]["student"]["share_of_first"] == pytest.approx(student_fits)
    assert longer["pipelines"]["teacher"]["ndcg@10"] == pytest.approx(1 / 1.584962500721156)
    assert longer["pipelines"]["student"]["share_of_first"] == 0.0
    with pytest.raises(ValueError):
        by_length(rows, [10, 20], max_length=256)  # one length per question


def test_main_reads_an_evaluation_folder(tmp_path, tiny_squad, tiny_embedder, capsys) -> None:
    from distill.data.datasets import load_dataset

    docs = {d.id: d for d in load_dataset(str(tiny_squad)).documents}
    short, long = docs["1-1"], docs["0-0"]  # the piano paragraph is 16 tokens long, the Nile one 21
    (tmp_path / "report.json").write_text(json.dumps({"config": {"data": str(tiny_squad)}, "pipelines": {}}))
    rows = [_row(short.id, teacher=[short.id], student=[short.id]), _row(long.id, teacher=[long.id], student=[])]
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "split.json"
    main([str(tmp_path), "--tokenizer", str(tiny_embedder), "--max-length", "17", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["groups"]["fits"]["questions"] == 1 and result["groups"]["longer"]["questions"] == 1
    assert result["groups"]["longer"]["pipelines"]["student"]["ndcg@10"] == 0.0
    assert "| > 17 | 1 | 1.0000 | 0.0000 | 0.0% |" in capsys.readouterr().out

    rows[0]["gold_doc_ids"] = ["nowhere"]
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--tokenizer", str(tiny_embedder), "--max-length", "16"])
    assert "has no gold paragraph" in capsys.readouterr().err
    with pytest.raises(DistillError):
        by_length([], [], 16)
