"""Read, merge and print evaluation reports: the tables (relevance, and agreement with a reference pipeline), the
paired bootstrap lines, where answers came from.

A report is what :func:`distill.evaluation.runner.evaluate` writes: ``report.json`` (settings, machine, per-pipeline
quality, latency and models) and ``questions.jsonl`` (every question's result in every pipeline). Nothing here imports
Haystack or runs a model, so the CLI's ``report`` command, the UI and the model cards stay cheap to import.

Why one module over 400 lines: one report format, and everything that reads it (the tables, the bootstrap lines,
the merge of several runs with their pipelines' names) must agree on its sections and names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from distill.common import metrics
from distill.common.files import read_text
from distill.common.outputs import write_atomic
from distill.errors import DistillError


def pipeline_of(report: dict[str, Any], name: str) -> str:
    """The pipeline whose run a report row comes from: the row itself, or for an embedding list scored beside a
    pipeline's own (``teacher [embedding_retriever]``), that pipeline."""
    return (report["pipelines"][name].get("scored") or {}).get("of") or name


def counterpart(report: dict[str, Any], name: str, pipeline: str) -> str | None:
    """The row of ``pipeline`` that scores the same kind of list as row ``name``, so that comparisons are like with
    like: a pipeline's own list against another's own list; an embedding retriever's list against the other's
    embedding retriever list, which is its own list where it has no other (None: it has none)."""
    pipelines = report["pipelines"]
    scored = pipelines[name].get("scored") or {}
    if not scored.get("of"):
        return pipeline
    for other, entry in pipelines.items():
        theirs = entry.get("scored") or {}
        if theirs.get("of") == pipeline and theirs.get("role") == scored.get("role"):
            return other
    own = pipelines[pipeline].get("scored") or {}
    return pipeline if own.get("role") == scored.get("role") else None


# Per-question scores that a paired bootstrap compares: the report's section and key, and how to read a question's.
_PER_QUESTION: dict[str, tuple[str, Callable[[dict[str, Any], dict[str, Any]], float]]] = {
    "ndcg@10": (
        "quality",
        lambda q, run: metrics.ndcg_at_k(run.get("retrieved", []), q["gold_doc_ids"], 10, q.get("gold_grades")),
    ),
    "f1": ("quality", lambda q, run: run.get("f1", 0.0)),
    "overlap@10": ("agreement", lambda q, run: run["agreement"]["overlap@10"]),
    "silver_ndcg@10": ("agreement", lambda q, run: run["agreement"]["silver_ndcg@10"]),
}


def _paired_scores(
    report: dict[str, Any], per_question: list[dict[str, Any]], reference: str, name: str, *, agreement: bool = False
) -> dict[str, tuple[list[float], list[float]]]:
    """Per-question scores of ``reference`` and ``name`` for every key both report, in question order; agreement
    keys only with ``agreement`` and where both agree with the same third pipeline (against itself a reference's
    agreement is 1 by definition)."""
    out = {}
    pipelines = report["pipelines"]
    ours, theirs = (pipelines[n].get("agreement", {}).get("reference") for n in (reference, name))
    for key, (section, score) in _PER_QUESTION.items():
        if section == "agreement" and (not agreement or ours is None or ours != theirs or reference == ours):
            continue
        if key not in pipelines[reference].get(section, {}) or key not in pipelines[name].get(section, {}):
            continue
        runs = [(q, q["runs"].get(reference), q["runs"].get(name)) for q in per_question]
        if any(a is None or b is None for _, a, b in runs):
            raise DistillError(f"per-question results lack a run of {reference!r} or {name!r}")
        if section == "agreement" and any("agreement" not in a or "agreement" not in b for _, a, b in runs):
            continue  # rows merged from a report written before agreement existed
        out[key] = ([score(q, a) for q, a, _ in runs], [score(q, b) for q, _, b in runs])
    return out


