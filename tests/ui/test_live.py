import json

import pytest
from haystack.core.errors import PipelineRuntimeError
from ui_workspace import shared_workspace

from distill.errors import DistillError
from distill.evaluation.report import load_report
from distill.pipelines.loading import dump_pipeline_dict, read_pipeline_dict, swap
from distill.ui.live import (
    MAX_QUESTION_CHARS,
    Answer,
    LiveEngine,
    Passage,
    SystemResult,
    check_question,
    compare,
    dataset_from_config,
    short_error,
    systems_from_report,
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_squad, tiny_embedder_wide, tiny_embedder, tiny_reader):
    return shared_workspace(tmp_path_factory, tiny_squad, tiny_embedder_wide, tiny_embedder, tiny_reader)


@pytest.fixture(scope="module")
def qa_engine(workspace):
    return LiveEngine.from_report(load_report(workspace.qa_report), base_dir=workspace.root, warmup=1)


def test_check_question_refuses_empty_and_cuts_long():
    for empty in ("", "   \n\t", None):
        with pytest.raises(DistillError, match="the question is empty"):
            check_question(empty)
    assert check_question("  Where  does the Nile\nflow? ") == ("Where does the Nile flow?", None)
    long = "word " * 1000
    question, notice = check_question(long)
    assert len(question) <= MAX_QUESTION_CHARS
    assert question.endswith("word")  # cut at a word boundary
    assert notice == f"The question had 4,999 characters; only the first {len(question):,} were used."
    assert check_question("ナイル川はどこへ流れますか？") == ("ナイル川はどこへ流れますか？", None)


def result(name, ids, answer=None, reader=True):
    passages = [Passage(rank=i + 1, doc_id=d, content=d, score=1.0 - i / 10) for i, d in enumerate(ids)]
    answers = [Answer(answer, 0.9, ids[0], "ctx", None, None)] if answer else []
    return SystemResult(name=name, passages=passages, answers=answers, has_reader=reader)


def test_compare_top_passage_overlap_and_normalised_answers():
    agreement = compare(result("t", ["a", "b", "c"], "The Nile"), result("s", ["a", "c", "d"], "nile"))
    assert agreement.same_top_passage and agreement.same_answer and agreement.agree
    assert (agreement.shared_passages, agreement.compared_passages) == (2, 3)
    assert agreement.describe() == "same answer; same top passage; 2 of 3 retrieved passages in common"
    other = compare(result("t", ["a"], "Nile"), result("s", ["b"], "Amazon"))
    assert not other.agree and other.same_answer is False
    retrieval = compare(result("t", ["a", "b"], reader=False), result("s", ["b", "a"], reader=False))
    assert retrieval.same_answer is None and not retrieval.agree
    assert retrieval.describe() == "different top passages; 2 of 2 retrieved passages in common"


def test_short_error_names_the_component_and_root_cause():
    try:
        try:
            raise RuntimeError("tensor sizes differ\nsecond line")
        except RuntimeError as cause:
            raise PipelineRuntimeError.from_exception("reader", int, cause) from cause
    except PipelineRuntimeError as e:
        assert short_error(e) == "component 'reader' failed: RuntimeError: tensor sizes differ"
    assert short_error(DistillError("plain message")) == "plain message"
    assert short_error(ValueError()) == "ValueError"


