"""Training without labels: queries read or cut from the corpus, the teacher's ranking as the labels, the teacher as
a user's own pipeline components, and a whole `distill train` run on a BEIR folder with no qrels used."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import renamed_pipelines, write_beir
from haystack import Document

from distill.errors import DistillError
from distill.pipelines.loading import dump_pipeline_dict, read_pipeline_dict
from distill.training import recipes
from distill.training.tasks import silver
from distill.training.tasks.queries import pseudo_queries, read_queries


def test_read_queries_counts_blank_lines_and_duplicates_and_reads_beir_split_ids_only(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("where is the nile\n\n  \nwhere is the nile\nwho wrote music\n")
    found = read_queries(str(path))
    assert found.texts == ["where is the nile", "who wrote music"] and found.blank == 2 and found.duplicates == 1
    beir = write_beir(tmp_path / "beir")
    split = read_queries(f"{beir}:train")
    assert len(split.texts) == 4 and split.texts[0] == "Which sea does the Nile flow into?"
    assert len(read_queries(str(beir / "queries.jsonl")).texts) == 8
    with pytest.raises(DistillError, match="needs a split"):
        read_queries(str(beir))
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DistillError, match="UTF-8"):
        read_queries(str(tmp_path / "bad.txt"))
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(DistillError, match="no queries"):
        read_queries(str(tmp_path / "blank.txt"))


def test_pseudo_queries_are_titles_or_sentences_of_the_passages_and_seeded():
    docs = [
        Document(
            id="a", content="The Nile is long. It flows north into the Mediterranean Sea.", meta={"title": "Nile"}
        ),
        Document(id="b", content="Mozart wrote more than six hundred works of music.", meta={"title": ""}),
        Document(id="c", content="Short.", meta={}),
    ]
    titles = pseudo_queries(docs, None, "title", seed=0)
    assert ("Nile", "title") in titles and ("Mozart wrote more than six hundred works of music.", "sentence") in titles
    assert len(titles) == 2  # "Short." has neither a title nor a sentence of 4+ words
    sentences = pseudo_queries(docs, None, "sentence", seed=0)
    assert all(kind == "sentence" and any(text in d.content for d in docs) for text, kind in sentences)
    assert pseudo_queries(docs, 1, "mixed", seed=3) == pseudo_queries(docs, 1, "mixed", seed=3)
    assert len(pseudo_queries(docs, 1, "mixed", seed=3)) == 1
    with pytest.raises(DistillError, match="pseudo_kind"):
        pseudo_queries(docs, None, "words", seed=0)


def test_question_pseudo_queries_prefer_a_sentence_that_asks_and_otherwise_keep_the_sentence_draw():
    """``question``: a passage that asks something gives one of its questions; one that asks nothing gives the very
    sentence ``sentence`` gives it, so the teacher's cached rows for those are reused."""
    docs = [
        Document(id=f"s{i}", content=f"Index funds charge low fees, number {i}. Bonds pay a coupon of {i} percent.")
        for i in range(8)
    ]
    docs += [
        Document(id="q1", content="Should I pay off my mortgage early? It depends on the rate you pay on it."),
        Document(id="q2", content="Taxes are due in April each year. Why would anyone file late then? Fees apply."),
    ]
    asked = dict(zip([d.id for d in docs], [None] * len(docs), strict=True))
    plain = pseudo_queries(docs, None, "sentence", seed=0)
    questions = pseudo_queries(docs, None, "question", seed=0)
    assert len(plain) == len(questions) == len(docs)
    for (text, kind), (same, same_kind) in zip(questions, plain, strict=True):
        owner = next(d.id for d in docs if text in d.content)
        asked[owner] = (text, kind)
        if owner.startswith("s"):
            assert (text, kind) == (same, same_kind)
    assert asked["q1"] == ("Should I pay off my mortgage early?", "question")
    assert asked["q2"] == ("Why would anyone file late then?", "question")
    assert pseudo_queries(docs, None, "question", seed=0) == questions
    with pytest.raises(DistillError, match="question"):
        pseudo_queries(docs, None, "questions", seed=0)


