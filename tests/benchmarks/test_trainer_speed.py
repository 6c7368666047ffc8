import json

from conftest import REPO, write_recipe

from benchmarks import trainer_speed as bench_trainer


def test_speed_benchmark_times_both_trainers(tmp_path, monkeypatch, tiny_embedder, tiny_embedder_wide, tiny_squad):
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(REPO)
    recipe = write_recipe(tmp_path, tiny_embedder_wide, tiny_embedder, tiny_squad)
    out = tmp_path / "speed.json"
    args = ["--recipe", str(recipe), "--steps", "1", "--warmup", "1", "--texts-per-step", "4", "--out", str(out)]
    assert bench_trainer.main(args) == 0
    result = json.loads(out.read_text())
    for side in ("ours", "sentence_transformers_trainer"):
        assert result[side]["texts"] == 4 and result[side]["texts_per_s"] > 0
    assert result["ratio"] == round(
        result["ours"]["texts_per_s"] / result["sentence_transformers_trainer"]["texts_per_s"], 3
    )