def test_random_question_runs_through_both_pipelines_with_gold_and_highlights(qa_engine):
    assert qa_engine.names == ["teacher-qa", "distilled-qa"]
    query = qa_engine.random_question(seed=3)
    assert query == qa_engine.random_question(seed=3)
    live = qa_engine.ask(query.text, gold=query)
    assert live.gold == query and live.notice is None
    assert live.gold_passage == qa_engine.data.document(query.gold_doc_ids[0]).content
    assert [r.name for r in live.results] == ["teacher-qa", "distilled-qa"]
    for r in live.results:
        assert r.error is None and r.has_reader
        assert len(r.passages) == len(qa_engine.data.documents)  # top_k 10 > 6 passages
        assert [p.rank for p in r.passages] == list(range(1, len(r.passages) + 1))
        assert all(p.score is not None for p in r.passages)
        assert [p.gold for p in r.passages].count(True) == 1
        assert r.gold_rank == next(p.rank for p in r.passages if p.gold)
        assert r.f1 is not None and r.exact_match is not None
        top = r.top_answer
        assert top is not None and top.located
        assert top.context[top.start : top.end] == top.text
        assert r.latency_ms > 0
        assert set(r.component_ms) == {"text_embedder", "retriever", "reader"}
        assert sum(r.component_ms.values()) <= r.latency_ms
    assert len(live.agreements) == 1 and live.agreements[0].other == "distilled-qa"


def test_typed_question_finds_its_gold_labels(qa_engine):
    live = qa_engine.ask("  where was MOZART born? ")
    assert live.gold is not None and live.gold.answers == ("Salzburg",)


def test_non_latin_and_very_long_questions_still_answer(qa_engine):
    live = qa_engine.ask("ナイル川はどこへ流れますか？")
    assert live.gold is None and live.notice is None
    assert all(r.error is None and r.passages and r.top_answer for r in live.results)
    long = qa_engine.ask("Where does the Nile flow? " * 200)
    assert long.notice and "only the first" in long.notice
    assert len(long.question) <= MAX_QUESTION_CHARS
    assert all(r.error is None and r.passages for r in long.results)
    with pytest.raises(DistillError, match="empty"):
        qa_engine.ask("  ")


def test_named_systems_and_unknown_names(qa_engine):
    live = qa_engine.ask("Why is Mars red?", names=["distilled-qa"])
    assert [r.name for r in live.results] == ["distilled-qa"] and live.agreements == []
    with pytest.raises(DistillError, match="no pipeline named 'nope'"):
        qa_engine.ask("Why is Mars red?", names=["nope"])


def test_retrieval_only_pipelines_have_no_answers(workspace):
    engine = LiveEngine.from_report(load_report(workspace.retrieval_report), base_dir=workspace.root, warmup=0)
    live = engine.ask("Who invented the piano?", names=["teacher", "minilm"])
    assert all(not r.has_reader and r.answers == [] and r.passages for r in live.results)
    assert live.agreements[0].same_answer is None
    assert set(live.results[0].component_ms) == {"text_embedder", "retriever"}


def test_partner_of_the_same_kind_distilled_first(workspace):
    retrieval = load_report(workspace.retrieval_report)["pipelines"]
    qa = load_report(workspace.qa_report)
    pipelines = {"teacher-qa": qa["pipelines"]["teacher-qa"], "minilm": retrieval["minilm"]}
    pipelines.update(distilled=retrieval["distilled"], **{"distilled-qa": qa["pipelines"]["distilled-qa"]})
    engine = LiveEngine.from_report({**qa, "pipelines": pipelines}, base_dir=workspace.root, warmup=0)
    assert engine.partner("teacher-qa") == "distilled-qa"  # a reader beside a reader, though listed last
    assert engine.partner("teacher-qa", ["distilled"]) == "distilled-qa"
    assert engine.partner("minilm") == "distilled"
    assert engine.partner("distilled") == "minilm"  # nothing preferred: the report's order
    assert engine.partner("distilled", ["minilm"]) == "minilm"
    assert engine.partner("distilled-qa", ["distilled"]) == "teacher-qa"


def test_articles_override_indexes_a_smaller_corpus(workspace, tmp_path):
    # Own index names: the shared in-memory indexes of the other tests keep their full corpus.
    report = load_report(workspace.retrieval_report)
    for name, entry in list(report["pipelines"].items())[:2]:
        for key in ("query_yaml", "indexing_yaml"):
            data = swap(
                read_pipeline_dict(workspace.root / entry[key]), model=str(workspace.student), index=f"art-{name}"
            )
            target = tmp_path / name / f"{key}.yaml"
            target.parent.mkdir(exist_ok=True)
            target.write_text(dump_pipeline_dict(data), encoding="utf-8")
            entry[key] = str(target)
    report["pipelines"] = dict(list(report["pipelines"].items())[:2])
    engine = LiveEngine.from_report(report, base_dir=workspace.root, articles=1, warmup=0)
    assert len({d.meta["title"] for d in engine.data.documents}) == 1
    kept = {d.id for d in engine.data.documents}
    live = engine.ask("Where does the Nile flow?")
    assert {p.doc_id for p in live.results[0].passages} == kept


