"""Runs of ``distill.training.train.train`` on tiny embedders: what a student folder holds, resuming, data parallel, a
nan
loss, feature losses, weight averages and a passage memory (reader runs are in tests/tasks/test_reader.py)."""

import json
import math
import os
import subprocess
import sys

import pytest
from conftest import REPO, write_recipe

from distill.errors import DistillError
from distill.pipelines.loading import read_pipeline_dict
from distill.training import recipes


def private_files(folder) -> list[str]:
    """Files under ``folder`` that others cannot read (under umask 022 every file should be 0644)."""
    return sorted(str(p) for p in folder.rglob("*") if p.is_file() and (p.stat().st_mode & 0o777) != 0o644)


def test_train_saves_a_student_with_card_and_resumes(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from sentence_transformers import SentenceTransformer

    from distill.training.train import train

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad)
    umask = os.umask(0o022)
    try:
        student = train(recipes.load_recipe(path), swap=True)
    finally:
        os.umask(umask)
    for name in ("model.safetensors", "config.yaml", "metrics.json", "README.md", "train_log.jsonl", "modules.json"):
        assert (student / name).exists(), name
    # Weights are shared like any output (safetensors alone writes them 0600), and so is the cache's memo.
    assert private_files(student) == private_files(home / "home") == []
    assert not list(student.glob("*.bin"))
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 4 and metrics["teacher_dev"]["recall@10"] == 1.0
    card = (student / "README.md").read_text()
    assert "listwise_kl" in card and "relation" in card and "| ndcg@10 |" in card
    rows = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]
    assert {"loss/listwise_kl", "loss/similarity_matrix", "loss/embedding_mse", "lr", "examples_per_s"} <= set(rows[1])
    assert any("dev/recall@10" in r for r in rows)
    assert SentenceTransformer(str(student), device="cpu").encode(["hello"]).shape == (1, 32)
    assert (home / "out" / "pipelines" / "retrieval.yaml").exists()
    assert not (home / "out" / "checkpoint").exists()
    # The teacher's outputs were cached: the second run of the same data never runs the teacher.
    cache = home / "home" / "teacher-cache"
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2  # questions (16 tokens), passages (32 tokens)


def test_interrupted_run_resumes_from_its_checkpoint(home, tiny_embedder, tiny_embedder_wide, tiny_squad, monkeypatch):
    from distill.training import trainer
    from distill.training.train import train

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad)
    original = trainer.Trainer._save_checkpoint
    calls = {"n": 0}

    def save_then_die(self, state):
        original(self, state)
        calls["n"] += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", save_then_die)
    umask = os.umask(0o022)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(recipes.load_recipe(path))
    finally:
        os.umask(umask)
    checkpoint = home / "out" / "checkpoint"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 2
    assert private_files(checkpoint) == [] and list(checkpoint.glob("*.safetensors"))
    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", original)
    student = train(recipes.load_recipe(path))
    rows = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # steps 1-2 before the kill, 3-4 after
    assert json.loads((student / "metrics.json").read_text())["train"]["steps"] == 4


def test_missing_teacher_pipelines_fail_before_training(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from distill.training.train import train

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad, pipelines=str(home / "nowhere"))
    with pytest.raises(DistillError, match="recipe.pipelines: .*nowhere/indexing.yaml"):
        train(recipes.load_recipe(path))
    assert not (home / "out" / "train_log.jsonl").exists()


def test_nan_loss_stops_with_a_clear_error(home, tiny_embedder, tiny_embedder_wide, tiny_squad, monkeypatch):
    from distill.training.tasks import embedder
    from distill.training.train import train

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad)
    monkeypatch.setattr(
        embedder.EmbedderDistillation,
        "forward",
        lambda self, batch: {"x": self.embed(batch["query"]).sum() * float("nan")},
    )
    with pytest.raises(DistillError, match="loss became nan at step 0"):
        train(recipes.load_recipe(path))