def test_a_title_shared_by_several_passages_gives_each_a_sentence_instead():
    """The chunks of one document (SQuAD: an article's paragraphs) share its title, which names none of them: every
    passage still gets a pseudo-query (found when SQuAD dev gave 1,051 for 2,067 paragraphs, 48 of them titles)."""
    text = "Paragraph {} of the article tells one thing. It adds fact number {}."
    docs = [Document(id=f"p{i}", content=text.format(i, i), meta={"title": "Article"}) for i in range(6)]
    docs.append(Document(id="own", content="A passage with a title of its own here.", meta={"title": "Own title"}))
    for kind in ("title", "mixed"):
        queries = pseudo_queries(docs, None, kind, seed=0)
        assert len(queries) == len(docs)
        assert ("Article", "title") not in queries
        assert len({text for text, _ in queries}) == len(queries)
    assert ("Own title", "title") in pseudo_queries(docs, None, "title", seed=0)


def test_more_pseudo_queries_than_passages_take_further_sentences_and_keep_the_first_round():
    """A count beyond one per passage cuts another sentence from each passage that has one left, until none has."""
    docs = [
        Document(id="a", content="The Nile is a long river. It flows north into the sea. Its delta is very fertile."),
        Document(id="b", content="Mozart wrote many works of music. He was born in Salzburg in 1756."),
        Document(id="c", content="Only one sentence of four words."),
    ]
    one_round = pseudo_queries(docs, None, "sentence", seed=0)
    more = pseudo_queries(docs, 5, "sentence", seed=0)
    assert len(one_round) == 3 and more[:3] == one_round  # the first round whatever the count
    assert len(more) == 5 and len({text for text, _ in more}) == 5
    assert all(any(text in d.content for d in docs) for text, _ in more)
    every = pseudo_queries(docs, 100, "sentence", seed=0)  # stops when no passage has a sentence left: 3 + 2 + 1
    assert len(every) == 6 and every[:5] == more


def test_corpus_check_skips_and_counts_empty_and_duplicate_passages():
    docs = [Document(id="a", content="x y"), Document(id="b", content=" "), Document(id="c", content="x y")]
    checked = silver.check_corpus(docs, [d.content for d in docs])
    assert [d.id for d in checked.documents] == ["a"] and checked.empty == 1 and checked.duplicates == 1
    with pytest.raises(DistillError, match="corpus is empty"):
        silver.check_corpus([], [])
    with pytest.raises(DistillError, match="every passage"):
        silver.check_corpus([Document(id="b", content="")], [""])


def test_a_corpus_of_haystack_documents_keeps_its_ids_and_counts_the_empty_ones(tmp_path):
    docs = [Document(id="n1", content="The Nile flows north.", meta={"title": "Rivers"}), Document(id="e", content="")]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in docs), encoding="utf-8")
    data_cfg = {"train": str(path), "passages": None, "seed": 0}
    checked = silver.corpus_documents(data_cfg, lambda documents: [d.content for d in documents])
    assert [d.id for d in checked.documents] == ["n1"] and checked.documents[0].meta["title"] == "Rivers"
    assert checked.summary()["skipped_empty"] == 1


def test_top_k_and_agreement_metrics_by_hand():
    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    idx, val = silver.top_k(q, p, 7, chunk=2)
    assert (idx == np.argsort(-(q @ p.T), axis=1)[:, :7]).all()
    assert np.allclose(val, np.take_along_axis(q @ p.T, idx, axis=1))
    ref = list(range(10))
    assert silver.silver_ndcg(ref, ref) == pytest.approx(1.0)
    assert silver.overlap([0, 1, 99], ref) == pytest.approx(0.2)
    # only the reference's rank-2 document (gain 9), found at rank 1: 9 / IDCG
    ideal = sum((10 - r) / math.log2(r + 2) for r in range(10))
    assert silver.silver_ndcg([1, 50, 51], ref) == pytest.approx(9 / ideal)


