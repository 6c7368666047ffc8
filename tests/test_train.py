import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from distill import recipes
from distill.errors import DistillError

REPO = Path(__file__).resolve().parents[1]


def write_recipe(folder: Path, teacher: Path, student, squad: Path, **extra) -> Path:
    # The same questions under another name: a dev set that *is* the training set would be held out of it.
    dev = folder / "dev-copy.json"
    dev.write_bytes(squad.read_bytes())
    recipe = {
        "teacher": str(teacher),
        "student": student if isinstance(student, dict) else str(student),
        "data": {
            "train": str(squad),
            "questions": None,
            "dev": str(dev),
            "dev_articles": None,
            "dev_questions": None,
        },
        "batch_size": 4,
        "max_length": {"query": 16, "passage": 32},
        "epochs": 2,
        "eval_every": 2,
        "save_every": 2,
        "log_every": 1,
        "output": str(folder / "out"),
        "losses": [
            {"name": "listwise_kl", "weight": 1.0, "temperature": 0.1},
            {"name": "similarity_matrix", "weight": 1.0},
            {"name": "embedding_mse", "weight": 0.5},
        ],
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key].update(value)
        else:
            recipe[key] = value
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(REPO)
    return tmp_path


def test_recipe_defaults_and_overrides():
    recipe = recipes.load_recipe(None, ["optimizer.lr=1e-4", "data.questions=50", "losses.0.temperature=0.2"])
    assert recipe["optimizer"]["lr"] == 1e-4 and recipe["data"]["questions"] == 50
    assert recipe["losses"][0] == {"name": "listwise_kl", "weight": 1.0, "temperature": 0.2}
    assert recipes.load_recipe(REPO / "recipes" / "embedder-squad.yaml")["teacher"] == "mpnet-base"


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_recipe_validates(path):
    # A recipe the README or the Makefile names must load as it stands and write under runs/ (git ignores it).
    recipe = recipes.load_recipe(path)
    assert recipe["task"] in {"embedder", "reader", "finetune_reader"}
    assert recipe["output"].startswith("runs/")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimiser.lr=1"], "unknown key 'optimiser'"),
        (["data.qestions=1"], "unknown key 'data.qestions'"),
        (["losses=[{name: nope}]"], r"losses\[0\].name: unknown loss 'nope'"),
        (["losses=[{name: cosine, weight: -1}]"], r"losses\[0\].weight must be >= 0, got -1"),
        (["losses=[{name: cosine, weight: 0}]"], "at least one loss needs a weight > 0"),
        (["batch_size=0"], "batch_size must be a positive int"),
        (["data.sibling_questions=yes please"], "sibling_questions must be true or false"),
        (["losses=[{name: margin_mse}]"], "margin_mse needs negatives"),
        (["query_only=true", "losses=[{name: rkd_angle}]"], "cannot train a query-only student"),
        (["student={from_teacher: {layers: [3, 1]}}"], "increasing and unique"),
        (["losses=[{name: start_end_kl}]"], "reader loss"),
        (["optimizer.lr"], "must look like key=value"),
        (["optimizer.ema=1.5"], r"optimizer.ema must be a decay in \(0, 1\) or null, got 1.5"),
        (["optimizer.ema=true"], "optimizer.ema must be a decay"),
    ],
)
def test_bad_recipes_name_the_field(overrides, message):
    with pytest.raises(DistillError, match=message):
        recipes.load_recipe(None, overrides)


def test_train_saves_a_student_with_card_and_resumes(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from sentence_transformers import SentenceTransformer

    from distill.train import train_embedder

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad)
    student = train_embedder(path, swap=True)
    for name in ("model.safetensors", "config.yaml", "metrics.json", "README.md", "train_log.jsonl", "modules.json"):
        assert (student / name).exists(), name
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
    from distill import trainer
    from distill.train import train_embedder

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad)
    original = trainer.Trainer._save_checkpoint
    calls = {"n": 0}

    def save_then_die(self, state):
        original(self, state)
        calls["n"] += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_embedder(path)
    checkpoint = home / "out" / "checkpoint"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 2
    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", original)
    student = train_embedder(path)
    rows = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # steps 1-2 before the kill, 3-4 after
    assert json.loads((student / "metrics.json").read_text())["train"]["steps"] == 4


