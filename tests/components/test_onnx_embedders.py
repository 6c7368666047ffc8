import json
import shutil

import numpy as np
import pytest
import yaml
from haystack import Document, Pipeline
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)

from distill import cli
from distill.components.onnx_embedders import OnnxDocumentEmbedder, OnnxTextEmbedder, onnx_embedder
from distill.errors import DistillError
from distill.pipelines.loading import load_pipeline, read_pipeline_dict, swap_files
from distill.teacher.embedders import embedder_namespace

DOCS = [
    Document(content="The Nile is the longest river in Africa.", meta={"title": "Rivers", "year": 1}),
    Document(content="Mozart was born in Salzburg in 1756.", meta={"title": "Music", "year": None}),
    Document(content="Mars is called the red planet.", meta={}),
    Document(content=None, meta={"title": "Empty"}),
]
DOC_SETTINGS = {
    "prefix": "passage: ",
    "suffix": " .",
    "meta_fields_to_embed": ["title", "year"],
    "embedding_separator": " | ",
    "normalize_embeddings": True,
    "batch_size": 2,
    "progress_bar": False,
}


def test_document_embedder_matches_sentence_transformers(tiny_embedder, tiny_onnx_fp32):
    reference = SentenceTransformersDocumentEmbedder(model=str(tiny_embedder), **DOC_SETTINGS)
    ours = OnnxDocumentEmbedder(model=str(tiny_onnx_fp32), **DOC_SETTINGS)
    reference.warm_up()
    ours.warm_up()
    expected = reference.run(documents=DOCS)["documents"]
    got = ours.run(documents=DOCS)["documents"]
    assert [d.id for d in got] == [d.id for d in DOCS] and all(d.embedding is None for d in DOCS)
    assert [d.meta for d in got] == [d.meta for d in DOCS]
    assert all(isinstance(x, float) for x in got[0].embedding)
    assert np.abs(np.array([d.embedding for d in got]) - np.array([d.embedding for d in expected])).max() < 1e-4
    # The settings matter: without the meta fields the embeddings change.
    plain = OnnxDocumentEmbedder(model=str(tiny_onnx_fp32), progress_bar=False).run(documents=DOCS[:1])
    assert np.abs(np.array(plain["documents"][0].embedding) - np.array(got[0].embedding)).max() > 1e-3
    assert ours.run(documents=[])["documents"] == []


def test_text_embedder_matches_sentence_transformers(tiny_embedder, tiny_onnx_fp32, tiny_onnx_int8):
    settings = {"prefix": "query: ", "suffix": "?", "normalize_embeddings": False, "progress_bar": False}
    reference = SentenceTransformersTextEmbedder(model=str(tiny_embedder), **settings)
    reference.warm_up()
    expected = np.array(reference.run(text="Where was Mozart born")["embedding"])
    for folder, tolerance in ((tiny_onnx_fp32, 1e-4), (tiny_onnx_int8, None)):
        got = np.array(OnnxTextEmbedder(model=str(folder), **settings).run(text="Where was Mozart born")["embedding"])
        if tolerance is not None:
            assert np.abs(got - expected).max() < tolerance
        else:
            assert got @ expected / np.linalg.norm(got) / np.linalg.norm(expected) > 0.98
    with pytest.raises(TypeError, match="expects a string"):
        OnnxTextEmbedder(model=str(tiny_onnx_fp32)).run(text=["a list"])
    with pytest.raises(TypeError, match="expects a list of Documents"):
        OnnxDocumentEmbedder(model=str(tiny_onnx_fp32)).run(documents="a string")


@pytest.mark.parametrize("cls", [OnnxDocumentEmbedder, OnnxTextEmbedder])
def test_every_init_parameter_round_trips(cls, tiny_onnx_int8):
    settings = {"model": str(tiny_onnx_int8), "prefix": "p", "suffix": "s", "batch_size": 3, "progress_bar": False}
    settings |= {"normalize_embeddings": True, "intra_op_num_threads": 1}
    if cls is OnnxDocumentEmbedder:
        settings |= {"meta_fields_to_embed": ["title"], "embedding_separator": " - "}
    data = cls(**settings).to_dict()
    assert data["type"] == f"distill.components.onnx_embedders.{cls.__name__}" and data["init_parameters"] == settings
    again = cls.from_dict(yaml.safe_load(yaml.safe_dump(data)))
    assert again.to_dict() == data
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        cls(model="x", batch_size=0)