def test_the_teachers_ranking_labels_training_queries_and_the_dev_pool_holds_its_top_10():
    rng = np.random.default_rng(1)
    t_q, t_p = rng.normal(size=(40, 6)).astype(np.float32), rng.normal(size=(30, 6)).astype(np.float32)
    queries = [(f"q{i}", "user" if i < 25 else "title") for i in range(40)]
    data = silver.label_with_teacher(
        queries, [f"p{i}" for i in range(30)], t_q, t_p, candidates=5, hard_negatives=True, dev_questions=5, seed=0
    )
    order = np.argsort(-(t_q @ t_p.T), axis=1)
    train = [int(q[1:]) for q in data.queries]
    assert len(train) == 35 and len(data.dev.queries) == 5
    assert all(int(d[1:]) < 25 for d in data.dev.queries)  # held out from the user's own queries
    assert data.positive == [int(order[i, 0]) for i in train]
    assert all(n in order[i, 1:5] for n, i in zip(data.negative, train))
    assert np.allclose(data.t_query, t_q[train])
    dev_ids = [int(d[1:]) for d in data.dev.queries]
    teacher = data.dev.score(t_q[dev_ids], t_p[data.dev.pool])
    assert teacher == {"silver_ndcg@10": pytest.approx(1.0), "overlap@10": pytest.approx(1.0)}
    assert data.summary["training_queries"] == {"user": 20, "title": 15, "sentence": 0, "question": 0, "variant": 0}
    # several negatives per query: distinct passages of the teacher's ranks 2..candidates, in its order, same split
    more = silver.label_with_teacher(
        queries,
        [f"p{i}" for i in range(30)],
        t_q,
        t_p,
        candidates=5,
        hard_negatives=True,
        dev_questions=5,
        seed=0,
        negatives_per_query=3,
    )
    assert more.queries == data.queries and more.positive == data.positive
    for negatives, i in zip(more.negative, train):
        ranks = [list(order[i]).index(n) for n in negatives]
        assert len(set(negatives)) == 3 and ranks == sorted(ranks) and all(1 <= r < 5 for r in ranks)


def test_student_negatives_are_where_the_untrained_student_disagrees_with_the_teacher():
    rng = np.random.default_rng(2)
    t_q, t_p = rng.normal(size=(40, 6)).astype(np.float32), rng.normal(size=(60, 6)).astype(np.float32)
    s_q, s_p = rng.normal(size=(40, 6)).astype(np.float32), rng.normal(size=(60, 6)).astype(np.float32)
    queries = [(f"q{i}", "user") for i in range(40)]
    texts = [f"p{i}" for i in range(60)]
    common = dict(candidates=12, hard_negatives=True, dev_questions=5, seed=0)
    plain = silver.label_with_teacher(queries, texts, t_q, t_p, **common)
    mined = silver.label_with_teacher(
        queries, texts, t_q, t_p, **common, negatives_from="student", s_query=s_q, s_passage=s_p
    )
    teacher_order = np.argsort(-(t_q @ t_p.T), axis=1)
    student_order = np.argsort(-(s_q @ s_p.T), axis=1)
    train = [int(q[1:]) for q in mined.queries]
    # the split, the positives and the dev slice are the teacher's, as without student negatives
    assert mined.queries == plain.queries and mined.positive == plain.positive and mined.dev.pool == plain.dev.pool
    for n, i in zip(mined.negative, train):  # in the student's top 12, not in the teacher's top 10
        assert n in student_order[i, :12] and n not in teacher_order[i, :10]
    assert mined.summary["negatives"] == {
        "from": "student",
        "student": len(train),
        "teacher": 0,
        "queries_without_disagreement": 0,
    }
    both = silver.label_with_teacher(
        queries,
        texts,
        t_q,
        t_p,
        **common,
        negatives_per_query=4,
        negatives_from="both",
        s_query=s_q,
        s_passage=s_p,
    )
    for negatives, i in zip(both.negative, train):  # two of the teacher's ranks 2..12 first, then two of the student's
        assert len(set(negatives)) == 4
        assert all(n in teacher_order[i, 1:12] for n in negatives[:2])
        assert all(n in student_order[i, :12] and n not in teacher_order[i, :10] for n in negatives[2:])
    # a student that agrees with the teacher everywhere leaves no disagreement: the teacher's ranks stand in, counted
    agree = silver.label_with_teacher(
        queries, texts, t_q, t_p, **common, negatives_from="student", s_query=t_q, s_passage=t_p
    )
    assert agree.summary["negatives"]["queries_without_disagreement"] == 0  # top 12 reaches past the teacher's 10
    same = silver.label_with_teacher(
        queries,
        texts,
        t_q,
        t_p,
        **(common | {"candidates": 10}),
        negatives_from="student",
        s_query=t_q,
        s_passage=t_p,
    )
    assert same.summary["negatives"] == {
        "from": "student",
        "student": 0,
        "teacher": len(train),
        "queries_without_disagreement": len(train),
    }
    assert all(n in teacher_order[i, 1:10] for n, i in zip(same.negative, train))
    with pytest.raises(DistillError, match="needs the student's embeddings"):
        silver.label_with_teacher(queries, texts, t_q, t_p, **common, negatives_from="student")


