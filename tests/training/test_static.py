"""Static token-embedding students (distill/training/static.py): built from a tiny teacher the model2vec way, served by
sentence-transformers and Haystack's stock embedders, trained with the project's losses, and their bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import char_tokenizer, write_recipe

from distill.errors import DistillError
from distill.pipelines.loading import read_pipeline_dict
from distill.training import recipes
from distill.training.static import (
    check_static_student,
    kept_tokens,
    pca,
    sif_weights,
    static_weights,
    write_static,
)

TEXTS = ["Where was Mozart born?", "The Nile is the longest river in Africa."]


@pytest.fixture
def built(home, tiny_embedder) -> Path:
    return write_static(str(tiny_embedder), home / "static", dims=8, progress=False)


def test_sif_weights_are_model2vecs_zipf_formula():
    # ranks 0, 1, 2 -> 1/2, 1/3, 1/4, normalised: 6/13, 4/13, 3/13; weights a / (a + p)
    expected = [0.5 / (0.5 + 6 / 13), 0.5 / (0.5 + 4 / 13), 0.5 / (0.5 + 3 / 13)]
    assert np.allclose(sif_weights(3, 0.5), expected)
    assert np.all(np.diff(sif_weights(100, 1e-4)) > 0)  # rarer (later) tokens weigh more


def test_pca_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    rows = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32) @ np.diag([5, 4, 3, 2, 1, 0.5])
    ours, theirs = pca(rows, 3), PCA(n_components=3, svd_solver="full").fit_transform(rows)
    assert np.allclose(np.abs(ours), np.abs(theirs), atol=1e-4)


def test_placeholder_tokens_get_zero_rows_and_no_rank():
    vocab = {"[PAD]": 0, "[unused0]": 1, "[unused1]": 2, "a": 3, "b": 4}
    ids = kept_tokens(vocab, 5)
    assert ids.tolist() == [0, 3, 4]
    rows = np.ones((3, 2), dtype=np.float32)
    weights = static_weights(ids, rows, 5, None, 0.5)
    assert np.all(weights[[1, 2]] == 0)
    assert np.allclose(weights[ids, 0], sif_weights(3, 0.5))  # ranked among the kept tokens only


def test_rows_are_the_teachers_token_outputs_before_pca(home, tiny_embedder):
    import torch
    from safetensors.numpy import load_file
    from sentence_transformers import SentenceTransformer

    out = write_static(str(tiny_embedder), home / "full", dims=None, sif_coefficient=None, progress=False)
    weights = load_file(str(out / "model.safetensors"))["embedding.weight"]
    teacher = SentenceTransformer(str(tiny_embedder), device="cpu")
    tok = teacher[0].tokenizer
    assert weights.shape == (len(tok), 32)
    for token in ["mozart", "nile", "[UNK]", "##s"]:
        i = tok.convert_tokens_to_ids(token)
        ids = torch.tensor([[tok.cls_token_id, i, tok.sep_token_id]])  # [bos, token, eos]
        with torch.no_grad():
            hidden = teacher[0].auto_model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        assert np.allclose(weights[i], hidden[0].mean(0).numpy(), atol=1e-5), token
    info = json.loads((out / "distill_static.json").read_text())
    assert info["width"] == 32 and info["dims"] is None


def test_the_folder_serves_through_sentence_transformers_and_haystack(built):
    from haystack import Document
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )
    from sentence_transformers import SentenceTransformer

    from distill.pipelines.stores import embedding_width

    direct = SentenceTransformer(str(built), device="cpu").encode(TEXTS)
    assert direct.shape == (2, 8) and np.allclose(np.linalg.norm(direct, axis=1), 1)  # the teacher normalises
    text = SentenceTransformersTextEmbedder(model=str(built))
    text.warm_up()
    assert np.allclose(text.run(text=TEXTS[0])["embedding"], direct[0], atol=1e-6)
    docs = SentenceTransformersDocumentEmbedder(model=str(built))
    docs.warm_up()
    embedded = docs.run(documents=[Document(content=t) for t in TEXTS])["documents"]
    assert np.allclose([d.embedding for d in embedded], direct, atol=1e-6)
    assert embedding_width(built) == 8  # what `distill swap` gives the student's own store


def test_the_token_pass_is_cached(home, tiny_embedder, built):
    def token_caches() -> list[Path]:
        return [p for p in (home / "home" / "teacher-cache").glob("static-tokens-*") if p.is_dir()]

    folders = token_caches()
    assert len(folders) == 1
    again = write_static(str(tiny_embedder), home / "static-16", dims=16, progress=False)
    assert token_caches() == folders  # the same token pass, reduced to another width
    assert (again / "model.safetensors").exists()


def test_cli_builds_a_static_model_and_refuses_bad_dims(home, tiny_embedder, capsys):
    from distill.cli import main

    assert main(["static", str(tiny_embedder), "--out", str(home / "cli"), "--dims", "none"]) == 0
    assert json.loads((home / "cli" / "distill_static.json").read_text())["width"] == 32
    capsys.readouterr()
    assert main(["static", str(tiny_embedder), "--out", str(home / "wide"), "--dims", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "dims 64 is more than the teacher's width 32" in err
    assert not (home / "wide").exists()
    with pytest.raises(SystemExit):
        main(["static", str(tiny_embedder), "--out", str(home / "x"), "--dims", "zero"])


def _losses_by_step(student: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_a_static_student_trains_with_the_projects_losses(home, tiny_embedder_wide, tiny_squad):
    from sentence_transformers import SentenceTransformer

    from distill.training.train import train

    path = write_recipe(
        home,
        tiny_embedder_wide,
        {"static": {"dims": 16}},
        tiny_squad,
        epochs=12,
        optimizer={"lr": 0.05, "warmup_ratio": 0.0},
        eval_every=100,
        save_every=100,
        pipelines=None,
    )
    recipe = recipes.load_recipe(path)
    assert recipe["student"] == {"static": {"dims": 16, "sif_coefficient": 1e-4}}
    student = train(recipe)
    losses = _losses_by_step(student)
    steps = sorted(losses)
    assert len(steps) >= 20
    first, last = np.mean([losses[s] for s in steps[:3]]), np.mean([losses[s] for s in steps[-3:]])
    assert last < 0.8 * first, losses
    model = SentenceTransformer(str(student), device="cpu")
    assert type(model[0]).__name__ == "StaticEmbedding" and model.encode(TEXTS).shape == (2, 16)
    assert "static token-embedding model of the teacher" in (student / "README.md").read_text()


def test_query_only_static_student_keeps_the_teachers_width_and_index(home, tiny_embedder, tiny_squad, tiny_pipelines):
    from sentence_transformers import SentenceTransformer

    from distill.training.train import train

    path = write_recipe(
        home,
        tiny_embedder,
        {"static": {"dims": None}},
        tiny_squad,
        epochs=1,
        query_only=True,
        pipelines=str(tiny_pipelines),
        losses=[{"name": "listwise_kl", "weight": 1.0, "temperature": 0.1}, {"name": "cosine", "weight": 1.0}],
    )
    student = train(recipes.load_recipe(path))
    assert SentenceTransformer(str(student), device="cpu").encode(TEXTS).shape == (2, 32)
    pipes = home / "out" / "pipelines"
    assert read_pipeline_dict((pipes / "indexing.yaml").read_text()) == read_pipeline_dict(
        (tiny_pipelines / "indexing.yaml").read_text()
    )
    query = read_pipeline_dict((pipes / "retrieval.yaml").read_text())["components"]
    assert query["text_embedder"]["init_parameters"]["model"] == str(student)

    with pytest.raises(DistillError, match=r"dims must be null for a query-only static student"):
        recipes.load_recipe(path, ["student={static: {dims: 16}}"])


def test_query_only_swap_refuses_a_static_model_of_another_teacher(home, tiny_embedder_wide, tiny_pipelines):
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    from distill.pipelines.loading import swap_files

    wide = write_static(str(tiny_embedder_wide), home / "wide", dims=None, progress=False)
    with pytest.raises(DistillError, match=r"is 48-d but the documents were embedded by .* at 32-d"):
        swap_files([tiny_pipelines / "retrieval.yaml"], home / "p1", model=str(wide), keep_index=True)
    other = home / "chars"
    tok = char_tokenizer()
    SentenceTransformer(modules=[StaticEmbedding(tok, embedding_weights=torch.randn(len(tok), 32))]).save(str(other))
    with pytest.raises(DistillError, match=r"tokenizes unlike .*tiny-st.*must be built from that teacher") as e:
        swap_files([tiny_pipelines / "retrieval.yaml"], home / "p2", model=str(other), keep_index=True)
    assert "\n" not in str(e.value)
    assert not (home / "p1").exists() and not (home / "p2").exists()


@pytest.mark.parametrize(
    ("student", "query_only", "message"),
    [
        ({"static": {"width": 8}}, False, r"unknown settings \['width'\]"),
        ({"static": {"dims": 0}}, False, r"dims must be a positive whole number or null"),
        ({"static": {"sif_coefficient": 1.5}}, False, r"sif_coefficient must be in \(0, 1\)"),
        ({"static": 8}, False, r"static must be a mapping"),
        ({"static": {}, "from_teacher": {}}, False, r"must be static or"),
        ("static", True, r"dims must be null for a query-only"),
    ],
)
def test_bad_static_settings_are_one_line(student, query_only, message):
    with pytest.raises(DistillError, match=message) as e:
        check_static_student(student, query_only)
    assert "\n" not in str(e.value)


def test_token_losses_are_refused_for_a_static_student():
    with pytest.raises(DistillError, match=r"hidden_state_mse compare token states, and a static student has none"):
        recipes.load_recipe(
            None,
            [
                "student=static",
                "losses=[{name: hidden_state_mse, weight: 1.0, layer_map: {0: 0}}]",
            ],
        )
    assert recipes.load_recipe(None, ["student=static"])["student"]["static"]["dims"] == 256


@pytest.mark.slow
def test_static_model_of_the_real_teacher(tmp_path):
    """all-mpnet-base-v2's whole vocabulary through the teacher (minutes on 2 cores; cached in $DISTILL_HOME)."""
    from sentence_transformers import SentenceTransformer

    out = write_static("mpnet-base", tmp_path / "mpnet-256", dims=256, progress=False)
    model = SentenceTransformer(str(out), device="cpu")
    texts = [
        "What is the capital of France?",
        "Paris is the capital and largest city of France.",
        "The Nile flows north into the Mediterranean.",
        "Who wrote the symphony?",
        "Beethoven composed nine symphonies.",
    ]
    emb = model.encode(texts)
    assert emb.shape == (5, 256)
    sim = emb @ emb.T
    # each question nearest its answer, and unrelated texts far apart: the rows did not collapse onto one direction
    # (model2vec's reversed frame [eos, token, bos] gave 1.00 between the France question and the Nile here)
    assert sim[0, 1] > max(sim[0, 2], sim[0, 4]) and sim[3, 4] > max(sim[3, 1], sim[3, 2])
    assert sim[0, 2] < 0.5
    assert json.loads((out / "distill_static.json").read_text())["vocabulary"] == len(model[0].tokenizer.get_vocab())
