"""The Streamlit app without a browser (AppTest): every page, good and bad inputs. No page may show a traceback."""

import json
import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from ui_workspace import shared_workspace, write_student_folder

from distill.pipelines.loading import dump_pipeline_dict, read_pipeline_dict

APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")
TIMEOUT = 120  # the first Ask loads, indexes and warms two pipelines


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_squad, tiny_embedder_wide, tiny_embedder, tiny_reader):
    return shared_workspace(tmp_path_factory, tiny_squad, tiny_embedder_wide, tiny_embedder, tiny_reader)


@pytest.fixture()
def env(workspace, monkeypatch):
    monkeypatch.chdir(workspace.root)
    for key, value in workspace.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DISTILL_LIVE_ARTICLES", raising=False)
    return monkeypatch


def run(page: str = "Ask") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if page != "Ask":
        at.query_params["page"] = page
    return at.run()


def text(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def assert_no_traceback(at: AppTest) -> None:
    assert not at.exception, text(at.exception)
    assert "Traceback" not in text(at.markdown) + text(at.error)


def latency_metrics(at: AppTest) -> list:
    return [m for m in at.metric if m.label == "Latency"]


# -------------------------------------------------------------------------------------------------------- Ask


def test_ask_random_question_side_by_side(env):
    at = run()
    assert_no_traceback(at)
    assert "Ask a question" in text(at.info)
    assert at.selectbox(key="teacher").value == "teacher-qa"
    assert at.selectbox(key="student").value == "distilled-qa"
    at.button(key="draw").click().run()
    assert_no_traceback(at)
    assert not at.error
    question = at.text_input(key="question").value
    assert question and question == at.session_state["asked"]
    markdown = text(at.markdown)
    assert "From the evaluation set" in markdown and "gold answer" in markdown
    assert markdown.count('class="dt-answer"') == 2
    assert markdown.count('<mark class="dt-hl">') >= 2
    assert "✓ gold passage" in markdown
    latencies = latency_metrics(at)
    assert len(latencies) == 2 and all(m.value.endswith(" ms") for m in latencies)
    assert "agree" in text(at.success) + text(at.warning)
    assert len(at.get("plotly_chart")) == 1


def test_ask_typed_non_latin_question(env):
    at = run()
    at.text_input(key="question").input("ナイル川はどこへ流れますか？").run()
    assert_no_traceback(at)
    assert not at.error
    assert len(latency_metrics(at)) == 2
    assert "From the evaluation set" not in text(at.markdown)


def test_ask_empty_question_is_a_message(env):
    at = run()
    at.button(key="ask").click().run()
    assert_no_traceback(at)
    assert "the question is empty" in text(at.error)
    assert not latency_metrics(at)


def test_ask_very_long_question_is_cut_with_a_notice(env):
    at = run()
    at.text_input(key="question").input("Where does the Nile flow? " * 200).run()
    assert_no_traceback(at)
    assert "only the first" in text(at.warning)
    assert len(latency_metrics(at)) == 2


def test_ask_retrieval_pipelines_without_reader(env):
    env.setenv("DISTILL_LIVE_REPORT", "reports/retrieval/report.json")
    at = run()
    assert at.selectbox(key="teacher").value == "teacher"
    assert at.selectbox(key="student").value == "distilled"  # a distilled student first
    at.text_input(key="question").input("Who invented the piano?").run()
    assert_no_traceback(at)
    assert len(latency_metrics(at)) == 2
    assert 'class="dt-answer"' not in text(at.markdown)
    assert "Retrieved passages" in text(at.markdown)


def demo_like_report(workspace, folder: Path) -> Path:
    """The retrieval report as `make demo` writes it: the distilled student's path relative to the repository root
    (where `distill eval` ran), the off-the-shelf student listed before it."""
    report = json.loads(workspace.retrieval_report.read_text(encoding="utf-8"))
    for info in report["pipelines"]["distilled"]["models"].values():
        info["path"] = info["model"] = str(workspace.student.relative_to(workspace.root))
    assert list(report["pipelines"]) == ["teacher", "minilm", "distilled"]
    path = folder / "demo-eval" / "report.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


@pytest.mark.parametrize("students", ["students/*", "nowhere/*"])
def test_ask_opens_on_the_newest_report_with_its_distilled_student(env, workspace, tmp_path, students):
    # The newest run, not a benchmark report; its distilled student (a trained folder even where DISTILL_STUDENTS
    # does not list it), not the off-the-shelf one listed first.
    report = demo_like_report(workspace, tmp_path)
    env.delenv("DISTILL_LIVE_REPORT")
    env.setenv("DISTILL_REPORTS", f"benchmarks/results/*.json:{report}")
    env.setenv("DISTILL_STUDENTS", students)
    at = run()
    assert_no_traceback(at)
    assert not at.error
    assert "Live pipelines from **" + str(report.parent) in text(at.caption)
    assert at.selectbox(key="teacher").value == "teacher"
    assert at.selectbox(key="student").value == "distilled"
    assert at.selectbox(key="student").format_func("distilled") == "distilled · distilled student"


def test_ask_without_own_runs_opens_on_the_newest_benchmark(env):
    env.delenv("DISTILL_LIVE_REPORT")
    env.setenv("DISTILL_REPORTS", "benchmarks/results/*.json")
    at = run()
    assert_no_traceback(at)
    assert "Live pipelines from **benchmarks/results/tiny-qa.json**" in text(at.caption)
    assert at.selectbox(key="student").value == "distilled-qa"


@pytest.mark.parametrize(
    ("setting", "message"),
    [("reports/none/report.json", "does not exist"), ("reports/broken/report.json", "is not valid JSON")],
)
def test_ask_missing_or_malformed_live_report(env, setting, message):
    env.setenv("DISTILL_LIVE_REPORT", setting)
    at = run()
    assert_no_traceback(at)
    assert message in text(at.error)
    assert "DISTILL_LIVE_REPORT" in text(at.error)


def test_ask_missing_model_is_a_message_and_other_sessions_keep_working(env, workspace, tmp_path):
    report = json.loads(workspace.qa_report.read_text(encoding="utf-8"))
    entry = report["pipelines"]["distilled-qa"]
    query = read_pipeline_dict(workspace.root / entry["query_yaml"])
    query["components"]["text_embedder"]["init_parameters"]["model"] = str(tmp_path / "deleted-model")
    (tmp_path / "query.yaml").write_text(dump_pipeline_dict(query), encoding="utf-8")
    entry["query_yaml"] = str(tmp_path / "query.yaml")
    (tmp_path / "report.json").write_text(json.dumps(report), encoding="utf-8")
    env.setenv("DISTILL_LIVE_REPORT", str(tmp_path / "report.json"))
    broken = run()
    assert_no_traceback(broken)
    assert "unknown model" in text(broken.error) and "deleted-model" in text(broken.error)
    env.setenv("DISTILL_LIVE_REPORT", "reports/qa/report.json")
    healthy = run()
    healthy.text_input(key="question").input("Why is Mars red?").run()
    assert_no_traceback(healthy)
    assert len(latency_metrics(healthy)) == 2


def test_bad_live_articles_setting(env):
    env.setenv("DISTILL_LIVE_ARTICLES", "all")
    at = run()
    assert_no_traceback(at)
    assert "DISTILL_LIVE_ARTICLES must be a positive whole number" in text(at.error)


def test_no_reports_anywhere(env):
    env.setenv("DISTILL_REPORTS", "nothing/*.json")
    env.delenv("DISTILL_LIVE_REPORT")
    at = run()
    assert_no_traceback(at)
    assert "No evaluation report" in text(at.info)
    at = run("Compare")
    assert_no_traceback(at)
    assert "No evaluation report found in `nothing/*.json`" in text(at.info)


# -------------------------------------------------------------------------------------------------------- Compare


def test_compare_page(env):
    at = run("Compare")
    assert_no_traceback(at)
    assert "reports/broken" in text(at.error) and "is not valid JSON" in text(at.error)
    assert len(at.error) == 1  # the good reports draw as usual; the probe outputs are no errors
    assert at.multiselect(key="reports").options == ["reports/qa", "reports/retrieval"]  # the newest first
    assert at.multiselect(key="reports").value == ["reports/qa"]
    assert at.selectbox(key="metric").value == "ndcg@10"
    labels = {m.label for m in at.metric}
    assert {"Recall@10", "F1", "p50 latency", "p95 latency", "Speed-up (p50)", "Parameters"} <= labels
    assert "Overlap@10 · agreement with teacher-qa" in labels  # beside relevance where there are labels
    assert len(at.get("plotly_chart")) == 3  # scatter, latency distributions, component bars (2 pipelines: no frontier)

    at.multiselect(key="reports").select("reports/retrieval").run()
    at.selectbox(key="detail").select("reports/retrieval").run()
    assert_no_traceback(at)
    assert at.segmented_control(key="student:reports/retrieval").options == [
        "minilm · off-the-shelf student",
        "distilled · distilled student",
    ]
    at.segmented_control(key="student:reports/retrieval").set_value("distilled").run()
    assert "distilled / teacher: nDCG@10 " in text(at.caption) and "paired bootstrap over 8 questions" in text(
        at.caption
    )
    assert "distilled - teacher: nDCG@10 " in text(at.caption)  # the same pair as a difference in points
    scope = "reports/retrieval:teacher:distilled"
    assert at.selectbox(key=f"rule:{scope}").options == ["gold passage ranked first", "gold passage in the top 10"]
    at.pills(key=f"outcomes:{scope}").set_value(["reference only", "other only", "both right", "both wrong"]).run()
    assert_no_traceback(at)
    table = next(d.value for d in at.dataframe if "question" in d.value.columns)
    assert len(table) == 8
    assert {"question", "teacher rank", "distilled rank", "teacher right", "distilled right"} <= set(table.columns)
    assert any(e.label == "Recipe and model card of distilled (tiny-distilled)" for e in at.expander)


@pytest.fixture()
def adapt_run(env, workspace):
    """What `distill adapt ... --out runs/adapt/mine` leaves (the reports before and after training, OUT/student),
    with the app on its default settings."""
    run = workspace.root / "runs" / "adapt" / "mine"
    for name, stamp in (("before", 1_000), ("eval", 2_000)):
        (run / name).mkdir(parents=True)
        shutil.copy(workspace.retrieval_report, run / name / "report.json")
        shutil.copy(workspace.retrieval_report.with_name("questions.jsonl"), run / name / "questions.jsonl")
        os.utime(run / name / "report.json", (stamp, stamp))  # same `created` stamp: the file time orders them
    write_student_folder(run / "student")
    for key in ("DISTILL_REPORTS", "DISTILL_STUDENTS", "DISTILL_LIVE_REPORT"):
        env.delenv(key)
    yield run
    shutil.rmtree(workspace.root / "runs")


def test_default_settings_open_on_the_newest_run_wherever_out_put_it(adapt_run):
    at = run("Compare")
    assert_no_traceback(at)
    assert at.multiselect(key="reports").options == ["runs/adapt/mine/eval", "runs/adapt/mine/before"]
    assert at.multiselect(key="reports").value == ["runs/adapt/mine/eval"]
    at = run("Runs")
    assert_no_traceback(at)
    assert at.selectbox(key="run").value == "runs/adapt/mine"
    assert "A 32-d student distilled" in text(at.markdown)


def test_compare_sets_probe_outputs_apart_and_groups_benchmarks(env):
    env.setenv("DISTILL_REPORTS", "benchmarks/results/*.json:reports/qa/report.json:reports/retrieval/report.json")
    at = run("Compare")
    assert_no_traceback(at)
    assert not at.error
    assert at.multiselect(key="reports").value == ["reports/qa"]
    assert at.multiselect(key="reports:retrieval").options == ["benchmarks/results/tiny-retrieval.json"]
    assert at.multiselect(key="reports:reader").options == ["benchmarks/results/tiny-qa.json"]
    assert at.multiselect(key="reports:retrieval").value == [] and at.multiselect(key="reports:reader").value == []
    assert [e.label for e in at.expander if e.label.startswith("Committed")] == ["Committed benchmark reports (2)"]
    assert "Not evaluation reports" in text(at.caption)
    assert "`passage-length.json`, `trainer-speed.json`" in text(at.caption)
    at.multiselect(key="reports:retrieval").select("benchmarks/results/tiny-retrieval.json").run()
    assert_no_traceback(at)
    assert at.selectbox(key="detail").options == ["reports/qa", "benchmarks/results/tiny-retrieval.json"]


def test_compare_without_own_runs_opens_on_the_newest_benchmark(env):
    env.setenv("DISTILL_REPORTS", "benchmarks/results/*.json")
    at = run("Compare")
    assert_no_traceback(at)
    assert not at.error
    assert not [m for m in at.multiselect if m.key == "reports"]
    assert at.multiselect(key="reports:reader").value == ["benchmarks/results/tiny-qa.json"]
    assert at.multiselect(key="reports:retrieval").value == []
    assert any(e.label.startswith("Committed benchmark reports") for e in at.expander)
    assert "copied without its per-question rows" in text(at.caption)  # by design, not an error
    assert any(m.label == "p50 latency" for m in at.metric)


def test_compare_without_questions_file(env, workspace, tmp_path):
    solo = tmp_path / "solo" / "report.json"
    solo.parent.mkdir()
    shutil.copy(workspace.qa_report, solo)
    env.setenv("DISTILL_REPORTS", str(solo))
    at = run("Compare")
    assert_no_traceback(at)
    assert "questions.jsonl does not exist" in text(at.error)
    assert any(m.label == "p50 latency" for m in at.metric)  # the rest of the page still draws


def test_compare_missing_report_file(env):
    env.setenv("DISTILL_REPORTS", "reports/qa/report.json:reports/gone/report.json")
    at = run("Compare")
    assert_no_traceback(at)
    assert "reports/gone" in text(at.error) and "does not exist" in text(at.error)
    assert at.multiselect(key="reports").value == ["reports/qa"]


def test_compare_draws_a_reports_frontier_and_its_targets(env, workspace, tmp_path):
    speed = tmp_path / "speed"
    shutil.copytree(workspace.retrieval_report.parent, speed)
    report = json.loads((speed / "report.json").read_text())
    assert len(report["pipelines"]) == 3  # teacher, minilm, distilled: enough for a frontier
    report["targets"] = [
        {"pipeline": "distilled", "target": "nDCG@10 >= 98.5% of the teacher's", "met": False, "measured": "91.0%"},
        {"pipeline": None, "target": "pipeline p50 <= 1.3x encode", "met": None, "measured": "not measured"},
    ]
    (speed / "report.json").write_text(json.dumps(report))
    env.setenv("DISTILL_REPORTS", str(speed / "report.json"))
    at = run("Compare")
    assert_no_traceback(at)
    assert at.selectbox(key="detail").value == str(speed)
    frontier = [c for c in at.get("plotly_chart") if "frontier" in c.proto.id]
    assert len(frontier) == 1 and '"type":"log"' in frontier[0].proto.spec.replace(" ", "")
    shown = text(at.markdown)
    assert "Frontier of this report: nDCG@10 against p50 latency" in shown
    assert "missed · distilled: nDCG@10 >= 98.5% of the teacher's · measured 91.0%" in shown
    assert "not measured · pipeline p50 <= 1.3x encode" in shown


def test_compare_a_report_without_labels_shows_agreement(env, workspace, tmp_path):
    from distill.data.datasets import load_queries, load_squad_file, with_queries
    from distill.evaluation.runner import System, evaluate

    queries = tmp_path / "log.txt"
    queries.write_text("Where was Mozart born?\nwho painted it\nwhat is the capital\n", encoding="utf-8")
    data = with_queries(load_squad_file(workspace.root / "squad.json"), load_queries(queries))
    systems = [
        System.parse(f"{n}=pipelines/{f}/retrieval.yaml")
        for n, f in (("teacher", "teacher"), ("distilled", "distilled"))
    ]
    evaluate(systems, data, warmup=0, out_dir=tmp_path / "free", progress=False)
    env.setenv("DISTILL_REPORTS", str(tmp_path / "free" / "report.json"))
    at = run("Compare")
    assert_no_traceback(at)
    assert not at.error
    assert "no relevance labels" in text(at.info) and "agreement with teacher" in text(at.info)
    assert at.selectbox(key="metric").value == "silver_ndcg@10"
    assert "Silver nDCG@10 (agreement with the reference)" in at.selectbox(key="metric").options
    labels = {m.label for m in at.metric}
    assert "Silver nDCG@10 · agreement with teacher" in labels and "nDCG@10" not in labels
    table = next(d.value for d in at.dataframe if "question" in d.value.columns)
    assert len(table) == 3 and {"Overlap@10", "Silver nDCG@10", "Rank correlation@10"} <= set(table.columns)
    assert list(table["Silver nDCG@10"]) == sorted(table["Silver nDCG@10"])  # least agreement first
    assert "Question by question: agreement of distilled with teacher" in text(at.markdown)


# -------------------------------------------------------------------------------------------------------- Runs


def test_runs_page(env):
    at = run("Runs")
    assert_no_traceback(at)
    assert not at.warning and not at.error
    assert at.selectbox(key="run").value == "students/tiny-distilled"
    cards = {m.label: m for m in at.metric}
    assert {"recall@10", "mrr@10", "Training time", "Examples/s", "Best step"} <= set(cards)
    assert (cards["recall@10"].value, cards["recall@10"].delta) == ("0.900", "+0.050")  # gain over the undistilled
    assert list(at.dataframe[0].value.columns) == ["teacher", "before distillation", "distilled student"]
    assert len(at.get("plotly_chart")) == 2
    markdown = text(at.markdown)
    assert "Training loss" in markdown and "Dev metrics" in markdown
    assert "A 32-d student distilled" in markdown
    assert "listwise_kl" in text(at.code)


def test_runs_page_with_broken_student_files(env, tmp_path):
    folder = write_student_folder(tmp_path / "students" / "broken")
    (folder / "train_log.jsonl").write_text('{"step": 1, "loss": 1.0}\n{oops\n', encoding="utf-8")
    (folder / "metrics.json").unlink()
    env.setenv("DISTILL_STUDENTS", str(tmp_path / "students" / "*"))
    at = run("Runs")
    assert_no_traceback(at)
    warnings = text(at.warning)
    assert "line 2 is not valid JSON" in warnings and "has no metrics.json" in warnings
    assert len(at.get("plotly_chart")) == 2  # empty curves say why instead of failing


def test_runs_page_without_students(env):
    env.setenv("DISTILL_STUDENTS", "nowhere/*")
    at = run("Runs")
    assert_no_traceback(at)
    assert "No distilled student found in `nowhere/*`" in text(at.info)


def test_ask_a_rag_pipeline_shows_the_documents_and_prompt_the_generator_would_get(
    env, tmp_path, tiny_squad, tiny_embedder_wide, tiny_embedder
):
    from haystack.components.generators.chat import OpenAIChatGenerator
    from rag_examples import rag_report

    env.delenv("OPENAI_API_KEY", raising=False)

    def refuse(self, *args, **kwargs):
        raise AssertionError("the generator was built or run")

    env.setattr(OpenAIChatGenerator, "__init__", refuse)
    env.setattr(OpenAIChatGenerator, "run", refuse)
    env.setenv("DISTILL_LIVE_REPORT", str(rag_report(tmp_path, tiny_squad, tiny_embedder_wide, tiny_embedder)))
    at = run()
    assert [at.selectbox(key=k).value for k in ("teacher", "student")] == ["teacher", "student"]
    at.text_input(key="question").input("Who invented the piano?").run()
    assert_no_traceback(at)
    assert not at.error and "No prompt to show" not in text(at.warning)
    markdown = text(at.markdown)
    assert markdown.count("**Documents the generator receives** (from `joiner` into `prompt_builder`") == 2
    prompts = [c.value for c in at.code]
    assert len(prompts) == 2 and all("Question: Who invented the piano?" in p for p in prompts)
    assert all(p.startswith("user: Answer the question from the documents below.") for p in prompts)
