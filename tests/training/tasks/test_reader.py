"""Tiny end-to-end runs of `distill finetune-reader` and reader distillation, the teacher's cached logits, and the
reader in pipelines (tiny models built in the session; no real model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import LONG, build_tokenizer, char_tokenizer, long_example, tiny_bert_config

from distill.errors import DistillError
from distill.training.tasks.windows import ReaderExample, make_windows


@pytest.fixture(scope="session")
def char_reader(tmp_path_factory) -> Path:
    from transformers import BertForQuestionAnswering

    torch.manual_seed(3)
    folder = tmp_path_factory.mktemp("models") / "tiny-qa-chars"
    tokenizer = char_tokenizer()
    config = tiny_bert_config(len(tokenizer))
    config.max_position_embeddings = 512
    BertForQuestionAnswering(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --- end to end on tiny models ----------------------------------------------------------------------------------------


def _recipe(tmp_path, tiny_squad, task: str, **extra):
    from distill.training.recipes import apply_overrides

    overrides = [
        f"data.train={tiny_squad}",
        f"data.dev={tiny_squad}",
        "data.questions=null",
        "data.dev_questions=null",
        "batch_size=4",
        "max_length=64",
        "stride=16",
        "max_query_length=16",
        "eval_every=2",
        "save_every=2",
        "log_every=1",
        "epochs=2",
        "optimizer.lr=1e-3",
        f"output={tmp_path / 'out'}",
    ]
    return overrides + [f"{k}={v}" for k, v in extra.items()], apply_overrides


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory, tiny_squad, tiny_reader) -> Path:
    from distill.training.recipes import load_recipe
    from distill.training.train import train

    tmp = tmp_path_factory.mktemp("teacher")
    overrides, _ = _recipe(tmp, tiny_squad, "finetune_reader", model=str(tiny_reader))
    return train(load_recipe(Path("recipes/reader-teacher-minilm.yaml"), overrides))


def test_finetune_reader_saves_a_haystack_ready_reader_with_card(tiny_teacher):
    from haystack import Document
    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md", "metrics.json", "config.yaml"):
        assert (tiny_teacher / name).exists(), name
    assert not (tiny_teacher / "training" / "checkpoint").exists()
    metrics = json.loads((tiny_teacher / "metrics.json").read_text())
    assert set(metrics["dev"]) == {"exact_match", "f1"}
    assert "fine-tuned for extractive question answering" in (tiny_teacher / "README.md").read_text()
    r = TransformersExtractiveReader(model=str(tiny_teacher), top_k=1)
    r.warm_up()
    answers = r.run(query="Where was Mozart born?", documents=[Document(content=LONG)])["answers"]
    assert answers and answers[0].data


def test_finetune_reader_resumes_after_an_interruption(tmp_path, tiny_squad, tiny_reader, monkeypatch, capsys):
    from distill.training.recipes import load_recipe
    from distill.training.tasks.reader import ReaderTask
    from distill.training.train import train

    overrides, _ = _recipe(tmp_path, tiny_squad, "finetune_reader", model=str(tiny_reader), max_steps=4)
    calls = {"n": 0}
    original = ReaderTask.collate

    def flaky(self, batch):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(ReaderTask, "collate", flaky)
    with pytest.raises(KeyboardInterrupt):
        train(load_recipe(Path("recipes/reader-teacher-minilm.yaml"), overrides))
    assert (tmp_path / "out" / "training" / "checkpoint").exists()
    monkeypatch.setattr(ReaderTask, "collate", original)
    train(load_recipe(Path("recipes/reader-teacher-minilm.yaml"), overrides))
    assert "resuming from" in capsys.readouterr().out
    steps = [json.loads(x)["step"] for x in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert max(steps) == 4


def test_finetune_reader_is_reproducible_from_its_seed(tmp_path, tiny_squad, tiny_embedder):
    """The encoder's fresh QA head is random: it must come from the recipe's seed, not from whatever ran before."""
    from safetensors.torch import load_file

    from distill.training.recipes import load_recipe
    from distill.training.train import train

    weights = []
    for run in ("a", "b"):
        torch.manual_seed(len(weights) + 123)  # a different global RNG state before each run
        overrides, _ = _recipe(tmp_path / run, tiny_squad, "finetune_reader", model=str(tiny_embedder), max_steps=2)
        weights.append(
            load_file(train(load_recipe(Path("recipes/reader-teacher-minilm.yaml"), overrides)) / "model.safetensors")
        )
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def _distill(tmp_path, tiny_squad, teacher, **extra):
    from distill.training.recipes import load_recipe
    from distill.training.train import train

    extra.setdefault("student", "{from_teacher: {layers: [1]}}")
    overrides, _ = _recipe(tmp_path, tiny_squad, "reader", teacher=str(teacher), pipelines="null", **extra)
    recipe = load_recipe(Path("recipes/reader-distill-minilm-2l.yaml"), overrides)
    return train(recipe), recipe


def test_distil_with_response_relation_and_feature_losses(tmp_path, tiny_squad, tiny_teacher, tiny_embedder_wide):
    losses = (
        "[{name: start_end_kl, weight: 1.0}, {name: attention_relation, weight: 0.5, num_relation_heads: 2},"
        " {name: token_similarity, weight: 0.5}, {name: hidden_state_mse, weight: 0.5, layer_map: [[-1, -1]]}]"
    )
    student, recipe = _distill(
        tmp_path, tiny_squad, tiny_teacher, student=f"{{model: {tiny_embedder_wide}, layers: [0, 2]}}", losses=losses
    )
    log = [json.loads(x) for x in (student / "train_log.jsonl").read_text().splitlines()]
    terms = {k for row in log for k in row if k.startswith("loss/")}
    assert terms == {
        f"loss/{n}" for n in ("start_end_kl", "attention_relation", "token_similarity", "hidden_state_mse")
    }
    # 48-d student vs 32-d teacher: the hidden-state projection is trained and saved beside the student.
    from safetensors.torch import load_file

    saved = load_file(str(student / "distillation_losses.safetensors"))
    assert [tuple(v.shape) for v in saved.values()] == [(32, 48)]
    config = json.loads((student / "config.json").read_text())
    assert config["num_hidden_layers"] == 2
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["cross_tokenizer"] is False and set(metrics["teacher_dev"]) == {"exact_match", "f1"}


def test_reader_distillation_with_a_weight_average(tmp_path, tiny_squad, tiny_teacher):
    student, _ = _distill(tmp_path, tiny_squad, tiny_teacher, **{"optimizer.ema": 0.9})
    log = [json.loads(x) for x in (student / "train_log.jsonl").read_text().splitlines()]
    evals = [row for row in log if "dev_raw/f1" in row]
    assert evals and all("dev/f1" in row for row in evals)
    assert "exponential moving average (decay 0.9)" in (student / "README.md").read_text()


def test_distil_across_tokenizers_maps_teacher_probabilities(tmp_path, tiny_squad, tiny_teacher, char_reader):
    student, _ = _distill(tmp_path, tiny_squad, tiny_teacher, student=str(char_reader), max_length=160)
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["cross_tokenizer"] is True
    assert "mapped onto the student's tokens through character offsets" in (student / "README.md").read_text()
    with pytest.raises(DistillError, match="attention_relation compare token positions.*tokenize differently"):
        _distill(
            tmp_path,
            tiny_squad,
            tiny_teacher,
            student=str(char_reader),
            max_length=160,
            losses="[{name: start_end_kl}, {name: attention_relation, num_relation_heads: 2}]",
        )


def test_unlabelled_questions_train_on_teacher_soft_labels_only(tmp_path, tiny_squad, tiny_teacher):
    from distill.training.recipes import load_recipe
    from distill.training.tasks.reader import ReaderTask

    overrides, _ = _recipe(
        tmp_path,
        tiny_squad,
        "reader",
        teacher=str(tiny_teacher),
        pipelines="null",
        student="{from_teacher: {layers: [1]}}",
        **{"data.questions": 4, "data.unlabelled": str(tiny_squad), "data.unlabelled_questions": 3},
    )
    recipe = load_recipe(Path("recipes/reader-distill-minilm-2l.yaml"), overrides)
    recipe["data"]["unlabelled"] = recipe["data"]["train"]
    task = ReaderTask(recipe, progress=False)
    task.warm_up()
    assert len(task.labelled_rows) == 4 and len(task.unlabelled_rows) == 3
    labelled_ids = {task.examples[task.windows.example[w]].id for w in task.labelled_rows}
    unlabelled_ids = {task.examples[task.windows.example[w]].id for w in task.unlabelled_rows}
    assert not labelled_ids & unlabelled_ids  # the questions after the labelled ones, never the same
    batches = task.batches(0)
    assert sorted(w for b in batches for w in b) == sorted(task.labelled_rows + task.unlabelled_rows)
    for b in batches:
        collated = task.collate(b)
        assert ("start_positions" in collated) == all(w in task.labelled_rows for w in b)
        loss = task.model()(collated)["start_end_kl"]
        assert torch.isfinite(loss)


def test_teacher_logits_are_cached_across_runs(tmp_path, tiny_squad, tiny_teacher, monkeypatch):
    from distill.training.tasks.reader import TeacherReader

    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    tokenizer = build_tokenizer()
    windows = make_windows(tokenizer, [long_example("Salzburg")], max_length=64, stride=16, max_query_length=8)
    first = TeacherReader(str(tiny_teacher), max_length=64).logits(windows, progress=False)
    again = TeacherReader(str(tiny_teacher), max_length=64)
    again._model = "not loaded: every window comes from the cache"  # any model call would fail
    np.testing.assert_array_equal(again.logits(windows, progress=False), first)


def test_teacher_logits_come_back_in_window_order_though_computed_by_length(tmp_path, tiny_teacher, monkeypatch):
    from distill.training.tasks.reader import TeacherReader, _run_reader

    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    tokenizer = build_tokenizer()
    short = ReaderExample("s", "Who?", "Mozart was born in Salzburg.", ("Mozart",), 0, "Mozart")
    examples = [long_example("Salzburg"), short, long_example("Italy", "Where was the piano invented?"), short]
    windows = make_windows(tokenizer, examples, max_length=64, stride=16, max_query_length=8)
    lengths = [len(ids) for ids in windows.input_ids]
    assert lengths != sorted(lengths)  # question order is not length order
    teacher = TeacherReader(str(tiny_teacher), max_length=64, batch_size=2)
    got = teacher.logits(windows, progress=False)
    for w in range(len(windows)):  # each window alone, unpadded: the same logits in the same row
        alone = _run_reader(teacher.model, windows, [w], tokenizer.pad_token_id, 1)[0]
        np.testing.assert_allclose(got[w, :, : lengths[w]], alone[:, : lengths[w]], atol=1e-4)


def test_teacher_and_student_tasks_must_match(tmp_path, tiny_squad, tiny_embedder):
    with pytest.raises(DistillError, match="is not an extractive reader.*finetune-reader"):
        _distill(tmp_path, tiny_squad, tiny_embedder)


def test_swap_puts_a_reader_into_the_qa_pipeline_only(tmp_path, tiny_pipelines, tiny_teacher):
    from distill.pipelines.loading import read_pipeline_dict, swap_files

    written = swap_files(
        [tiny_pipelines / "indexing.yaml", tiny_pipelines / "extractive_qa.yaml"], tmp_path, model=str(tiny_teacher)
    )
    assert [p.name for p in written] == ["indexing.yaml", "extractive_qa.yaml"]  # indexing written once
    qa = read_pipeline_dict(written[1])
    assert qa["components"]["reader"]["init_parameters"]["model"] == str(tiny_teacher)
    assert read_pipeline_dict(written[0]) == read_pipeline_dict(tiny_pipelines / "indexing.yaml")
    with pytest.raises(DistillError, match="no reader component to swap"):
        swap_files([tiny_pipelines / "retrieval.yaml"], tmp_path / "x", model=str(tiny_teacher))
    # The QA pipeline alone: the teacher's indexing pipeline comes along (a reader leaves retrieval as it was).
    alone = swap_files([tiny_pipelines / "extractive_qa.yaml"], tmp_path / "alone", model=str(tiny_teacher))
    assert [p.name for p in alone] == ["extractive_qa.yaml", "indexing.yaml"]
    assert read_pipeline_dict(alone[1]) == read_pipeline_dict(tiny_pipelines / "indexing.yaml")
    alone[1].write_text("stale: true\n")  # left by an earlier swap of another teacher: replaced
    swap_files([tiny_pipelines / "extractive_qa.yaml"], tmp_path / "alone", model=str(tiny_teacher))
    assert read_pipeline_dict(alone[1]) == read_pipeline_dict(tiny_pipelines / "indexing.yaml")


def test_eval_with_gold_context_runs_only_the_reader(tmp_path, tiny_squad, tiny_pipelines, tiny_teacher):
    from distill.data.datasets import load_squad_file
    from distill.evaluation.runner import System, evaluate
    from distill.pipelines.loading import swap_files

    swap_files([tiny_pipelines / "extractive_qa.yaml"], tmp_path / "student", model=str(tiny_teacher))
    systems = [
        System.parse(f"teacher={tiny_pipelines / 'extractive_qa.yaml'}"),
        System.parse(f"student={tmp_path / 'student' / 'extractive_qa.yaml'}"),
    ]
    report = evaluate(systems, load_squad_file(tiny_squad), warmup=1, progress=False, context="gold")
    assert report["context"] == "gold"
    for p in report["pipelines"].values():
        assert set(p["quality"]) == {"exact_match", "f1"}
        assert set(p["latency"]["components"]) == {"reader"}
    with pytest.raises(DistillError, match="has no extractive reader"):
        evaluate(
            [System.parse(f"r={tiny_pipelines / 'retrieval.yaml'}")],
            load_squad_file(tiny_squad),
            progress=False,
            context="gold",
        )


def test_a_hard_label_student_says_so_in_its_card(tmp_path, tiny_squad, tiny_teacher):
    student, _ = _distill(tmp_path, tiny_squad, tiny_teacher, losses="[{name: start_end_ce}]", epochs=1)
    card = (student / "README.md").read_text()
    assert "trained on gold answer spans only" in card and "distilled from" not in card
    assert json.loads((student / "metrics.json").read_text())["teacher_dev"] == {}


def test_a_student_continued_from_a_trained_reader_says_so_in_its_card(tmp_path, tiny_squad, tiny_teacher):
    first, _ = _distill(tmp_path / "first", tiny_squad, tiny_teacher, epochs=1)
    before = json.loads((first / "metrics.json").read_text())["train"]["steps"]
    second, _ = _distill(tmp_path / "second", tiny_squad, tiny_teacher, student=str(first), epochs=1)
    now = json.loads((second / "metrics.json").read_text())["train"]["steps"]
    card = (second / "README.md").read_text()
    assert f"starts from a reader already trained for extractive QA (`{first}`" in card
    continued = f"{before} steps before this run; the steps below continue it; the saved weights have had"
    assert f"{continued} {before + now} steps in all." in card
    # A continuation of a continuation counts every step that came before.
    third, _ = _distill(tmp_path / "third", tiny_squad, tiny_teacher, student=str(second), epochs=1)
    assert json.loads((third / "metrics.json").read_text())["starts_from"] == {
        "reader": str(second),
        "steps": before + now,
    }
    # An encoder or a cut of the teacher is not a continuation.
    assert "starts from a reader" not in (first / "README.md").read_text()
    # Where a run kept an earlier best checkpoint, the saved weights had only that checkpoint's steps.
    from distill.training.model_card import _warm_start
    from distill.training.train import _starts_from

    assert now >= 2, "the tiny run needs two steps for an earlier checkpoint"
    metrics = json.loads((second / "metrics.json").read_text())
    (second / "metrics.json").write_text(json.dumps({**metrics, "best_step": 1}))
    assert _starts_from(str(second)) == {"reader": str(second), "steps": before + 1}
    assert f"{continued} {before + 1} steps in all." in _warm_start({**metrics, "best_step": 1})


def test_average_of_readers_scored_on_the_recipe_dev_slice(tmp_path, tiny_squad, tiny_teacher, capsys):
    from distill import cli
    from distill.training.recipes import dump_recipe

    first, recipe = _distill(tmp_path / "a", tiny_squad, tiny_teacher, epochs=1)
    second, _ = _distill(tmp_path / "b", tiny_squad, tiny_teacher, epochs=1, seed=1)
    dev_recipe = tmp_path / "dev.yaml"
    dev_recipe.write_text(dump_recipe(recipe))
    out = tmp_path / "avg"
    capsys.readouterr()
    assert cli.main(["average", "--out", str(out), str(first), str(second), "--dev", str(dev_recipe)]) == 0
    assert "dev slice of" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    # Each ingredient scores what its own training measured on the same slice at its saved checkpoint.
    for i, folder in enumerate((first, second), 1):
        row = metrics[f"ingredient_{i}_dev"]
        assert row["model"] == str(folder)
        assert row["f1"] == pytest.approx(json.loads((folder / "metrics.json").read_text())["dev"]["f1"])
    assert set(metrics["dev"]) == {"exact_match", "f1"} and set(metrics["teacher_dev"]) == {"exact_match", "f1"}
    from distill.training.model_card import split_front_matter

    meta, _ = split_front_matter((out / "README.md").read_text())  # an average of readers is a transformers reader
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "question-answering"


def test_finetune_reader_on_a_missing_model_leaves_no_output_folder(tmp_path, tiny_squad, capsys):
    from distill import cli

    overrides, _ = _recipe(tmp_path, tiny_squad, "finetune_reader", model=str(tmp_path / "no-model"))
    assert cli.main(["finetune-reader", "recipes/reader-teacher-minilm.yaml", *overrides]) == 2
    assert "no-model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_constructing_a_reader_task_loads_nothing_and_warm_up_does_the_work_once(
    home, tmp_path, tiny_squad, tiny_teacher, monkeypatch
):
    from collections import Counter

    from distill.training.recipes import load_recipe
    from distill.training.tasks import reader

    calls: Counter = Counter()

    def spy(name, original):
        def counted(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        return counted

    monkeypatch.setattr(reader.TeacherReader, "logits", spy("teacher pass", reader.TeacherReader.logits))
    for name in ("load_reader", "load_dataset"):
        monkeypatch.setattr(reader, name, spy(name, getattr(reader, name)))
    overrides, _ = _recipe(
        tmp_path, tiny_squad, "reader", teacher=str(tiny_teacher), pipelines="null", student=str(tiny_teacher)
    )
    task = reader.ReaderTask(load_recipe(Path("recipes/reader-distill-minilm-2l.yaml"), overrides), progress=False)
    assert calls == Counter() and task.needs_teacher
    with pytest.raises(RuntimeError, match=r"warm_up\(\) must run before training"):
        task.model()
    task.warm_up()
    # An empty teacher cache of its own (``home``): the teacher's logits are computed, so its model loads too.
    assert calls == {"teacher pass": 2, "load_reader": 2, "load_dataset": 2}  # train and dev windows; teacher, student
    module = task.model()
    task.warm_up()
    assert calls == {"teacher pass": 2, "load_reader": 2, "load_dataset": 2} and task.model() is module  # nothing twice
