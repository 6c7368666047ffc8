import math

import pandas as pd
import pytest

from distill.ui import figures


def pipeline(quality: dict, p50: float, p95: float, params: int | None, path: str = "/models/x", components=None):
    models = {"text_embedder": {"model": path, "path": path}}
    if params is not None:
        models["text_embedder"].update(parameters=params, size_bytes=params * 4)
    return {
        "query_yaml": "q.yaml",
        "quality": quality,
        "latency": {
            "query": {"p50_ms": p50, "p95_ms": p95, "mean_ms": p50, "n": 3},
            "components": components or {"text_embedder": {"p50_ms": p50 * 0.8}, "retriever": {"p50_ms": p50 * 0.2}},
        },
        "models": models,
    }


@pytest.fixture()
def report() -> dict:
    return {
        "pipelines": {
            "teacher": pipeline({"recall@10": 0.95, "ndcg@10": 0.80}, 150.0, 200.0, 100_000_000, "/models/mpnet"),
            "minilm": pipeline({"recall@10": 0.93, "ndcg@10": 0.80}, 50.0, 120.0, 20_000_000, "/models/minilm"),
            "distilled": pipeline({"recall@10": 0.94, "ndcg@10": 0.79}, 60.0, 90.0, 20_000_000, "/runs/students/s1"),
        }
    }


def test_pareto_front_by_hand():
    latencies = [10, 20, 30, 10, float("nan"), 20]
    qualities = [0.5, 0.9, 0.8, 0.4, 1.0, 0.9]
    # (30, 0.8) is beaten by (20, 0.9); (10, 0.4) by (10, 0.5); NaN never counts; equal points both stay.
    assert figures.pareto_front(latencies, qualities) == [True, True, False, False, False, True]
    assert figures.pareto_front([], []) == []
    assert figures.pareto_front([5.0], [None]) == [False]


def test_roles_first_or_named_teacher_and_students_by_folder(report):
    roles = figures.pipeline_roles(report, ["/runs/students/s1"])
    assert roles == {"teacher": figures.TEACHER, "minilm": figures.OFF_THE_SHELF, "distilled": figures.DISTILLED}
    assert figures.pipeline_roles(report)["distilled"] == figures.OFF_THE_SHELF
    renamed = {"pipelines": {"a": report["pipelines"]["minilm"], "teacher-qa": report["pipelines"]["teacher"]}}
    assert figures.pipeline_roles(renamed)["teacher-qa"] == figures.TEACHER
    assert figures.reference_of(renamed) == "teacher-qa"


def test_metric_cards_deltas_and_colours(report):
    cards = {c.label: c for c in figures.metric_cards(report, "minilm")}
    assert cards["Recall@10"].value == "0.930"
    assert cards["Recall@10"].delta == "-0.020"
    assert cards["Recall@10"].delta_color == "normal"
    # Equal quality: a grey zero, not a green arrow.
    assert (cards["nDCG@10"].delta, cards["nDCG@10"].delta_color) == ("0.000", "off")
    assert (cards["p50 latency"].value, cards["p50 latency"].delta) == ("50.0 ms", "-100.0 ms")
    assert cards["p50 latency"].delta_color == "inverse"
    assert cards["p95 latency"].delta == "-80.0 ms"
    assert cards["Speed-up (p50)"].value == "3.00x"
    assert (cards["Parameters"].value, cards["Parameters"].delta) == ("20.0M", "-80%")
    reference = {c.label: c for c in figures.metric_cards(report, "teacher")}
    assert all(c.delta is None for c in reference.values())
    assert reference["Speed-up (p50)"].value == "1.00x"


def test_runs_frame_scatter_and_default_metric(report):
    qa = {"pipelines": {"teacher-qa": pipeline({"f1": 80.0, "exact_match": 70.0}, 400.0, 500.0, 130_000_000)}}
    frame = figures.runs_frame({"retrieval": report, "qa": qa}, ["/runs/students/s1"])
    assert list(frame["point"]) == [
        "teacher (retrieval)",
        "minilm (retrieval)",
        "distilled (retrieval)",
        "teacher-qa (qa)",
    ]
    assert frame.loc[1, "params_m"] == pytest.approx(20.0)
    assert math.isnan(frame.loc[3, "recall@10"])
    assert figures.metrics_present(frame) == ["recall@10", "ndcg@10", "exact_match", "f1"]
    assert figures.default_metric(frame) == "ndcg@10"

    fig = figures.quality_latency_scatter(frame, "recall@10")
    front = fig.data[0]
    assert front.name == "Pareto front"
    # minilm (50 ms, 0.93), distilled (60 ms, 0.94) and teacher (150 ms, 0.95) are all on the front, sorted by latency.
    assert list(front.x) == [50.0, 60.0, 150.0]
    by_role = {trace.name: trace for trace in fig.data[1:]}
    assert set(by_role) == {figures.TEACHER, figures.OFF_THE_SHELF, figures.DISTILLED}
    assert list(by_role[figures.TEACHER].text) == ["teacher"]  # the QA teacher has no recall@10: left out
    empty = figures.quality_latency_scatter(frame.drop(columns=["f1"]), "f1")
    assert empty.layout.annotations[0].text == "no run reports F1"


