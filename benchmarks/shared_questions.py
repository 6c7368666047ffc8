"""Reader pipelines from evaluation runs over different but overlapping question samples, compared on the questions
they share: EM, F1, where the top answer came from and the no-answer rate of each pipeline over those questions, and
each one's F1 minus ``--versus``'s with the paired bootstrap of ``distill report`` (same resamples, same seed).

``distill report A B`` compares runs over the *same* questions. A 12-layer reader over 10 retrieved passages costs
seconds a question on a CPU, so its end-to-end run may hold fewer questions than its students' (``--questions 300``
against 1,000, seed 0: SQuAD's seeded sample of 300 is the first 300 of the 1,000). An answer and its F1 do not
depend on the run, so the students' rows on the shared questions compare with the teacher's question by question;
latencies do not (other runs, other machine load) and are left out.

    python -m benchmarks.shared_questions runs/reader-negatives-eval-e2e runs/reader-negatives-minilm-eval-e2e \\
      --versus negatives-margin --out benchmarks/results/squad-dev-reader-negatives-e2e-shared.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.common import command_line
from distill.common import metrics
from distill.errors import DistillError
from distill.evaluation.report import answer_sources, load_questions, load_report


def shared_rows(paths: list[str | Path]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The per-question rows of every run, restricted to the question ids all of them hold and merged (each row's
    ``runs`` holds every pipeline of every run), in the first run's question order, and the reports themselves by
    path. The runs must share the data set's source and passages, the context and, on every shared question, its gold
    passages and answers; pipeline names must be unique."""
    reports = {str(p): load_report(p) for p in paths}
    first = next(iter(reports.values()))
    for path, report in reports.items():
        for key in ("source", "documents"):
            if report.get("dataset", {}).get(key) != first.get("dataset", {}).get(key):
                raise DistillError(f"{path} was not evaluated on the same data set as {paths[0]} (dataset {key})")
        if report.get("context") != first.get("context"):
            raise DistillError(
                f"{path} read with context {report.get('context')!r}, {paths[0]} with {first.get('context')!r}"
            )
    names = [n for r in reports.values() for n in r["pipelines"]]
    if len(set(names)) != len(names):
        raise DistillError(f"a pipeline name repeats across the runs ({', '.join(names)}); each must be unique")
    tables = []
    for path in paths:
        rows = load_questions(path)
        if rows is None:
            raise DistillError(f"{path} has no questions.jsonl beside its report: per-question results are needed")
        tables.append({row["id"]: row for row in rows})
    shared = [i for i in tables[0] if all(i in t for t in tables[1:])]
    if not shared:
        raise DistillError(f"the runs share no question: {', '.join(map(str, paths))}")
    for path, table in zip(paths[1:], tables[1:]):
        for i in shared:
            if any(table[i].get(k) != tables[0][i].get(k) for k in ("gold_doc_ids", "answers")):
                raise DistillError(f"{path} and {paths[0]} judge question {i} against other gold passages or answers")
    merged = [
        {**tables[0][i], "runs": {name: run for t in tables for name, run in t[i]["runs"].items()}} for i in shared
    ]
    return merged, reports


def compare(paths: list[str | Path], versus: str, *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    rows, reports = shared_rows(paths)
    pipelines = {name: p for r in reports.values() for name, p in r["pipelines"].items()}
    if versus not in pipelines:
        raise DistillError(f"no pipeline named {versus!r} in these runs; they have: {', '.join(pipelines)}")
    sources = answer_sources({"context": next(iter(reports.values())).get("context"), "pipelines": pipelines}, rows)
    out: dict[str, Any] = {"questions": len(rows), "runs": list(reports), "versus": versus, "pipelines": {}}
    f1 = {name: [q["runs"][name].get("f1", 0.0) for q in rows] for name in pipelines}
    for name in pipelines:
        entry = {
            "exact_match": 100 * sum(q["runs"][name].get("em", 0.0) for q in rows) / len(rows),
            "f1": 100 * sum(f1[name]) / len(rows),
            **({"answer_sources": sources[name]} if name in sources else {}),
        }
        if name != versus:
            d = metrics.paired_bootstrap_difference(f1[versus], f1[name], resamples=resamples, seed=seed)
            entry["f1_minus_versus"] = {k: (100 * v if k in ("difference", "low", "high") else v) for k, v in d.items()}
        out["pipelines"][name] = entry
    return out


def lines(result: dict[str, Any]) -> str:
    out = [f"{result['questions']} questions shared by {', '.join(result['runs'])}"]
    for name, p in result["pipelines"].items():
        line = f"{name}: EM {p['exact_match']:.1f}, F1 {p['f1']:.1f}"
        s = p.get("answer_sources")
        if s:
            line += f"; answer from a gold passage on {s['from_gold']}, no-answer first on {s['no_answer_first']}"
        d = p.get("f1_minus_versus")
        if d:
            line += (
                f"; F1 minus {result['versus']} {d['difference']:+.2f} (95% CI {d['low']:+.2f} to {d['high']:+.2f}; "
                f"better on {d['better']}, worse on {d['worse']})"
            )
        out.append(line)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="eval run folders (or their report.json), each with questions.jsonl")
    parser.add_argument("--versus", required=True, help="the pipeline every other one's F1 is compared with")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        result = compare(args.runs, args.versus)
    except DistillError as e:
        parser.exit(2, f"error: {e}\n")
    report = {"command": command_line("benchmarks.shared_questions", argv), **result}
    print(lines(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
