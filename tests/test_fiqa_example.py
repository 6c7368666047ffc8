"""examples/fiqa as `make bench-fiqa-serving` serves it, with tiny models: the teacher's pipelines and a student's
int8 export swapped into the same YAML (`distill export --swap`), the embedding-only query and the hybrid one (BM25 and
the embedding retriever on one store, fused by reciprocal rank), scored in one evaluation on a BEIR dev split. No
generator is built (OPENAI_API_KEY unset, construction fails the test)."""

from __future__ import annotations

import json

import pytest
from conftest import write_beir
from rag_examples import tiny_copy

from distill.cli import main
from distill.pipelines.loading import read_pipeline_dict

NAMES = ("indexing", "query", "query-hybrid")


@pytest.fixture(autouse=True)
def nothing_generates(monkeypatch):
    from haystack.components.generators.chat import OpenAIChatGenerator

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{type(self).__name__} was built or run")

    monkeypatch.setattr(OpenAIChatGenerator, "__init__", refuse)
    monkeypatch.setattr(OpenAIChatGenerator, "run", refuse)


def store_indexes(data: dict) -> set[str]:
    return {
        c["init_parameters"]["document_store"]["init_parameters"]["index"]
        for c in data["components"].values()
        if "document_store" in (c.get("init_parameters") or {})
    }


def test_the_int8_export_serves_both_fiqa_query_pipelines_beside_the_teacher(
    home, tiny_embedder_wide, tiny_embedder, capsys
):
    teacher = tiny_copy("fiqa", home / "teacher", tiny_embedder_wide, index="t-fiqa", names=NAMES)
    teacher_fast = home / "teacher-fast"
    assert main(["swap", *map(str, teacher), "--fast-retriever", "--out", str(teacher_fast)]) == 0
    export = home / "int8"
    assert (
        main(["export", str(tiny_embedder), "--out", str(export), "--swap", *map(str, teacher), "--fast-retriever"])
        == 0
    )
    capsys.readouterr()

    served = export / "pipelines"
    hybrid = read_pipeline_dict(served / "query-hybrid.yaml")
    components = hybrid["components"]
    assert components["text_embedder"]["type"] == "distill.components.onnx_embedders.OnnxTextEmbedder"
    assert components["text_embedder"]["init_parameters"]["model"] == str(export)
    assert components["embedding_retriever"]["type"].startswith("distill.components.retrievers.FastInMemory")
    assert components["bm25_retriever"]["type"].endswith("InMemoryBM25Retriever")  # BM25 kept as written
    indexing = read_pipeline_dict(served / "indexing.yaml")
    assert indexing["components"]["embedder"]["type"] == "distill.components.onnx_embedders.OnnxDocumentEmbedder"
    assert indexing["components"]["cleaner"] == read_pipeline_dict(teacher[0])["components"]["cleaner"]
    # one store for the writer, BM25 and the embedding retriever: the export's own, not the teacher's
    (index,) = (
        store_indexes(hybrid) | store_indexes(indexing) | store_indexes(read_pipeline_dict(served / "query.yaml"))
    )
    assert index != "t-fiqa"

    data = write_beir(home / "fiqa-like")
    rows = {
        "teacher": teacher_fast / "query.yaml",
        "teacher-hybrid": teacher_fast / "query-hybrid.yaml",
        "int8": served / "query.yaml",
        "int8-hybrid": served / "query-hybrid.yaml",
    }
    args = ["eval", *(f"{name}={path}" for name, path in rows.items()), "--data", f"{data}:dev", "--warmup", "0"]
    assert main([*args, "--versus", "teacher", "--out", str(home / "eval")]) == 0
    report = json.loads((home / "eval" / "report.json").read_text())
    pipelines = report["pipelines"]
    assert list(pipelines) == [
        "teacher",
        "teacher-hybrid",
        "int8",
        "int8-hybrid",
        "teacher-hybrid [embedding_retriever]",
        "int8-hybrid [embedding_retriever]",
    ]
    for name in ("teacher", "int8"):
        assert pipelines[name]["scored"]["component"] == "embedding_retriever"
        assert pipelines[f"{name}-hybrid"]["scored"]["component"] == "joiner"
        assert pipelines[f"{name}-hybrid"]["scored"]["into"] == "prompt_builder"
    assert pipelines["int8"]["models"]["text_embedder"]["model"] == str(export)
    for name, entry in pipelines.items():
        assert 0.0 <= entry["quality"]["ndcg@10"] <= 1.0, name
    questions = [json.loads(line) for line in (home / "eval" / "questions.jsonl").read_text().splitlines()]
    assert len(questions) == 4  # the questions judged in qrels/dev.tsv
    # the int8 student is another model: its embedding list is not the teacher's on every question
    assert any(q["runs"]["int8"]["retrieved"] != q["runs"]["teacher"]["retrieved"] for q in questions)