def relative_quality(
    report: dict[str, Any], per_question: list[dict[str, Any]], *, resamples: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """What share of the first pipeline's nDCG@10 and F1 each other pipeline keeps, with a 95% paired bootstrap
    interval over the questions (:func:`distill.common.metrics.paired_bootstrap_ratio`): is a student's gap to its
    teacher larger than the noise of this question sample? An embedding retriever's list is measured against the
    first pipeline's embedding retriever list (:func:`counterpart`)."""
    names = list(report["pipelines"])
    if len(names) < 2:
        return {}
    first = names[0]
    out: dict[str, dict[str, Any]] = {}
    for name in names[1:]:
        reference = counterpart(report, name, pipeline_of(report, first))
        if reference is None or reference == name:
            continue
        entry: dict[str, Any] = {"reference": reference}
        for key, (ref_scores, scores) in _paired_scores(report, per_question, reference, name).items():
            if sum(ref_scores) <= 0:
                continue
            entry[key] = metrics.paired_bootstrap_ratio(ref_scores, scores, resamples=resamples, seed=seed)
        if len(entry) > 1:
            out[name] = entry
    return out


def paired_differences(
    report: dict[str, Any],
    per_question: list[dict[str, Any]],
    versus: str,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """How far each other pipeline's nDCG@10 and F1 (and its agreement with a third pipeline, the teacher: overlap@10
    and silver nDCG@10) lie from pipeline ``versus``'s on the same questions, in points, with a 95% paired bootstrap
    interval (:func:`distill.common.metrics.paired_bootstrap_difference`): does one student beat another by more than
    the noise of this question sample? An embedding retriever's list is set against ``versus``'s
    (:func:`counterpart`)."""
    names = list(report["pipelines"])
    if versus not in names:
        raise DistillError(f"no pipeline named {versus!r} in this report; it has: {', '.join(names)}")
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        reference = counterpart(report, name, pipeline_of(report, versus))
        if reference is None or reference == name:
            continue
        entry: dict[str, Any] = {"reference": reference}
        for key, (ref_scores, scores) in _paired_scores(report, per_question, reference, name, agreement=True).items():
            entry[key] = metrics.paired_bootstrap_difference(ref_scores, scores, resamples=resamples, seed=seed)
            if _PER_QUESTION[key][0] == "agreement":
                entry["agreement_reference"] = report["pipelines"][name]["agreement"]["reference"]
        if len(entry) > 1:
            out[name] = entry
    return out


def answer_sources(report: dict[str, Any], per_question: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Where each reader pipeline took its top answer from, end to end: on how many questions a gold passage, the
    mean F1 on those questions, the mean score of the top answer, and on how many the reader's no-answer ranked
    first (the pipeline's user sees no answer; F1 still scores the best real one). Readers that read well but rank
    answers across passages badly show here: few answers from a gold passage, good F1 on them. Empty for a
    gold-context report (there the only passage is the gold one)."""
    if report.get("context") == "gold":
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, pipeline in report["pipelines"].items():
        if "f1" not in pipeline["quality"]:
            continue
        runs = [(q, q["runs"].get(name)) for q in per_question]
        if any(r is None for _, r in runs):
            raise DistillError(f"per-question results lack a run of {name!r}")
        gold = [r for q, r in runs if r.get("answer_doc") is not None and r["answer_doc"] in q["gold_doc_ids"]]
        scores = [r["answer_score"] for _, r in runs if r.get("answer_score") is not None]
        # reports written before the no-answer was recorded lack it: None, not a rate of zero
        no_answer = sum(bool(r["no_answer"]) for _, r in runs) if all("no_answer" in r for _, r in runs) else None
        out[name] = {
            "no_answer_first": no_answer,
            "from_gold": len(gold),
            "questions": len(runs),
            "f1_from_gold": 100 * sum(r.get("f1", 0.0) for r in gold) / len(gold) if gold else None,
            "mean_answer_score": sum(scores) / len(scores) if scores else None,
        }
    return out


def answer_source_lines(sources: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, s in sources.items():
        f1 = f", F1 {s['f1_from_gold']:.1f} on those" if s["f1_from_gold"] is not None else ""
        score = f"; mean top-answer score {s['mean_answer_score']:.3f}" if s["mean_answer_score"] is not None else ""
        none = s.get("no_answer_first")
        refused = f"; no-answer ranked first on {none} ({100 * none / s['questions']:.1f}%)" if none is not None else ""
        lines.append(
            f"{name}: answer from a gold passage on {s['from_gold']} of {s['questions']} questions{f1}{score}{refused}"
        )
    return "\n".join(lines)


# The keys that a paired bootstrap compares, as the comparison tables name them.
_LABELS = {m.key: m.short for m in (*metrics.QUALITY_METRICS, *metrics.AGREEMENT_METRICS) if m.key in _PER_QUESTION}


def _bootstrap_lines(entries: dict[str, dict[str, Any]], sign: str, part: Callable[[dict[str, Any]], str]) -> str:
    """One line per pipeline: ``NAME SIGN REFERENCE: nDCG@10 ..., F1 ...; paired bootstrap over N questions``."""
    lines = []
    for name, entry in entries.items():
        shown = {key: r for key, r in entry.items() if key in _LABELS}
        with_ref = f" (agreement with {entry.get('agreement_reference')})"
        parts = ", ".join(
            f"{_LABELS[key]}{with_ref if _PER_QUESTION[key][0] == 'agreement' else ''} {part(r)}"
            for key, r in shown.items()
        )
        n = next(iter(shown.values()))["questions"]
        lines.append(f"{name} {sign} {entry['reference']}: {parts}; paired bootstrap over {n} questions")
    return "\n".join(lines)


def _estimate(result: dict[str, Any], key: str, number: str, between: str, unit: str = "", note: str = "") -> str:
    """``VALUE<unit> (95% CI LOW<between>HIGH<unit><note>)``, each number times 100 in format ``number``."""
    value, low, high = (number.format(100 * result[k]) for k in (key, "low", "high"))
    return f"{value}{unit} ({100 * result['confidence']:.0f}% CI {low}{between}{high}{unit}{note})"


def difference_lines(differences: dict[str, dict[str, Any]]) -> str:
    """The lines of :func:`paired_differences`: ``student - teacher: nDCG@10 -1.20 (95% CI ...; better on ...)``."""

    def part(d: dict[str, Any]) -> str:
        return _estimate(d, "difference", "{:+.2f}", " to ", note=f"; better on {d['better']}, worse on {d['worse']}")

    return _bootstrap_lines(differences, "-", part)


def relative_lines(relative: dict[str, dict[str, Any]]) -> str:
    """The lines of :func:`relative_quality`: ``student / teacher: nDCG@10 95.5% (95% CI 92.0-99.0%), ...``."""
    return _bootstrap_lines(relative, "/", lambda r: _estimate(r, "ratio", "{:.1f}", "-", unit="%"))


def write_report(report: dict[str, Any], per_question: list[dict[str, Any]], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    write_atomic(out_dir / "questions.jsonl", "".join(json.dumps(row) + "\n" for row in per_question))


def load_questions(report_path: str | Path) -> list[dict[str, Any]] | None:
    """The per-question results written beside a report (``questions.jsonl``), or None when there are none."""
    path = Path(report_path)
    path = (path if path.is_dir() else path.parent) / "questions.jsonl"
    if not path.exists():
        return None
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise DistillError(f"{path} is not valid JSON lines: {e}") from None


def load_report(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    text = read_text(path, "report", f": run `distill eval ... --out {path.parent}` first")
    try:
        report = json.loads(text)
    except json.JSONDecodeError as e:
        raise DistillError(f"report {path} is not valid JSON: {e}") from None
    if not isinstance(report, dict) or not isinstance(report.get("pipelines"), dict):
        raise DistillError(f"report {path} has no 'pipelines' section: is it a `distill eval` report?")
    return report


def split_label(spec: str | Path) -> tuple[str | None, Path]:
    """``LABEL=PATH`` -> (LABEL, PATH); a plain path (or one that exists as written) -> (None, path)."""
    label, sep, path = str(spec).partition("=")
    plain = not sep or not label or "/" in label or Path(str(spec)).exists()
    return (None, Path(str(spec))) if plain else (label, Path(path))


def _labelled(report: dict[str, Any], rows: list[dict[str, Any]] | None, label: str | None):
    """A report and its rows with every pipeline NAME read as ``LABEL/NAME``, agreement references included, so that
    two ``distill adapt`` runs (each with its teacher, off-the-shelf and distilled) merge."""
    if label is None:
        return report, rows
    named = {
        section: {f"{label}/{name}": dict(entry) for name, entry in report[section].items()}
        for section in ("pipelines", "relative", "differences")
        if isinstance(report.get(section), dict)
    }
    for entry in (e for section in named.values() for e in section.values()):  # references name pipelines too
        for key in ("reference", "agreement_reference"):
            if entry.get(key) is not None:
                entry[key] = f"{label}/{entry[key]}"
        if (against := (entry.get("agreement") or {}).get("reference")) is not None:
            entry["agreement"] = {**entry["agreement"], "reference": f"{label}/{against}"}
    rows = None if rows is None else [{**r, "runs": {f"{label}/{n}": v for n, v in r["runs"].items()}} for r in rows]
    return {**report, **named}, rows


def merge_reports(paths: Sequence[str | Path]) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """One report (and its per-question rows) from several ``distill eval`` runs over the same questions, so that
    pipelines evaluated apart can be compared question by question: the first report's pipelines come first (its
    first is the reference of the shares), then each next report's. The runs must share the data set (by
    fingerprint), the context and the question ids, and no pipeline name may repeat (``LABEL=PATH``: that report's
    as ``LABEL/NAME``). Latencies stay as each run measured them (runs apart may have met another machine load)."""
    given, specs = [str(p) for p in paths], [split_label(p) for p in paths]
    paths = [path for _, path in specs]
    loaded = [_labelled(load_report(p), load_questions(p), label) for label, p in specs]
    if len(paths) == 1:
        return loaded[0]
    reports = [report for report, _ in loaded]
    first, first_path = reports[0], paths[0]
    merged = {**first, "pipelines": {}, "merged_from": given}
    merged.pop("relative", None)
    merged.pop("differences", None)
    for path, report in zip(paths, reports):
        for key in ("fingerprint", "questions"):
            if report.get("dataset", {}).get(key) != first.get("dataset", {}).get(key):
                raise DistillError(
                    f"{path} and {first_path} were not evaluated on the same questions (dataset {key} "
                    f"{report.get('dataset', {}).get(key)} against {first.get('dataset', {}).get(key)})"
                )
        judged = [r.get("dataset", {}).get("judgements") for r in (report, first)]
        if None not in judged and judged[0] != judged[1]:  # reports older than the judgements' fingerprint lack it
            raise DistillError(
                f"{path} and {first_path} judged the same questions against other gold labels (judgements "
                f"{judged[0]} against {judged[1]}): their relevance figures do not compare"
            )
        if report.get("context") != first.get("context"):
            raise DistillError(
                f"{path} read with context {report.get('context')!r}, {first_path} with {first.get('context')!r}"
            )
        for name, entry in report["pipelines"].items():
            if name in merged["pipelines"]:
                raise DistillError(
                    f"pipeline {name!r} is in more than one of the reports; each name must be unique "
                    "(LABEL=REPORT names a report's pipelines LABEL/NAME)"
                )
            merged["pipelines"][name] = entry
    rows = [r for _, r in loaded]
    if any(r is None for r in rows):
        return merged, None
    by_id = [{row["id"]: row for row in r} for r in rows]
    for path, table in zip(paths[1:], by_id[1:]):
        if set(table) != set(by_id[0]):
            raise DistillError(f"{path} and {first_path} hold different question ids in questions.jsonl")
    questions = [
        {**row, "runs": {name: run for table in by_id for name, run in table[row["id"]]["runs"].items()}}
        for row in rows[0]
    ]
    return merged, questions


# (quality key, column, format) of the CLI's comparison table, from the one table of metric names.
TABLE_METRICS = [(m.key, m.short, m.fmt) for m in metrics.QUALITY_METRICS if m.short is not None]


def comparison_table(report: dict[str, Any], *, markdown: bool = False) -> str:
    """The report's pipelines side by side: quality, latency, speed-up against the first pipeline, size."""
    pipelines = report["pipelines"]
    names = list(pipelines)
    present = [m for m in TABLE_METRICS if any(m[0] in p["quality"] for p in pipelines.values())]
    header = ["pipeline", *[label for _, label, _ in present], "p50 ms", "p95 ms", "speed-up", "params (M)"]
    base_p50 = pipelines[names[0]]["latency"]["query"]["p50_ms"]
    rows = []
    for name in names:
        p = pipelines[name]
        lat = p["latency"]["query"]
        params = sum(m.get("parameters", 0) for m in p["models"].values()) / 1e6
        rows.append(
            [
                name,
                *[fmt.format(p["quality"][key]) if key in p["quality"] else "-" for key, _, fmt in present],
                f"{lat['p50_ms']:.1f}",
                f"{lat['p95_ms']:.1f}",
                f"{base_p50 / lat['p50_ms']:.2f}x",
                f"{params:.1f}",
            ]
        )
    return format_table(header, rows, markdown=markdown)


def format_table(header: list[str], rows: list[list[str]], *, markdown: bool = False) -> str:
    """A Markdown table, or a fixed-width one (first column left-aligned, the others right-aligned)."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(r: list[str]) -> str:
        return "  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(r, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *[line(r) for r in rows]])


def agreement_reference(report: dict[str, Any]) -> str | None:
    """The reference that the report's agreement figures were measured against (the first one named), or None."""
    return next((p["agreement"]["reference"] for p in report["pipelines"].values() if p.get("agreement")), None)


def agreement_table(report: dict[str, Any], *, markdown: bool = False) -> str:
    """Each pipeline's agreement with its reference (:mod:`distill.evaluation.agreement`), one table per reference
    (merged
    reports may hold several) under a line that names it and says what the figures are; empty without any."""
    by_reference: dict[str, list[str]] = {}
    for name, entry in report["pipelines"].items():
        if entry.get("agreement"):
            by_reference.setdefault(entry["agreement"]["reference"], []).append(name)
    blocks = []
    for reference, names in by_reference.items():
        header = ["pipeline", *(m.short or m.key for m in metrics.AGREEMENT_METRICS)]
        rows = []
        for name in names:
            entry = report["pipelines"][name]["agreement"]
            cells = [m.fmt.format(entry[m.key]) if m.key in entry else "-" for m in metrics.AGREEMENT_METRICS]
            rows.append([f"{name} (reference)" if name == reference else name, *cells])
        title = (
            f"agreement with {reference}, top 10 of each question (overlap: share of {reference}'s top 10 retrieved; "
            f"silver nDCG: {reference}'s ranks 1-10 as gains 10-1; rank corr: Spearman over both top 10s, a missing "
            "document at rank 11)"
        )
        blocks.append(title + "\n" + format_table(header, rows, markdown=markdown))
    return "\n\n".join(blocks)


def scored_lines(report: dict[str, Any]) -> str:
    """Which list each pipeline's row scored, one line per pipeline; empty where every pipeline scored its one
    retriever's list (the plain embedder -> retriever [-> reader] pipelines: nothing to say)."""
    entries = {n: e.get("scored") for n, e in report["pipelines"].items()}
    if all(s is None or (s.get("role") == "retriever" and not s.get("of")) for s in entries.values()):
        return ""
    lines = []
    for name, scored in entries.items():
        if scored is None:
            continue
        if scored.get("of"):
            what = f"the list of embedding retriever {scored['component']!r} in {scored['of']!r}, in the same run"
        else:
            into = f", the list entering {scored['into']!r}" if scored.get("into") else ", the pipeline's output"
            what = f"the documents of {scored['component']!r} ({scored.get('role') or 'a component'}{into})"
        lines.append(f"{name}: scored {what}")
    return "\n".join(lines)


def component_table(report: dict[str, Any]) -> str:
    lines = []
    for name, p in report["pipelines"].items():
        parts = [f"{c} {v['p50_ms']:.1f}" for c, v in p["latency"]["components"].items()]
        lines.append(f"{name}: per-component p50 ms: " + ", ".join(parts))
    return "\n".join(lines)
