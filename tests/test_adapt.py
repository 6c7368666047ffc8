"""`distill adapt` on a user's own pipelines (components named unlike ours) and corpus, with tiny models: the plan
and the recipe it writes, a budget, look-before-you-spend, and a whole run that trains without labels and evaluates
teacher, off-the-shelf and distilled side by side."""

import json
import re
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


def test_a_query_only_plan_times_pseudo_queries_slower_than_a_users_questions():
    from distill.adapt.plan import QUERY_ONLY_EXAMPLES_PER_S, QUERY_ONLY_PSEUDO_PER_S, _train_rate

    recipe = {"query_only": True}
    assert _train_rate(recipe, {"user": 5400, "title": 0, "sentence": 0}) == QUERY_ONLY_EXAMPLES_PER_S
    assert _train_rate(recipe, {"user": 0, "title": 100, "sentence": 9900}) == QUERY_ONLY_PSEUDO_PER_S
    mixed = _train_rate(recipe, {"user": 5400, "title": 0, "sentence": 10000})
    # the time of each kind at its own rate, added: 5,400 / 60 + 10,000 / 30 seconds
    assert mixed == pytest.approx(15400 / (5400 / QUERY_ONLY_EXAMPLES_PER_S + 10000 / QUERY_ONLY_PSEUDO_PER_S))
    assert QUERY_ONLY_PSEUDO_PER_S < mixed < QUERY_ONLY_EXAMPLES_PER_S


def test_the_plan_times_the_teachers_pass_over_a_users_questions_faster_than_over_sentences():
    from distill.adapt.plan import TEACHER_QUERIES_PER_S, TEACHER_USER_QUERIES_PER_S, teacher_query_seconds

    queries = [(f"q{i}", "user") for i in range(400)] + [(f"v{i}", "variant") for i in range(40)]
    queries += [(f"s{i}", "sentence") for i in range(115)]
    n, seconds = teacher_query_seconds(queries)
    assert n == 555 and seconds == pytest.approx(440 / TEACHER_USER_QUERIES_PER_S + 115 / TEACHER_QUERIES_PER_S)
    cached_log = lambda texts: sum(1 for t in texts if not t.startswith("q"))  # noqa: E731 - the log is cached
    n, seconds = teacher_query_seconds(queries, cached_log, scale=2.0)
    assert n == 155 and seconds == pytest.approx(2 * (40 / TEACHER_USER_QUERIES_PER_S + 115 / TEACHER_QUERIES_PER_S))


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
    assert "negatives:" not in out
    mined = ["--set", "data.negatives_from=student"]
    assert main(["adapt", *args, "--out", str(home / "b"), "--plan-only", *mined]) == 0
    assert "negatives: from where the untrained student disagrees with the teacher" in capsys.readouterr().out


def test_query_variants_are_planned_counted_and_refused_without_queries(home, mine, tiny_embedder, capsys):
    index_yaml, query_yaml, beir = mine
    log = home / "log.txt"
    log.write_text("".join(f"where does river number {i} flow\n" for i in range(12)))
    args = ["adapt", str(index_yaml), str(query_yaml), "--corpus", str(beir), "--student", str(tiny_embedder)]
    assert main([*args, "--queries", str(log), "--query-variants", "1", "--out", str(home / "v"), "--plan-only"]) == 0
    out = capsys.readouterr().out
    assert "queries: 12 of yours" in out and "10 variants of yours with words left out; 2 held out" in out
    assert recipes.load_recipe(home / "v" / "recipe.yaml")["data"]["query_variants"] == 1
    assert main([*args, "--query-variants", "1", "--out", str(home / "w"), "--plan-only"]) == 2
    assert "give them with --queries" in capsys.readouterr().err and not (home / "w").exists()


