"""Users' pipeline YAML as Haystack writes it: tuples, Haystack 2.x class paths, 2.x generators, distill's old paths."""

import logging
import runpy
from pathlib import Path

import pytest
import yaml
from haystack import Pipeline

from distill.errors import DistillError
from distill.pipelines import haystack_yaml
from distill.pipelines.haystack_yaml import MOVED_TYPES, parse_pipeline_yaml, unbuildable_generators
from distill.pipelines.loading import (
    dump_pipeline_dict,
    fit_devices,
    load_pipeline,
    pipeline_from_dict,
    read_pipeline_dict,
    swap_files,
)

REPO = Path(__file__).resolve().parents[2]
HAYSTACK2 = Path(__file__).parent / "haystack2"
OPENAI_GENERATOR_2X = "haystack.components.generators.openai.OpenAIGenerator"


def rag_query_yaml(embedder: Path) -> str:
    """What a Haystack 3 user's RAG query pipeline file holds: ``Pipeline.dumps()``, a tuple in the prompt builder."""
    from haystack.components.builders import ChatPromptBuilder
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.dataclasses import ChatMessage
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder

    pipeline = Pipeline()
    pipeline.add_component("text_embedder", SentenceTransformersTextEmbedder(model=str(embedder)))
    pipeline.add_component("retriever", InMemoryEmbeddingRetriever(document_store=InMemoryDocumentStore(index="rag")))
    template = [ChatMessage.from_user("{% for d in documents %}{{ d.content }}{% endfor %} {{ query }}")]
    pipeline.add_component(
        "prompt_builder", ChatPromptBuilder(template=template, required_variables=("query", "documents"))
    )
    pipeline.add_component("llm", OpenAIChatGenerator(model="gpt-4o-mini"))
    pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
    pipeline.connect("retriever.documents", "prompt_builder.documents")
    pipeline.connect("prompt_builder.prompt", "llm.messages")
    return pipeline.dumps()


@pytest.fixture()
def no_openai_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture()
def reported(monkeypatch):
    """A fresh record of what was reported, so each test sees its own warnings."""
    monkeypatch.setattr(haystack_yaml, "_reported", set())


# --- reading and writing: Haystack's loader and dumper --------------------------------------------------------------


def test_tuples_read_as_haystack_reads_them_and_python_objects_stay_refused():
    assert parse_pipeline_yaml("v: !!python/tuple [query, documents]", "p.yaml") == {"v": ("query", "documents")}
    for tag in ("!!python/object/apply:os.system ['true']", "!!python/name:os.system ''", "!!python/object:os.X {}"):
        with pytest.raises(DistillError, match=r"^p\.yaml is not valid YAML: could not determine a constructor") as e:
            parse_pipeline_yaml(f"v: {tag}", "p.yaml")
        assert "\n" not in str(e.value)


def test_a_rag_query_pipeline_with_a_tuple_is_read_swapped_and_read_back_by_plain_haystack(
    no_openai_key, tiny_embedder, tiny_embedder_wide, tmp_path
):
    text = rag_query_yaml(tiny_embedder_wide)
    assert "!!python/tuple" in text
    path = tmp_path / "query.yaml"
    path.write_text(text, encoding="utf-8")
    data = read_pipeline_dict(path)
    assert data["components"]["prompt_builder"]["init_parameters"]["required_variables"] == ("query", "documents")
    assert pipeline_from_dict(fit_devices(data)).get_component("llm").model == "gpt-4o-mini"  # built without a key
    written = swap_files([path], tmp_path / "out", model=str(tiny_embedder))[0]
    swapped = Pipeline.loads(written.read_text(encoding="utf-8"))
    assert swapped.get_component("prompt_builder").required_variables == ("query", "documents")
    assert swapped.get_component("text_embedder").model == str(tiny_embedder)
    assert swapped.get_component("retriever").document_store.index != "rag"  # the student's own index
    assert yaml.load(dump_pipeline_dict(data), Loader=haystack_yaml.YamlLoader) == data


