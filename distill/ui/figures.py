"""Pure functions from evaluation reports, per-question rows and training logs to tables and plotly figures.

Nothing here reads files or runs models: the UI loads (``distill.ui.catalog``, ``distill.ui.live``) and this module
shapes.

Which answers count as *right* in the per-question comparison (:data:`RIGHT_RULES`):

- ``top1``: retrieval is right when the gold passage is ranked first (SQuAD: the question's own paragraph);
- ``top10``: retrieval is right when the gold passage is anywhere in the top 10;
- ``answer``: a reader is right when its top answer has exact match 1 or token F1 >= 0.5 (SQuAD normalisation).

Why one module over 400 lines: pure functions only, in one section per UI page (tables, cards, Pareto front,
latency, training, per question, students), so the UI imports its shapes from one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from distill.common.metrics import AGREEMENT_METRICS, QUALITY_METRICS

TEACHER, OFF_THE_SHELF, DISTILLED = "teacher", "off-the-shelf student", "distilled student"
ROLE_COLORS = {TEACHER: "#4C78A8", OFF_THE_SHELF: "#F58518", DISTILLED: "#54A24B"}
SERIES_COLORS = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#9D755D", "#FF9DA6"]
COMPONENT_COLORS = {"text_embedder": "#4C78A8", "retriever": "#72B7B2", "reader": "#F58518", "ranker": "#B279A2"}

# Quality keys in display order, and how each is named and printed: from the one table in distill.common.metrics.
QUALITY_KEYS = [m.key for m in QUALITY_METRICS]
# Agreement with a report's reference pipeline (distill.evaluation.agreement): kept in its own section of a report,
# never mixed
# with relevance, and always labelled as agreement.
AGREEMENT_KEYS = [m.key for m in AGREEMENT_METRICS]
METRIC_LABELS = {m.key: m.label for m in QUALITY_METRICS} | {
    m.key: f"{m.label} (agreement with the reference)" for m in AGREEMENT_METRICS
}
METRIC_FORMATS = {m.key: m.fmt for m in (*QUALITY_METRICS, *AGREEMENT_METRICS)}
CARD_METRICS = ("recall@1", "recall@10", "mrr@10", "ndcg@10", "exact_match", "f1")

RIGHT_RULES = {
    "top1": "gold passage ranked first",
    "top10": "gold passage in the top 10",
    "answer": "reader answer with EM = 1 or F1 >= 0.5",
}
F1_RIGHT = 0.5
BOTH, NEITHER, REFERENCE_ONLY, OTHER_ONLY = "both right", "both wrong", "reference only", "other only"


# ---------------------------------------------------------------------------------------------------- report tables


def pipeline_roles(report: Mapping[str, Any], student_dirs: Sequence[str | PurePath] = ()) -> dict[str, str]:
    """teacher / off-the-shelf student / distilled student for each pipeline of a report.

    The teacher is the pipeline named like one (``teacher...``), else the report's first (the speed-up reference);
    a pipeline is *distilled* when one of its models lives inside one of ``student_dirs``. An embedding list scored
    beside a pipeline's own (``teacher [embedding_retriever]``) takes that pipeline's role.
    """
    names = list(report["pipelines"])
    views = {n: (report["pipelines"][n].get("scored") or {}).get("of") for n in names}
    teacher = next((n for n in names if n.lower().startswith("teacher") and not views[n]), names[0] if names else None)
    folders = [PurePath(str(d)) for d in student_dirs]
    roles = {}
    for name in names:
        models = report["pipelines"][name].get("models") or {}
        paths = [PurePath(str(m.get("path") or m.get("model") or "")) for m in models.values()]
        distilled = any(p == f or f in p.parents for p in paths for f in folders)
        roles[name] = TEACHER if name == teacher else DISTILLED if distilled else OFF_THE_SHELF
    for name, of in views.items():
        if of in roles:
            roles[name] = roles[of]
    return roles


def reference_of(report: Mapping[str, Any], roles: Mapping[str, str] | None = None) -> str:
    roles = roles if roles is not None else pipeline_roles(report)
    return next((n for n, r in roles.items() if r == TEACHER), next(iter(report["pipelines"])))


def _parameters(entry: Mapping[str, Any]) -> int | None:
    models = entry.get("models") or {}
    values = [m.get("parameters") for m in models.values() if m.get("parameters") is not None]
    return sum(values) if values else None


def _size_bytes(entry: Mapping[str, Any]) -> int | None:
    models = entry.get("models") or {}
    values = [m.get("size_bytes") for m in models.values() if m.get("size_bytes") is not None]
    return sum(values) if values else None


def runs_frame(reports: Mapping[str, Mapping[str, Any]], student_dirs: Sequence[str | PurePath] = ()) -> pd.DataFrame:
    """One row per (report, pipeline): role, every quality metric, p50/p95 latency, parameters and size."""
    rows = []
    for label, report in reports.items():
        roles = pipeline_roles(report, student_dirs)
        for name, entry in report["pipelines"].items():
            latency = (entry.get("latency") or {}).get("query") or {}
            params = _parameters(entry)
            size = _size_bytes(entry)
            row = {
                "run": label,
                "pipeline": name,
                "point": f"{name} ({label})",
                "role": roles[name],
                "p50_ms": latency.get("p50_ms"),
                "p95_ms": latency.get("p95_ms"),
                "params_m": params / 1e6 if params is not None else None,
                "size_mb": size / 1e6 if size is not None else None,
            }
            row.update({key: (entry.get("quality") or {}).get(key) for key in QUALITY_KEYS})
            row.update({key: (entry.get("agreement") or {}).get(key) for key in AGREEMENT_KEYS})
            rows.append(row)
    columns = ["run", "pipeline", "point", "role", "p50_ms", "p95_ms", "params_m", "size_mb"]
    return pd.DataFrame(rows, columns=[*columns, *QUALITY_KEYS, *AGREEMENT_KEYS])


def default_metric(frame: pd.DataFrame) -> str | None:
    """The quality metric most runs report, preferring nDCG@10, then F1, then recall@10 among equals (and
    agreement's silver nDCG@10 where there are no relevance labels)."""
    present = metrics_present(frame)
    if not present:
        return None
    preference = ["ndcg@10", "f1", "recall@10", "silver_ndcg@10", *present]
    return max(present, key=lambda m: (int(frame[m].notna().sum()), -preference.index(m)))


def metrics_present(frame: pd.DataFrame) -> list[str]:
    """Quality metrics (relevance, then agreement) that at least one run reports, in display order."""
    return [key for key in (*QUALITY_KEYS, *AGREEMENT_KEYS) if key in frame and frame[key].notna().any()]


def agreement_of(report: Mapping[str, Any]) -> str | None:
    """The pipeline the report's agreement figures were measured against, or None when it has none."""
    return next((p["agreement"]["reference"] for p in report["pipelines"].values() if p.get("agreement")), None)


def has_relevance(report: Mapping[str, Any]) -> bool:
    """Whether any pipeline has relevance figures (a report over unlabelled queries has none, only agreement)."""
    return any(k in (p.get("quality") or {}) for p in report["pipelines"].values() for k in QUALITY_KEYS)


def comparison_frame(report: Mapping[str, Any], reference: str | None = None) -> pd.DataFrame:
    """The report's pipelines side by side: quality, latency, speed-up against ``reference``, size."""
    names = list(report["pipelines"])
    reference = reference or reference_of(report)
    base = report["pipelines"][reference]["latency"]["query"]["p50_ms"]
    present = [k for k in QUALITY_KEYS if any(k in p.get("quality", {}) for p in report["pipelines"].values())]
    rows = []
    for name in names:
        entry = report["pipelines"][name]
        lat = entry["latency"]["query"]
        params = _parameters(entry)
        row: dict[str, Any] = {"pipeline": name}
        row.update({METRIC_LABELS[k]: entry.get("quality", {}).get(k) for k in present})
        agreement = entry.get("agreement") or {}
        if agreement:
            row.update(
                {
                    f"{m.label} · agreement with {agreement['reference']}": agreement.get(m.key)
                    for m in AGREEMENT_METRICS
                }
            )
        row.update(
            {
                "p50 ms": lat["p50_ms"],
                "p95 ms": lat["p95_ms"],
                "speed-up": base / lat["p50_ms"] if lat["p50_ms"] else None,
                "params (M)": params / 1e6 if params is not None else None,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index("pipeline")


# ---------------------------------------------------------------------------------------------------- metric cards


@dataclass(frozen=True)
class Card:
    """One ``st.metric``: ``delta_color`` is "normal" when higher is better, "inverse" when lower is."""

    label: str
    value: str
    delta: str | None = None
    delta_color: str = "normal"
    help: str | None = None


def _delta(value: float, base: float, fmt: str, unit: str, color: str) -> tuple[str, str]:
    """A signed delta and its colour; a delta that rounds to zero is grey, not a green or red arrow."""
    text = fmt.format(value - base)
    if float(text) == 0:
        return fmt.format(0.0) + unit, "off"
    return ("+" if value > base else "") + text + unit, color


def metric_cards(report: Mapping[str, Any], name: str, reference: str | None = None) -> list[Card]:
    """Quality, p50 and p95 latency, speed-up and model size of ``name``, with deltas against ``reference``."""
    pipelines = report["pipelines"]
    reference = reference or reference_of(report)
    entry, ref = pipelines[name], pipelines[reference]
    against = name != reference
    cards = []
    for key in CARD_METRICS:
        value, base = entry.get("quality", {}).get(key), ref.get("quality", {}).get(key)
        if value is None:
            continue
        fmt = METRIC_FORMATS[key]
        if against and base is not None:
            delta, color = _delta(value, base, fmt, "", "normal")
            cards.append(Card(METRIC_LABELS[key], fmt.format(value), delta, color, f"{reference}: {fmt.format(base)}"))
        else:
            cards.append(Card(METRIC_LABELS[key], fmt.format(value)))
    agreement = entry.get("agreement") or {}
    if agreement and agreement.get("reference") != name:
        for m in AGREEMENT_METRICS:
            if m.key in agreement:
                help_text = f"agreement of {name}'s top 10 with {agreement['reference']}'s, the mean over the questions"
                cards.append(
                    Card(
                        f"{m.label} · agreement with {agreement['reference']}",
                        m.fmt.format(agreement[m.key]),
                        None,
                        "off",
                        help_text,
                    )
                )
    for key, label in (("p50_ms", "p50 latency"), ("p95_ms", "p95 latency")):
        value, base = entry["latency"]["query"][key], ref["latency"]["query"][key]
        if against:
            delta, color = _delta(value, base, "{:.1f}", " ms", "inverse")
            cards.append(Card(label, f"{value:.1f} ms", delta, color, f"{reference}: {base:.1f} ms"))
        else:
            cards.append(Card(label, f"{value:.1f} ms"))
    p50, base_p50 = entry["latency"]["query"]["p50_ms"], ref["latency"]["query"]["p50_ms"]
    if p50:
        help_text = f"p50 of {reference} / p50 of {name}"
        cards.append(Card("Speed-up (p50)", f"{base_p50 / p50:.2f}x", None, "off", help_text))
    params, base_params = _parameters(entry), _parameters(ref)
    if params is not None:
        size = _size_bytes(entry)
        help_text = f"{size / 1e6:.1f} MB on disk" if size is not None else None
        if against and base_params:
            delta, color = _delta(100 * params / base_params, 100, "{:.0f}", "%", "inverse")
            cards.append(Card("Parameters", millions(params), delta, color, help_text))
        else:
            cards.append(Card("Parameters", millions(params), None, "normal", help_text))
    return cards


def millions(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


# ---------------------------------------------------------------------------------------------------- Pareto front


def pareto_front(latencies: Sequence[float], qualities: Sequence[float]) -> list[bool]:
    """True for each point no other point beats: as fast or faster and as good or better, one of them strictly.

    Lower latency and higher quality are better; a point with a missing (NaN/None) value is never on the front.
    """
    points = list(zip(latencies, qualities))

    def valid(p: tuple[Any, Any]) -> bool:
        return all(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in p)

    front = []
    for i, (lat, q) in enumerate(points):
        if not valid((lat, q)):
            front.append(False)
            continue
        dominated = any(
            valid((l2, q2)) and l2 <= lat and q2 >= q and (l2 < lat or q2 > q)
            for j, (l2, q2) in enumerate(points)
            if j != i
        )
        front.append(not dominated)
    return front


def _empty(message: str, height: int = 260) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 14})
    fig.update_layout(height=height, xaxis={"visible": False}, yaxis={"visible": False}, margin=_MARGIN)
    return fig


_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def quality_latency_scatter(frame: pd.DataFrame, metric: str, *, log_x: bool = False) -> go.Figure:
    """Quality (y, higher is better) against p50 latency (x, lower is better), coloured by role, front marked."""
    label = METRIC_LABELS.get(metric, metric)
    if metric not in frame:
        return _empty(f"no run reports {label}")
    data = frame.dropna(subset=[metric, "p50_ms"]).reset_index(drop=True)
    if data.empty:
        return _empty(f"no run reports {label}")
    on_front = pareto_front(data["p50_ms"].tolist(), data[metric].tolist())
    data = data.assign(front=on_front)
    fig = go.Figure()
    front = data[data["front"]].sort_values("p50_ms")
    fig.add_trace(
        go.Scatter(
            x=front["p50_ms"],
            y=front[metric],
            mode="lines",
            line={"color": "rgba(80,80,80,0.55)", "dash": "dash", "shape": "hv"},
            name="Pareto front",
            hoverinfo="skip",
        )
    )
    for role, color in ROLE_COLORS.items():
        part = data[data["role"] == role]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["p50_ms"],
                y=part[metric],
                mode="markers+text",
                name=role,
                text=part["pipeline"],
                textposition="top center",
                marker={
                    "size": 14,
                    "color": color,
                    "line": {"width": [3 if f else 0 for f in part["front"]], "color": "#222"},
                },
                customdata=list(zip(part["run"], part["p95_ms"], part["params_m"], part["front"])),
                hovertemplate=(
                    "<b>%{text}</b> (%{customdata[0]})<br>"
                    + label
                    + ": %{y:.3f}<br>p50 %{x:.1f} ms, p95 %{customdata[1]:.1f} ms<br>"
                    "%{customdata[2]:.1f}M parameters<br>on the Pareto front: %{customdata[3]}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        height=420,
        margin=_MARGIN,
        xaxis_title="p50 latency per query (ms), lower is better",
        yaxis_title=f"{label}, higher is better",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
    if log_x:
        fig.update_xaxes(type="log")
    return fig


# ---------------------------------------------------------------------------------------------------- latency


def latency_values(rows: Sequence[Mapping[str, Any]], name: str) -> list[float]:
    """Per-question latency (ms) of pipeline ``name`` from questions.jsonl rows."""
    out = []
    for row in rows:
        run = (row.get("runs") or {}).get(name)
        if run is not None and run.get("latency_ms") is not None:
            out.append(float(run["latency_ms"]))
    return out


def latency_distributions(
    rows: Sequence[Mapping[str, Any]], names: Sequence[str], colors: Mapping[str, str] | None = None
) -> go.Figure:
    """One horizontal box per pipeline over its per-question latencies, every question drawn as a dot."""
    fig = go.Figure()
    for i, name in enumerate(names):
        values = latency_values(rows, name)
        if not values:
            continue
        color = (colors or {}).get(name, SERIES_COLORS[i % len(SERIES_COLORS)])
        fig.add_trace(
            go.Box(
                x=values,
                name=name,
                boxpoints="all",
                jitter=0.5,
                pointpos=0,
                marker={"size": 6, "opacity": 0.6, "color": color},
                line={"color": color},
                fillcolor="rgba(0,0,0,0)",
                hovertemplate="%{x:.1f} ms<extra>" + name + "</extra>",
            )
        )
    if not fig.data:
        return _empty("no per-question latencies in questions.jsonl")
    fig.update_layout(
        height=110 + 70 * len(fig.data),
        margin=_MARGIN,
        showlegend=False,
        xaxis_title="latency per query (ms)",
        yaxis={"autorange": "reversed"},
    )
    return fig


def component_p50(report: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Median time per component for every pipeline of a report (the shape :func:`component_latency_bars` draws)."""
    out = {}
    for name, entry in report["pipelines"].items():
        components = (entry.get("latency") or {}).get("components") or {}
        out[name] = {c: v["p50_ms"] for c, v in components.items() if v.get("p50_ms") is not None}
    return out


def component_latency_bars(timings: Mapping[str, Mapping[str, float]], *, title: str | None = None) -> go.Figure:
    """Stacked horizontal bars: one bar per pipeline, one segment per component, milliseconds written in."""
    names = list(timings)
    components: list[str] = []
    for parts in timings.values():
        components.extend(c for c in parts if c not in components)
    if not components:
        return _empty("no component timings")
    fig = go.Figure()
    for i, component in enumerate(components):
        values = [timings[n].get(component, 0.0) for n in names]
        fig.add_trace(
            go.Bar(
                y=names,
                x=values,
                name=component,
                orientation="h",
                marker_color=COMPONENT_COLORS.get(component, SERIES_COLORS[(i + 3) % len(SERIES_COLORS)]),
                text=[f"{v:.1f} ms" if v else "" for v in values],
                textposition="inside",
                insidetextanchor="middle",
                textangle=0,
                hovertemplate=f"{component}: " + "%{x:.1f} ms<extra>%{y}</extra>",
            )
        )
    totals = [sum(timings[n].values()) for n in names]
    fig.add_trace(
        go.Scatter(
            y=names,
            x=totals,
            mode="text",
            text=[f"  {t:.1f} ms" for t in totals],
            textposition="middle right",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        barmode="stack",
        height=130 + 60 * len(names),
        margin=_MARGIN,
        title=title,
        xaxis={"title": "milliseconds", "range": [0, max(totals) * 1.2 if max(totals) > 0 else 1]},
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "traceorder": "normal"},
        uniformtext={"minsize": 10, "mode": "hide"},
    )
    return fig


# ---------------------------------------------------------------------------------------------------- training


def _series(log: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    steps, values = [], []
    for row in log:
        value = row.get(key)
        if isinstance(value, int | float) and row.get("step") is not None and not math.isnan(float(value)):
            steps.append(row["step"])
            values.append(float(value))
    return steps, values


def _curve_layout(fig: go.Figure, y_title: str, empty_message: str) -> go.Figure:
    """The shared look of the training-curve figures, or a placeholder when no row had the series."""
    if not fig.data:
        return _empty(empty_message)
    fig.update_layout(
        height=340,
        margin=_MARGIN,
        xaxis_title="step",
        yaxis_title=y_title,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    )
    return fig


def log_keys(log: Sequence[Mapping[str, Any]], prefix: str) -> list[str]:
    keys: list[str] = []
    for row in log:
        keys.extend(k for k in row if k.startswith(prefix) and k not in keys)
    return keys


def loss_curves(log: Sequence[Mapping[str, Any]]) -> go.Figure:
    """The total loss (thick) and each loss term (``loss/<name>``) over training steps."""
    keys = [k for k in log_keys(log, "loss") if k == "loss" or k.startswith("loss/")]
    fig = go.Figure()
    for i, key in enumerate(keys):
        steps, values = _series(log, key)
        if not steps:
            continue
        total = key == "loss"
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=values,
                mode="lines",
                name="total loss" if total else key.removeprefix("loss/"),
                line={
                    "width": 3 if total else 1.8,
                    "color": "#333" if total else SERIES_COLORS[i % len(SERIES_COLORS)],
                },
            )
        )
    return _curve_layout(fig, "loss", "no loss rows in train_log.jsonl")


def dev_curves(log: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Dev metrics (``dev/<metric>``) over steps; the teacher's (``dev/teacher_<metric>``) as dashed references, and,
    for a run with a weight average, the raw weights' scores (``dev_raw/<metric>``) dotted in the same colour."""
    keys = log_keys(log, "dev/")
    fig = go.Figure()
    students = [k for k in keys if not k.startswith("dev/teacher_")]
    for i, key in enumerate(students):
        steps, values = _series(log, key)
        if steps:
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name=key[4:], line={"color": color}))
            metric = key[4:]
            for series, name, dash in (
                (f"dev_raw/{metric}", f"{metric} (raw weights)", "dot"),
                (f"dev/teacher_{metric}", f"teacher {metric}", "dash"),
            ):
                r_steps, r_values = _series(log, series)
                if r_steps:
                    fig.add_trace(
                        go.Scatter(x=r_steps, y=r_values, mode="lines", name=name, line={"color": color, "dash": dash})
                    )
    for key in keys:
        if key.startswith("dev/teacher_") and "dev/" + key[len("dev/teacher_") :] not in students:
            steps, values = _series(log, key)
            if steps:
                fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=key[4:], line={"dash": "dash"}))
    return _curve_layout(fig, "score", "no dev rows (dev/...) in train_log.jsonl")


