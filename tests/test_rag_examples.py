"""Real RAG and hybrid query pipelines (examples/rag, examples/rag-2x, examples/haystack-tutorials/*) through
`distill swap`, `distill adapt --plan-only` and `distill eval`, with tiny models and OPENAI_API_KEY unset: no generator
(nor what it feeds) is ever built or run, the scored list is the one the prompt receives (or the pipeline's last),
the embedding retriever's own list is a row beside it, and the swap keeps everything but the embedders' model and
the one shared store's index."""

from __future__ import annotations

import json
import runpy

import pytest
from conftest import squad_json, write_beir
from rag_examples import EXAMPLES, make_cross_encoder, tiny_copy

from distill.cli import main
from distill.errors import DistillError
from distill.pipelines.haystack_yaml import parse_pipeline_yaml
from distill.pipelines.loading import dump_pipeline_dict, is_embedder, load_pipeline, read_pipeline_dict

# example -> (the scored component, where its list goes, the embedding retriever scored beside it, what is not built)
EXPECTED = {
    "rag": ("joiner", "prompt_builder", "embedding_retriever", {"llm", "prompt_builder"}),
    "rag-2x": ("joiner", "prompt_builder", "embedding_retriever", {"llm", "prompt_builder"}),
    "haystack-tutorials/first-rag": ("retriever", "prompt_builder", None, {"llm", "prompt_builder"}),
    "haystack-tutorials/hybrid-retrieval": ("ranker", None, "embedding_retriever", set()),
    "haystack-tutorials/hybrid-rag": (
        "ranker",
        "prompt_builder",
        "embedding_retriever",
        {"llm", "prompt_builder", "answer_builder"},
    ),
}


CHAT_GENERATOR = {"rag", "haystack-tutorials/first-rag", "haystack-tutorials/hybrid-rag"}  # rag-2x: a 2.x generator


@pytest.fixture(autouse=True)
def nothing_generates(monkeypatch):
    """No key, and every generator (and what consumes its replies) fails the test the moment it is built or run."""
    from haystack.components.builders import AnswerBuilder
    from haystack.components.generators.chat import OpenAIChatGenerator

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{type(self).__name__} was built or run")

    for cls in (OpenAIChatGenerator, AnswerBuilder):
        monkeypatch.setattr(cls, "__init__", refuse)
        monkeypatch.setattr(cls, "run", refuse)


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory):
    return make_cross_encoder(tmp_path_factory.mktemp("models") / "tiny-cross-encoder")


def copies(example: str, folder, teacher, cross_encoder):
    return tiny_copy(example, folder, teacher, index=f"t-{example.replace('/', '-')}", ranker=cross_encoder)


def stores(data: dict) -> list[dict]:
    return [
        c["init_parameters"]["document_store"]
        for c in data["components"].values()
        if "document_store" in (c.get("init_parameters") or {})
    ]


