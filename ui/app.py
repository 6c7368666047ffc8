"""Teacher and student side by side: ask live questions, compare evaluation reports, inspect distilled students.

Run from the repository root: ``streamlit run ui/app.py --server.address 127.0.0.1`` (``make ui``).

Settings (environment variables):
- ``DISTILL_REPORTS``: os.pathsep-separated globs of evaluation reports (default
  ``benchmarks/results/*.json:runs/**/report.json``: a run's report wherever ``--out`` put it under ``runs/``);
- ``DISTILL_STUDENTS``: globs of distilled student folders, listed newest first (default
  ``runs/students/*:runs/**/student``: ``distill train`` and ``distill adapt`` save ``OUT/student``);
- ``DISTILL_LIVE_REPORT``: the report whose pipelines answer live questions (default: the newest report with at
  least two pipelines, the user's own runs before the committed benchmarks);
- ``DISTILL_LIVE_ARTICLES``: index only this many articles of the live report's data set (default: all of them).

This file only calls the library (distill.ui.catalog, distill.ui.live, distill.ui.figures) and draws.

Why one module over 400 lines: Streamlit runs one script per page load, and the three pages (tabs) share its
session state; each page is one function below.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import streamlit as st

import distill  # noqa: F401  (telemetry off, hub offline: before anything imports haystack)
from distill.errors import DistillError
from distill.evaluation.report import (
    difference_lines,
    load_report,
    paired_differences,
    relative_lines,
    relative_quality,
)
from distill.ui import catalog, figures
from distill.ui.live import LiveEngine, LiveResult, SystemResult, short_error

logger = logging.getLogger("distill.ui")

PAGES = ["Ask", "Compare", "Runs"]
# A report draws its own frontier from this many pipelines with a latency and a quality figure.
FRONTIER_POINTS = 3
ROLE_ICONS = {
    figures.TEACHER: ":material/school:",
    figures.OFF_THE_SHELF: ":material/inventory_2:",
    figures.DISTILLED: ":material/science:",
}
CSS = """
<style>
.block-container {padding-top: 2.2rem; max-width: 1500px;}
.dt-passage {border: 1px solid rgba(49,51,63,0.15); border-radius: 0.5rem; padding: 0.55rem 0.75rem;
  margin-bottom: 0.5rem; font-size: 0.92rem; line-height: 1.45;}
