"""Recipes: defaults and overrides, every committed recipe validates, bad values name their field."""

from pathlib import Path

import pytest
from conftest import REPO

from distill.errors import DistillError
from distill.training import recipes


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
        # Checked before anything is loaded (they failed only after the teacher pass, or with a traceback):
        (["optimizer.weight_decay=abc"], "recipe.optimizer.weight_decay must be a number, got 'abc'"),
        (["optimizer.weight_decay=-0.1"], "recipe.optimizer.weight_decay must be >= 0"),
        (["optimizer.warmup_ratio=abc"], "recipe.optimizer.warmup_ratio must be a number, got 'abc'"),
        (["optimizer.grad_clip=abc"], "recipe.optimizer.grad_clip must be a number or null"),
        (["losses.0.temperature=abc"], r"recipe.losses\[0\].temperature must be a number, got 'abc'"),
        (["losses.0.temperature=0"], r"recipe.losses\[0\]: temperature must be > 0"),
        (["losses.0.bogus=1"], r"recipe.losses\[0\].bogus: listwise_kl has no setting 'bogus'; it accepts: temp"),
        (["losses.0.symmetric=3"], r"recipe.losses\[0\].symmetric must be true or false, got 3"),
        (["losses.5.weight=1"], "losses has 2 entries, so no entry 5"),
        (["losses.5=null"], "losses has 2 entries, so no entry 5"),
        (["optimizer=null"], r"recipe.optimizer must be a mapping of settings \(lr, weight_decay"),
        (["data=5"], r"recipe.data must be a mapping of settings \(train, questions"),
        (["max_length=5"], r"recipe.max_length must be a mapping of settings \(query, passage\), got 5"),
    ],
)
def test_bad_recipes_name_the_field(overrides, message):
    with pytest.raises(DistillError, match=message):
        recipes.load_recipe(None, overrides)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("losses=[{name: listwise_kl}]", "listwise_kl is an embedder loss"),
        ("stride=400", "stride .* must be smaller"),
        ("student={from_teacher: {layers: [2, 1]}}", "increasing"),
        ("data.unlabelled=squad-train", "only teach through the teacher"),
        ("bogus=1", "unknown key"),
    ],
)
def test_bad_reader_recipes_name_the_field(override, message):
    from distill.training.recipes import load_recipe

    extra = ["losses=[{name: start_end_ce}]"] if "unlabelled" in override else []
    with pytest.raises(DistillError, match=message):
        load_recipe(Path("recipes/reader-distill-minilm-2l.yaml"), [*extra, override])


def test_an_empty_recipe_file_is_an_error_not_the_default_run(tmp_path):
    for text in ("", "\n# nothing but a comment\n"):
        path = tmp_path / "empty.yaml"
        path.write_text(text)
        with pytest.raises(DistillError, match=r"empty.yaml is empty: write at least its `output` folder"):
            recipes.load_recipe(path)


def test_an_override_one_past_the_last_loss_adds_a_loss():
    recipe = recipes.load_recipe(None, ["losses.2={name: rkd_distance, weight: 0.5}"])
    assert [loss["name"] for loss in recipe["losses"]] == ["listwise_kl", "similarity_matrix", "rkd_distance"]
    assert recipe["losses"][2]["weight"] == 0.5


def test_a_recipe_that_is_not_utf8_or_not_yaml_is_one_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes(b"output: caf\xe9\n")
    with pytest.raises(DistillError, match=r"r.yaml is not UTF-8 text \(byte 11"):
        recipes.load_recipe(path)
    path.write_text("output: [runs/x\n")
    with pytest.raises(DistillError) as error:
        recipes.load_recipe(path)
    assert "\n" not in str(error.value) and "is not valid YAML" in str(error.value) and "line 2" in str(error.value)
    with pytest.raises(DistillError, match="is a folder, not a file"):
        recipes.load_recipe(tmp_path)
    with pytest.raises(DistillError) as error:
        recipes.load_recipe(None, ["losses.2={name: x"])
    assert "\n" not in str(error.value) and "value is not valid YAML" in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [  # found by tests/test_fuzz.py: each was a TypeError with a traceback
        ("losses: [{name: [1, a]}]", r"recipe.losses\[0\].name: unknown loss \[1, 'a'\]"),
        ("pipelines: -1", r"recipe.pipelines must be a path or name \(text\) or null, got -1"),
        ("pipelines: {k: 1}", r"recipe.pipelines must be a folder, null, or"),
        ("output: null", r"recipe.output must be a path or name \(text\), got None"),
        ("output: ''", r"recipe.output must be a path or name \(text\), got ''"),
        ("teacher: 7", r"recipe.teacher must be a path or name \(text\), got 7"),
        ("data: {train: [1]}", r"recipe.data.train must be a path or name"),
        ("task: [1]", r"recipe.task must be one of embedder, reader, finetune_reader, got \[1\]"),
        ("task: reader\ndata: {unlabelled: 5}", r"recipe.data.unlabelled must be a path or name \(text\) or null"),
    ],
)
def test_recipe_fields_of_the_wrong_type_are_one_line(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text + "\n")
    with pytest.raises(DistillError, match=message):
        recipes.load_recipe(path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [  # found by tests/test_fuzz.py: a KeyError and an AttributeError with tracebacks
        (["data={a: 1}"], r"recipe: unknown key 'data.a'"),
        (["optimizer={a: 1}"], r"recipe: unknown key 'optimizer.a'"),
    ],
)
def test_an_override_of_a_whole_section_merges_like_a_recipe_file(overrides, message):
    with pytest.raises(DistillError, match=message):
        recipes.load_recipe(None, overrides)
    recipe = recipes.load_recipe(None, ["optimizer={lr: 0.001}"])
    assert recipe["optimizer"]["lr"] == 0.001 and recipe["optimizer"]["weight_decay"] == 0.01  # the rest kept


def test_a_reader_student_from_teacher_that_is_not_a_mapping_is_one_line():
    with pytest.raises(DistillError, match=r"recipe.student.from_teacher must be a mapping \{layers"):
        recipes.load_recipe(Path("recipes/reader-distill-minilm-2l.yaml"), ["student={from_teacher: 0}"])


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_recipe_loads(path):
    """Every recipe in recipes/ (the GPU ones that cannot run here included) passes the recipe checks."""
    recipe = recipes.load_recipe(path, [])
    assert recipe["task"] in recipes.DEFAULTS and recipe["output"]
