"""`distill adapt` on a user's own pipelines (components named unlike ours) and corpus, with tiny models: the plan
and the recipe it writes, a budget, look-before-you-spend, and a whole run that trains without labels and evaluates
teacher, off-the-shelf and distilled side by side."""

import json
from pathlib import Path

import pytest
from conftest import renamed_pipelines, write_beir

from distill.adapt import AdaptOptions, parse_budget
from distill.cli import main
from distill.errors import DistillError
from distill.pipelines.loading import dump_pipeline_dict, read_pipeline_dict
from distill.training import recipes


@pytest.fixture
def mine(home, tiny_pipelines):
    index_yaml, query_yaml = renamed_pipelines(tiny_pipelines, home / "mine")
    return index_yaml, query_yaml, write_beir(home / "beir")


def test_budget_is_minutes_or_passages():
    assert parse_budget("30m") == (30.0, None) and parse_budget("1.5h") == (90.0, None)
    assert parse_budget("2000p") == (None, 2000) and parse_budget(None) == (None, None)
    for bad in ("30", "0m", "-3p", "fast"):
        with pytest.raises(DistillError, match="--budget must be"):
            parse_budget(bad)


def test_without_queries_pseudo_queries_default_to_one_per_passage():
    bare = AdaptOptions(Path("index.yaml"), Path("query.yaml"), corpus="beir")
    assert bare.pseudo_queries is None and bare.student == "minilm-l6" and bare.out == Path("runs/adapt")
    assert AdaptOptions(Path("i.yaml"), Path("q.yaml"), corpus="beir", queries="q.txt").pseudo_queries == 0


def test_plan_only_prints_the_plan_and_writes_a_recipe_that_distill_train_reads(home, mine, tiny_embedder, capsys):
    index_yaml, query_yaml, beir = mine
    args = [str(index_yaml), str(query_yaml), "--corpus", str(beir), "--student", str(tiny_embedder)]
    assert main(["adapt", *args, "--out", str(home / "a"), "--plan-only", "--budget", "3p"]) == 0
    out = capsys.readouterr().out
    assert "teacher: " in out and "encode_docs" in out and "encode_q" in out
    assert "corpus: 3 passages" in out and "budget: 3 of 6 passages left out of training" in out
    assert "pseudo-queries cut from the corpus" in out and "passages to embed" in out
    recipe = recipes.load_recipe(home / "a" / "recipe.yaml")
    assert recipe["teacher"] == "pipelines" and recipe["data"]["labels"] == "teacher"
    assert recipe["data"]["passages"] == 3 and recipe["data"]["pseudo_queries"] is None
    assert recipe["pipelines"]["indexing"] == str(index_yaml.resolve())
    assert not (home / "a" / "student").exists()  # nothing trained