def test_layer_dropped_and_query_only_students(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from sentence_transformers import SentenceTransformer

    from distill.training.train import train

    path = write_recipe(home, tiny_embedder_wide, {"from_teacher": {"layers": [0, 2]}}, tiny_squad, epochs=1)
    dropped = SentenceTransformer(str(train(recipes.load_recipe(path))), device="cpu")
    assert dropped[0].auto_model.config.num_hidden_layers == 2 and dropped.encode(["x"]).shape == (1, 48)

    path = write_recipe(
        home,
        tiny_embedder_wide,
        tiny_embedder,
        tiny_squad,
        epochs=1,
        query_only=True,
        output=str(home / "q"),
        losses=[{"name": "listwise_kl", "weight": 1.0, "temperature": 0.1}, {"name": "cosine", "weight": 1.0}],
    )
    query_only = SentenceTransformer(str(train(recipes.load_recipe(path))), device="cpu")
    assert query_only.encode(["x"]).shape == (1, 48)  # projected into the teacher's width
    pipes = home / "q" / "pipelines"
    assert read_pipeline_dict((pipes / "indexing.yaml").read_text()) == read_pipeline_dict(
        (REPO / "pipelines" / "indexing.yaml").read_text()
    )


def test_data_parallel_on_two_cpu_processes(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad, epochs=1)
    env = {**os.environ, "DISTILL_HOME": str(home / "home")}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        # accelerate 1.15's `--cpu` launcher starts one process (multi-CPU needs mpirun); `--multi_gpu` starts two
        # torchrun processes, which train over gloo since the trainer asks for the CPU when there is no GPU.
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "distill.cli",
        "train",
        str(path),
        "--no-swap",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    student = home / "out" / "student"
    metrics = json.loads((student / "metrics.json").read_text())
    # Each process trains on every second batch; each step counts both processes' examples.
    from distill.data.datasets import load_squad_file
    from distill.training.tasks.common import length_grouped_batches
    from distill.training.tasks.embedder import training_pairs

    pairs = training_pairs(load_squad_file(tiny_squad), None, 0)
    lengths = [len(pairs.passages[p]) for p in pairs.positive]
    batches = length_grouped_batches(lengths, pairs.positive, 4, 0)
    assert metrics["train"]["steps"] == len(batches) // 2
    assert metrics["train"]["examples"] == 2 * sum(len(b) for b in batches[: 2 * (len(batches) // 2) : 2])
    assert "resolved recipe" in result.stdout


def test_feature_losses_train_a_student_that_shares_the_teachers_tokenizer(
    home, tiny_embedder, tiny_embedder_wide, tiny_squad
):
    from safetensors.torch import load_file

    from distill.training.train import train

    losses = [
        {"name": "listwise_kl", "weight": 1.0, "temperature": 0.1},
        {"name": "hidden_state_mse", "weight": 1.0, "layer_map": [[1, 1], [2, 3]]},
        {"name": "attention_relation", "weight": 1.0, "num_relation_heads": 2},
        {"name": "token_similarity", "weight": 1.0},
    ]
    path = write_recipe(home, tiny_embedder_wide, {"from_teacher": {"layers": [0, 2]}}, tiny_squad, losses=losses)
    student = train(recipes.load_recipe(path))
    rows = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    terms = {k for r in rows for k in r if k.startswith("loss/")}
    assert terms == {f"loss/{e['name']}" for e in losses}
    assert all(math.isfinite(r[k]) for r in rows for k in r if k.startswith("loss/"))
    # Same width: no projection to save. Another width (the 32-d tiny model as student of the 48-d one) needs one.
    assert not (student / "distillation_losses.safetensors").exists()

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad, losses=losses[:2], output=str(home / "w"))
    projections = load_file(str(train(recipes.load_recipe(path)) / "distillation_losses.safetensors"))
    assert sorted(tuple(v.shape) for v in projections.values()) == [(48, 32), (48, 32)]


@pytest.mark.slow
def test_feature_losses_refuse_a_student_with_another_tokenizer(home, tiny_embedder_wide, tiny_squad):
    from distill.common.models import resolve_model
    from distill.training.train import train

    losses = [{"name": "token_similarity", "weight": 1.0}]
    path = write_recipe(home, tiny_embedder_wide, resolve_model("minilm-l6"), tiny_squad, losses=losses)
    with pytest.raises(DistillError, match="token_similarity .* must share the teacher's tokenizer"):
        train(recipes.load_recipe(path))


def test_a_dev_slice_slice_trains_and_says_so_in_the_card(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from distill.training.train import train

    path = write_recipe(
        home, tiny_embedder_wide, tiny_embedder, tiny_squad, data={"dev": str(tiny_squad), "dev_articles": 1}
    )
    student = train(recipes.load_recipe(path))
    card = (student / "README.md").read_text()
    assert "1 articles, None questions (held out of training)" in card
    with pytest.raises(DistillError, match="dev_articles must be set when recipe.data.dev is the training set"):
        recipes.load_recipe(None, ["data.dev=squad-train", "data.dev_articles=null"])


def test_card_says_how_the_training_questions_were_chosen():
    from distill.training.model_card import model_card

    recipe = recipes.load_recipe(None, ["data.sibling_questions=true", "data.hard_negatives=true"])
    card = model_card(recipe, {}, kind="embedder")
    assert (
        "2000 questions (seed 0) and every other question about their passages, with teacher-mined hard negatives"
        in card
    )
    assert "every other question" not in model_card(recipes.load_recipe(None), {}, kind="embedder")


def test_weight_average_by_hand():
    import torch

    from distill.training.trainer import WeightAverage

    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema = WeightAverage(layer, decay=0.5)
    with torch.no_grad():
        layer.weight.fill_(12.0)
    ema.update()  # d_1 = min(0.5, 2/11): avg = 2/11 * 1 + 9/11 * 12 = 10
    assert ema.shadow[0].item() == pytest.approx(10.0)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    for _ in range(20):  # d_t reaches the decay: avg halves with each update towards 0
        ema.update()
    assert ema.rate() == 0.5
    assert 0 < ema.shadow[0].item() < 10.0 * 0.5**19
    with ema.swapped():
        assert layer.weight.item() == ema.shadow[0].item()
    assert layer.weight.item() == 0.0  # the trained weights come back
    copy = WeightAverage(layer, decay=0.5)
    copy.load_state_dict(ema.state_dict())
    assert copy.updates == 21 and torch.equal(copy.shadow[0], ema.shadow[0])
    with pytest.raises(DistillError, match="another student"):
        WeightAverage(torch.nn.Linear(2, 2), 0.5).load_state_dict(ema.state_dict())


def test_a_run_with_a_weight_average_saves_the_average_and_resumes_it(
    home, tiny_embedder, tiny_embedder_wide, tiny_squad, monkeypatch
):
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    from distill.training import trainer
    from distill.training.tasks.embedder import retrieval_scores
    from distill.training.train import train

    path = write_recipe(
        home, tiny_embedder_wide, tiny_embedder, tiny_squad, optimizer={"ema": 0.9, "lr": 1e-2}, epochs=3
    )
    original = trainer.Trainer._save_checkpoint

    def save_then_die(self, state):
        original(self, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(recipes.load_recipe(path))
    saved = load_file(str(home / "out" / "checkpoint" / trainer.EMA_FILE))
    assert int(saved["updates"]) == 2
    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", original)
    student = train(recipes.load_recipe(path))
    rows = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "dev_raw/ndcg@10" in r]
    assert [r["step"] for r in evals] == [2, 4, 6]
    metrics = json.loads((student / "metrics.json").read_text())
    best = next(r for r in evals if r["step"] == metrics["best_step"])
    # The saved student is the averaged one: scoring it again gives the logged dev/ (not dev_raw/) figures.
    from distill.data.datasets import load_squad_file

    data = load_squad_file(tiny_squad)
    model = SentenceTransformer(str(student), device="cpu")
    docs = [d.content for d in data.documents]
    gold = [docs.index(data.document(q.gold_doc_ids[0]).content) for q in data.queries]
    again = retrieval_scores(model.encode([q.text for q in data.queries]), model.encode(docs), gold)
    assert again["mrr@10"] == pytest.approx(best["dev/mrr@10"], abs=1e-6)
    assert metrics["dev"]["mrr@10"] == pytest.approx(best["dev/mrr@10"], abs=1e-6)
    assert any(r["dev/ndcg@10"] != r["dev_raw/ndcg@10"] for r in evals)  # the average is not the raw weights
    assert "exponential moving average (decay 0.9)" in (student / "README.md").read_text()


def test_a_run_with_a_passage_memory_trains(home, tiny_embedder, tiny_embedder_wide, tiny_squad, monkeypatch):
    from distill.training.tasks import embedder
    from distill.training.train import train

    seen = []
    original = embedder.PassageMemory.columns

    def spy(self, batch_ids, device=None):
        out = original(self, batch_ids, device)
        seen.append((len(self), 0 if out is None else len(out[0]), set(batch_ids) & set(self.ids)))
        return out

    monkeypatch.setattr(embedder.PassageMemory, "columns", spy)
    path = write_recipe(
        home,
        tiny_embedder_wide,
        tiny_embedder,
        tiny_squad,
        passage_memory=4,
        losses=[{"name": "listwise_kl", "weight": 1.0, "temperature": 0.1}],
    )
    student = train(recipes.load_recipe(path))
    assert "last 4 training passages (cross-batch memory" in (student / "README.md").read_text()
    assert seen[0][0] == 0 and max(size for size, _, _ in seen) == 4  # fills up to its capacity
    assert any(columns > 0 for _, columns, _ in seen[1:])
    assert all(columns <= size - len(shared) for size, columns, shared in seen)
    for overrides, message in [
        (["passage_memory=-1"], "passage_memory must be a positive int"),
        (["passage_memory=64", "losses=[{name: similarity_matrix}]"], "passage_memory feeds listwise_kl"),
        (["passage_memory=64", "query_only=true", "losses=[{name: listwise_kl}]"], "query-only"),
    ]:
        with pytest.raises(DistillError, match=message):
            recipes.load_recipe(None, overrides)


def test_a_query_only_run_scores_each_query_against_the_whole_corpus(
    home, tiny_embedder, tiny_embedder_wide, tiny_squad, monkeypatch
):
    from distill.training.losses import response
    from distill.training.tasks import embedder
    from distill.training.train import train

    calls, widths = [], []
    columns, forward = embedder.CorpusColumns.columns, response.ListwiseKLLoss.forward

    def spy_columns(self, batch_ids, device=None):
        out = columns(self, batch_ids, device)
        calls.append((len(self), len(set(batch_ids)), len(out[0])))
        return out

    def spy_forward(self, student, teacher):
        widths.append(len(student.get("memory", [])))
        return forward(self, student, teacher)

    monkeypatch.setattr(embedder.CorpusColumns, "columns", spy_columns)
    monkeypatch.setattr(response.ListwiseKLLoss, "forward", spy_forward)
    path = write_recipe(
        home,
        tiny_embedder_wide,
        tiny_embedder,
        tiny_squad,
        epochs=1,
        query_only=True,
        passage_memory="corpus",
        losses=[{"name": "listwise_kl", "weight": 1.0, "temperature": 0.1}],
    )
    student = train(recipes.load_recipe(path))
    assert "against every corpus passage's teacher embedding" in (student / "README.md").read_text()
    assert calls and len({corpus for corpus, _, _ in calls}) == 1
    # every training passage is a column once: the batch's own in-batch, all the others from the corpus
    assert all(own + rest == corpus and rest > 0 for corpus, own, rest in calls)
    assert [rest for _, _, rest in calls] == widths  # and the loss scored them
    with pytest.raises(DistillError, match="for a query-only student"):
        recipes.load_recipe(None, ["passage_memory=corpus", "losses=[{name: listwise_kl}]"])


@pytest.mark.parametrize("existing", [False, True])
def test_a_run_that_fails_on_bad_input_leaves_no_config_or_empty_folder(home, tiny_squad, capsys, existing):
    from distill import cli

    out = home / "runs" / "out"
    if existing:
        out.mkdir(parents=True)
        (out / "notes.txt").write_text("mine")
    path = write_recipe(home, home / "no-teacher", home / "no-student", tiny_squad, output=str(out), pipelines=None)
    assert cli.main(["train", str(path)]) == 2
    assert "no-teacher" in capsys.readouterr().err
    if existing:  # a folder that was there is kept, with what it held, and without what the run wrote
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    else:
        assert not (home / "runs").exists()


def test_a_failed_run_keeps_a_checkpoint_it_can_resume(
    home, tiny_embedder, tiny_embedder_wide, tiny_squad, monkeypatch
):
    from distill.training import trainer
    from distill.training.train import train

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad, pipelines=None)
    original = trainer.Trainer._save_checkpoint

    def save_then_fail(self, state):
        original(self, state)
        raise DistillError("disk full, say")

    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", save_then_fail)
    with pytest.raises(DistillError, match="disk full"):
        train(recipes.load_recipe(path))
    assert (home / "out" / "checkpoint").is_dir() and (home / "out" / "config.yaml").exists()


def test_an_anchor_holds_the_student_near_its_start(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from safetensors.torch import load_file

    from distill.training.train import train

    start = load_file(str(tiny_embedder / "model.safetensors"))

    def moved(anchor: float) -> float:
        path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad, output=str(home / f"a{anchor}"))
        recipe = recipes.load_recipe(path, [f"anchor={anchor}", "optimizer.lr=0.001"])
        weights = load_file(str(train(recipe, swap=False) / "model.safetensors"))
        log = (home / f"a{anchor}" / "student" / "train_log.jsonl").read_text()
        assert ("loss/anchor" in log) == (anchor > 0)
        assert ("L2-SP anchor" in (home / f"a{anchor}" / "student" / "README.md").read_text()) == (anchor > 0)
        return sum(float(((weights[k] - start[k]) ** 2).sum()) for k in start)

    assert moved(100.0) < 0.5 * moved(0.0)
    with pytest.raises(DistillError, match="anchor must be a number >= 0"):
        recipes.load_recipe(write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad), ["anchor=-1"])


def test_a_run_that_ends_below_its_untrained_student_is_warned_about():
    from distill.training.train import below_its_start

    warning = below_its_start("ndcg@10", 0.617, 0.6425)
    assert "0.6170 at its best against 0.6425 before distillation" in warning and "optimizer.lr" in warning
    assert below_its_start("ndcg@10", 0.70, 0.64) is None
    assert below_its_start("ndcg@10", 0.70, math.nan) is None  # not measured: nothing to compare