def test_the_teacher_is_the_users_own_components_run_as_haystack_runs_them(home, tiny_pipelines):
    from distill.teacher.embedders import PipelineTeacher, build_component
    from distill.teacher.indexing import index_corpus

    index_yaml, query_yaml = renamed_pipelines(tiny_pipelines, home / "mine")
    teacher = PipelineTeacher.from_files(index_yaml, query_yaml)
    assert (teacher.document_embedder, teacher.text_embedder) == ("encode_docs", "encode_q")
    docs = [Document(id="a", content="The Nile flows north.", meta={"title": "Rivers"})]
    assert teacher.passage_texts(docs) == ["Rivers\nThe Nile flows north."]
    assert teacher.query_texts(["where"]) == ["query: where"]
    text = build_component(read_pipeline_dict(query_yaml), "encode_q")
    assert np.allclose(
        teacher.queries(["where does the nile flow"])[0], text.run("where does the nile flow")["embedding"], atol=1e-5
    )
    rows = teacher.passages(docs)
    written = build_component(read_pipeline_dict(index_yaml), "encode_docs").run(documents=docs)["documents"]
    assert np.allclose(rows[0], written[0].embedding, atol=1e-5)
    # evaluation indexes through the same cache rows: a warm cache is read, not recomputed
    cache = list((home / "home" / "teacher-cache").glob("document-embeddings-*/shard-*.keys.npy"))
    index_corpus(read_pipeline_dict(index_yaml), docs, progress=False)
    assert sorted((home / "home" / "teacher-cache").glob("document-embeddings-*/shard-*.keys.npy")) == sorted(cache)


def test_where_the_pipeline_splits_the_passages_and_pseudo_queries_are_its_chunks(home, tiny_pipelines):
    """A splitter of 5 words a chunk before the user's embedder: training passages, their ids, the teacher's labels
    and the pseudo-queries are all chunks (a sentence of the raw documents would be longer than 5 words)."""
    from conftest import chunked_pipeline
    from transformers import AutoTokenizer

    from distill.teacher.embedders import PipelineTeacher

    index_yaml, query_yaml = renamed_pipelines(tiny_pipelines, home / "mine")
    split = chunked_pipeline(index_yaml, home / "split.yaml", split_length=5, split_overlap=0)
    own = PipelineTeacher.from_files(split, query_yaml)
    recipe = recipes.apply_overrides(recipes.EMBEDDER_DEFAULTS, [])
    recipe["data"].update(train=str(write_beir(home / "beir")), pseudo_queries=None, pseudo_kind="sentence")
    recipe["data"].update(candidates=3, dev_questions=2, questions=None)
    teacher = silver.Teacher(
        own.passages,
        own.queries,
        own.passage_texts,
        own.query_texts,
        lambda: AutoTokenizer.from_pretrained(own.model_path),
        own.max_length(),
        chunker=own.chunker,
    )
    data = silver.build_silver(recipe, teacher)
    chunks = own.chunker(silver.corpus_documents(recipe["data"], own.passage_texts).documents).documents
    assert len(chunks) == 21 and data.passage_ids == [c.id for c in chunks]
    assert data.passages == own.passage_texts(chunks) and data.t_passage.shape == (21, 32)
    assert data.summary["corpus"]["chunking"]["documents"] == 6 and data.summary["corpus"]["passages"] == 21
    queries = [q.removeprefix("query: ") for q in data.queries + data.dev.queries]  # the query prefix of the YAML
    assert len(queries) == 15 and all(len(q.split()) <= 5 and any(q in c.content for c in chunks) for q in queries)