def test_comparison_frame_speed_up(report):
    frame = figures.comparison_frame(report)
    assert frame.loc["minilm", "speed-up"] == pytest.approx(3.0)
    assert frame.loc["teacher", "Recall@10"] == pytest.approx(0.95)
    assert frame.loc["distilled", "params (M)"] == pytest.approx(20.0)


def test_latency_distributions_from_question_rows():
    rows = [
        {"runs": {"a": {"latency_ms": 10.0}, "b": {"latency_ms": 3.0}}},
        {"runs": {"a": {"latency_ms": 12.0}, "b": {"latency_ms": 4.0}}},
        {"runs": {"a": {"latency_ms": 11.0}}},
    ]
    assert figures.latency_values(rows, "b") == [3.0, 4.0]
    fig = figures.latency_distributions(rows, ["a", "b", "missing"])
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].x) == [10.0, 12.0, 11.0]
    assert figures.latency_distributions([], ["a"]).layout.annotations


def test_component_bars_stack_components_per_pipeline(report):
    timings = figures.component_p50(report)
    assert timings["teacher"] == {"text_embedder": 120.0, "retriever": 30.0}
    fig = figures.component_latency_bars(
        {"teacher": {"text_embedder": 40.0, "retriever": 10.0}, "student": {"reader": 5.0}}
    )
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == ["text_embedder", "retriever", "reader"]
    assert list(bars[0].x) == [40.0, 0.0]
    assert list(bars[2].text) == ["", "5.0 ms"]
    totals = [t for t in fig.data if t.type == "scatter"][0]
    assert list(totals.x) == [50.0, 5.0]
    assert fig.layout.barmode == "stack"
    assert figures.component_latency_bars({"a": {}}).layout.annotations


def test_training_curves_from_train_log():
    log = [
        {"step": 10, "loss": 0.5, "loss/listwise_kl": 0.3, "loss/similarity_matrix": 0.2, "lr": 1e-4},
        {"step": 20, "loss": 0.4, "loss/listwise_kl": 0.25, "loss/similarity_matrix": 0.15, "lr": 1e-4},
        {"step": 20, "dev/recall@10": 0.9, "dev/mrr@10": 0.7, "dev/teacher_recall@10": 0.93},
    ]
    loss = figures.loss_curves(log)
    assert [t.name for t in loss.data] == ["total loss", "listwise_kl", "similarity_matrix"]
    assert list(loss.data[1].x) == [10, 20]
    assert list(loss.data[1].y) == [0.3, 0.25]
    dev = figures.dev_curves(log)
    assert [t.name for t in dev.data] == ["recall@10", "teacher recall@10", "mrr@10"]
    assert dev.data[1].line.dash == "dash"
    assert figures.loss_curves([]).layout.annotations
    assert figures.dev_curves(log[:2]).layout.annotations[0].text.startswith("no dev rows")
    # A run with a weight average logs the raw weights' scores too: dotted, in the averaged curve's colour.
    log.append({"step": 30, "dev/recall@10": 0.95, "dev_raw/recall@10": 0.94, "dev/teacher_recall@10": 0.93})
    dev = figures.dev_curves(log)
    assert [t.name for t in dev.data] == ["recall@10", "recall@10 (raw weights)", "teacher recall@10", "mrr@10"]
    assert list(dev.data[1].x) == [30] and list(dev.data[1].y) == [0.94]
    assert dev.data[1].line.dash == "dot" and dev.data[1].line.color == dev.data[0].line.color


def test_right_rules():
    assert figures.is_right({"rank": 1}, "top1") is True
    assert figures.is_right({"rank": 2}, "top1") is False
    assert figures.is_right({"rank": 10}, "top10") is True
    assert figures.is_right({"rank": None}, "top10") is False
    assert figures.is_right({"rank": 3, "em": 1.0, "f1": 1.0}, "answer") is True
    assert figures.is_right({"em": 0.0, "f1": 0.5}, "answer") is True
    assert figures.is_right({"em": 0.0, "f1": 0.49}, "answer") is False
    assert figures.is_right({"rank": 1}, "answer") is None  # a retriever has no answer to judge
    assert figures.is_right(None, "top1") is None
    with pytest.raises(ValueError, match="rule must be one of"):
        figures.is_right({"rank": 1}, "top3")