def test_swapped_yaml_loads_under_the_allowlist_and_round_trips(tiny_pipelines, tiny_onnx_int8, tmp_path):
    written = swap_files(sorted(tiny_pipelines.glob("*.yaml")), tmp_path, model=str(tiny_onnx_int8))
    assert len(written) == 3
    pipeline = load_pipeline(tmp_path / "retrieval.yaml")
    embedder = pipeline.get_component("text_embedder")
    assert isinstance(embedder, OnnxTextEmbedder) and embedder.model == str(tiny_onnx_int8)
    assert embedder.progress_bar is False  # the teacher's setting carried over
    again = Pipeline.loads(pipeline.dumps(), allowed_modules=["distill.*"])
    assert again.to_dict() == pipeline.to_dict()
    indexing = load_pipeline(tmp_path / "indexing.yaml")
    assert isinstance(indexing.get_component("document_embedder"), OnnxDocumentEmbedder)
    qa = read_pipeline_dict(tmp_path / "extractive_qa.yaml")
    assert qa["components"]["reader"]["type"].endswith("TransformersExtractiveReader")  # only the embedders change


def test_cache_namespace_follows_the_exported_weights(home, tiny_pipelines, tiny_onnx_int8, tiny_onnx_fp32, tmp_path):
    spaces = []
    for folder in (tiny_onnx_int8, tiny_onnx_fp32):
        out = tmp_path / folder.name
        swap_files([tiny_pipelines / "indexing.yaml"], out, model=str(folder))
        spaces.append(embedder_namespace(read_pipeline_dict(out / "indexing.yaml"), "document_embedder"))
    assert spaces[0]["weights"] != spaces[1]["weights"]  # *.onnx hashed: an int8 index never reads fp32 rows
    params = [{k: v for k, v in space["params"].items() if k != "model"} for space in spaces]
    assert params[0] == params[1]


def test_swap_refuses_settings_it_cannot_honour_and_a_broken_export(tiny_pipelines, tiny_onnx_int8, tmp_path):
    data = read_pipeline_dict(tiny_pipelines / "retrieval.yaml")
    spec = data["components"]["text_embedder"]
    spec["init_parameters"]["truncate_dim"] = 16
    with pytest.raises(DistillError, match="truncate_dim=16, which the ONNX embedders do not implement"):
        onnx_embedder(spec, str(tiny_onnx_int8), "text_embedder")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_onnx_int8, broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(DistillError, match="lacks tokenizer.json"):
        OnnxTextEmbedder(model=str(broken)).warm_up()
    (broken / "distill_onnx.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DistillError, match="is not a distill-onnx/1 description"):
        OnnxTextEmbedder(model=str(broken)).warm_up()


def test_yaml_pointing_at_a_missing_export_is_one_line(
    home, tiny_pipelines, tiny_onnx_int8, tiny_squad, tmp_path, capsys
):
    out = tmp_path / "pipes"
    swap_files([tiny_pipelines / "retrieval.yaml", tiny_pipelines / "indexing.yaml"], out, model=str(tiny_onnx_int8))
    for name in ("retrieval.yaml", "indexing.yaml"):
        path = out / name
        path.write_text(path.read_text().replace(str(tiny_onnx_int8), str(tmp_path / "gone")))
    assert cli.main(["eval", f"int8={out / 'retrieval.yaml'}", "--data", str(tiny_squad), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("distill eval: error:") and "unknown model" in err and "gone" in err


def test_distill_eval_runs_the_int8_pipelines_end_to_end(
    home, tiny_pipelines, tiny_embedder, tiny_squad, tmp_path, capsys
):
    export = tmp_path / "int8"
    pipelines = [str(tiny_pipelines / "indexing.yaml"), str(tiny_pipelines / "retrieval.yaml")]
    assert cli.main(["export", str(tiny_embedder), "--out", str(export), "--swap", *pipelines]) == 0
    report_dir = tmp_path / "eval"
    args = [f"teacher={tiny_pipelines / 'retrieval.yaml'}", f"int8={export / 'pipelines' / 'retrieval.yaml'}"]
    code = cli.main(["eval", *args, "--data", str(tiny_squad), "--warmup", "1", "--out", str(report_dir)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((report_dir / "report.json").read_text())
    rows = [json.loads(line) for line in (report_dir / "questions.jsonl").read_text().splitlines()]
    assert len(rows) == report["dataset"]["questions"] > 0
    retrieved = [row["runs"]["int8"]["retrieved"] for row in rows]
    assert all(len(ids) == 6 for ids in retrieved)  # every paragraph of the tiny corpus, ranked
    # The int8 model is the tiny teacher up to int8 error: mostly the same first document.
    same = sum(row["runs"]["int8"]["retrieved"][0] == row["runs"]["teacher"]["retrieved"][0] for row in rows)
    assert same >= len(rows) - 2
    int8 = report["pipelines"]["int8"]
    assert int8["quality"]["ndcg@10"] > 0 and int8["models"]["text_embedder"]["parameters"] > 0
    assert int8["indexing_yaml"].endswith("int8/pipelines/indexing.yaml")  # its own index, built by the int8 model