def test_a_pipeline_teacher_refuses_what_it_cannot_distil(home, tiny_pipelines):
    from distill.teacher.embedders import PipelineTeacher

    index_yaml, query_yaml = renamed_pipelines(tiny_pipelines, home / "mine")
    other = read_pipeline_dict(query_yaml)
    other["components"]["encode_q"]["init_parameters"]["model"] = "some/other-model"
    (home / "other.yaml").write_text(dump_pipeline_dict(other))
    with pytest.raises(DistillError, match="one teacher must embed both"):
        PipelineTeacher.from_files(index_yaml, home / "other.yaml")
    with pytest.raises(DistillError, match="has no document embedder"):
        PipelineTeacher.from_files(query_yaml, query_yaml)
    odd = read_pipeline_dict(index_yaml)
    odd["components"]["encode_docs"]["type"] = "haystack.components.embedders.OpenAIDocumentEmbedder"
    (home / "odd.yaml").write_text(dump_pipeline_dict(odd))
    with pytest.raises(DistillError, match="is a OpenAIDocumentEmbedder; the project distils sentence-transformers"):
        PipelineTeacher.from_files(home / "odd.yaml", query_yaml)


def test_negatives_some_mined_by_the_student_train_through_the_listwise_loss(home, tiny_pipelines, tiny_embedder):
    from distill.training.tasks.embedder import EmbedderTask

    index_yaml, query_yaml = renamed_pipelines(tiny_pipelines, home / "mine")
    recipe = recipes.apply_overrides(recipes.EMBEDDER_DEFAULTS, [])
    recipe.update(
        teacher="pipelines",
        student=str(tiny_embedder),
        pipelines={"indexing": str(index_yaml), "query": str(query_yaml)},
        batch_size=4,
        output=str(home / "out"),
        max_length={"query": 16, "passage": 32},
        losses=[{"name": "listwise_kl", "weight": 1.0, "temperature": 0.1}],
    )
    recipe["data"].update(
        train=str(write_beir(home / "beir")),
        labels="teacher",
        pseudo_queries=None,
        candidates=4,
        hard_negatives=True,
        negatives_per_query=2,
        negatives_from="both",  # one of the teacher's ranks, one where the untrained student disagrees
        dev_questions=2,
        questions=None,
    )
    task = EmbedderTask(recipes.validate(recipe))
    task.warm_up()
    mined = task.silver.summary["negatives"]
    assert mined["from"] == "both" and mined["student"] + mined["teacher"] == 2 * len(task.pairs.queries)
    batch = task.batches(0)[0]
    collated = task.collate(batch)
    assert collated["negative"]["input_ids"].shape[0] == 2 * len(batch) == collated["teacher"]["negative"].shape[0]
    flat = [n for i in batch for n in task.pairs.negative[i]]
    assert torch.equal(collated["teacher"]["negative"], torch.from_numpy(task.t_passage[flat]))
    terms = task.model()(collated)  # every query's row holds the in-batch positives and all 8 negatives
    assert set(terms) == {"listwise_kl"} and torch.isfinite(terms["listwise_kl"]) and terms["listwise_kl"] > 0


