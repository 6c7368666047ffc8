"""Negative windows for readers: mined from a tiny retrieval pipeline, cached, chosen with every skip counted, trained
on with the no-answer target (tiny models built in the session; no real model)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import build_tokenizer
from haystack import Document
from test_reader import _recipe, tiny_teacher  # noqa: F401  (the module's fine-tuned tiny teacher reader)

from distill.data.datasets import Dataset, Query, load_squad_file
from distill.errors import DistillError
from distill.training.tasks.negatives import (
    FEWER,
    HOLDS_ANSWER,
    NONE_FOUND,
    RetrieverNegatives,
    choose_negatives,
    retrieval_half,
)
from distill.training.tasks.windows import ReaderExample, make_windows


def test_negatives_are_mined_from_the_retriever_and_cached(home, tiny_squad, tiny_pipelines):
    data = load_squad_file(tiny_squad)
    miner = RetrieverNegatives(tiny_pipelines / "retrieval.yaml")
    assert miner.top_k == 10
    ranked = miner.rankings(data, data.queries, progress=False)
    # 6 passages in the corpus, top_k 10: every passage, each once, for every question
    assert all(sorted(r) == list(range(len(data.documents))) for r in ranked)
    again = RetrieverNegatives(tiny_pipelines / "retrieval.yaml")
    again._load = lambda *a: pytest.fail("the rankings must come from the cache")
    assert again.rankings(data, data.queries, progress=False) == ranked
    # the extractive QA pipeline's retriever is the same retriever: same fingerprint, its reader is left out
    qa = RetrieverNegatives(tiny_pipelines / "extractive_qa.yaml")
    assert qa.fingerprint == miner.fingerprint
    assert "reader" not in qa.query_data["components"]
    assert qa.rankings(data, data.queries[:2], progress=False) == ranked[:2]


def test_a_retriever_yaml_without_its_indexing_pipeline_is_refused(tmp_path, tiny_pipelines):
    alone = tmp_path / "retrieval.yaml"
    alone.write_bytes((tiny_pipelines / "retrieval.yaml").read_bytes())
    with pytest.raises(DistillError, match="no indexing.yaml beside"):
        RetrieverNegatives(alone)
    with pytest.raises(DistillError, match="does not exist"):
        RetrieverNegatives(tmp_path / "missing.yaml")


def test_retrieval_half_drops_the_reader_and_its_connections(tiny_pipelines):
    from distill.pipelines.loading import read_pipeline_dict

    half = retrieval_half(read_pipeline_dict(tiny_pipelines / "extractive_qa.yaml"))
    assert set(half["components"]) == {"text_embedder", "retriever"}
    assert half["connections"] == [{"sender": "text_embedder.embedding", "receiver": "retriever.query_embedding"}]


def _corpus() -> Dataset:
    texts = [
        "Mozart was born in Salzburg.",  # 0: gold
        "Salzburg is a city in Austria.",  # 1: holds the answer string, not gold
        "The Nile flows north.",  # 2: a clean negative
        "The piano was invented in Italy.",  # 3: a clean negative
    ]
    documents = [Document(id=f"d{i}", content=t) for i, t in enumerate(texts)]
    query = Query("q", "Where was Mozart born?", ("d0",), ("Salzburg",), (19,))
    return Dataset("hand-made", documents, [query])


def test_choose_negatives_skips_gold_and_passages_that_hold_the_answer():
    data, counts = _corpus(), Counter()
    assert choose_negatives(data, data.queries[0], [0, 1, 2, 3], 2, counts) == [2, 3]
    assert counts == {HOLDS_ANSWER: 1}


def test_a_question_whose_retrieved_passages_all_hold_the_answer_gets_none_and_is_counted():
    data, counts = _corpus(), Counter()
    assert choose_negatives(data, data.queries[0], [1, 0], 2, counts) == []
    assert counts == {HOLDS_ANSWER: 1, NONE_FOUND: 1}


def test_a_retriever_that_returns_fewer_than_asked_is_counted():
    data, counts = _corpus(), Counter()
    assert choose_negatives(data, data.queries[0], [0, 2], 3, counts) == [2]
    assert counts == {FEWER: 1}


def test_the_hard_target_of_every_negative_window_is_position_0():
    context = "The Nile is the longest river in Africa. It flows north through Egypt into the Mediterranean Sea. " * 2
    negative = ReaderExample("q#negative0", "Where was Mozart born?", context, ("Salzburg",), no_answer=True)
    unlabelled = ReaderExample("u#negative0", "Where was Mozart born?", context, ("Salzburg",))
    windows = make_windows(build_tokenizer(), [negative, unlabelled], max_length=24, stride=4, max_query_length=8)
    mine = [w for w in range(len(windows)) if windows.example[w] == 0]
    assert len(mine) > 1  # a long passage: several windows, each with the no-answer target
    assert all(windows.start[w] == 0 and windows.end[w] == 0 for w in mine)
    assert all(windows.start[w] == -1 for w in range(len(windows)) if windows.example[w] == 1)


@pytest.mark.parametrize(
    "value, message",
    [
        (2, "must be null or"),
        ({"per_question": 2}, "must be null or"),
        ({"per_question": 0, "retriever": "r.yaml"}, "per_question must be a positive int"),
        ({"per_question": True, "retriever": "r.yaml"}, "per_question must be a positive int"),
        ({"per_question": 2, "retriever": 3}, "retriever must be a retrieval pipeline YAML"),
    ],
)
def test_recipe_negatives_are_checked(value, message):
    from distill.training.recipes import load_recipe

    with pytest.raises(DistillError, match=message):
        load_recipe(Path("recipes/reader-teacher-minilm.yaml"), [f"data.negatives={json.dumps(value)}"])


def _negatives(tiny_pipelines, n: int = 2) -> str:
    return f"data.negatives={{per_question: {n}, retriever: {tiny_pipelines / 'retrieval.yaml'}}}"


def test_finetuning_with_negatives_trains_them_on_the_no_answer_target(home, tiny_squad, tiny_reader, tiny_pipelines):
    from distill.training.recipes import load_recipe
    from distill.training.tasks.reader import ReaderTask

    overrides, _ = _recipe(home, tiny_squad, "finetune_reader", model=str(tiny_reader))
    recipe = load_recipe(Path("recipes/reader-teacher-minilm.yaml"), [*overrides, _negatives(tiny_pipelines)])
    task = ReaderTask(recipe, progress=False)
    task.warm_up()
    questions = len(load_squad_file(tiny_squad).queries)
    assert task.negatives.as_dict() == {
        "per_question": 2,
        "retriever": str(tiny_pipelines / "retrieval.yaml"),
        "questions": questions,
        "negatives": 2 * questions,  # six passages, two of them gold at most: always two clean ones
        HOLDS_ANSWER: 0,
        NONE_FOUND: 0,
        FEWER: 0,
    }
    negatives = task.negative_rows
    assert negatives and set(negatives) <= set(task.labelled_rows)
    assert all(task.windows.start[w] == 0 and task.windows.end[w] == 0 for w in negatives)
    for w in negatives:  # never the question's gold paragraph
        example = task.examples[task.windows.example[w]]
        gold = next(e for e in task.examples if e.id == example.id.split("#")[0])
        assert example.context != gold.context
    batch = task.collate(negatives[:4])
    assert batch["start_positions"].tolist() == [0] * len(batch["start_positions"])
    module = task.model()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    losses = []
    for _ in range(8):
        loss = module(batch)["start_end_ce"]
        assert torch.isfinite(loss)
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < losses[0] * 0.7  # the no-answer target is learnt


def test_distillation_with_negatives_takes_the_teacher_distributions_on_them(
    home,
    tiny_squad,
    tiny_teacher,  # noqa: F811
    tiny_pipelines,
):
    from distill.training.recipes import load_recipe
    from distill.training.tasks.reader import ReaderTask
    from distill.training.train import train

    overrides, _ = _recipe(
        home,
        tiny_squad,
        "reader",
        teacher=str(tiny_teacher),
        pipelines="null",
        student="{from_teacher: {layers: [1]}}",
        **{"data.questions": 4, "data.unlabelled": str(tiny_squad), "data.unlabelled_questions": 3},
    )
    overrides.append(_negatives(tiny_pipelines, 1))
    recipe = load_recipe(Path("recipes/reader-distill-minilm-2l.yaml"), overrides)
    recipe["data"]["unlabelled"] = recipe["data"]["train"]
    task = ReaderTask(recipe, progress=False)
    task.warm_up()
    assert task.negatives.negatives == 4 + 3  # labelled and unlabelled questions alike
    labelled_negatives = [w for w in task.negative_rows if w in task.labelled_rows]
    unlabelled_negatives = [w for w in task.negative_rows if w in task.unlabelled_rows]
    assert len(labelled_negatives) == 4 and len(unlabelled_negatives) == 3
    batch = task.collate(labelled_negatives)
    teacher = batch["teacher"]["start_logits"]
    assert torch.isfinite(teacher[:, 0]).all()  # the teacher's no-answer logit is part of the soft target
    loss = task.model()(batch)["start_end_kl"]
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    loss = task.model()(task.collate(unlabelled_negatives))["start_end_kl"]
    assert torch.isfinite(loss)

    student = train(recipe)
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["negatives"]["negatives"] == 7 and metrics["train_windows"]["negative"] == 7
    card = (student / "README.md").read_text()
    assert "- negatives: 7 passages for 7 questions (up to 1 each)" in card
    assert "0 retrieved passages held a gold answer string outside the gold paragraph" in card


def test_a_swapped_reader_serves_with_the_no_answer_answer(tmp_path, tiny_pipelines, tiny_teacher):  # noqa: F811
    from distill.pipelines.loading import READER_SERVING, read_pipeline_dict, swap_files

    qa = tiny_pipelines / "extractive_qa.yaml"
    teacher = read_pipeline_dict(qa)["components"]["reader"]["init_parameters"]
    assert {k: teacher[k] for k in READER_SERVING} == READER_SERVING  # the default pipelines serve so too
    written = swap_files([qa], tmp_path, model=str(tiny_teacher))
    params = read_pipeline_dict(written[0])["components"]["reader"]["init_parameters"]
    assert params["no_answer"] is True and params["calibration_factor"] == 0.1


def test_the_card_of_a_reader_trained_with_negatives_says_so():
    from distill.training.model_card import reader_card
    from distill.training.recipes import load_recipe

    recipe = load_recipe(Path("recipes/reader-minilm-negatives.yaml"), [])
    metrics = json.loads(Path("benchmarks/results/students/reader-minilm-l6-3k-neg2/metrics.json").read_text())
    card = reader_card(recipe, metrics)
    assert "fine-tuned for extractive question answering on gold answers and on retrieved passages without the" in card
    assert "- negatives: 5975 passages for 3000 questions (up to 2 each)" in card
    assert "NoAnswerMarginExtractiveReader" in card  # how `distill swap` serves it
    del metrics["negatives"]
    assert "on gold answers." in reader_card(recipe, metrics)