@pytest.mark.parametrize("example", list(EXPECTED))
def test_swap_then_eval_scores_the_prompts_documents_and_builds_no_generator(
    example, home, tiny_embedder_wide, tiny_embedder, cross_encoder, capsys
):
    scored, into, embedding, pruned = EXPECTED[example]
    indexing, query = copies(example, home / "teacher", tiny_embedder_wide, cross_encoder)
    if example in CHAT_GENERATOR:  # the guard works: building the whole pipeline builds its generator
        with pytest.raises((AssertionError, DistillError), match="was built or run"):
            load_pipeline(query)
    out = home / "student"
    assert main(["swap", str(indexing), str(query), "--model", str(tiny_embedder), "--out", str(out)]) == 0

    # swap: the embedders' model and the one shared store's index change, nothing else (the prompt builder's tuple
    # and the generator's model included)
    before, after = (read_pipeline_dict(f / "query.yaml") for f in (home / "teacher", out))
    for name, component in before["components"].items():
        swapped = after["components"][name]
        if is_embedder(component):
            assert swapped["init_parameters"]["model"] == str(tiny_embedder)
        elif "document_store" not in (component.get("init_parameters") or {}):
            assert swapped == component, name
    if "prompt_builder" in before["components"]:
        text = (out / "query.yaml").read_text()
        assert parse_pipeline_yaml(text, "q")["components"]["prompt_builder"] == before["components"]["prompt_builder"]
    student_stores = stores(after) + stores(read_pipeline_dict(out / "indexing.yaml"))
    names = {s["init_parameters"]["index"] for s in student_stores}
    assert (
        len(student_stores) >= 2
        and len(names) == 1
        and names != {s["init_parameters"]["index"] for s in stores(before)}
    )

    corpus = home / "squad.json"
    corpus.write_text(json.dumps(squad_json()), encoding="utf-8")
    args = ["eval", f"teacher={query}", f"student={out / 'query.yaml'}", "--data", str(corpus), "--warmup", "1"]
    assert main([*args, "--out", str(home / "eval")]) == 0
    printed = capsys.readouterr().out
    report = json.loads((home / "eval" / "report.json").read_text())
    questions = [json.loads(line) for line in (home / "eval" / "questions.jsonl").read_text().splitlines()]
    pipelines = report["pipelines"]
    for name in ("teacher", "student"):
        assert pipelines[name]["scored"] == {
            "component": scored,
            "role": pipelines[name]["scored"]["role"],
            "into": into,
        }
        assert not set(pipelines[name]["latency"]["components"]) & pruned  # never built, never timed
        assert "llm" not in pipelines[name]["models"]
    assert f"teacher: scored the documents of {scored!r}" in printed or embedding is None
    views = [n for n in pipelines if pipelines[n]["scored"].get("of")]
    if embedding is None:
        assert views == [] and list(pipelines) == ["teacher", "student"]
        return
    assert views == [f"teacher [{embedding}]", f"student [{embedding}]"]
    for view in views:
        entry = pipelines[view]
        of = entry["scored"]["of"]
        assert entry["scored"] == {"component": embedding, "role": "retriever", "of": of}
        assert set(entry["latency"]["components"]) == {"text_embedder", embedding}  # the spans up to its list
        assert entry["agreement"]["reference"] == "teacher [embedding_retriever]"  # like with like
        for row in questions:  # its latency is the sum of those spans, from the same run
            run = row["runs"][view]
            assert run["latency_ms"] == pytest.approx(sum(run["component_ms"].values()), abs=0.01)
            assert run["component_ms"] == {c: row["runs"][of]["component_ms"][c] for c in run["component_ms"]}
    assert pipelines["student"]["agreement"]["reference"] == "teacher"
    assert report["relative"].get("student [embedding_retriever]", {}).get("reference") in (
        None,
        "teacher [embedding_retriever]",
    )
    # the bug this fixes: every pipeline scored BM25's list, identical for teacher and students whatever the model
    embedding_lists = [
        (
            row["runs"]["teacher [embedding_retriever]"]["retrieved"],
            row["runs"]["student [embedding_retriever]"]["retrieved"],
        )
        for row in questions
    ]
    assert any(a != b for a, b in embedding_lists)
    fused = [
        (row["runs"]["teacher"]["retrieved"], row["runs"]["teacher [embedding_retriever]"]["retrieved"])
        for row in questions
    ]
    assert any(a != b for a, b in fused)


@pytest.mark.parametrize("example", list(EXPECTED))
def test_adapt_plan_only_names_the_scored_list_and_builds_no_generator(
    example, home, tiny_embedder_wide, tiny_embedder, cross_encoder, capsys
):
    scored, into, embedding, _ = EXPECTED[example]
    indexing, query = copies(example, home / "mine", tiny_embedder_wide, cross_encoder)
    beir = write_beir(home / "beir")
    args = ["adapt", str(indexing), str(query), "--corpus", str(beir), "--student", str(tiny_embedder)]
    assert main([*args, "--out", str(home / "a"), "--plan-only"]) == 0
    printed = capsys.readouterr().out
    where = f" sends into {into!r}" if into else " outputs"
    assert f"evaluation scores the documents {scored!r}{where}" in printed
    assert (f"the embedding retriever {embedding!r}" in printed) == (embedding is not None)
    assert (home / "a" / "recipe.yaml").is_file()


