import json
from pathlib import Path

import numpy as np
import pytest

from distill import cli
from distill.common.models import model_fingerprint, model_footprint
from distill.components.onnx_embedders import OnnxEncoder
from distill.errors import DistillError
from distill.pipelines.loading import read_pipeline_dict
from distill.training.export import export_onnx

TEXTS = [
    "Where was Mozart born?",
    "The Nile is the longest river in Africa. It flows north through Egypt into the Mediterranean Sea.",
    "",
    "  spaces around  ",
    "Mozart " * 100,  # past max_seq_length (64): truncated as sentence-transformers truncates
    "unknownword xyz",
]


def st_embeddings(folder: Path, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode(texts, batch_size=4)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_fp32_export_gives_sentence_transformers_embeddings(tiny_embedder, tiny_onnx_fp32):
    expected = st_embeddings(tiny_embedder, TEXTS)
    got = OnnxEncoder(tiny_onnx_fp32).encode(TEXTS, batch_size=4)
    assert got.dtype == np.float32 and got.shape == expected.shape == (len(TEXTS), 32)
    assert np.abs(got - expected).max() < 1e-4
    # Order is kept whatever the batch size (batches go longest first inside).
    assert np.abs(OnnxEncoder(tiny_onnx_fp32).encode(TEXTS, batch_size=1) - expected).max() < 1e-4


def test_int8_export_is_close_and_smaller(tiny_embedder, tiny_onnx_int8, tiny_onnx_fp32):
    expected = st_embeddings(tiny_embedder, TEXTS)
    got = OnnxEncoder(tiny_onnx_int8).encode(TEXTS)
    assert cosines(got, expected).min() > 0.98
    assert not np.allclose(got, expected, atol=1e-6)  # it is quantised, not the fp32 graph again
    assert (tiny_onnx_int8 / "model.onnx").stat().st_size < (tiny_onnx_fp32 / "model.onnx").stat().st_size


def test_int8_keeps_the_quantisation_closest_to_fp32(tiny_onnx_int8):
    """Three ways to scale the weights are tried against the fp32 graph on probe texts; the closest is kept and said.
    (One scale per tensor cost the distilled MiniLM-L6 1.7 points of nDCG@10 on SQuAD dev, per channel 0.3; per
    channel broke all-mpnet-base-v2 on this AVX2 machine, 7-bit per channel did not: docs/benchmarks/speed.md.)"""
    import onnx

    from distill.training.export import QUANTISATIONS

    info = json.loads((tiny_onnx_int8 / "distill_onnx.json").read_text())
    assert set(info["int8_tried"]) == set(QUANTISATIONS)
    assert info["int8_min_cosine_to_fp32"] == max(info["int8_tried"].values()) > 0.98
    assert info["int8_tried"][info["int8_scales"]] == info["int8_min_cosine_to_fp32"]
    graph = onnx.load(str(tiny_onnx_int8 / "model.onnx")).graph
    scales = [i for i in graph.initializer if i.name.endswith("_scale") and i.data_type == onnx.TensorProto.FLOAT]
    per_channel = any(len(i.dims) == 1 and i.dims[0] > 1 for i in scales)
    assert per_channel == info["int8_scales"].startswith("per output channel")
    assert not list(tiny_onnx_int8.glob("int8-*.onnx")) and not list(tiny_onnx_int8.glob(".export-*"))


def test_description_and_folder(tiny_onnx_int8, tiny_embedder):
    info = json.loads((tiny_onnx_int8 / "distill_onnx.json").read_text())
    assert info["precision"] == "int8" and info["pooling"] == "mean" and info["normalize"] is True
    assert info["max_seq_length"] == 64 and info["dimension"] == 32
    assert info["inputs"] == ["input_ids", "attention_mask"]
    assert info["source_weights"] == model_fingerprint(tiny_embedder)
    names = {p.name for p in tiny_onnx_int8.iterdir()}
    assert {"model.onnx", "tokenizer.json", "config.json", "distill_onnx.json"} <= names
    assert not [p for p in tiny_onnx_int8.iterdir() if p.name.startswith(".")]  # no staging folder left
    assert model_footprint(tiny_onnx_int8)["parameters"] == model_footprint(tiny_embedder)["parameters"]


def test_fingerprint_hashes_the_graph(tiny_onnx_int8, tiny_onnx_fp32, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path))
    assert model_fingerprint(tiny_onnx_int8) != model_fingerprint(tiny_onnx_fp32)


