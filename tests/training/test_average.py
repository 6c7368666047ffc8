import json

import pytest
import torch
import yaml
from conftest import make_sentence_transformer
from safetensors.torch import load_file

from distill.cli import main
from distill.errors import DistillError
from distill.training.average import average_weights
from distill.training.model_card import average_metadata, split_front_matter
from distill.ui.catalog import load_student


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    return make_sentence_transformer(root / "a", seed=0), make_sentence_transformer(root / "b", seed=1)


def test_average_is_the_weighted_mean_of_every_tensor_and_loads(tmp_path, two_seeds):
    import shutil

    from distill.training.tasks.embedder import load_sentence_transformer

    a = shutil.copytree(two_seeds[0], tmp_path / "a")  # a copy: the module's models stay as other tests found them
    b = two_seeds[1]
    (a / "metrics.json").write_text("{}")  # a training run's files describe one ingredient: not copied
    out = average_weights([a, b], tmp_path / "avg", weights=[3, 1])
    sa, sb, avg = (load_file(str(f / "model.safetensors")) for f in (a, b, out))
    assert avg.keys() == sa.keys()
    for key, tensor in avg.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, 0.75 * sa[key] + 0.25 * sb[key])
        else:
            assert torch.equal(tensor, sa[key])
    metrics = json.loads((out / "metrics.json").read_text())  # the average's own, not the ingredient's "{}"
    assert metrics == {"average_of": [str(a), str(b)], "weights": [0.75, 0.25]}
    assert yaml.safe_load((out / "config.yaml").read_text())["task"] == "average"
    student = load_student(out)  # the student browser lists it without a missing-file warning (it has no log)
    assert student.problems == [] and student.config["models"] == [str(a), str(b)]
    card = (out / "README.md").read_text()
    assert f"| `{a}` | 0.75 |" in card and f"| `{b}` | 0.25 |" in card
    meta, _ = split_front_matter(card)
    assert meta == average_metadata() and meta["library_name"] == "sentence-transformers"
    assert yaml.safe_load((out / "config.yaml").read_text())["kind"] == "embedder"
    vector = load_sentence_transformer(str(out)).encode(["where was mozart born"])
    assert vector.shape == (1, 32)


def test_average_refuses_models_that_do_not_match(tmp_path, two_seeds, tiny_embedder_wide, capsys):
    a, b = two_seeds
    with pytest.raises(DistillError, match="do not share an architecture|not one architecture"):
        average_weights([a, tiny_embedder_wide], tmp_path / "x")
    with pytest.raises(DistillError, match="2 weights for 3 models"):
        average_weights([a, b, a], tmp_path / "x", weights=[1, 1])
    with pytest.raises(DistillError, match="must be > 0"):
        average_weights([a, b], tmp_path / "x", weights=[1, 0])
    with pytest.raises(DistillError, match="at least two"):
        average_weights([a], tmp_path / "x")
    with pytest.raises(DistillError, match="is one of the models"):
        average_weights([a, b], a)
    assert main(["average", str(a), str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    assert main(["average", str(a), str(b), "--out", str(tmp_path / "ok")]) == 0
    assert (tmp_path / "ok" / "model.safetensors").exists()


def test_average_refuses_another_tokenizer(tmp_path, two_seeds):
    import shutil

    a, b = two_seeds
    other = tmp_path / "other"
    shutil.copytree(b, other)
    (other / "tokenizer.json").write_text((other / "tokenizer.json").read_text().replace('"mozart"', '"salieri"'))
    with pytest.raises(DistillError, match=r"another tokenizer .*tokenizer.json differs"):
        average_weights([a, other], tmp_path / "x")


def test_average_scores_models_on_a_recipes_dev_slice(
    tmp_path, two_seeds, tiny_embedder_wide, tiny_squad, monkeypatch, capsys
):
    from conftest import write_recipe

    from distill.training.recipes import load_recipe
    from distill.training.tasks.embedder import score_on_dev_slice

    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    a, b = two_seeds
    recipe = write_recipe(tmp_path, tiny_embedder_wide, a, tiny_squad)
    out = tmp_path / "avg"
    assert main(["average", str(a), str(b), "--out", str(out), "--dev", str(recipe)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split("\t") == ["model", "recall@1", "recall@10", "mrr@10", "ndcg@10"]
    rows = {line.split("\t")[0]: [float(v) for v in line.split("\t")[1:]] for line in lines[3:]}
    assert list(rows) == ["teacher", str(a), str(b), str(out)]
    direct = score_on_dev_slice(load_recipe(recipe, []), [str(a)])[str(a)]
    assert rows[str(a)] == pytest.approx([direct[m] for m in ("recall@1", "recall@10", "mrr@10", "ndcg@10")], abs=1e-4)
    metrics = json.loads((out / "metrics.json").read_text())  # the same rows, as the student browser tables them
    assert metrics["dev"]["ndcg@10"] == pytest.approx(rows[str(out)][3], abs=1e-4)
    assert metrics["teacher_dev"]["ndcg@10"] == pytest.approx(rows["teacher"][3], abs=1e-4)
    assert metrics["ingredient_2_dev"]["model"] == str(b) and metrics["dev_recipe"] == str(recipe)
    teacher_recipe = tmp_path / "teacher.yaml"
    teacher_recipe.write_text("task: finetune_reader\nmodel: x\n")
    assert main(["average", str(a), str(b), "--out", str(out), "--dev", str(teacher_recipe)]) == 2
    assert "needs an embedder or a reader recipe" in capsys.readouterr().err


def test_dev_slice_scores_of_a_query_only_recipe_use_the_teachers_passages(
    tmp_path, tiny_embedder, tiny_squad, monkeypatch
):
    from conftest import write_recipe

    from distill.training.recipes import load_recipe
    from distill.training.tasks.embedder import score_on_dev_slice

    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    losses = [{"name": "listwise_kl", "weight": 1.0}]
    path = write_recipe(tmp_path, tiny_embedder, tiny_embedder, tiny_squad, query_only=True, losses=losses)
    recipe = load_recipe(path, [])
    scores = score_on_dev_slice(recipe, [str(tiny_embedder)])
    # The teacher itself as a query-only "student": its queries against its own passage embeddings.
    assert scores[str(tiny_embedder)] == pytest.approx(scores["teacher"])
    # Another model: as a query-only student it searches the teacher's passages, otherwise its own.
    other = make_sentence_transformer(tmp_path / "other", seed=3)
    query_only = score_on_dev_slice(recipe, [str(other)])[str(other)]
    full = score_on_dev_slice(recipe | {"query_only": False}, [str(other)])[str(other)]
    assert query_only != pytest.approx(full)


def test_average_keeps_an_unrelated_out_folder_and_names_unreadable_weights(tmp_path, two_seeds):
    import shutil

    a, b = two_seeds
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(DistillError, match="exists and is not an earlier weight average"):
        average_weights([a, b], precious)
    assert (precious / "notes.txt").read_text() == "keep me"
    # An earlier average is replaced.
    out = average_weights([a, b], tmp_path / "avg")
    assert average_weights([a, b], out, weights=[1, 3]) == out

    broken = tmp_path / "broken"
    shutil.copytree(b, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(DistillError, match=r"cannot read .*broken/model.safetensors"):
        average_weights([a, broken], tmp_path / "x")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DistillError, match="holds no"):
        average_weights([empty, a], tmp_path / "x")