def test_adapt_trains_without_labels_and_evaluates_three_pipelines(home, mine, tiny_embedder_wide, capsys):
    index_yaml, query_yaml, beir = mine
    queries = home / "queries.txt"
    queries.write_text("where does the nile flow\nwho invented the piano\nwhy is mars red\nwhen was mozart born\n")
    code = main(
        [
            "adapt", str(index_yaml), str(query_yaml), "--corpus", str(beir), "--queries", str(queries),
            "--pseudo-queries", "all", "--student", str(tiny_embedder_wide), "--eval-data", f"{beir}:dev",
            "--out", str(home / "a"), "--set", "batch_size=4", "--set", "max_length.passage=32", "--anyway",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "before training" in out
    report = json.loads((home / "a" / "eval" / "report.json").read_text())
    assert list(report["pipelines"]) == ["teacher", "off-the-shelf", "distilled"]
    assert "ndcg@10" in report["pipelines"]["distilled"]["quality"]
    assert report["pipelines"]["distilled"]["agreement"]["reference"] == "teacher"
    assert "distilled" in report["differences"]
    swapped = home / "a" / "pipelines"
    assert sorted(p.name for p in swapped.glob("*.yaml")) == ["index_docs.yaml", "search.yaml"]
    assert (home / "a" / "student" / "README.md").read_text().count("no relevance labels") == 1
    summary = json.loads((home / "a" / "adapt.json").read_text())
    assert summary["student"].endswith("student") and summary["plan"]


def test_adapt_stops_when_the_student_already_matches_the_teacher(home, mine, tiny_embedder, capsys):
    index_yaml, query_yaml, beir = mine
    # the student is the teacher's own model: it matches the teacher, so training could only move it away
    code = main(
        [
            "adapt", str(index_yaml), str(query_yaml), "--corpus", str(beir), "--student", str(tiny_embedder),
            "--eval-data", f"{beir}:dev", "--out", str(home / "a"),
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "already matches or beats the teacher" in out and "stopping before training" in out
    assert not (home / "a" / "student").exists()


def test_adapt_refuses_a_pipeline_it_cannot_distil_in_one_line(home, mine, capsys):
    index_yaml, query_yaml, beir = mine
    odd = read_pipeline_dict(query_yaml)
    odd["components"]["encode_q"]["type"] = "haystack.components.embedders.OpenAITextEmbedder"
    (home / "odd.yaml").write_text(dump_pipeline_dict(odd))
    assert main(["adapt", str(index_yaml), str(home / "odd.yaml"), "--corpus", str(beir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "OpenAITextEmbedder" in err[0]
    assert not (home / "runs").exists()


def test_adapt_refuses_a_store_it_cannot_build_before_the_plan(home, mine, capsys):
    index_yaml, query_yaml, beir = mine
    odd = read_pipeline_dict(index_yaml)
    odd["components"]["save"]["init_parameters"]["document_store"]["type"] = "haystack_integrations.nowhere.Store"
    (home / "odd.yaml").write_text(dump_pipeline_dict(odd))
    assert main(["adapt", str(home / "odd.yaml"), str(query_yaml), "--corpus", str(beir)]) == 2
    err = capsys.readouterr()
    assert len(err.err.strip().splitlines()) == 1 and "haystack_integrations.nowhere.Store" in err.err
    assert "corpus:" not in err.out  # refused before the plan


def test_a_budget_in_minutes_samples_passages_then_cuts_steps(home, mine, tiny_embedder, capsys):
    index_yaml, query_yaml, beir = mine
    args = [str(index_yaml), str(query_yaml), "--corpus", str(beir), "--student", str(tiny_embedder)]
    # a budget far below the (uncached) teacher pass, even at the tiny teacher's estimated rate
    assert main(["adapt", *args, "--out", str(home / "a"), "--plan-only", "--budget", "0.0000001m"]) == 0
    out = capsys.readouterr().out
    recipe = recipes.load_recipe(home / "a" / "recipe.yaml")
    assert recipe["data"]["passages"] is not None and recipe["data"]["passages"] < 6
    assert "passages left out of training" in out and "training stops after" in out
    assert recipe["max_steps"] == 1


def test_without_labels_the_look_before_you_spend_is_agreement():
    from distill.adapt import agreement_note

    def report(silver):
        shelf = {"quality": {}, "agreement": {"reference": "teacher", "silver_ndcg@10": silver}}
        return {"pipelines": {"teacher": {"quality": {}}, "off-the-shelf": shelf}}

    assert "already ranks almost as the teacher does" in agreement_note(report(0.97))
    assert "agrees with the teacher at silver nDCG@10 0.571" in agreement_note(report(0.571))
    labelled = report(0.5)
    labelled["pipelines"]["teacher"]["quality"]["ndcg@10"] = 0.3
    assert agreement_note(labelled) is None  # with labels, relevance decides (look_before_you_spend)


def test_eval_questions_without_eval_data_is_one_line(home, mine, capsys):
    index_yaml, query_yaml, beir = mine
    assert main(["adapt", str(index_yaml), str(query_yaml), "--corpus", str(beir), "--eval-questions", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--eval-questions samples --eval-data" in err[0]


@pytest.mark.parametrize("student", ["{static: {dims: 16}}", "{static: {dims: null}}"])
def test_adapt_distils_a_static_student_from_the_users_teacher(home, mine, tiny_embedder, student, capsys):
    """A static student made from the teacher of the user's own YAML (model2vec's way), then trained without labels;
    the query-only one keeps the teacher's index."""
    index_yaml, query_yaml, beir = mine
    query_only = "dims: null" in student
    sets = [f"student={student}", "optimizer.lr=5.0e-3", "batch_size=4", *(["query_only=true"] if query_only else [])]
    code = main(
        [
            "adapt", str(index_yaml), str(query_yaml), "--corpus", str(beir), "--pseudo-queries", "all",
            "--student", str(tiny_embedder), "--eval-data", f"{beir}:dev", "--out", str(home / "a"), "--anyway",
            *[arg for s in sets for arg in ("--set", s)],
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    report = json.loads((home / "a" / "eval" / "report.json").read_text())
    assert "ndcg@10" in report["pipelines"]["distilled"]["quality"]
    modules = json.loads((home / "a" / "student" / "modules.json").read_text())
    assert any(m["type"].endswith("StaticEmbedding") for m in modules)
    swapped = read_pipeline_dict((home / "a" / "pipelines" / "index_docs.yaml").read_text())
    original = read_pipeline_dict(index_yaml.read_text())
    assert (swapped == original) == query_only  # a query-only student leaves the indexing pipeline as it was


@pytest.fixture
def reads(monkeypatch):
    """How often each pipeline file is parsed: every file ``read_pipeline_dict`` parses is read through
    distill.pipelines.loading's ``read_text``, one patch that the test's end undoes. (Patching ``read_pipeline_dict``
    in every module that held it left the counting copy for good in the modules first imported during the test.)"""
    from collections import Counter

    from distill.pipelines import loading

    original, counts = loading.read_text, Counter()

    def counted(path, *args, **kwargs):
        counts[Path(path).resolve()] += 1
        return original(path, *args, **kwargs)

    monkeypatch.setattr(loading, "read_text", counted)
    return counts


def test_adapt_reads_each_of_the_users_pipeline_files_once(home, mine, tiny_embedder_wide, reads):
    """The plan, the teacher, training, the swaps and both evaluations share one parse of the user's two files (it
    was 2 reads of each for --plan-only, 9 for a whole run)."""
    index_yaml, query_yaml, beir = mine
    users = {index_yaml.resolve(): 1, query_yaml.resolve(): 1}
    args = [str(index_yaml), str(query_yaml), "--corpus", str(beir), "--student", str(tiny_embedder_wide)]
    assert main(["adapt", *args, "--out", str(home / "plan"), "--plan-only"]) == 0
    assert dict(reads) == users
    reads.clear()
    sets = ["--set", "batch_size=4", "--set", "max_length.passage=32", "--set", "epochs=1"]
    assert main(["adapt", *args, "--eval-data", f"{beir}:dev", "--out", str(home / "a"), *sets, "--anyway"]) == 0
    assert {path: n for path, n in reads.items() if path in users} == users
    assert (home / "a" / "eval" / "report.json").is_file()  # the whole run happened
