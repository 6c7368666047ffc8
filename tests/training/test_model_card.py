import json
from pathlib import Path

import pytest
import yaml

from distill.errors import DistillError
from distill.training import model_card

REPO = Path(__file__).resolve().parents[2]
COMMITTED_CARDS = sorted((REPO / "benchmarks" / "results" / "students").glob("*/README.md"))

EMBEDDER_RECIPE = {
    "task": "embedder",
    "teacher": "mpnet-base",
    "student": "minilm-l6",
    "query_only": False,
    "data": {"train": "squad-train", "questions": 10, "seed": 0, "dev": "squad-dev", "dev_articles": 2},
    "losses": [{"name": "listwise_kl", "weight": 1.0, "temperature": 0.05}],
    "optimizer": {"lr": 2e-5},
    "output": "runs/students/tiny-embedder",
}
EMBEDDER_METRICS = {
    "dev": {"recall@1": 0.5, "ndcg@10": 0.71234, "teacher_ndcg@10": 0.8},
    "teacher_dev": {"recall@1": 0.6, "ndcg@10": 0.8},
    "untrained_dev": {"recall@1": 0.4, "ndcg@10": 0.65},
    "best_step": 4,
    "train": {"steps": 5, "examples": 10, "seconds": 1.0, "examples_per_s": 10.0},
}
READER_RECIPE = {
    "task": "reader",
    "teacher": "runs/reader-teacher",
    "student": {"model": "mpnet-base", "layers": [0, 1]},
    "data": {"train": "squad-train", "questions": 10, "seed": 0, "dev": "squad-dev", "dev_questions": 3},
    "losses": [{"name": "start_end_kl", "weight": 1.0, "temperature": 1.5, "alpha": 0.75}],
    "optimizer": {"lr": 3e-5},
    "max_length": 384,
    "stride": 128,
    "max_query_length": 64,
    "output": "runs/students/tiny-reader",
}
READER_METRICS = {
    "dev": {"exact_match": 33.333333333333336, "f1": 50.5},
    "teacher_dev": {"exact_match": 66.66666666666667, "f1": 70.25},
    "untrained_dev": {"exact_match": 0.0, "f1": 1.5},
}


def _front_matter(text: str) -> tuple[dict, str]:
    """The YAML between the first two ``---`` lines, parsed, and what follows."""
    lines = text.split("\n")
    assert lines[0] == "---"
    end = lines.index("---", 1)
    return yaml.safe_load("\n".join(lines[1:end])), "\n".join(lines[end + 1 :])


def _index_scores(meta: dict) -> dict[str, float]:
    (entry,) = meta["model-index"]
    (result,) = entry["results"]
    return {row["type"]: row["value"] for row in result["metrics"]}


def test_embedder_card_front_matter_is_the_hub_metadata_with_the_measured_scores():
    meta, body = _front_matter(model_card.model_card(EMBEDDER_RECIPE, EMBEDDER_METRICS, kind="embedder"))
    assert meta["library_name"] == "sentence-transformers" and meta["pipeline_tag"] == "sentence-similarity"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["datasets"] == ["rajpurkar/squad"] and meta["license"] == "apache-2.0"
    assert {"sentence-transformers", "feature-extraction", "sentence-similarity", "knowledge-distillation"} <= set(
        meta["tags"]
    )
    assert "haystack" in meta["tags"]
    (entry,) = meta["model-index"]
    assert entry["name"] == "tiny-embedder"
    result = entry["results"][0]
    assert result["task"]["type"] == "information-retrieval"
    assert result["dataset"] == {
        "type": "rajpurkar/squad",
        "name": "SQuAD v1.1 dev slice (2 articles)",
        "split": "validation",
    }
    # Exactly metrics.json's values: the model's own, then the teacher's; the trainer's teacher_* copies are not
    # a second set.
    assert _index_scores(meta) == {
        "recall@1": 0.5,
        "ndcg@10": 0.71234,
        "teacher_recall@1": 0.6,
        "teacher_ndcg@10": 0.8,
    }
    assert all(row["name"] for row in result["metrics"])
    assert body.startswith("# Distilled embedder: tiny-embedder\n") and "| ndcg@10 | 0.800 | 0.650 | 0.712 |" in body


