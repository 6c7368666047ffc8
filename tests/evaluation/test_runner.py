import json
from pathlib import Path

import pytest

from distill.data.datasets import load_squad_file
from distill.errors import DistillError
from distill.evaluation import runner as evaluation
from distill.evaluation.report import load_questions, relative_quality
from distill.pipelines import loading as pipelines
from distill.teacher import indexing


@pytest.fixture(scope="module")
def systems(tiny_pipelines, tiny_embedder_wide, tmp_path_factory):
    """Teacher = the wide tiny embedder with the tiny reader; student = the narrow one, swapped in by the library."""
    teacher_dir = tmp_path_factory.mktemp("teacher")
    for path in tiny_pipelines.glob("*.yaml"):
        data = pipelines.swap(pipelines.read_pipeline_dict(path), model=str(tiny_embedder_wide), index="wide")
        (teacher_dir / path.name).write_text(pipelines.dump_pipeline_dict(data))
    return {
        "teacher": evaluation.System.parse(f"teacher={teacher_dir / 'extractive_qa.yaml'}"),
        "student": evaluation.System.parse(f"student={tiny_pipelines / 'extractive_qa.yaml'}"),
        "student-retrieval": evaluation.System.parse(f"student-retrieval={tiny_pipelines / 'retrieval.yaml'}"),
    }


@pytest.fixture(scope="module")
def report(systems, tiny_squad, tmp_path_factory):
    """The report of the three systems, and the store index of every corpus indexing the evaluation ran, in order."""
    out = tmp_path_factory.mktemp("eval")
    data = load_squad_file(tiny_squad)
    indexed = []

    def recording(index_data, documents, **kwargs):
        store = index_data["components"]["writer"]["init_parameters"]["document_store"]
        indexed.append((store["init_parameters"]["index"], len(documents)))
        return indexing.index_corpus(index_data, documents, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluation, "index_corpus", recording)
        rep = evaluation.evaluate(
            [systems["teacher"], systems["student"], systems["student-retrieval"]],
            data,
            warmup=2,
            out_dir=out,
            progress=False,
        )
    return rep, out, data, indexed


def test_report_has_quality_latency_and_models(report):
    rep, out, data, indexed = report
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(rep))
    assert set(rep["pipelines"]) == {"teacher", "student", "student-retrieval"}
    for name, p in rep["pipelines"].items():
        q = p["quality"]
        for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "answer_recall@10"):
            assert 0.0 <= q[key] <= 1.0, (name, key)
        # 6 documents and top_k=10: every gold passage is retrieved.
        assert q["recall@10"] == 1.0
        lat = p["latency"]
        assert lat["query"]["n"] == len(data.queries) and lat["query"]["p95_ms"] >= lat["query"]["p50_ms"] > 0
        assert {"text_embedder", "retriever"} <= set(lat["components"])
        assert p["models"]["text_embedder"]["parameters"] > 0
    # what the project's pipelines always reported, plus the list each scored: its retriever's, read or not
    for p in rep["pipelines"].values():
        assert set(p) == {
            "query_yaml",
            "indexing_yaml",
            "quality",
            "latency",
            "models",
            "index_seconds",
            "agreement",
            "scored",
        }
    assert rep["pipelines"]["student"]["scored"] == {"component": "retriever", "role": "retriever", "into": "reader"}
    assert rep["pipelines"]["student-retrieval"]["scored"] == {
        "component": "retriever",
        "role": "retriever",
        "into": None,
    }
    assert (
        "f1" in rep["pipelines"]["student"]["quality"]
        and "reader" in rep["pipelines"]["student"]["latency"]["components"]
    )
    assert "f1" not in rep["pipelines"]["student-retrieval"]["quality"]
    assert rep["machine"]["cpu_count"] >= 1 and "haystack-ai" in rep["versions"]
    # Teacher and student index into different stores, each once; the two student systems share one. (Not timed: the
    # rounded seconds of six tiny passages, or of embeddings the teacher cache serves, may well read 0.0.)
    assert indexed == [("wide", len(data.documents)), ("tiny-teacher", len(data.documents))]
    seconds = {name: p["index_seconds"] for name, p in rep["pipelines"].items()}
    assert seconds["teacher"] >= 0 and seconds["student"] >= 0 and seconds["student-retrieval"] == 0