# ---------------------------------------------------------------------------------------------------- per question


def rules_for(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """The rules that apply to these pipelines, the default first: ``answer`` leads when every named pipeline has a
    reader (its rows carry ``em``); retrievers get ``top1`` and ``top10``."""
    runs = [(row.get("runs") or {}).get(n) for row in rows[:1] for n in names]
    readers = bool(runs) and all(r is not None and "em" in r for r in runs)
    return ["answer", "top1", "top10"] if readers else ["top1", "top10"]


def is_right(run: Mapping[str, Any] | None, rule: str) -> bool | None:
    """Whether one pipeline's row for one question is right under ``rule`` (None when the rule does not apply)."""
    if rule not in RIGHT_RULES:
        raise ValueError(f"rule must be one of {sorted(RIGHT_RULES)}, got {rule!r}")
    if run is None:
        return None
    if rule == "answer":
        if "em" not in run:
            return None
        return bool(run.get("em") == 1 or (run.get("f1") or 0.0) >= F1_RIGHT)
    rank = run.get("rank")
    return rank is not None and rank <= (1 if rule == "top1" else 10)


def _outcome(a: bool | None, b: bool | None) -> str | None:
    if a is None or b is None:
        return None
    return BOTH if a and b else NEITHER if not a and not b else REFERENCE_ONLY if a else OTHER_ONLY


def question_outcomes(rows: Sequence[Mapping[str, Any]], reference: str, other: str, rule: str) -> pd.DataFrame:
    """One row per question: both pipelines' ranks (and answers), whether each is right, and the outcome
    (``both right``, ``both wrong``, ``reference only``, ``other only``)."""
    records = []
    for row in rows:
        runs = row.get("runs") or {}
        a, b = runs.get(reference), runs.get(other)
        right_a, right_b = is_right(a, rule), is_right(b, rule)
        record = {
            "id": row.get("id"),
            "question": row.get("question"),
            "gold answer": " | ".join(dict.fromkeys(row.get("answers") or [])),
            f"{reference} rank": (a or {}).get("rank"),
            f"{other} rank": (b or {}).get("rank"),
        }
        if rule == "answer":
            record[f"{reference} answer"] = (a or {}).get("answer")
            record[f"{other} answer"] = (b or {}).get("answer")
            record[f"{reference} F1"] = (a or {}).get("f1")
            record[f"{other} F1"] = (b or {}).get("f1")
        record.update({f"{reference} right": right_a, f"{other} right": right_b, "outcome": _outcome(right_a, right_b)})
        records.append(record)
    frame = pd.DataFrame(records)
    if frame.empty:
        return frame
    for column in (f"{reference} rank", f"{other} rank"):
        frame[column] = frame[column].astype("Int64")
    return frame


def agreement_questions(rows: Sequence[Mapping[str, Any]], name: str) -> pd.DataFrame:
    """One row per question: ``name``'s agreement with the reference's top 10 (from ``questions.jsonl``), the
    questions it agrees with least first."""
    keys = [m.key for m in AGREEMENT_METRICS]
    records = []
    for row in rows:
        agreement = ((row.get("runs") or {}).get(name) or {}).get("agreement")
        if agreement:
            labels = {m.key: m.label for m in AGREEMENT_METRICS}
            records.append(
                {"id": row.get("id"), "question": row.get("question"), **{labels[k]: agreement.get(k) for k in keys}}
            )
    frame = pd.DataFrame(records)
    if frame.empty:
        return frame
    return frame.sort_values(AGREEMENT_METRICS[1].label, kind="stable").reset_index(drop=True)


def filter_outcomes(frame: pd.DataFrame, keep: Sequence[str]) -> pd.DataFrame:
    """Rows whose outcome is in ``keep``; disagreements are ``[REFERENCE_ONLY, OTHER_ONLY]``."""
    if frame.empty:
        return frame
    return frame[frame["outcome"].isin(list(keep))].reset_index(drop=True)


def outcome_counts(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["outcome"].value_counts() if not frame.empty else pd.Series(dtype=int)
    return {k: int(counts.get(k, 0)) for k in (REFERENCE_ONLY, OTHER_ONLY, BOTH, NEITHER)}


# ---------------------------------------------------------------------------------------------------- students

METRIC_GROUPS = {"teacher_dev": "teacher", "untrained_dev": "before distillation", "dev": "distilled student"}


def _numbers(values: Any) -> dict[str, float]:
    if not isinstance(values, Mapping):
        return {}
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def student_metrics_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """A student's metrics.json as one row per metric and one column per group: teacher, before distillation,
    distilled student (``teacher_dev``, ``untrained_dev``, ``dev``), then any other ``*_dev`` group."""
    groups = [g for g in METRIC_GROUPS if _numbers(metrics.get(g))]
    groups += [g for g in metrics if g not in METRIC_GROUPS and g.endswith("_dev") and _numbers(metrics[g])]
    frame = pd.DataFrame({METRIC_GROUPS.get(g, g): pd.Series(_numbers(metrics[g])) for g in groups})
    frame.index.name = "metric"
    return frame


def student_cards(metrics: Mapping[str, Any]) -> list[Card]:
    """The distilled student's dev metrics with their gain over the undistilled student, then training cost.

    Without a ``dev`` group, every top-level number and every number one level down becomes a plain card.
    """
    dev, before, teacher = (_numbers(metrics.get(g)) for g in ("dev", "untrained_dev", "teacher_dev"))
    if not dev:
        flat = dict(_numbers(metrics))
        for group, values in metrics.items():
            flat.update({f"{group}.{k}": v for k, v in _numbers(values).items()})
        return [Card(k, f"{v:.4g}") for k, v in list(flat.items())[:12]]
    cards = []
    for key, value in dev.items():
        delta, color = (None, "normal")
        if key in before:
            delta, color = _delta(value, before[key], "{:.3f}", "", "normal")
        notes = [
            f"{name} {group[key]:.3f}" for name, group in (("teacher", teacher), ("before", before)) if key in group
        ]
        cards.append(Card(key, f"{value:.3f}", delta, color, " · ".join(notes) or None))
    train = _numbers(metrics.get("train"))
    if "seconds" in train:
        cards.append(Card("Training time", f"{train['seconds']:.0f} s"))
    if "examples_per_s" in train:
        cards.append(Card("Examples/s", f"{train['examples_per_s']:.1f}"))
    if isinstance(metrics.get("best_step"), int):
        cards.append(Card("Best step", str(metrics["best_step"])))
    return cards