def _student(folder: Path, pooling: str, normalize: bool, dense: bool = False, head: bool = False) -> Path:
    import torch
    from conftest import build_tokenizer, tiny_bert_config
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    torch.manual_seed(3)
    from transformers import BertModel

    raw = folder.parent / f"{folder.name}-raw"
    tokenizer = build_tokenizer()
    BertModel(tiny_bert_config(len(tokenizer))).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = models.Transformer(str(raw), max_seq_length=16)
    modules = [transformer, models.Pooling(32, pooling_mode=pooling)]
    if dense:
        modules.append(models.Dense(32, 8))  # tanh, sentence-transformers' default activation
    if head:  # a query-only student's: normalised pooled rows, a linear map to another width
        modules += [models.Normalize(), models.Dense(32, 48, activation_function=torch.nn.Identity())]
    if normalize:
        modules.append(models.Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return folder


@pytest.mark.parametrize("pooling", ["cls", "max"])
def test_other_pooling_and_no_normalize(tmp_path, pooling):
    source = _student(tmp_path / f"st-{pooling}", pooling, normalize=False)
    out = export_onnx(str(source), tmp_path / "out", int8=False)
    info = json.loads((out / "distill_onnx.json").read_text())
    assert info["pooling"] == pooling and info["normalize"] is False and info["max_seq_length"] == 16
    expected = st_embeddings(source, TEXTS)
    assert np.abs(np.linalg.norm(expected, axis=1) - 1).max() > 1e-3  # really not normalised
    assert np.abs(OnnxEncoder(out).encode(TEXTS) - expected).max() < 1e-4


def test_a_query_only_students_linear_head_is_exported_and_applied(tmp_path):
    source = _student(tmp_path / "st-head", "mean", normalize=True, head=True)
    fp32 = export_onnx(str(source), tmp_path / "fp32", int8=False)
    info = json.loads((fp32 / "distill_onnx.json").read_text())
    assert info["head"] == "head.npz" and info["normalize_pooled"] is True and info["dimension"] == 48
    expected = st_embeddings(source, TEXTS)
    got = OnnxEncoder(fp32).encode(TEXTS)
    assert got.shape == expected.shape == (len(TEXTS), 48)
    assert np.abs(got - expected).max() < 1e-4
    assert cosines(OnnxEncoder(export_onnx(str(source), tmp_path / "int8")).encode(TEXTS), expected).min() > 0.95
    (fp32 / "head.npz").unlink()
    with pytest.raises(DistillError, match="lacks head.npz"):
        OnnxEncoder(fp32)


def test_refusals_are_one_line(tmp_path, tiny_reader, tiny_embedder, capsys):
    def refused(*args: str) -> str:
        assert cli.main(["export", *args]) == 2
        err = capsys.readouterr().err.strip()
        last = err.splitlines()[-1]  # above it at most the model's loading bar (transformers' own)
        assert last.startswith("distill export: error:") and "Traceback" not in err
        return last

    dense = _student(tmp_path / "dense", "mean", normalize=True, dense=True)
    weighted = _student(tmp_path / "weighted", "weightedmean", normalize=True)
    capsys.readouterr()  # the models' own progress bars
    assert "has no modules.json" in refused(str(tiny_reader), "--out", str(tmp_path / "a"))
    assert "has the activation Tanh" in refused(str(dense), "--out", str(tmp_path / "b"))
    assert "pools with 'weightedmean'" in refused(str(weighted), "--out", str(tmp_path / "c"))
    (tmp_path / "file").write_text("x")
    assert "is a file" in refused(str(tiny_embedder), "--out", str(tmp_path / "file"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert "holds something other than an export" in refused(str(tiny_embedder), "--out", str(tmp_path / "busy"))
    assert "unknown model" in refused("no-such-model", "--out", str(tmp_path / "d"))
    lonely = refused(str(tiny_embedder), "--out", str(tmp_path / "e"), "--fast-retriever")
    assert "--fast-retriever goes with --swap" in lonely
    assert not any((tmp_path / n).exists() for n in "abcde")  # nothing half-written


def test_cli_export_with_swap(tiny_embedder, tiny_pipelines, tmp_path, capsys):
    out = tmp_path / "int8"
    args = ["export", str(tiny_embedder), "--out", str(out), "--swap", str(tiny_pipelines), "--fast-retriever"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out.split()
    assert printed[0] == str(out) and len(printed) == 4
    indexing = read_pipeline_dict((out / "pipelines" / "indexing.yaml").read_text())
    retrieval = read_pipeline_dict((out / "pipelines" / "retrieval.yaml").read_text())
    embedder = indexing["components"]["document_embedder"]
    assert embedder["type"] == "distill.components.onnx_embedders.OnnxDocumentEmbedder"
    assert embedder["init_parameters"]["model"] == str(out)  # (a relative --out is written relative to the YAML)
    assert embedder["init_parameters"]["batch_size"] == 16  # the teacher's settings are kept
    assert retrieval["components"]["text_embedder"]["type"] == "distill.components.onnx_embedders.OnnxTextEmbedder"
    assert retrieval["components"]["retriever"]["type"].startswith("distill.components.retrievers.FastInMemory")
    index = retrieval["components"]["retriever"]["init_parameters"]["document_store"]["init_parameters"]["index"]
    writer = indexing["components"]["writer"]["init_parameters"]["document_store"]["init_parameters"]["index"]
    assert index == writer and index != "tiny-teacher" and "int8" in index
    # Exporting again into the same folder replaces the export and keeps the pipelines.
    assert cli.main(["export", str(tiny_embedder), "--out", str(out), "--fp32"]) == 0
    assert json.loads((out / "distill_onnx.json").read_text())["precision"] == "fp32"
    assert (out / "pipelines" / "retrieval.yaml").is_file()


def test_export_refuses_a_missing_onnxruntime(monkeypatch, tiny_embedder, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("no onnxruntime", name="onnxruntime")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(DistillError, match="onnxruntime is missing"):
        export_onnx(str(tiny_embedder), tmp_path / "x")