.dt-passage.gold {border: 2px solid #2e9d57; background: rgba(46,157,87,0.06);}
.dt-meta {font-size: 0.8rem; color: #5f6170; margin-bottom: 0.2rem;}
.dt-rank {font-weight: 700; color: #31333f; margin-right: 0.35rem;}
.dt-badge {display: inline-block; padding: 0 0.45rem; border-radius: 0.6rem; font-size: 0.72rem; font-weight: 600;
  margin-left: 0.35rem;}
.dt-badge.gold {background: #2e9d57; color: white;}
.dt-badge.answer {background: #f0b429; color: #31333f;}
.dt-answer {font-size: 1.35rem; font-weight: 650; margin: 0.1rem 0 0.35rem 0;}
.dt-context {font-size: 0.95rem; line-height: 1.55; padding: 0.6rem 0.8rem; border-left: 4px solid #f0b429;
  background: rgba(240,180,41,0.07); border-radius: 0.25rem;}
mark.dt-hl {background: #ffd966; padding: 0.05rem 0.15rem; border-radius: 0.2rem; font-weight: 600;}
</style>
"""


# ------------------------------------------------------------------------------------------------ settings, loading


def setting(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Show a library error as one message in the page; the rest of the page and other sessions keep working."""
    try:
        yield
    except DistillError as e:
        st.error(f"**{what}:** {e}", icon=":material/error:")
    except Exception as e:
        logger.exception("%s failed", what)
        st.error(
            f"**{what}** failed unexpectedly: {short_error(e)}. Details are in the server log.",
            icon=":material/bug_report:",
        )


def stamp(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def report_entries() -> list[catalog.ReportEntry]:
    return catalog.read_reports(catalog.expand(setting("DISTILL_REPORTS", catalog.DEFAULT_REPORTS)))


def student_dirs() -> list[Path]:
    return catalog.student_runs(catalog.expand(setting("DISTILL_STUDENTS", catalog.DEFAULT_STUDENTS), dirs=True))


@st.cache_data(show_spinner=False, max_entries=32)
def cached_questions(path: str, mtime: float) -> list[dict[str, Any]]:
    return catalog.report_questions(Path(path))


@st.cache_resource(show_spinner=False, max_entries=2)
def cached_engine(path: str, mtime: float, articles: int | None) -> LiveEngine:
    """One engine per report file (and version of it), shared by every session of this server."""
    return LiveEngine.from_report(load_report(path), articles=articles)


def roles_of(report: dict[str, Any], students: list[Path]) -> dict[str, str]:
    return figures.pipeline_roles(report, catalog.distilled_models(report, students))


def live_articles() -> int | None:
    value = setting("DISTILL_LIVE_ARTICLES")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise DistillError(f"DISTILL_LIVE_ARTICLES must be a positive whole number, got {value!r}")
    return int(value)


def live_entry() -> catalog.ReportEntry | None:
    chosen = setting("DISTILL_LIVE_REPORT")
    if chosen:
        path = Path(chosen)
        entry = catalog.read_reports([path])[0]
        if entry.error:
            raise DistillError(f"DISTILL_LIVE_REPORT: {entry.error}")
        return entry
    return catalog.live_report(report_entries())


# ------------------------------------------------------------------------------------------------ drawing helpers


def model_caption(entry: dict[str, Any]) -> str:
    parts = []
    for component, info in (entry.get("models") or {}).items():
        name = Path(str(info.get("model", "?"))).name
        params = info.get("parameters")
        size = (
            f" · {params / 1e6:.1f}M params" if params and params >= 1e5 else f" · {params:,} params" if params else ""
        )
        parts.append(f"{component}: `{name}`{size}")
    return " · ".join(parts) or "no model information in the report"


def show_cards(cards: list[figures.Card], per_row: int = 6) -> None:
    for start in range(0, len(cards), per_row):
        row = cards[start : start + per_row]
        for col, card in zip(st.columns(per_row), row):
            col.metric(
                card.label,
                card.value,
                card.delta,
                delta_color=card.delta_color,
                delta_arrow="off" if card.delta_color == "off" else "auto",
                help=card.help,
                border=True,
            )


def escape(text: str) -> str:
    """Data as inert HTML: no tags, no Markdown maths from a "$" in a passage, no blank line ending the HTML block."""
    return html.escape(text).replace("$", "&#36;").replace("\n", "<br>")


def highlighted(context: str, start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return escape(context)
    return escape(context[:start]) + f'<mark class="dt-hl">{escape(context[start:end])}</mark>' + escape(context[end:])


def passage_html(result: SystemResult, index: int) -> str:
    passage = result.passages[index]
    answer = result.top_answer
    holds_answer = answer is not None and answer.located and answer.doc_id == passage.doc_id
    text = highlighted(passage.content, answer.start, answer.end) if holds_answer else escape(passage.content)
    badges = ""
    if passage.gold:
        badges += '<span class="dt-badge gold">✓ gold passage</span>'
    if holds_answer:
        badges += '<span class="dt-badge answer">answer</span>'
    score = f"score {passage.score:.3f}" if passage.score is not None else "no score"
    title = f" · {escape(passage.title)}" if passage.title else ""
    css = "dt-passage gold" if passage.gold else "dt-passage"
    return (
        f'<div class="{css}"><div class="dt-meta"><span class="dt-rank">#{passage.rank}</span>{score}{title}'
        f"{badges}</div>{text}</div>"
    )


# ------------------------------------------------------------------------------------------------ Ask


def ask_page() -> None:
    entry = live_entry()
    if entry is None:
        st.info(
            "No evaluation report with two or more pipelines was found, so there is nothing to ask yet. Run "
            "`make demo` (or `distill eval teacher=... student=... --out runs/NAME`), or point `DISTILL_LIVE_REPORT` "
            "at a report.",
            icon=":material/info:",
        )
        return
    report = entry.report
    articles = live_articles()
    with st.spinner(f"Loading, indexing and warming up the pipelines of {entry.label} (once for all sessions)…"):
        engine = cached_engine(str(entry.path.resolve()), stamp(entry.path), articles)
    roles = roles_of(report, student_dirs())
    names = engine.names
    reference = figures.reference_of(report, roles)
    st.caption(
        f"Live pipelines from **{entry.label}** · {len(engine.data.documents):,} passages · "
        f"{len(engine.data.queries):,} evaluation questions ({engine.data.name}) · loaded in "
        f"{engine.load_seconds:.1f} s, once for all sessions"
    )

    left, right = st.columns(2)
    teacher = left.selectbox(
        "Teacher pipeline", names, index=names.index(reference), key="teacher", format_func=lambda n: label(n, roles)
    )
    others = [n for n in names if n != teacher]
    partner = engine.partner(teacher, [n for n, role in roles.items() if role == figures.DISTILLED])
    if partner is None:
        st.warning("The live report has a single pipeline: there is no student to compare with.")
        return
    student = right.selectbox(
        "Student pipeline",
        others,
        index=others.index(partner),
        key="student",
        format_func=lambda n: label(n, roles),
    )

    q_col, ask_col, draw_col = st.columns([7, 1, 2], vertical_alignment="bottom")
    q_col.text_input(
        "Question",
        key="question",
        placeholder="Type a question about the corpus and press Enter, or draw one from the evaluation set",
        on_change=submit_question,
    )
    ask_col.button("Ask", key="ask", type="primary", on_click=submit_question, width="stretch")
    draw_col.button(
        "Random question", icon=":material/casino:", key="draw", on_click=draw_question, args=(engine,), width="stretch"
    )

    asked = st.session_state.get("asked")
    if asked is None:
        st.info("Ask a question to see both pipelines answer it side by side.", icon=":material/forum:")
        return
    gold_id = st.session_state.get("gold_id")
    key = (asked, teacher, student, gold_id, id(engine))
    if st.session_state.get("result_key") != key:
        gold = engine.question(gold_id) if gold_id else None
        st.session_state["result"] = engine.ask(asked, [teacher, student], gold=gold)
        st.session_state["result_key"] = key
    show_live_result(st.session_state["result"], report, roles)


def label(name: str, roles: dict[str, str]) -> str:
    role = roles.get(name, "")
    return f"{name} · {role}" if role else name


def submit_question() -> None:
    st.session_state["asked"] = st.session_state.get("question", "")
    st.session_state["gold_id"] = None


def draw_question(engine: LiveEngine) -> None:
    draws = st.session_state.get("draws", 0)
    st.session_state["draws"] = draws + 1
    query = engine.random_question(seed=draws)
    st.session_state["question"] = query.text
    st.session_state["asked"] = query.text
    st.session_state["gold_id"] = query.id


def show_live_result(result: LiveResult, report: dict[str, Any], roles: dict[str, str]) -> None:
    if result.notice:
        st.warning(result.notice, icon=":material/content_cut:")
    if result.gold is not None:
        answers = " | ".join(dict.fromkeys(result.gold.answers)) or "(no gold answer)"
        with st.container(border=True):
            st.markdown(
                f"<b>From the evaluation set</b> · gold answer: <b>{escape(answers)}</b>", unsafe_allow_html=True
            )
            if result.gold_passage:
                with st.expander("Gold passage"):
                    st.markdown(f'<div class="dt-context">{escape(result.gold_passage)}</div>', unsafe_allow_html=True)
    for agreement in result.agreements:
        text = agreement.describe()
        if agreement.agree:
            st.success(
                f"**{agreement.reference}** and **{agreement.other}** agree: {text}.", icon=":material/handshake:"
            )
        else:
            st.warning(
                f"**{agreement.reference}** and **{agreement.other}** disagree: {text}.",
                icon=":material/compare_arrows:",
            )

    reference = result.results[0]
    columns = st.columns(len(result.results), gap="large")
    for i, (column, res) in enumerate(zip(columns, result.results)):
        with column, st.container(border=True, key=f"system-{i}"):
            show_system(res, report, roles, reference if i else None, result.gold is not None)

    timings = {r.name: r.component_ms for r in result.results if r.error is None}
    if timings:
        st.markdown("#### Where the time goes")
        st.plotly_chart(figures.component_latency_bars(timings), key="live-latency", config={"displayModeBar": False})


def show_system(
    res: SystemResult, report: dict[str, Any], roles: dict[str, str], reference: SystemResult | None, has_gold: bool
) -> None:
    role = roles.get(res.name, "")
    st.markdown(f"### {ROLE_ICONS.get(role, '')} {res.name}")
    entry = report["pipelines"].get(res.name, {})
    st.caption(f"{role} · {model_caption(entry)}")
    if res.error:
        st.error(res.error, icon=":material/error:")
        return
    m1, m2, m3 = st.columns(3)
    delta = None
    if reference is not None and reference.error is None:
        delta = f"{res.latency_ms - reference.latency_ms:+.1f} ms"
        if res.latency_ms > 0:
            delta += f" · {reference.latency_ms / res.latency_ms:.1f}x"
    m1.metric("Latency", f"{res.latency_ms:.1f} ms", delta, delta_color="inverse", help="this question, end to end")
    if has_gold:
        rank = f"#{res.gold_rank}" if res.gold_rank else f"not in top {len(res.passages)}"
        m2.metric("Gold passage", rank, help="rank of the question's own passage")
        if res.has_reader:
            m3.metric("Answer F1", f"{(res.f1 or 0.0):.2f}", help="token F1 against the gold answers (SQuAD)")
        else:
            m3.metric("Passages", len(res.passages))
    else:
        m2.metric("Passages", len(res.passages))
        if res.top_passage is not None and res.top_passage.score is not None:
            m3.metric("Top score", f"{res.top_passage.score:.3f}")

    if res.has_reader:
        answer = res.top_answer
        if answer is None:
            st.markdown("**Answer:** the reader found no answer.")
        else:
            st.markdown(
                f'<div class="dt-meta">Answer · score {answer.score:.3f}</div>'
                f'<div class="dt-answer">{escape(answer.text)}</div>'
                f'<div class="dt-context">{highlighted(answer.context, answer.start, answer.end)}</div>',
                unsafe_allow_html=True,
            )
            runners = [f"{escape(a.text)} ({a.score:.2f})" for a in res.answers[1:]]
            if runners:
                st.markdown(f'<div class="dt-meta">Next answers: {" · ".join(runners)}</div>', unsafe_allow_html=True)
    generative = res.prompt is not None or res.prompt_error is not None
    if generative:
        st.markdown(f"**Documents the generator receives** (from `{res.scored}` into `{res.into}`; not generated here)")
    else:
        st.markdown("**Retrieved passages**")
    shown = 3
    for i in range(min(shown, len(res.passages))):
        st.markdown(passage_html(res, i), unsafe_allow_html=True)
    if len(res.passages) > shown:
        gold_below = any(p.gold for p in res.passages[shown:])
        title = f"{len(res.passages) - shown} more passages" + (" (gold passage among them)" if gold_below else "")
        with st.expander(title):
            for i in range(shown, len(res.passages)):
                st.markdown(passage_html(res, i), unsafe_allow_html=True)
    if res.prompt is not None:
        with st.expander("Prompt the generator would receive", icon=":material/chat:"):
            st.code(res.prompt, language=None, wrap_lines=True)
    elif res.prompt_error is not None:
        st.warning(f"No prompt to show: {res.prompt_error}", icon=":material/chat_error:")


# ------------------------------------------------------------------------------------------------ Compare


def compare_page() -> None:
    entries = report_entries()
    for bad in (e for e in entries if e.error is not None):
        st.error(f"**{bad.label}** could not be read: {bad.error}", icon=":material/error:")
    groups = catalog.group_reports(entries)
    if not groups:
        patterns = setting("DISTILL_REPORTS", catalog.DEFAULT_REPORTS)
        st.info(
            f"No evaluation report found in `{patterns}`. Run `make demo`, or "
            "`distill eval teacher=... student=... --out runs/NAME`, or set `DISTILL_REPORTS`.",
            icon=":material/info:",
        )
        return
    newest = catalog.newest_report(entries)
    chosen = choose_reports(groups, newest.label if newest else "", [e for e in entries if e.other])
    if not chosen:
        st.info("Pick at least one report.")
        return
    by_label = {e.label: e for group in groups for e in group.entries}
    students = student_dirs()

    st.markdown("#### Quality against latency, every pipeline of every chosen report")
    reports = {lab: by_label[lab].report for lab in chosen}
    distilled = [path for report in reports.values() for path in catalog.distilled_models(report, students)]
    frame = figures.runs_frame(reports, distilled)
    metrics = figures.metrics_present(frame)
    if metrics:
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        default = figures.default_metric(frame)
        metric = c1.selectbox(
            "Quality metric", metrics, index=metrics.index(default), format_func=figures.METRIC_LABELS.get, key="metric"
        )
        log_x = c2.toggle("Log latency axis", key="log_x")
        st.plotly_chart(figures.quality_latency_scatter(frame, metric, log_x=log_x), key="scatter")
        st.caption(
            "Ringed points lie on the Pareto front: no other pipeline is both as fast and as good. Colours: "
            + ", ".join(f"{ROLE_ICONS[r]} {r}" for r in figures.ROLE_COLORS)
        )
    else:
        st.info("The chosen reports hold no quality metrics.")

    st.divider()
    st.markdown("#### One report in detail")
    chosen_label = st.selectbox("Report", chosen, key="detail")
    entry = by_label[chosen_label]
    report_detail(entry, students)


def choose_reports(groups: list[catalog.ReportGroup], newest: str, others: list[catalog.ReportEntry]) -> list[str]:
    """One multiselect per group, the user's runs on top and the benchmarks in an expander; only the newest report
    is chosen at first, so the page opens on what the user just made."""
    chosen: list[str] = []
    own = [g for g in groups if g.key == catalog.OWN_RUNS]
    benchmarks = [g for g in groups if g.key != catalog.OWN_RUNS]
    for group in own:
        labels = [e.label for e in group.entries]
        chosen += st.multiselect(group.title, labels, default=[newest], key="reports")
    if benchmarks:
        count = sum(len(g.entries) for g in benchmarks)
        with st.expander(f"Committed benchmark reports ({count})", expanded=not own):
            for group in benchmarks:
                labels = [e.label for e in group.entries]
                default = [newest] if newest in labels else []
                chosen += st.multiselect(group.title, labels, default=default, key=f"reports:{group.key}")
            if others:
                names = ", ".join(f"`{Path(e.label).name}`" for e in others)
                st.caption(f"Not evaluation reports (other benchmark outputs), not listed: {names}")
    elif others:
        st.caption(f"{len(others)} JSON files found are not evaluation reports and are not listed.")
    return chosen


def report_detail(entry: catalog.ReportEntry, students: list[Path]) -> None:
    report = entry.report
    roles = roles_of(report, students)
    reference = figures.reference_of(report, roles)
    others = [n for n in report["pipelines"] if n != reference]
    dataset = report.get("dataset") or {}
    st.caption(
        f"{dataset.get('name', '?')} · {dataset.get('documents', '?')} passages · {dataset.get('questions', '?')} "
        f"questions · created {report.get('created', '?')} · reference: **{reference}**"
    )
    other = None
    if others:
        other = st.segmented_control(
            "Student", others, default=others[0], key=f"student:{entry.label}", format_func=lambda n: label(n, roles)
        )
    name = other or reference
    agreed_with = figures.agreement_of(report)
    if agreed_with is not None and not figures.has_relevance(report):
        st.info(
            f"These questions have no relevance labels: quality is shown as **agreement with {agreed_with}** "
            f"(how closely each top 10 follows {agreed_with}'s), not as relevance.",
            icon=":material/info:",
        )
    st.markdown(f"**{label(name, roles)}** against **{reference}**" if other else f"**{reference}**")
    show_cards(figures.metric_cards(report, name, reference))
    with st.expander("All pipelines of this report"):
        st.dataframe(figures.comparison_frame(report, reference))

    colors = {n: figures.ROLE_COLORS.get(roles[n], "#888") for n in report["pipelines"]}
    left, right = st.columns(2, gap="large")
    rows: list[dict[str, Any]] | None = None
    with left:
        st.markdown("##### Latency per question")
        if catalog.keeps_questions(entry.path):
            with guard("Per-question rows"):
                path = catalog.questions_path(entry.path)
                rows = cached_questions(str(path.parent), stamp(path))
                st.plotly_chart(figures.latency_distributions(rows, list(report["pipelines"]), colors), key="dist")
        else:
            st.caption(
                "This report was copied without its per-question rows (`questions.jsonl`, beside the `report.json` "
                "that `distill eval --out` wrote): no latency distribution, interval or question table."
            )
    with right:
        st.markdown("##### Median time per component")
        st.plotly_chart(figures.component_latency_bars(figures.component_p50(report)), key="components")
    frontier(entry, students)

    if other and rows is not None:
        with guard("Paired bootstrap interval"):
            pair = {"pipelines": {n: report["pipelines"][n] for n in (reference, other)}}
            relative = relative_quality(pair, rows)
            if relative:
                st.caption(relative_lines(relative))
            differences = paired_differences(pair, rows, reference)
            if differences:
                st.caption(difference_lines(differences))
        if any(row.get("gold_doc_ids") for row in rows):
            question_table(rows, reference, other, entry.label)
        else:
            agreement_table(rows, other, agreed_with, entry.label)
    provenance(report, students)


def frontier(entry: catalog.ReportEntry, students: list[Path]) -> None:
    """This report's quality-vs-latency frontier (log latency), when it has enough pipelines for one, and the
    targets a speed benchmark checked (``python -m benchmarks.speed``)."""
    report = entry.report
    frame = figures.runs_frame({entry.label: report}, catalog.distilled_models(report, students))
    metric = figures.default_metric(frame)
    if metric is None or len(frame.dropna(subset=[metric, "p50_ms"])) < FRONTIER_POINTS:
        return
    st.markdown(f"##### Frontier of this report: {figures.METRIC_LABELS.get(metric, metric)} against p50 latency")
    st.plotly_chart(figures.quality_latency_scatter(frame, metric, log_x=True), key=f"frontier:{entry.label}")
    targets = report.get("targets") or []
    if targets:
        verdicts = {True: ":material/check_circle: met", False: ":material/cancel: missed", None: "not measured"}
        lines = [
            f"- {verdicts[t.get('met')]} · {t['pipeline'] + ': ' if t.get('pipeline') else ''}{t['target']} "
            f"· measured {t['measured']}"
            for t in targets
        ]
        st.markdown("**Targets of this run**\n" + "\n".join(lines))


def question_table(rows: list[dict[str, Any]], reference: str, other: str, scope: str) -> None:
    st.markdown("##### Question by question")
    c1, c2 = st.columns([1, 2])
    # Widget keys carry the report and pair: a rule chosen for readers must not stick to a retrieval report.
    scope = f"{scope}:{reference}:{other}"
    rule = c1.selectbox(
        "Count as right",
        figures.rules_for(rows, [reference, other]),
        format_func=figures.RIGHT_RULES.get,
        key=f"rule:{scope}",
        help="top-1: the gold passage ranked first · top-10: anywhere in the top 10 · reader: EM = 1 or F1 >= 0.5",
    )
    outcomes = figures.question_outcomes(rows, reference, other, rule)
    counts = figures.outcome_counts(outcomes)
    names = {
        figures.REFERENCE_ONLY: f"{reference} right, {other} wrong",
        figures.OTHER_ONLY: f"{other} right, {reference} wrong",
        figures.BOTH: "both right",
        figures.NEITHER: "both wrong",
    }
    keep = c2.pills(
        "Show",
        list(names),
        default=[figures.REFERENCE_ONLY, figures.OTHER_ONLY],
        selection_mode="multi",
        format_func=lambda k: f"{names[k]} ({counts[k]})",
        key=f"outcomes:{scope}",
    )
    shown = figures.filter_outcomes(outcomes, keep or [])
    if shown.empty:
        st.caption("No question matches this filter.")
    else:
        config = {
            "question": st.column_config.TextColumn(width="large"),
            f"{reference} right": st.column_config.CheckboxColumn(),
            f"{other} right": st.column_config.CheckboxColumn(),
        }
        st.dataframe(shown.drop(columns=["outcome"]), hide_index=True, column_config=config, key=f"questions:{scope}")


def agreement_table(rows: list[dict[str, Any]], other: str, reference: str | None, scope: str) -> None:
    """Question by question without labels: ``other``'s agreement with the reference, least agreement first."""
    st.markdown(f"##### Question by question: agreement of {other} with {reference}")
    frame = figures.agreement_questions(rows, other)
    if frame.empty:
        st.caption(f"The per-question rows hold no agreement of {other} with {reference}.")
        return
    config = {"question": st.column_config.TextColumn(width="large")}
    st.dataframe(frame, hide_index=True, column_config=config, key=f"agreement:{scope}:{other}")


def provenance(report: dict[str, Any], students: list[Path]) -> None:
    st.markdown("##### Provenance")
    with st.expander("Command, data, versions and machine"):
        st.code(report.get("command") or "(no command recorded)", language="bash")
        c1, c2, c3 = st.columns(3)
        c1.markdown("**Config**")
        c1.json(report.get("config") or {}, expanded=True)
        c2.markdown("**Data set**")
        c2.json(report.get("dataset") or {}, expanded=True)
        c3.markdown("**Versions**")
        c3.json(report.get("versions") or {}, expanded=True)
        c3.markdown("**Machine**")
        c3.json(report.get("machine") or {}, expanded=True)
    with st.expander("Models"):
        rows = []
        for name, entry in report["pipelines"].items():
            for component, info in (entry.get("models") or {}).items():
                rows.append(
                    {
                        "pipeline": name,
                        "component": component,
                        "model": info.get("model"),
                        "parameters (M)": (info.get("parameters") or 0) / 1e6,
                        "size (MB)": (info.get("size_bytes") or 0) / 1e6,
                        "query YAML": entry.get("query_yaml"),
                    }
                )
        st.dataframe(rows, hide_index=True)
    for name, entry in report["pipelines"].items():
        for info in (entry.get("models") or {}).values():
            folder = catalog.student_of(info.get("path"), students)
            if folder is None:
                continue
            with st.expander(f"Recipe and model card of {name} ({folder.name})"):
                with guard(f"Student {folder}"):
                    show_student_documents(catalog.load_student(folder))


# ------------------------------------------------------------------------------------------------ Runs


def runs_page() -> None:
    folders = student_dirs()
    if not folders:
        patterns = setting("DISTILL_STUDENTS", catalog.DEFAULT_STUDENTS)
        st.info(
            f"No distilled student found in `{patterns}`: train one, or set `DISTILL_STUDENTS`.", icon=":material/info:"
        )
        return
    labels = [catalog.display_path(f) for f in folders]
    chosen = st.selectbox("Distilled student", labels, key="run")
    student = catalog.load_student(folders[labels.index(chosen)])
    st.markdown(f"### :material/science: {student.name}")
    recipe = student.config or {}
    facts = [
        f"{k}: `{recipe[k]}`" for k in ("teacher", "student", "data", "seed") if isinstance(recipe.get(k), str | int)
    ]
    st.caption(" · ".join([f"`{catalog.display_path(student.path)}`", *facts]))
    for problem in student.problems:
        st.warning(problem, icon=":material/error:")
    if student.metrics:
        show_cards(figures.student_cards(student.metrics))
        table = figures.student_metrics_frame(student.metrics)
        if not table.empty:
            with st.expander("Final metrics: teacher, before and after distillation"):
                st.dataframe(table)
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("##### Training loss, each term")
        st.plotly_chart(figures.loss_curves(student.log), key="loss")
    with right:
        st.markdown("##### Dev metrics during training")
        st.plotly_chart(figures.dev_curves(student.log), key="dev")
    show_student_documents(student)


def show_student_documents(student: catalog.Student) -> None:
    card, recipe, metrics = st.tabs(["Model card", "Recipe (config.yaml)", "metrics.json"])
    with card:
        if student.card:
            st.container(border=True, height=420).markdown(student.card)
        else:
            st.caption("no README.md")
    with recipe:
        st.code(student.config_text or "# no config.yaml", language="yaml")
    with metrics:
        st.code(json.dumps(student.metrics, indent=2) if student.metrics is not None else "no metrics.json", "json")


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    st.set_page_config(
        page_title="Teacher vs student · haystack-distill", page_icon=":material/science:", layout="wide"
    )
    st.markdown(CSS, unsafe_allow_html=True)
    st.markdown("## :material/science: Teacher vs student")
    st.caption("Distilled Haystack pipelines, side by side with the teacher they learned from.")
    tabs = st.tabs(PAGES, key="page", on_change="rerun", bind="query-params")
    pages = {"Ask": ask_page, "Compare": compare_page, "Runs": runs_page}
    for name, tab in zip(PAGES, tabs):
        if tab.open is False:
            continue
        with tab, guard(f"The {name} page"):
            pages[name]()


main()