def test_relative_paths_are_read_from_the_base_dir(workspace, tmp_path):
    report = load_report(workspace.qa_report)
    systems = systems_from_report(report, workspace.root)
    assert systems[0].query_yaml == workspace.root / "pipelines/teacher/extractive_qa.yaml"
    with pytest.raises(DistillError, match="does not exist"):
        systems_from_report(report, tmp_path)
    data = dataset_from_config(report["config"], workspace.root)
    assert len(data.queries) == 8
    with pytest.raises(DistillError, match="is not found under"):
        dataset_from_config(report["config"], tmp_path)
    with pytest.raises(DistillError, match="names no data set"):
        dataset_from_config({}, workspace.root)


def test_missing_model_is_a_clear_error_and_leaves_the_loaded_engines_indexes(workspace, qa_engine, tmp_path):
    report = load_report(workspace.qa_report)
    entry = report["pipelines"]["distilled-qa"]
    query = read_pipeline_dict(workspace.root / entry["query_yaml"])
    query["components"]["text_embedder"]["init_parameters"]["model"] = str(tmp_path / "gone")
    (tmp_path / "query.yaml").write_text(dump_pipeline_dict(query), encoding="utf-8")
    entry["query_yaml"] = str(tmp_path / "query.yaml")
    entry["indexing_yaml"] = str(workspace.root / entry["indexing_yaml"])
    report["pipelines"] = {"distilled-qa": entry}
    (tmp_path / "report.json").write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(DistillError, match="unknown model"):
        LiveEngine.from_report(load_report(tmp_path / "report.json"), base_dir=workspace.root, warmup=0)
    # The refused engine shares its in-memory index with qa_engine's distilled-qa: it must not have emptied it.
    live = qa_engine.ask("Why is Mars red?", names=["distilled-qa"])
    assert len(live.results[0].passages) == len(qa_engine.data.documents)


def test_a_rag_pipeline_shows_the_generators_documents_and_the_prompt_it_would_get(
    tmp_path, tiny_squad, tiny_embedder_wide, tiny_embedder, monkeypatch
):
    from haystack.components.generators.chat import OpenAIChatGenerator
    from rag_examples import rag_report

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = rag_report(tmp_path, tiny_squad, tiny_embedder_wide, tiny_embedder)
    report = load_report(path)
    assert list(report["pipelines"]) == [
        "teacher",
        "student",
        "teacher [embedding_retriever]",
        "student [embedding_retriever]",
    ]

    def refuse(self, *args, **kwargs):
        raise AssertionError("the generator was built or run")

    monkeypatch.setattr(OpenAIChatGenerator, "__init__", refuse)
    monkeypatch.setattr(OpenAIChatGenerator, "run", refuse)
    assert [s.name for s in systems_from_report(report, tmp_path)] == ["teacher", "student"]  # one run each
    engine = LiveEngine.from_report(report, base_dir=tmp_path, warmup=0)
    live = engine.ask("Where was Mozart born?")
    for result in live.results:
        assert result.error is None and (result.scored, result.into) == ("joiner", "prompt_builder")
        assert 0 < len(result.passages) <= 5  # the joiner's top 5: what the prompt receives
        assert result.prompt.startswith("user: Answer the question from the documents below.")
        assert result.prompt.rstrip().endswith("Question: Where was Mozart born?\nAnswer:")
        assert all(p.content in result.prompt for p in result.passages)
        assert set(result.component_ms) == {"text_embedder", "embedding_retriever", "bm25_retriever", "joiner"}