def test_distill_swap_command_reads_a_tuple(no_openai_key, tiny_embedder, tiny_embedder_wide, tmp_path, capsys):
    from distill.cli import main

    (tmp_path / "query.yaml").write_text(rag_query_yaml(tiny_embedder_wide), encoding="utf-8")
    out = tmp_path / "o"
    assert main(["swap", str(tmp_path / "query.yaml"), "--model", str(tiny_embedder), "--out", str(out)]) == 0
    again = Pipeline.loads((out / "query.yaml").read_text(encoding="utf-8"))
    assert again.get_component("prompt_builder").required_variables == ("query", "documents")


# --- Haystack 2.x class paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["moved_components.yaml", "more_components.yaml"])
def test_haystack_2_class_paths_map_to_3_and_build(name, reported, caplog):
    path = HAYSTACK2 / name
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    with caplog.at_level(logging.WARNING, logger="distill.pipelines.haystack_yaml"):
        data = read_pipeline_dict(path)
        read_pipeline_dict(path)  # read again (eval reads a file several times): reported once
    generators = unbuildable_generators(data)
    old_types = {raw["components"][c]["type"] for c in raw["components"] if c not in generators}
    lines = [r.getMessage() for r in caplog.records if "mapped Haystack 2.x class path" in r.getMessage()]
    assert len(lines) == len(old_types)
    for component, spec in raw["components"].items():
        if component in generators:
            assert data["components"][component] == spec  # kept as written
            continue
        new = MOVED_TYPES[spec["type"]]
        assert data["components"][component]["type"] == new
        assert any(f"{spec['type']} -> {new}" in line and repr(component) in line for line in lines)
    buildable = {c: s for c, s in data["components"].items() if c not in generators}
    pipeline = pipeline_from_dict(fit_devices({"components": buildable, "connections": []}), name=name)
    for component, spec in buildable.items():
        instance = pipeline.get_component(component)
        assert f"{type(instance).__module__}.{type(instance).__name__}" == spec["type"]


def test_transformers_similarity_ranker_becomes_the_sentence_transformers_one(reported, caplog):
    with caplog.at_level(logging.WARNING, logger="distill.pipelines.haystack_yaml"):
        data = read_pipeline_dict(HAYSTACK2 / "moved_components.yaml")
    params = data["components"]["ranker"]["init_parameters"]
    assert "calibration_factor" not in params and params["scale_score"] is True
    assert "dropped calibration_factor=1.0" in caplog.text


def test_generators_haystack_3_removed_are_kept_and_named(reported, caplog, tmp_path):
    data = read_pipeline_dict(HAYSTACK2 / "more_components.yaml")
    assert unbuildable_generators(data) == {
        "chat": "haystack.components.generators.chat.hugging_face_local.HuggingFaceLocalChatGenerator"
    }
    with caplog.at_level(logging.WARNING, logger="distill.pipelines.haystack_yaml"):
        query = read_pipeline_dict(REPO / "examples" / "rag-2x" / "query.yaml")
    assert unbuildable_generators(query) == {"llm": OPENAI_GENERATOR_2X}
    assert "kept as written" in caplog.text and f"'llm' ({OPENAI_GENERATOR_2X})" in caplog.text
    assert unbuildable_generators(read_pipeline_dict(REPO / "examples" / "rag" / "query.yaml")) == {}
    with pytest.raises(DistillError, match="'llm' has type .*OpenAIGenerator', a Haystack 2.x generator") as e:
        pipeline_from_dict(query, name="query.yaml")
    assert "\n" not in str(e.value)


def test_a_class_that_does_not_import_stays_the_clear_error(tmp_path):
    data = read_pipeline_dict(REPO / "examples" / "rag" / "indexing.yaml")
    data["components"]["cleaner"]["type"] = "haystack.components.preprocessors.nowhere.DocumentCleaner"
    with pytest.raises(DistillError, match="'cleaner' has type .*, which is not a Haystack component class"):
        pipeline_from_dict(data, name="indexing.yaml")