@pytest.mark.parametrize("example", ["haystack-tutorials/first-rag", "haystack-tutorials/hybrid-rag"])
def test_the_tutorial_examples_are_what_their_scripts_dump(example, tmp_path, monkeypatch):
    monkeypatch.undo()  # the scripts build the generator, as the tutorials do (no key needed to build it)
    written = runpy.run_path(str(EXAMPLES / example / "make_pipelines.py"))["main"](tmp_path)
    for path in written:
        assert path.read_text(encoding="utf-8") == (EXAMPLES / example / path.name).read_text(encoding="utf-8")


def _bm25_only(data: dict) -> None:
    for name in ("text_embedder", "embedding_retriever"):
        del data["components"][name]
    data["connections"] = [c for c in data["connections"] if "embedding" not in c["sender"] + c["receiver"]]


def _two_text_embedders(data: dict) -> None:
    data["components"]["question_embedder"] = dict(data["components"]["text_embedder"])


def _two_models_joined(data: dict) -> None:
    components = data["components"]
    components["text_embedder_b"] = {**components["text_embedder"], "init_parameters": {"model": "other/model"}}
    components["embedding_retriever_b"] = components["embedding_retriever"]
    data["connections"] += [
        {"sender": "text_embedder_b.embedding", "receiver": "embedding_retriever_b.query_embedding"},
        {"sender": "embedding_retriever_b.documents", "receiver": "joiner.documents"},
    ]


def _a_variable_distill_cannot_give(data: dict) -> None:
    builder = data["components"]["prompt_builder"]["init_parameters"]
    builder["template"][0]["content"][0]["text"] += " Answer in {{ language }}."
    builder["required_variables"] = ("query", "documents", "language")


BAD = {
    "bm25 only": (_bm25_only, "component 'bm25_retriever' (InMemoryBM25Retriever) ranks by keywords"),
    "two text embedders": (_two_text_embedders, "remove 'question_embedder', which feeds no retriever"),
    "two models joined": (_two_models_joined, "component 'joiner' joins embedding retrievers of different models"),
    "prompt variable": (_a_variable_distill_cannot_give, "requires prompt variable 'language'"),
}


@pytest.mark.parametrize("bad", list(BAD))
def test_a_query_pipeline_distill_cannot_serve_is_one_line_before_any_teacher_pass(
    bad, home, tiny_embedder_wide, tiny_embedder, cross_encoder, capsys
):
    edit, message = BAD[bad]
    indexing, query = copies("rag", home / "mine", tiny_embedder_wide, cross_encoder)
    data = read_pipeline_dict(query)
    edit(data)
    query.write_text(dump_pipeline_dict(data), encoding="utf-8")
    beir = write_beir(home / "beir")
    args = ["adapt", str(indexing), str(query), "--corpus", str(beir), "--student", str(tiny_embedder), "--plan-only"]
    assert main([*args, "--out", str(home / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and str(query) in err
    assert not (home / "home" / "teacher-cache").exists() and not (home / "a").exists()
    if bad != "bm25 only":  # a keyword pipeline is a baseline distill eval scores (as its BM25 list)
        corpus = home / "squad.json"
        corpus.write_text(json.dumps(squad_json()), encoding="utf-8")
        assert main(["eval", f"mine={query}", "--data", str(corpus), "--out", str(home / "eval")]) == 2
        assert message in capsys.readouterr().err and not (home / "eval" / "report.json").exists()