def test_query_only_trains_a_query_encoder_and_keeps_the_teachers_index(home, mine, tiny_embedder, capsys):
    """--query-only: the plan says the documents keep the teacher's index, the recipe is the query-only one, and the
    pipelines it writes index with the teacher and search with the student."""
    index_yaml, query_yaml, beir = mine
    args = [
        "adapt", str(index_yaml), str(query_yaml), "--corpus", str(beir), "--student", str(tiny_embedder),
        "--out", str(home / "q"), "--query-only", "--set", "batch_size=2", "--set", "epochs=1",
    ]  # fmt: skip
    assert main([*args, "--plan-only"]) == 0
    out = capsys.readouterr().out
    assert "query-only: the student embeds the queries, the documents keep the teacher's embeddings and index" in out
    assert "queries/s for a MiniLM-L6-size student" in out
    recipe = recipes.load_recipe(home / "q" / "recipe.yaml")
    assert recipe["query_only"] is True and recipe["epochs"] == 1  # the user's --set wins over the written 8
    assert [loss["name"] for loss in recipe["losses"]] == ["listwise_kl"] and recipe["passage_memory"] == "corpus"
    assert main([*args, "--anyway"]) == 0, capsys.readouterr().err
    written = home / "q" / "pipelines"
    teacher_index = read_pipeline_dict(index_yaml)["components"]["encode_docs"]["init_parameters"]["model"]
    assert read_pipeline_dict(written / index_yaml.name)["components"]["encode_docs"]["init_parameters"]["model"] == (
        teacher_index
    )
    searched = read_pipeline_dict(written / query_yaml.name)["components"]["encode_q"]["init_parameters"]["model"]
    assert searched != teacher_index and searched.endswith("student")
    assert (home / "q" / "eval" / "report.json").is_file()
    # swapped by hand without --keep-index, the query encoder would re-index the documents: refused in one line
    assert main(["swap", str(index_yaml), str(query_yaml), "--model", str(home / "q" / "student"), "--out",
                 str(home / "wrong")]) == 2  # fmt: skip
    assert "is a query-only student" in capsys.readouterr().err and not (home / "wrong").exists()


def test_bad_input_is_counted_in_the_plan_and_the_card_never_a_traceback(home, mine, tiny_embedder, capsys):
    """A query log with lines that are not UTF-8, a query longer than the student's limit, a corpus with an empty
    text (the tiny BEIR folder has one): each counted in the plan and the student's card and metrics.json."""
    index_yaml, query_yaml, beir = mine
    log = home / "log.txt"
    long = "why " + "does the price of a share move " * 20
    log.write_bytes(b"where does the nile flow\ncaf\xe9 au lait\n" + long.encode() + b"\nwhy is mars red\n")
    args = [
        "adapt", str(index_yaml), str(query_yaml), "--corpus", str(beir), "--queries", str(log),
        "--student", str(tiny_embedder), "--out", str(home / "a"), "--set", "batch_size=2",
    ]  # fmt: skip
    assert main([*args, "--plan-only"]) == 0
    out = capsys.readouterr().out
    assert "corpus: 6 passages (1 empty, 1 duplicate skipped)" in out
    assert "queries: 3 of yours (0 blank, 0 repeated and 1 not UTF-8 lines skipped)" in out
    assert "; 1 longer than the student's 64 tokens (cut)" in out
    assert main([*args, "--anyway"]) == 0, capsys.readouterr().err
    metrics = json.loads((home / "a" / "student" / "metrics.json").read_text())["training_data"]
    assert metrics["query_file"]["not_utf8"] == 1 and metrics["queries_cut"] == {"student": 1, "limit": 64}
    assert metrics["corpus"]["skipped_empty"] == 1
    card = (home / "a" / "student" / "README.md").read_text()
    assert "0 blank, 0 repeated and 1 not UTF-8 lines skipped" in card
    assert "1 longer than the student's 64 tokens, so cut" in card and "(1 empty and 1 duplicates skipped" in card