def test_question_outcomes_and_disagreement_filter():
    rows = [
        {"id": "q1", "question": "a?", "answers": ["x", "x"], "runs": {"t": {"rank": 1}, "s": {"rank": 3}}},
        {"id": "q2", "question": "b?", "answers": ["y"], "runs": {"t": {"rank": 4}, "s": {"rank": 1}}},
        {"id": "q3", "question": "c?", "answers": ["z"], "runs": {"t": {"rank": 1}, "s": {"rank": 1}}},
        {"id": "q4", "question": "d?", "answers": ["w"], "runs": {"t": {"rank": None}, "s": {"rank": 2}}},
    ]
    frame = figures.question_outcomes(rows, "t", "s", "top1")
    assert list(frame["outcome"]) == [figures.REFERENCE_ONLY, figures.OTHER_ONLY, figures.BOTH, figures.NEITHER]
    assert frame.loc[0, "gold answer"] == "x"
    assert pd.isna(frame.loc[3, "t rank"])
    disagreements = figures.filter_outcomes(frame, [figures.REFERENCE_ONLY, figures.OTHER_ONLY])
    assert list(disagreements["id"]) == ["q1", "q2"]
    assert figures.outcome_counts(frame) == {
        figures.REFERENCE_ONLY: 1,
        figures.OTHER_ONLY: 1,
        figures.BOTH: 1,
        figures.NEITHER: 1,
    }
    top10 = figures.question_outcomes(rows, "t", "s", "top10")
    assert list(top10["outcome"]) == [figures.BOTH, figures.BOTH, figures.BOTH, figures.OTHER_ONLY]
    assert figures.rules_for(rows, ["t", "s"]) == ["top1", "top10"]


def test_reader_outcomes_show_answers():
    rows = [
        {
            "id": "q1",
            "question": "a?",
            "answers": ["Salzburg"],
            "runs": {
                "t": {"rank": 1, "answer": "Salzburg", "em": 1.0, "f1": 1.0},
                "s": {"rank": 1, "answer": "Vienna", "em": 0.0, "f1": 0.0},
            },
        }
    ]
    assert figures.rules_for(rows, ["t", "s"]) == ["answer", "top1", "top10"]
    frame = figures.question_outcomes(rows, "t", "s", "answer")
    assert frame.loc[0, "s answer"] == "Vienna"
    assert frame.loc[0, "outcome"] == figures.REFERENCE_ONLY
    assert figures.filter_outcomes(figures.question_outcomes([], "t", "s", "top1"), [figures.BOTH]).empty


def test_student_metrics_side_by_side_and_cards():
    metrics = {
        "dev": {"recall@10": 0.9, "mrr@10": 0.7},
        "teacher_dev": {"recall@10": 0.93, "mrr@10": 0.75},
        "untrained_dev": {"recall@10": 0.85},
        "best_step": 100,
        "train": {"steps": 100, "seconds": 12.5, "examples_per_s": 40.0},
        "best_dev": {"recall@10": 0.91},
    }
    frame = figures.student_metrics_frame(metrics)
    assert list(frame.columns) == ["teacher", "before distillation", "distilled student", "best_dev"]
    assert frame.loc["recall@10", "teacher"] == 0.93
    assert pd.isna(frame.loc["mrr@10", "before distillation"])
    cards = {c.label: c for c in figures.student_cards(metrics)}
    assert (cards["recall@10"].value, cards["recall@10"].delta) == ("0.900", "+0.050")
    assert cards["recall@10"].help == "teacher 0.930 · before 0.850"
    assert cards["mrr@10"].delta is None and cards["mrr@10"].help == "teacher 0.750"
    assert (cards["Training time"].value, cards["Examples/s"].value, cards["Best step"].value) == (
        "12 s",
        "40.0",
        "100",
    )
    plain = figures.student_cards({"loss": 0.25, "eval": {"acc": 0.5}, "note": "x"})
    assert [(c.label, c.value) for c in plain] == [("loss", "0.25"), ("eval.acc", "0.5")]


def test_an_embedding_list_scored_beside_a_pipeline_takes_its_role(report):
    view = {"component": "embedding_retriever", "role": "retriever"}
    pipelines = dict(report["pipelines"])
    pipelines["teacher [embedding_retriever]"] = {**pipelines["minilm"], "scored": {**view, "of": "teacher"}}
    pipelines["distilled [embedding_retriever]"] = {**pipelines["distilled"], "scored": {**view, "of": "distilled"}}
    roles = figures.pipeline_roles({"pipelines": pipelines}, ["/runs/students/s1"])
    assert roles["teacher [embedding_retriever]"] == figures.TEACHER == roles["teacher"]
    assert roles["distilled [embedding_retriever]"] == figures.DISTILLED
    assert figures.reference_of({"pipelines": pipelines}, roles) == "teacher"