def test_distill_train_without_labels_on_a_users_pipelines_and_corpus(home, tiny_pipelines, tiny_embedder):
    from distill.training.train import train

    index_yaml, query_yaml = renamed_pipelines(tiny_pipelines, home / "mine")
    beir = write_beir(home / "beir")
    queries = home / "queries.txt"
    queries.write_text("where does the nile flow\n\nwho invented the piano\nwhy is mars red\nwhen was mozart born\n")
    recipe = recipes.apply_overrides(
        recipes.EMBEDDER_DEFAULTS,
        [],
    )
    recipe.update(
        teacher="pipelines",
        student=str(tiny_embedder),
        pipelines={"indexing": str(index_yaml), "query": str(query_yaml)},
        batch_size=4,
        epochs=2,
        eval_every=2,
        save_every=2,
        log_every=1,
        output=str(home / "out"),
        max_length={"query": 16, "passage": 32},
        losses=[{"name": "listwise_kl", "weight": 1.0, "temperature": 0.1}, {"name": "margin_mse", "weight": 1.0}],
    )
    recipe["data"].update(
        train=str(beir),
        labels="teacher",
        queries=str(queries),
        pseudo_queries=None,
        pseudo_kind="title",
        candidates=3,
        hard_negatives=True,
        dev_questions=2,
        questions=None,
    )
    student = train(recipes.validate(recipe), swap=True)
    metrics = json.loads((student / "metrics.json").read_text())
    info = metrics["training_data"]
    assert info["corpus"]["passages"] == 6 and info["corpus"]["skipped_empty"] == 1
    assert info["corpus"]["skipped_duplicates"] == 1 and set(info["corpus"]["cut"]) == {"teacher", "student"}
    assert info["query_file"]["blank"] == 1 and info["dev_queries"] == 1  # at most a fifth held out
    # 4 user queries and a sentence of each of the 6 passages (each title is shared by 2 paragraphs: it names
    # neither), 1 held out
    assert sum(info["training_queries"].values()) == 4 + 6 - 1 and info["training_queries"]["title"] == 0
    assert metrics["teacher_dev"]["silver_ndcg@10"] == pytest.approx(1.0)
    assert 0 <= metrics["dev"]["silver_ndcg@10"] <= 1
    card = (student / "README.md").read_text()
    assert "no relevance labels" in card and "pseudo-queries from titles" in card
    swapped = home / "out" / "pipelines"
    assert sorted(p.name for p in swapped.glob("*.yaml")) == ["index_docs.yaml", "search.yaml"]
    query = read_pipeline_dict((swapped / "search.yaml").read_text())
    assert query["components"]["encode_q"]["init_parameters"]["prefix"] == "query: "
    assert "student" in query["components"]["encode_q"]["init_parameters"]["model"]


def test_recipe_checks_of_training_without_labels():
    base = {"data": {"labels": "teacher"}}
    with pytest.raises(DistillError, match="needs training queries"):
        recipes.validate(recipes._merge(recipes.EMBEDDER_DEFAULTS, base, "recipe"))
    with pytest.raises(DistillError, match="set data.labels: teacher"):
        recipes.validate(recipes._merge(recipes.EMBEDDER_DEFAULTS, {"data": {"pseudo_queries": 10}}, "recipe"))
    with pytest.raises(DistillError, match="teacher: pipelines needs"):
        recipes.validate(
            recipes._merge(
                recipes.EMBEDDER_DEFAULTS,
                {"teacher": "pipelines", "data": {"labels": "teacher", "pseudo_queries": 5}},
                "recipe",
            )
        )
    with pytest.raises(DistillError, match="labels must be gold or teacher"):
        recipes.validate(recipes._merge(recipes.EMBEDDER_DEFAULTS, {"data": {"labels": "silver"}}, "recipe"))
    several = {"labels": "teacher", "queries": "q.txt", "hard_negatives": True, "negatives_per_query": 3}
    assert recipes.validate(recipes._merge(recipes.EMBEDDER_DEFAULTS, {"data": several}, "recipe"))
    for wrong, match in (
        ({"hard_negatives": False}, "set data.labels: teacher and data.hard_negatives: true"),
        ({"candidates": 3}, r"must be at most data.candidates - 1 \(2\)"),
        ({"negatives_per_query": 0}, "negatives_per_query must be a positive int"),
        ({"negatives_from": "reader"}, "negatives_from must be teacher, student or both"),
        ({"negatives_from": "student", "negatives_per_query": 1, "labels": "gold"}, "student mines negatives"),
        ({"negatives_from": "both", "negatives_per_query": 1}, "set data.negatives_per_query to 2 or more"),
    ):
        with pytest.raises(DistillError, match=match):
            recipes.validate(recipes._merge(recipes.EMBEDDER_DEFAULTS, {"data": several | wrong}, "recipe"))
    with pytest.raises(DistillError, match="margin_mse compares each query with one negative"):
        recipe = {"data": several, "losses": [{"name": "margin_mse"}]}
        recipes.validate(recipes._merge(recipes.EMBEDDER_DEFAULTS, recipe, "recipe"))
