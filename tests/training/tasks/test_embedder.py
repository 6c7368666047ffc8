"""The embedder task's parts: training pairs and the dev slice, the query-only head, the passage memory and the
teacher's embeddings cache (tiny models built in the session)."""

import pytest

from distill.errors import DistillError


def test_query_only_head_stays_small_on_rank_deficient_queries():
    """The query-only collapse: student queries spanning fewer directions than their width made plain least squares
    put huge weights on directions with (almost) no variance, so one optimiser step turned the head into noise."""
    import torch

    from distill.training.tasks.embedder import ridge_projection

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

    from distill.data.datasets import load_squad_file
    from distill.training.tasks.embedder import training_pairs

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
    from distill.data.datasets import load_squad_file
    from distill.training.tasks.embedder import dev_slice, training_pairs

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


def test_passage_memory_is_first_in_first_out_and_leaves_out_the_batchs_passages():
    import numpy as np
    import torch

    from distill.training.tasks.embedder import PassageMemory

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


def test_corpus_columns_are_every_passage_but_the_batchs_own():
    import numpy as np

    from distill.training.tasks.embedder import CorpusColumns

    teacher = np.arange(5 * 2, dtype=np.float32).reshape(5, 2)
    corpus = CorpusColumns(teacher)
    student, teacher_rows = corpus.columns([3, 1, 3])  # a batch's positives and negatives, repeats and all
    assert teacher_rows.tolist() == [teacher[i].tolist() for i in (0, 2, 4)]
    assert student is teacher_rows  # the same fixed rows on both sides: what the student searches at serving time
    corpus.push([0], None)  # nothing to remember
    assert len(corpus) == 5 and corpus.columns([0, 1, 2, 3, 4]) is None


def test_teacher_embeddings_reuse_a_shorter_length_cache(tmp_path, tiny_embedder, tiny_embedder_wide):
    import numpy as np

    from distill.teacher.cache import TeacherCache
    from distill.training.tasks.embedder import TeacherEmbeddings, load_sentence_transformer

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


def test_hard_negatives_are_the_teachers_best_passage_that_is_not_the_positive():
    import numpy as np

    from distill.training.tasks.embedder import mine_hard_negatives

    passages = np.eye(3, dtype=np.float32)
    queries = np.array([[0.9, 0.4, 0.1], [0.2, 0.1, 0.8]], dtype=np.float32)
    assert mine_hard_negatives(queries, passages, [0, 2]) == [1, 0]
    assert mine_hard_negatives(queries, passages, [1, 0]) == [0, 2]  # the positive is never its own negative


def test_constructing_an_embedder_task_loads_nothing_and_warm_up_does_the_work_once(
    home, tiny_embedder, tiny_embedder_wide, tiny_squad, monkeypatch
):
    from collections import Counter

    from conftest import write_recipe

    from distill.training import recipes
    from distill.training.tasks import embedder

    calls: Counter = Counter()
    original = embedder.TeacherEmbeddings.encode

    def encode(self, *args, **kwargs):
        calls["teacher pass"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(embedder.TeacherEmbeddings, "encode", encode)
    recipe = recipes.load_recipe(write_recipe(home, tiny_embedder_wide, tiny_embedder, tiny_squad))
    task = embedder.EmbedderTask(recipe)
    assert calls == Counter() and task.best_metric == "ndcg@10"
    with pytest.raises(RuntimeError, match=r"warm_up\(\) must run before training"):
        task.model()
    task.warm_up()
    assert calls["teacher pass"] == 4  # training questions and passages, dev questions and passages
    module = task.model()
    task.warm_up()
    assert calls["teacher pass"] == 4 and task.model() is module
    silver = recipe | {"data": recipe["data"] | {"labels": "teacher"}}
    assert embedder.EmbedderTask(silver).best_metric == "silver_ndcg@10"  # known before warm_up, like the rest