def test_missing_teacher_pipelines_fail_before_training(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from distill.train import train_embedder

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad, pipelines=str(home / "nowhere"))
    with pytest.raises(DistillError, match="recipe.pipelines: .*nowhere/indexing.yaml"):
        train_embedder(path)
    assert not (home / "out" / "train_log.jsonl").exists()


def test_nan_loss_stops_with_a_clear_error(home, tiny_embedder, tiny_embedder_wide, tiny_squad, monkeypatch):
    from distill import embedder
    from distill.train import train_embedder

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad)
    monkeypatch.setattr(
        embedder.EmbedderDistillation,
        "forward",
        lambda self, batch: {"x": self.embed(batch["query"]).sum() * float("nan")},
    )
    with pytest.raises(DistillError, match="loss became nan at step 0"):
        train_embedder(path)


def test_layer_dropped_and_query_only_students(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from sentence_transformers import SentenceTransformer

    from distill.train import train_embedder

    path = write_recipe(home, tiny_embedder_wide, {"from_teacher": {"layers": [0, 2]}}, tiny_squad, epochs=1)
    dropped = SentenceTransformer(str(train_embedder(path)), device="cpu")
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
    query_only = SentenceTransformer(str(train_embedder(path)), device="cpu")
    assert query_only.encode(["x"]).shape == (1, 48)  # projected into the teacher's width
    pipes = home / "q" / "pipelines"
    assert yaml.safe_load((pipes / "indexing.yaml").read_text()) == yaml.safe_load(
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
    from distill.embedder import length_grouped_batches, training_pairs

    from distill.data import load_squad_file

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

    from distill.train import train_embedder

    losses = [
        {"name": "listwise_kl", "weight": 1.0, "temperature": 0.1},
        {"name": "hidden_state_mse", "weight": 1.0, "layer_map": [[1, 1], [2, 3]]},
        {"name": "attention_relation", "weight": 1.0, "num_relation_heads": 2},
        {"name": "token_similarity", "weight": 1.0},
    ]
    path = write_recipe(home, tiny_embedder_wide, {"from_teacher": {"layers": [0, 2]}}, tiny_squad, losses=losses)
    student = train_embedder(path)
    rows = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    terms = {k for r in rows for k in r if k.startswith("loss/")}
    assert terms == {f"loss/{e['name']}" for e in losses}
    assert all(math.isfinite(r[k]) for r in rows for k in r if k.startswith("loss/"))
    # Same width: no projection to save. Another width (the 32-d tiny model as student of the 48-d one) needs one.
    assert not (student / "distillation_losses.safetensors").exists()

    path = write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad, losses=losses[:2], output=str(home / "w"))
    projections = load_file(str(train_embedder(path) / "distillation_losses.safetensors"))
    assert sorted(tuple(v.shape) for v in projections.values()) == [(48, 32), (48, 32)]


@pytest.mark.slow
def test_feature_losses_refuse_a_student_with_another_tokenizer(home, tiny_embedder_wide, tiny_squad):
    from distill.models import resolve_model
    from distill.train import train_embedder

    losses = [{"name": "token_similarity", "weight": 1.0}]
    path = write_recipe(home, tiny_embedder_wide, resolve_model("minilm-l6"), tiny_squad, losses=losses)
    with pytest.raises(DistillError, match="token_similarity .* must share the teacher's tokenizer"):
        train_embedder(path)


def test_query_only_head_stays_small_on_rank_deficient_queries():
    """The query-only collapse: student queries spanning fewer directions than their width made plain least squares
    put huge weights on directions with (almost) no variance, so one optimiser step turned the head into noise."""
    import torch
    from distill.embedder import ridge_projection

    gen = torch.Generator().manual_seed(0)
    basis = torch.randn(5, 8, generator=gen)
    queries = torch.randn(200, 5, generator=gen) @ basis + 1e-6 * torch.randn(200, 8, generator=gen)  # ~rank 5
    true = torch.randn(12, 8, generator=gen)
    targets = queries @ true.T + 1e-3 * torch.randn(200, 12, generator=gen)
    plain = torch.linalg.lstsq(queries.double(), targets.double()).solution.T.float()
    assert torch.linalg.matrix_norm(plain, 2) > 20 * torch.linalg.matrix_norm(true, 2)  # what went wrong before

    weight = ridge_projection(queries, targets, ridge=1e-4)
    assert weight.shape == (12, 8)
    assert torch.linalg.matrix_norm(weight, 2) <= 1.01 * torch.linalg.matrix_norm(true, 2)
    fit = torch.nn.functional.cosine_similarity(queries @ weight.T, targets).mean()
    assert fit > 0.999  # and still fits
    nudged = queries[:1] + 1e-3 * torch.randn(1, 8, generator=gen)  # a small step off the queries' span
    assert float(((nudged - queries[:1]) @ weight.T).norm()) < 0.1
    stronger = ridge_projection(queries, targets, ridge=1.0)
    assert torch.linalg.matrix_norm(stronger, 2) < torch.linalg.matrix_norm(weight, 2)


def test_sibling_questions_add_every_question_of_the_sampled_passages(tiny_squad):
    from collections import Counter

    from distill.embedder import training_pairs

    from distill.data import load_squad_file

    data = load_squad_file(tiny_squad)
    full = training_pairs(data, None, 0)
    per_passage = Counter(full.passages[p] for p in full.positive)
    assert max(per_passage.values()) > 1  # the fixture has passages with several questions
    sample = training_pairs(data, 3, 0)
    grown = training_pairs(data, 3, 0, siblings=True)
    assert sorted(grown.passages) == sorted(sample.passages)  # no new passage for the teacher
    assert set(sample.queries) < set(grown.queries)
    assert len(grown.queries) == sum(per_passage[p] for p in sample.passages)
    for question, positive in zip(grown.queries, grown.positive):  # each question still points at its passage
        assert full.passages[full.positive[full.queries.index(question)]] == grown.passages[positive]


def test_dev_slice_drawn_from_the_training_set_is_held_out_of_training(tiny_squad):
    from distill.embedder import dev_slice, training_pairs

    from distill.data import load_squad_file

    data = load_squad_file(tiny_squad)
    cfg = {"train": str(tiny_squad), "dev": str(tiny_squad), "dev_articles": 1, "dev_questions": None, "seed": 0}
    dev = dev_slice(data, cfg)
    held = {d.id for d in dev.documents}
    assert len({d.meta["title"] for d in dev.documents}) == 1 and 0 < len(held) < len(data.documents)
    everything = training_pairs(data, None, 0)
    kept = training_pairs(data, None, 0, exclude=held)
    held_texts = {d.content for d in dev.documents}
    assert not held_texts & set(kept.passages)  # no held-out paragraph is trained on
    assert set(kept.queries) == set(everything.queries) - {q.text for q in dev.queries}
    # The hold-out only drops questions from the same seeded sample: the rest of the sample is unchanged.
    sample, sample_kept = training_pairs(data, 5, 0), training_pairs(data, 5, 0, exclude=held)
    assert set(sample_kept.queries) == set(sample.queries) - {q.text for q in dev.queries}
    with pytest.raises(DistillError, match="leaves no training question"):
        training_pairs(data, None, 0, exclude={d.id for d in data.documents})


def test_a_dev_slice_slice_trains_and_says_so_in_the_card(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from distill.train import train_embedder

    path = write_recipe(
        home, tiny_embedder_wide, tiny_embedder, tiny_squad, data={"dev": str(tiny_squad), "dev_articles": 1}
    )
    student = train_embedder(path)
    card = (student / "README.md").read_text()
    assert "1 articles, None questions (held out of training)" in card
    with pytest.raises(DistillError, match="dev_articles must be set when recipe.data.dev is the training set"):
        recipes.load_recipe(None, ["data.dev=squad-train", "data.dev_articles=null"])


def test_card_says_how_the_training_questions_were_chosen():
    from distill.model_card import model_card

    recipe = recipes.load_recipe(None, ["data.sibling_questions=true", "data.hard_negatives=true"])
    card = model_card(recipe, {}, kind="embedder")
    assert (
        "2000 questions (seed 0) and every other question about their passages, with teacher-mined hard negatives"
        in card
    )
    assert "every other question" not in model_card(recipes.load_recipe(None), {}, kind="embedder")


def test_query_head_benchmark_runs_on_tiny_models(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from distill import bench_query_head

    path = write_recipe(
        home,
        tiny_embedder_wide,
        tiny_embedder,
        tiny_squad,
        query_only=True,
        losses=[{"name": "cosine", "weight": 1.0, "keys": "query"}],
    )
    out = home / "head.json"
    bench_query_head.main([str(path), "--out", str(out)])
    report = json.loads(out.read_text())
    heads = {row["head"]: row for row in report["heads"]}
    assert set(heads) == {
        "least squares",
        "least squares, inputs + 1e-7 noise",
        "ridge 0.001",
        "ridge 0.01",
        "ridge 0.1",
        "ridge 1.0",
        "ridge 0.1, inputs + 1e-7 noise",
    }
    norms = [heads[f"ridge {r}"]["spectral_norm"] for r in (0.001, 0.01, 0.1, 1.0)]
    assert norms == sorted(norms, reverse=True)  # more ridge, a smaller head
    for row in heads.values():
        assert -1 <= row["dev_cosine"] <= 1 and row["cosine_distance_after_one_step"] >= 0
    assert report["command"].startswith("python -m distill.bench_query_head")


def test_teacher_softness_on_hand_made_embeddings():
    import numpy as np

    from distill.bench_teacher_softness import softness

    passage = np.eye(3, dtype=np.float32)
    query = passage[:2].copy()  # question i is its passage i; the hard negatives are the other question's passage
    out = softness(query, passage, [0, 1], [[0, 1]], temperature=1.0)
    e = math.e
    assert out["in_batch"]["p_positive_median"] == pytest.approx(e / (e + 1))
    assert out["with_hard_negatives"]["p_positive_mean"] == pytest.approx(e / (2 * e + 2))
    h = -(e / (e + 1)) * math.log(e / (e + 1)) - (1 / (e + 1)) * math.log(1 / (e + 1))
    assert out["in_batch"]["entropy_mean_nats"] == pytest.approx(h, rel=1e-5)


def test_weight_average_by_hand():
    import torch

    from distill.trainer import WeightAverage

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
    from distill.embedder import retrieval_scores
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    from distill import trainer
    from distill.train import train_embedder

    path = write_recipe(
        home, tiny_embedder_wide, tiny_embedder, tiny_squad, optimizer={"ema": 0.9, "lr": 1e-2}, epochs=3
    )
    original = trainer.Trainer._save_checkpoint

    def save_then_die(self, state):
        original(self, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_embedder(path)
    saved = load_file(str(home / "out" / "checkpoint" / trainer.EMA_FILE))
    assert int(saved["updates"]) == 2
    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", original)
    student = train_embedder(path)
    rows = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "dev_raw/ndcg@10" in r]
    assert [r["step"] for r in evals] == [2, 4, 6]
    metrics = json.loads((student / "metrics.json").read_text())
    best = next(r for r in evals if r["step"] == metrics["best_step"])
    # The saved student is the averaged one: scoring it again gives the logged dev/ (not dev_raw/) figures.
    from distill.data import load_squad_file

    data = load_squad_file(tiny_squad)
    model = SentenceTransformer(str(student), device="cpu")
    docs = [d.content for d in data.documents]
    gold = [docs.index(data.document(q.gold_doc_ids[0]).content) for q in data.queries]
    again = retrieval_scores(model.encode([q.text for q in data.queries]), model.encode(docs), gold)
    assert again["mrr@10"] == pytest.approx(best["dev/mrr@10"], abs=1e-6)
    assert metrics["dev"]["mrr@10"] == pytest.approx(best["dev/mrr@10"], abs=1e-6)
    assert any(r["dev/ndcg@10"] != r["dev_raw/ndcg@10"] for r in evals)  # the average is not the raw weights
    assert "exponential moving average (decay 0.9)" in (student / "README.md").read_text()


def test_passage_memory_is_first_in_first_out_and_leaves_out_the_batchs_passages():
    import numpy as np
    import torch
    from distill.embedder import PassageMemory

    teacher = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    memory = PassageMemory(3, teacher)
    assert memory.columns([0]) is None
    memory.push([4, 5], torch.tensor([[4.0, 4.0], [5.0, 5.0]], requires_grad=True))
    memory.push([6, 7], torch.tensor([[6.0, 6.0], [7.0, 7.0]]))
    assert memory.ids == [5, 6, 7] and len(memory) == 3  # 4 fell out
    student, teacher_rows = memory.columns([6, 1])  # 6 is in the batch: left out
    assert student.tolist() == [[5.0, 5.0], [7.0, 7.0]] and not student.requires_grad
    assert teacher_rows.tolist() == [teacher[5].tolist(), teacher[7].tolist()]
    assert memory.columns([5, 6, 7]) is None


def test_a_run_with_a_passage_memory_trains(home, tiny_embedder, tiny_embedder_wide, tiny_squad, monkeypatch):
    from distill import embedder
    from distill.train import train_embedder

    seen = []
    original = embedder.PassageMemory.columns

    def spy(self, batch_ids):
        out = original(self, batch_ids)
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
    student = train_embedder(path)
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


def test_teacher_embeddings_reuse_a_shorter_length_cache(tmp_path, tiny_embedder, tiny_embedder_wide):
    import numpy as np
    from distill.embedder import TeacherEmbeddings, load_sentence_transformer

    from distill.cache import TeacherCache

    texts = [
        "the nile",
        "the nile is the longest river in africa . it flows north through egypt into the mediterranean sea .",
    ]
    teacher = TeacherEmbeddings(str(tiny_embedder), cache_root=tmp_path)
    assert teacher.token_counts(texts) == [4, 21]
    at_8 = teacher.encode(texts, 8, "t")
    assert teacher.cached_lengths() == [8]
    at_32 = teacher.encode(texts, 32, "t")
    assert teacher.cached_lengths() == [8, 32]
    # Only the text longer than 8 tokens was embedded at 32; the short one came from the length-8 cache.
    long_cache = TeacherCache(tmp_path, namespace=teacher._namespace(32), row_shape=(teacher.dim,))
    assert len(long_cache) == 1 and texts[1] in long_cache and texts[0] not in long_cache
    model = load_sentence_transformer(str(tiny_embedder))
    model.max_seq_length = 32
    np.testing.assert_allclose(at_32, model.encode(texts, convert_to_numpy=True), atol=1e-5)
    np.testing.assert_array_equal(at_32[0], at_8[0])
    assert not np.allclose(at_32[1], at_8[1], atol=1e-3)  # truncated at 8 it was another embedding
    # Another teacher never reads this teacher's rows.
    assert TeacherEmbeddings(str(tiny_embedder_wide), cache_root=tmp_path).cached_lengths() == []