def test_reader_card_front_matter():
    meta, body = _front_matter(model_card.reader_card(READER_RECIPE, READER_METRICS))
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "question-answering"
    assert meta["base_model"] == "sentence-transformers/all-mpnet-base-v2"  # its layers 0 and 1
    assert meta["datasets"] == ["rajpurkar/squad"] and meta["license"] == "apache-2.0"
    assert "knowledge-distillation" in meta["tags"]
    assert _index_scores(meta) == {
        "exact_match": 33.333333333333336,
        "f1": 50.5,
        "teacher_exact_match": 66.66666666666667,
        "teacher_f1": 70.25,
    }
    assert meta["model-index"][0]["results"][0]["task"]["type"] == "question-answering"
    assert body.startswith("# Distilled reader: tiny-reader\n") and "CC BY-SA 4.0" in body


def test_a_card_invents_nothing_that_is_not_known():
    # A student continued from a local folder, of a local teacher, with no scores yet: no base model, no model-index.
    recipe = READER_RECIPE | {
        "student": "runs/students/earlier/student",
        "losses": [{"name": "start_end_ce", "weight": 1.0}],
    }
    meta, _ = _front_matter(model_card.reader_card(recipe, {}))
    assert "base_model" not in meta and "model-index" not in meta
    assert "knowledge-distillation" not in meta["tags"]  # gold spans only
    from_teacher = READER_RECIPE | {"student": {"from_teacher": {"layers": [0]}}}
    assert "base_model" not in _front_matter(model_card.reader_card(from_teacher, READER_METRICS))[0]
    beir = EMBEDDER_RECIPE | {"data": EMBEDDER_RECIPE["data"] | {"train": "data/scifact:train", "dev": "data/own:dev"}}
    meta, _ = _front_matter(model_card.model_card(beir, EMBEDDER_METRICS, kind="embedder"))
    assert meta["datasets"] == ["BeIR/scifact"]
    assert meta["model-index"][0]["results"][0]["dataset"] == {
        "type": "own",
        "name": "own dev slice (2 articles)",
        "split": "dev",
    }


@pytest.mark.parametrize(
    "spec, hub_id",
    [
        ("minilm-l6", "sentence-transformers/all-MiniLM-L6-v2"),
        ("sentence-transformers/all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"),
        ("deepset/roberta-base-squad2", "deepset/roberta-base-squad2"),
        ("runs/reader-teacher", None),
        ("/abs/folder", None),
        ({"model": "mpnet-base", "layers": [0]}, "sentence-transformers/all-mpnet-base-v2"),
    ],
)
def test_hub_model(spec, hub_id):
    assert model_card.hub_model(spec) == hub_id


def test_rewrite_card_replaces_only_the_front_matter(tmp_path):
    body = "# Distilled embedder: old\n\nbody written by the run, with its own versions\n"
    (tmp_path / "README.md").write_text("---\nlibrary_name: sentence-transformers\n---\n" + body)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(EMBEDDER_RECIPE))
    (tmp_path / "metrics.json").write_text(json.dumps(EMBEDDER_METRICS))
    text = model_card.rewrite_card(tmp_path).read_text()
    meta, after = _front_matter(text)
    assert "\n" + after == "\n" + body and meta == model_card.embedder_metadata(EMBEDDER_RECIPE, EMBEDDER_METRICS)
    assert model_card.rewrite_card(tmp_path).read_text() == text  # idempotent
    (tmp_path / "config.yaml").unlink()
    with pytest.raises(DistillError, match="has no config.yaml"):
        model_card.rewrite_card(tmp_path)


def test_a_card_without_front_matter_gets_one(tmp_path):
    (tmp_path / "README.md").write_text("# Weight average of 2 students\n")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"task": "average", "models": ["a", "b"]}))
    meta, body = _front_matter(model_card.rewrite_card(tmp_path).read_text())
    assert meta["license"] == "apache-2.0" and "model-soup" in meta["tags"]
    assert body == "# Weight average of 2 students\n"


@pytest.mark.parametrize("card", COMMITTED_CARDS, ids=lambda p: p.parent.name)
def test_committed_cards_carry_the_front_matter_their_folder_gives(card):
    meta, body = _front_matter(card.read_text(encoding="utf-8"))
    assert meta["library_name"] in ("sentence-transformers", "transformers") and meta["license"] == "apache-2.0"
    assert body.startswith("# ")
    recipe = yaml.safe_load((card.parent / "config.yaml").read_text(encoding="utf-8"))
    metrics = json.loads((card.parent / "metrics.json").read_text(encoding="utf-8"))
    assert meta == model_card.card_metadata(recipe, metrics)  # else: python -c "...rewrite_card(folder)"
    for key, value in _index_scores(meta).items() if "model-index" in meta else ():
        row = metrics["teacher_dev"] if key.startswith("teacher_") else metrics["dev"]
        assert row[key.removeprefix("teacher_")] == value