def test_adapt_trains_without_labels_and_evaluates_three_pipelines(home, mine, tiny_embedder_wide, capsys):
    index_yaml, query_yaml, beir = mine
    queries = home / "queries.txt"
    queries.write_text("where does the nile flow\nwho invented the piano\nwhy is mars red\nwhen was mozart born\n")
    args = [
        "adapt", str(index_yaml), str(query_yaml), "--corpus", str(beir), "--queries", str(queries),
        "--pseudo-queries", "all", "--student", str(tiny_embedder_wide), "--eval-data", f"{beir}:dev",
        "--out", str(home / "a"), "--set", "batch_size=4", "--set", "max_length.passage=32", "--anyway",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "before training" in out
    report = json.loads((home / "a" / "eval" / "report.json").read_text())
    assert list(report["pipelines"]) == ["teacher", "off-the-shelf", "distilled"]
    assert "ndcg@10" in report["pipelines"]["distilled"]["quality"]
    assert report["pipelines"]["distilled"]["agreement"]["reference"] == "teacher"
    assert "distilled" in report["differences"]
    # a pipeline that does not split documents: no chunk figures, rows as they always were
    assert not any("indexed" in entry for entry in report["pipelines"].values())
    rows = (home / "a" / "eval" / "questions.jsonl").read_text().splitlines()
    assert not any("chunks" in run for row in rows for run in json.loads(row)["runs"].values())
    swapped = home / "a" / "pipelines"
    assert sorted(p.name for p in swapped.glob("*.yaml")) == ["index_docs.yaml", "search.yaml"]
    assert (home / "a" / "student" / "README.md").read_text().count("no relevance labels") == 1
    summary = json.loads((home / "a" / "adapt.json").read_text())
    assert summary["student"].endswith("student") and summary["plan"]
    assert summary["look"].startswith("teacher nDCG@10 ") and "a gap of" in summary["look"]
    # a rerun (say after an interruption in the final evaluation) reuses the finished student instead of training,
    # and the measurement before training, since nothing it depends on changed
    weights = home / "a" / "student" / "model.safetensors"
    stamp, before = weights.stat().st_mtime_ns, (home / "a" / "before" / "report.json").read_text()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "reusing the measurement before training" in out and "reusing " + str(home / "a" / "student") in out
    assert weights.stat().st_mtime_ns == stamp and (home / "a" / "before" / "report.json").read_text() == before
    # other questions to score: measured again
    dev = beir / "qrels" / "dev.tsv"
    dev.write_text("\n".join(dev.read_text().splitlines()[:-1]) + "\n")
    assert main(args) == 0
    assert "reusing the measurement before training" not in capsys.readouterr().out


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
    assert "look before you spend: teacher nDCG@10 " in out  # the gap is stated, whatever the verdict
    assert json.loads((home / "a" / "before" / "look.json").read_text())["verdict"] == "student ahead"
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


def _look_report(teacher_hits: list[bool], shelf_hits: list[bool]) -> tuple[dict, list[dict]]:
    """A report and its per-question rows: each question has one relevant document, retrieved at rank 1 or not."""
    rows = [
        {
            "gold_doc_ids": ["d"],
            "runs": {
                "teacher": {"retrieved": ["d"] if t else ["x"]},
                "off-the-shelf": {"retrieved": ["d"] if s else ["x"]},
            },
        }
        for t, s in zip(teacher_hits, shelf_hits)
    ]
    quality = {n: {"ndcg@10": sum(h) / len(h)} for n, h in (("teacher", teacher_hits), ("off-the-shelf", shelf_hits))}
    return {"pipelines": {n: {"quality": q} for n, q in quality.items()}}, rows


@pytest.mark.parametrize(
    ("n", "teacher", "shelf", "shift", "verdict", "said"),
    [
        # FiQA-like: 14 points on 500 questions, far clear of zero
        (500, 300, 230, 0, "worth it", "a gap of 14.0 points (95% CI +"),
        # NFCorpus-like: under 2.5 points, though clear of zero
        (500, 160, 150, 0, "little to gain", "a gap of 2.0 points (95% CI +"),
        # a gap of 5 points within the noise of 20 questions (each side better on some)
        (20, 8, 7, 5, "little to gain", "a gap of 5.0 points (95% CI -"),
        (500, 150, 160, 0, "student ahead", "already matches or beats the teacher"),
    ],
)
def test_the_look_before_you_spend_states_the_gap_with_its_interval_and_a_verdict(
    n, teacher, shelf, shift, verdict, said
):
    from distill.adapt import look_before_you_spend

    # questions 0..teacher-1 are the teacher's hits, shift..shift+shelf-1 the student's
    teacher_hits = [i < teacher for i in range(n)]
    shelf_hits = [shift <= i < shift + shelf for i in range(n)]
    look = look_before_you_spend(*_look_report(teacher_hits, shelf_hits))
    assert look.verdict == verdict and said in look.sentence, look.sentence
    assert look.sentence.startswith(f"teacher nDCG@10 {teacher / n:.3f} vs off-the-shelf {shelf / n:.3f}")
    assert look.stop == (verdict == "student ahead")
    assert look.measured["gap_points"] == pytest.approx((teacher - shelf) / n * 100)


@pytest.mark.parametrize(("silver", "verdict"), [(0.571, "worth it"), (0.99, "little to gain")])
def test_without_labels_the_look_before_you_spend_is_agreement(silver, verdict):
    from distill.adapt import look_before_you_spend

    rows = [
        {"runs": {"teacher": {}, "off-the-shelf": {"agreement": {"silver_ndcg@10": silver + d, "overlap@10": 0.5}}}}
        for d in (-0.01, 0.0, 0.01) * 20
    ]
    shelf = {"quality": {}, "agreement": {"reference": "teacher", "silver_ndcg@10": silver, "overlap@10": 0.5}}
    look = look_before_you_spend({"pipelines": {"teacher": {"quality": {}}, "off-the-shelf": shelf}}, rows)
    assert look.verdict == verdict and not look.stop
    assert f"agrees with the teacher at silver nDCG@10 {silver:.3f} (overlap@10 0.500; " in look.sentence
    assert f"{(1 - silver) * 100:.1f} points short of the teacher's own ranking, 95% CI" in look.sentence
    assert "60 questions" in look.sentence


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


# --- an indexing pipeline that cleans and splits documents before its embedder ---------------------------------------


@pytest.fixture
def chunked(home, mine):
    """The user's pipelines with DocumentCleaner -> DocumentSplitter (8 words a chunk, 2 overlapping) before the
    embedder, and how many chunks each corpus document gives."""
    from conftest import chunked_pipeline

    index_yaml, query_yaml, beir = mine
    split_yaml = chunked_pipeline(index_yaml, home / "mine" / "split_docs.yaml")
    return split_yaml, query_yaml, beir


def test_plan_only_counts_the_chunks_the_indexing_pipeline_writes(home, chunked, tiny_embedder, capsys):
    """6 documents (an empty one and a duplicate skipped) cut into 15 chunks of 8 words by the user's cleaner and
    splitter: the plan counts chunks, and a passage budget keeps whole documents."""
    index_yaml, query_yaml, beir = chunked
    args = [str(index_yaml), str(query_yaml), "--corpus", str(beir), "--student", str(tiny_embedder)]
    assert main(["adapt", *args, "--out", str(home / "a"), "--plan-only"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        "corpus: 15 chunks, cut from 6 documents (1 empty, 1 duplicate skipped) by the indexing pipeline's clean -> "
        "split (15 chunks: 0 empty and 0 duplicates skipped, 0 documents gave none; stored in the chunk cache)"
    ) in out
    assert any(line.startswith("teacher: 15 chunks to embed (0 cached)") for line in out)
    assert any("; 15 of the 15 queries to embed (0 cached), about 0 min" in line for line in out)
    assert any(line.startswith("queries: 0 of yours, 15 pseudo-queries cut from the corpus") for line in out)
    assert main(["adapt", *args, "--out", str(home / "b"), "--plan-only", "--budget", "5p"]) == 0
    out = capsys.readouterr().out
    assert "read from the chunk cache" in out
    kept = int(re.search(r"corpus: (\d+) chunks", out).group(1))
    assert 1 <= kept <= 5 and f"budget: {15 - kept} of 15 chunks left out of training (whole documents kept)" in out


def test_adapt_on_chunks_trains_on_them_and_the_teacher_embeds_each_once(
    home, chunked, tiny_embedder_wide, monkeypatch, capsys
):
    """The whole run on a cleaner -> splitter pipeline: the teacher embeds each of the 15 chunks once, in the look
    step, through the cache (it took three passes: the look step's chunks, the raw documents for training, the final
    evaluation's chunks again); the student trains on the chunks; relevance counts each judged document once."""
    from collections import Counter

    from distill.teacher.cache import TeacherCache
    from distill.teacher.embedders import embedder_namespace

    index_yaml, query_yaml, beir = chunked
    computed = Counter()  # rows each teacher-cache folder computed
    original = TeacherCache._compute

    def counted(self, out, todo, *args, **kwargs):
        computed[self.folder.name] += len(todo)
        return original(self, out, todo, *args, **kwargs)

    monkeypatch.setattr(TeacherCache, "_compute", counted)
    args = [str(index_yaml), str(query_yaml), "--corpus", str(beir), "--student", str(tiny_embedder_wide)]
    code = main(
        [
            "adapt", *args, "--pseudo-queries", "all", "--eval-data", f"{beir}:dev", "--out", str(home / "a"),
            "--set", "batch_size=4", "--set", "max_length.passage=32", "--set", "epochs=1", "--anyway",
        ]
    )  # fmt: skip
    assert code == 0
    namespace = embedder_namespace(read_pipeline_dict(index_yaml), "encode_docs") | {"dim": 32}
    teacher_rows = TeacherCache(TeacherCache.default_root(), namespace=namespace, row_shape=(32,))
    assert computed[teacher_rows.folder.name] == len(teacher_rows) == 15  # each chunk once, none twice
    # the look step embedded every chunk (the duplicate document's 3 chunks share the rows of its original);
    # training and the final evaluation read them all from the cache
    before = json.loads((home / "a" / "before" / "report.json").read_text())["pipelines"]["teacher"]["indexed"]
    after = json.loads((home / "a" / "eval" / "report.json").read_text())["pipelines"]["teacher"]["indexed"]
    assert before == {
        "documents": 8,
        "skipped_empty_documents": 1,
        "chunks": 18,
        "empty_chunks": 0,
        "documents_without_chunks": 0,
        "components": ["clean", "split"],
        "embedded": 15,
        "embeddings_cached": 3,
    }
    assert after == before | {"embedded": 0, "embeddings_cached": 18}
    # the student trained on the 15 chunks, and its card says so
    corpus = json.loads((home / "a" / "student" / "metrics.json").read_text())["training_data"]["corpus"]
    assert corpus["passages"] == 15 and corpus["chunking"]["chunks"] == 15 and corpus["chunking"]["documents"] == 6
    card = (home / "a" / "student" / "README.md").read_text()
    assert (
        "15 passages" in card
        and "the chunks that the indexing pipeline's `clean -> split` cut from 6 documents" in card
    )
    # per question the scored list is the judged documents, each once, at its best chunk; the chunks are kept too
    ids = {json.loads(line)["_id"] for line in (beir / "corpus.jsonl").read_text().splitlines()}
    for line in (home / "a" / "eval" / "questions.jsonl").read_text().splitlines():
        for run in json.loads(line)["runs"].values():
            assert set(run["retrieved"]) <= ids and len(set(run["retrieved"])) == len(run["retrieved"])
            assert len(run["chunks"]) == 10 and len(run["retrieved"]) < 10
    capsys.readouterr()
    assert main(["adapt", *args, "--out", str(home / "again"), "--plan-only"]) == 0
    out = capsys.readouterr().out
    assert "read from the chunk cache" in out and "teacher: 0 chunks to embed (15 cached)" in out
    assert "0 of the 15 queries to embed (15 cached)" in out  # the run's teacher pass over its queries, reused


def test_bad_preprocessing_is_one_line_before_any_teacher_pass(home, chunked, monkeypatch, capsys):
    from conftest import chunked_pipeline

    from distill.teacher.cache import TeacherCache

    index_yaml, query_yaml, beir = chunked
    monkeypatch.setattr(TeacherCache, "_compute", lambda *a, **k: pytest.fail("the teacher ran"))
    downloads = chunked_pipeline(home / "mine" / "index_docs.yaml", home / "sentence.yaml", split_by="sentence")
    assert main(["adapt", str(downloads), str(query_yaml), "--corpus", str(beir), "--out", str(home / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "component 'split' (DocumentSplitter) has split_by: sentence" in err[0]
    assert "split_by: word or passage" in err[0]
    wipes = chunked_pipeline(home / "mine" / "index_docs.yaml", home / "wipe.yaml", cleaner={"remove_regex": ".+"})
    assert main(["adapt", str(wipes), str(query_yaml), "--corpus", str(beir), "--out", str(home / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "component 'clean' (DocumentCleaner) left no text of the 6 documents" in err[0]
    assert not (home / "a").exists()


def test_without_labels_agreement_indexes_the_documents_the_chunks_came_from(home, chunked, tiny_embedder):
    from distill.adapt import build_recipe, held_out_queries
    from distill.teacher.embedders import PipelineTeacher

    index_yaml, query_yaml, beir = chunked
    recipe = build_recipe(
        index_yaml, query_yaml, corpus=str(beir), queries=None, pseudo_queries=None, student=str(tiny_embedder),
        output=home / "a", overrides=[],
    )  # fmt: skip
    teacher = PipelineTeacher.from_files(index_yaml, query_yaml)
    data = held_out_queries(recipe, teacher)
    assert [d.id for d in data.documents] == [f"d{i}" for i in range(6)]  # the pipelines cut them into the 15 chunks
    chunks = teacher.chunker(data.documents).documents
    assert len(chunks) == 15 and len(data.queries) == 3
    assert all(any(q.text in c.content for c in chunks) for q in data.queries)