def test_per_question_rows_agree_with_the_aggregates(report):
    rep, out, data, _ = report
    rows = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [q.id for q in data.queries]
    for name in rep["pipelines"]:
        ranks = [r["runs"][name]["rank"] for r in rows]
        mrr = sum(1 / r for r in ranks if r and r <= 10) / len(rows)
        assert rep["pipelines"][name]["quality"]["mrr@10"] == pytest.approx(mrr)
        r1 = sum(1 for r in ranks if r == 1) / len(rows)
        assert rep["pipelines"][name]["quality"]["recall@1"] == pytest.approx(r1)
    f1 = sum(r["runs"]["student"]["f1"] for r in rows) / len(rows) * 100
    assert rep["pipelines"]["student"]["quality"]["f1"] == pytest.approx(f1)


def test_cached_indexing_writes_what_the_pipeline_writes(tiny_pipelines, tiny_squad, tmp_path, monkeypatch):
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    monkeypatch.setenv("DISTILL_HOME", str(tmp_path))
    docs = load_squad_file(tiny_squad).documents
    data = pipelines.read_pipeline_dict(tiny_pipelines / "indexing.yaml")
    data["components"]["writer"]["init_parameters"]["document_store"]["init_parameters"]["index"] = "cached"
    indexing.index_corpus(data, docs, progress=False)
    reference = pipelines.load_pipeline(pipelines.read_pipeline_dict(tiny_pipelines / "indexing.yaml"))
    out = reference.run(
        {"document_embedder": {"documents": indexing.copy_documents(docs)}},
        include_outputs_from={"document_embedder"},
    )
    expected = {d.id: d.embedding for d in out["document_embedder"]["documents"]}
    stored = {d.id: d.embedding for d in InMemoryDocumentStore(index="cached").filter_documents()}
    assert stored.keys() == expected.keys()
    for doc_id, emb in expected.items():
        assert stored[doc_id] == pytest.approx(emb, abs=1e-6)
    assert len([p for p in (tmp_path / "teacher-cache").glob("document-embeddings-*") if p.is_dir()]) == 1


def test_indexing_another_corpus_into_the_same_in_memory_index_replaces_the_first(
    tiny_pipelines, tiny_squad, tmp_path, monkeypatch
):
    from haystack import Document
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    monkeypatch.setenv("DISTILL_HOME", str(tmp_path))
    data = pipelines.read_pipeline_dict(tiny_pipelines / "indexing.yaml")
    data["components"]["writer"]["init_parameters"]["document_store"]["init_parameters"]["index"] = "reused"
    indexing.index_corpus(data, load_squad_file(tiny_squad).documents, progress=False)
    indexing.index_corpus(data, [Document(id="other", content="Mozart was born in Salzburg.")], progress=False)
    assert [d.id for d in InMemoryDocumentStore(index="reused").filter_documents()] == ["other"]


def test_fast_retriever_pipeline_retrieves_what_haystacks_retrieves(tiny_pipelines, tiny_squad, tmp_path):
    fast_dir = tmp_path / "fast"
    pipelines.swap_files(
        [tiny_pipelines / "indexing.yaml", tiny_pipelines / "retrieval.yaml"], fast_dir, model=None, fast_retriever=True
    )
    data = load_squad_file(tiny_squad)
    systems = [
        evaluation.System.parse(f"haystack={tiny_pipelines / 'retrieval.yaml'}"),
        evaluation.System.parse(f"fast={fast_dir / 'retrieval.yaml'}"),
    ]
    rows = [[], []]
    for i, loaded in enumerate(evaluation.load_systems(systems, data.documents, progress=False)):
        for q in data.queries:
            documents, _ = evaluation.run_query(loaded, q.text)
            rows[i].append([(d.id, round(d.score, 5)) for d in documents])
    assert rows[0] == rows[1] and len(rows[0][0]) == 6


def test_timing_tracer_records_component_spans():
    from haystack import Pipeline, component

    @component
    class Sleep:
        @component.output_types(value=int)
        def run(self, value: int) -> dict:
            import time

            time.sleep(0.02)
            return {"value": value}

    p = Pipeline()
    p.add_component("sleep", Sleep())
    with evaluation.timing_tracer() as tracer:
        p.run({"sleep": {"value": 1}})
        timings = tracer.pop()
    assert timings["sleep"] >= 20
    assert tracer.pop() == {}