def test_there_are_committed_cards():
    assert len(COMMITTED_CARDS) > 30


def test_a_teacher_labelled_card_names_its_own_corpus_and_held_out_queries_not_the_recipe_dev_set():
    recipe = {
        **EMBEDDER_RECIPE,
        "teacher": "pipelines",
        "data": {
            **EMBEDDER_RECIPE["data"],
            "train": "../shared/data/nfcorpus",
            "labels": "teacher",
            "queries": "../shared/data/nfcorpus:train",
            "dev_questions": 100,
            "candidates": 20,
        },
        "output": "runs/adapt/nfcorpus-queries/run",  # `distill adapt` trains into OUT/run
    }
    metrics = {"dev": {"silver_ndcg@10": 0.74}, "teacher_dev": {"silver_ndcg@10": 1.0}}
    meta, body = _front_matter(model_card.model_card(recipe, metrics, kind="embedder"))
    assert meta["datasets"] == ["BeIR/nfcorpus"]  # the recipe's dev (squad-dev) was never read
    (entry,) = meta["model-index"]
    assert entry["name"] == "nfcorpus-queries"
    assert entry["results"][0]["dataset"] == {
        "type": "BeIR/nfcorpus",
        "name": "nfcorpus: 100 held-out training queries, agreement with the teacher",
    }
    assert body.startswith("# Distilled embedder: nfcorpus-queries\n")
    assert "## Metrics (held-out training queries: agreement with the teacher" in body and "dev slice" not in body


def test_metrics_json_has_one_writer_that_replaces_the_file_whole(tmp_path, monkeypatch):
    import os

    model_card.write_metrics(tmp_path, READER_METRICS)
    before = (tmp_path / "metrics.json").read_bytes()
    assert before == (json.dumps(READER_METRICS, indent=2) + "\n").encode()  # the bytes every writer wrote before

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        model_card.write_metrics(tmp_path, {"dev": {}})
    assert (tmp_path / "metrics.json").read_bytes() == before and os.listdir(tmp_path) == ["metrics.json"]


@pytest.mark.parametrize(
    "changes, title, columns",
    [
        ({}, "# Distilled reader: tiny-reader", "| metric | teacher | student before training | student |"),
        (
            {"losses": [{"name": "start_end_ce", "weight": 1.0}, {"name": "start_end_kl", "weight": 0.0}]},
            "# Reader trained on gold spans only: tiny-reader",
            "| metric | teacher | student before training | student |",
        ),
        (
            {"task": "finetune_reader", "model": "mpnet-base", "layers": [0, 1], "losses": []},
            "# Extractive reader: tiny-reader",
            "| metric | before fine-tuning | fine-tuned |",
        ),
    ],
    ids=["distilled", "gold-spans", "fine-tuned"],
)
def test_each_kind_of_reader_card_has_its_opening_over_one_skeleton(changes, title, columns):
    recipe = READER_RECIPE | changes | {"optimizer": {"lr": 3e-5, "ema": 0.99}}
    metrics = READER_METRICS | {"cross_tokenizer": True, "starts_from": {"reader": "runs/earlier", "steps": None}}
    _, body = _front_matter(model_card.reader_card(recipe, metrics))
    sections = [line for line in body.split("\n") if line.startswith("## ")]
    student = recipe["task"] == "reader"
    assert body.startswith(title + "\n\n") and columns in body
    metrics_heading = "## Metrics (dev slice, measured during training; SQuAD v1.1 EM / F1)"
    losses = ["## Losses"] if student else []
    assert sections == ["## Data", *losses, metrics_heading, "## Use", "## Versions", "## Recipe"]
    # A student's opening says where its weights started and how the teacher's outputs reached it; a teacher's not.
    assert ("`runs/earlier`" in body) == student and ("character offsets" in body) == student
    assert "Weights: an exponential moving average (decay 0.99)" in body  # the data section's last line, every kind