def test_distills_old_component_path_loads_and_is_written_back_new(reported, tiny_embedder, tmp_path, caplog):
    data = read_pipeline_dict(REPO / "examples" / "rag" / "query.yaml")
    data["components"] = {"embedder": {"type": "distill.components_onnx.OnnxTextEmbedder", "init_parameters": {}}}
    data["components"]["embedder"]["init_parameters"]["model"] = str(tiny_embedder)
    data["connections"] = []
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(data), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="distill.pipelines.haystack_yaml"):
        pipeline = load_pipeline(old)
    assert type(pipeline.get_component("embedder")).__name__ == "OnnxTextEmbedder"
    new = "distill.components.onnx_embedders.OnnxTextEmbedder"
    assert f"distill's old class path distill.components_onnx.OnnxTextEmbedder -> {new}" in caplog.text
    written = swap_files([old], tmp_path / "out", model=None)[0]
    assert yaml.safe_load(written.read_text(encoding="utf-8"))["components"]["embedder"]["type"] == new


def test_a_2x_extractive_qa_pair_swaps_into_3x_paths(reported, tiny_pipelines, tiny_reader, tmp_path):
    old = {
        "document_embedder": "haystack.components.embedders.sentence_transformers_document_embedder."
        "SentenceTransformersDocumentEmbedder",
        "text_embedder": "haystack.components.embedders.sentence_transformers_text_embedder."
        "SentenceTransformersTextEmbedder",
        "reader": "haystack.components.readers.extractive.ExtractiveReader",
    }
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("indexing.yaml", "extractive_qa.yaml"):
        data = parse_pipeline_yaml((tiny_pipelines / name).read_text(encoding="utf-8"), name)
        for component, kind in old.items():
            if component in data["components"]:
                data["components"][component]["type"] = kind
        (folder / name).write_text(yaml.safe_dump(data), encoding="utf-8")
    written = swap_files([folder / "extractive_qa.yaml"], tmp_path / "out", model=str(tiny_reader))
    assert sorted(p.name for p in written) == ["extractive_qa.yaml", "indexing.yaml"]
    types = [c["type"] for p in written for c in parse_pipeline_yaml(p.read_text(), p.name)["components"].values()]
    assert not set(types) & set(old.values())
    assert "distill.components.readers.NoAnswerMarginExtractiveReader" in types  # swapped as a 3.x reader is


# --- the examples ---------------------------------------------------------------------------------------------------


def test_the_rag_examples_read_through_the_reader_and_plain_haystack(no_openai_key, reported, tmp_path):
    for name in ("indexing", "query"):
        data = read_pipeline_dict(REPO / "examples" / "rag" / f"{name}.yaml")
        plain = Pipeline.loads((REPO / "examples" / "rag" / f"{name}.yaml").read_text(encoding="utf-8"))
        assert plain.to_dict()["components"].keys() == data["components"].keys()
        old = read_pipeline_dict(REPO / "examples" / "rag-2x" / f"{name}.yaml")
        assert old["components"].keys() == data["components"].keys()
        for component, spec in old["components"].items():  # the same classes, but the 2.x generator and prompt
            if component not in ("llm", "prompt_builder"):
                assert spec["type"] == data["components"][component]["type"]
    prompt = plain.get_component("prompt_builder")
    assert prompt.required_variables == ("query", "documents")
    assert plain.get_component("joiner").join_mode.value == "reciprocal_rank_fusion"


def test_the_rag_example_is_what_its_script_dumps(no_openai_key, tmp_path):
    written = runpy.run_path(str(REPO / "examples" / "rag" / "make_pipelines.py"))["main"](tmp_path)
    for path in written:
        committed = parse_pipeline_yaml((REPO / "examples" / "rag" / path.name).read_text(encoding="utf-8"), "x")
        assert fit_devices(parse_pipeline_yaml(path.read_text(encoding="utf-8"), "y")) == fit_devices(committed)