def test_bad_inputs(systems, tiny_squad, tmp_path, tiny_pipelines):
    data = load_squad_file(tiny_squad)
    with pytest.raises(DistillError, match="does not exist"):
        evaluation.System.parse(f"x={tmp_path / 'none.yaml'}")
    with pytest.raises(DistillError, match="unique"):
        evaluation.evaluate([systems["student"], systems["student"]], data, progress=False)
    with pytest.raises(DistillError, match="corpus is empty"):
        evaluation.load_systems([systems["student"]], [])
    # Same index name, different indexing models: the second would search the first's embeddings.
    clash = tmp_path / "clash"
    clash.mkdir()
    for path in tiny_pipelines.glob("*.yaml"):
        data_dict = pipelines.read_pipeline_dict(path)
        if "document_embedder" in data_dict["components"]:
            data_dict["components"]["document_embedder"]["init_parameters"]["batch_size"] = 3
        (clash / path.name).write_text(pipelines.dump_pipeline_dict(data_dict))
    with pytest.raises(DistillError, match="own index"):
        evaluation.load_systems(
            [systems["student-retrieval"], evaluation.System.parse(f"clash={clash / 'retrieval.yaml'}")], data.documents
        )
    # A query pipeline without an indexing pipeline, whose store nothing fills, would retrieve nothing for every
    # question (and score 0) without a word.
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    qa = pipelines.read_pipeline_dict(tiny_pipelines / "extractive_qa.yaml")
    qa["components"]["retriever"]["init_parameters"]["document_store"]["init_parameters"]["index"] = "never-filled"
    (lonely / "extractive_qa.yaml").write_text(pipelines.dump_pipeline_dict(qa))
    with pytest.raises(DistillError, match="'lonely': the document store of its retriever 'retriever' is empty"):
        evaluation.load_systems([evaluation.System.parse(f"lonely={lonely / 'extractive_qa.yaml'}")], data.documents)


@pytest.mark.slow
def test_real_minilm_through_the_yaml_retrieval_pipeline(tmp_path):
    """The real MiniLM-L6 on a slice of SQuAD dev: recall far above chance."""
    from distill.data.datasets import load_squad

    folder = tmp_path / "pipes"
    pipelines.swap_files(
        [pipelines.Path("pipelines/indexing.yaml"), pipelines.Path("pipelines/retrieval.yaml")],
        folder,
        model="minilm-l6",
    )
    data = load_squad("dev").subset(articles=4, seed=0).subset(questions=60, seed=0)
    rep = evaluation.evaluate(
        [evaluation.System.parse(f"minilm={folder / 'retrieval.yaml'}")], data, warmup=2, progress=False
    )
    quality = rep["pipelines"]["minilm"]["quality"]
    chance = 10 / len(data.documents)
    assert len(data.documents) > 100 and chance < 0.1
    assert quality["recall@10"] > 0.7 and quality["mrr@10"] > 0.4


def test_relative_quality_against_the_first_pipeline(report):
    rep, out, _, _ = report
    rows = load_questions(out)
    relative = rep["relative"]
    assert set(relative) == {"student", "student-retrieval"}
    student = relative["student"]
    assert student["reference"] == "teacher" and {"ndcg@10", "f1"} <= set(student)
    teacher, other = rep["pipelines"]["teacher"]["quality"], rep["pipelines"]["student"]["quality"]
    assert student["ndcg@10"]["ratio"] == pytest.approx(other["ndcg@10"] / teacher["ndcg@10"])
    assert student["ndcg@10"]["questions"] == len(rows)
    assert "f1" not in relative["student-retrieval"]  # a retrieval pipeline has no answers to compare
    assert relative_quality(rep, rows) == json.loads(json.dumps(relative))


@pytest.mark.parametrize(
    ("edit", "message"),
    [  # found by tests/test_fuzz.py: each was a traceback from a warm-up or a run
        (
            lambda d: d["components"]["text_embedder"]["init_parameters"].update(backend=None),
            r"component 'text_embedder' \(SentenceTransformersTextEmbedder\) cannot load with its init_parameters: "
            "Unsupported backend 'None'",
        ),
        (
            lambda d: d["components"]["reader"]["init_parameters"].update(top_k=""),
            r"component 'reader' failed on a question: .* \(check its init_parameters\)",
        ),
        (
            lambda d: d.update(connections=[c for c in d["connections"] if "query_embedding" not in c["receiver"]]),
            "component 'retriever' needs input 'query_embedding', which no connection feeds",
        ),
    ],
)
def test_settings_haystack_checks_only_when_running_are_one_line(tmp_path, tiny_pipelines, tiny_squad, edit, message):
    data = pipelines.read_pipeline_dict(tiny_pipelines / "extractive_qa.yaml")
    edit(data)
    (tmp_path / "extractive_qa.yaml").write_text(pipelines.dump_pipeline_dict(data))
    (tmp_path / "indexing.yaml").write_bytes((tiny_pipelines / "indexing.yaml").read_bytes())
    system = evaluation.System.parse(f"bad={tmp_path / 'extractive_qa.yaml'}")
    with pytest.raises(DistillError, match=message) as refused:
        evaluation.evaluate([system], load_squad_file(tiny_squad), warmup=0, progress=False)
    assert "\n" not in str(refused.value)


def test_the_summary_is_computed_from_the_timed_run_alone(tiny_squad):
    # No pipeline runs: summarise reads only the rows and latencies that run_interleaved measured.
    data = load_squad_file(tiny_squad)
    reader = evaluation.LoadedSystem(
        evaluation.System("r", Path("qa.yaml"), None), None, [], retriever=None, reader="reader"
    )
    rows = [{"em": float(i == 0), "f1": 0.5 if i == 0 else 0.0} for i in range(len(data.queries))]
    run = evaluation.TimedRun(
        per_question=[{"id": q.id, "runs": {"r": row}} for q, row in zip(data.queries, rows)],
        query_ms={"r": [2.0] * len(rows)},
        component_ms={"r": {"reader": [1.5] * len(rows)}},
    )
    report = evaluation.summarise([reader], data, run, command="c", config=None, context="gold", warmup=0)
    summary = report["pipelines"]["r"]
    assert summary["quality"] == {"exact_match": 100 / len(rows), "f1": 50 / len(rows)}
    assert summary["latency"]["query"]["n"] == len(rows) and summary["latency"]["query"]["p50_ms"] == 2.0
    assert set(summary["latency"]["components"]) == {"reader"} and summary["indexing_yaml"] is None
    assert report["command"] == "c" and report["config"] == {} and report["context"] == "gold"


def test_chunks_of_one_judged_document_count_once_at_its_best_rank():
    """BEIR-style judgements name whole documents; a chunking pipeline retrieves chunks. Each chunk counts as its
    document (and inherits its grade), each document once, at its best-ranked chunk."""
    import math

    from haystack import Document

    from distill.data.datasets import Query

    sources = {"a1": "A", "a2": "A", "b1": "B", "c1": "C"}
    ranked = [("a1", 0.9), ("b1", 0.8), ("a2", 0.7), ("c1", 0.6)]
    documents = [Document(id=i, content=i, score=s) for i, s in ranked]
    query = Query("q", "where?", ("A", "C"), grades=(2.0, 1.0))
    row = evaluation.score_question(query, documents, [], sources)
    assert row["retrieved"] == ["A", "B", "C"] and row["scores"] == [0.9, 0.8, 0.6] and row["rank"] == 1
    assert row["chunks"] == ["a1", "b1", "a2", "c1"]
    scored = evaluation.retrieval_metrics([query], [row["retrieved"]])
    # C at rank 3, not 4: A's second chunk takes no place of its own
    assert scored["ndcg@10"] == pytest.approx((2 + 1 / math.log2(4)) / (2 + 1 / math.log2(3)))
    assert scored["recall@1"] == scored["mrr@10"] == 1.0
    # a pipeline that does not split: the ids as retrieved, as before
    plain = evaluation.score_question(query, documents, [])
    assert plain["retrieved"] == ["a1", "b1", "a2", "c1"] and plain["rank"] is None and "chunks" not in plain
