"""One frontier: every way to serve the teacher's retrieval pipeline faster, on the fixed benchmark, in one run.

SQuAD dev (all 2,067 paragraphs, 2,000 seeded questions, top 10, the vectorised retriever): the fp32 teacher (the
reference of every share and speed-up) and any number of named pipelines, each ``--fp32 NAME=MODEL`` (any
sentence-transformers folder or offline source: off-the-shelf, distilled, static), ``--int8 NAME=MODEL`` (its
``distill export``, served by ``distill.components.onnx_embedders``) or ``--query-only NAME=MODEL`` (the text embedder
alone;
documents keep the teacher's index), in the order given (:mod:`benchmarks.lineup`). A model that is not here is skipped
with a printed line. One ``distill eval`` measures them all, interleaved; then the report gets

- ``frontier``: each pipeline's nDCG@10, p50, speed-up and share of the teacher, and whether it is on the Pareto front;
- ``overhead``: the pipeline named by ``--overhead`` (default ``distilled``) timed against its own model's encode
  (:mod:`benchmarks.probes.overhead`, its own interleaved loop after the evaluation);
- ``targets``: issue 22's targets, each met or missed with the measured figures (or not measured: pipeline absent);

and is copied to ``--out`` with the frontier drawn beside it (``.svg``, log latency axis). ``make bench-speed`` runs
the issue's whole lineup on a quiet machine; ``--questions 200 --articles 10`` gives a quick look.

    python -m benchmarks.speed --int8 teacher-int8=sentence-transformers/all-mpnet-base-v2 --fp32 minilm-l6=minilm-l6 \\
        --int8 minilm-l6-int8=minilm-l6 [--query-only static-query-only=FOLDER ...] [--questions N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.frontier import frontier_points, frontier_svg
from benchmarks.lineup import KINDS, Entry, add_eval_args, copy_report, evaluate, present, system, teacher_system
from distill.common.outputs import write_atomic
from distill.data.datasets import load_dataset
from distill.evaluation.report import load_questions, paired_differences

DEFAULT_OUT = Path("benchmarks/results/squad-dev-retrieval-speed.json")
METRIC = "ndcg@10"

# Issue 22's targets: (pipeline, least share of the teacher's nDCG@10, least speed-up of the teacher's p50, a pipeline
# whose nDCG@10 it must clearly beat: the lower end of the paired 95% interval of the difference above zero).
TARGETS: list[tuple[str, float, float, str | None]] = [
    ("distilled-int8", 0.985, 8.0, None),
    ("static", 0.90, 40.0, "static-untrained"),
    ("static-query-only", 0.95, 25.0, None),
]
# Other builds held to a target's line when a run has them (no row when absent): the static student at the teacher's
# full width (recipes/embedder-squad-static-768.yaml), beside the 256-d one the issue names.
VARIANTS = {"static-768": "static"}


def _entry(kind: str):
    def parse(text: str) -> Entry:
        name, sep, model = text.partition("=")
        if not sep or not name or not model:
            raise argparse.ArgumentTypeError(f"give NAME=MODEL, got {text!r}")
        if name == "teacher":
            raise argparse.ArgumentTypeError("'teacher' is the fp32 reference every run has; name the model otherwise")
        return Entry(name, model, kind)

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for kind in KINDS:
        p.add_argument(f"--{kind}", dest="entries", action="append", type=_entry(kind), metavar="NAME=MODEL")
    add_eval_args(p, "runs/speed")
    p.add_argument("--overhead", default="distilled", help="pipeline timed against its model's encode ('' for none)")
    p.add_argument("--overhead-questions", type=int, default=300)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the report is copied (the .svg beside it)")
    return p.parse_args(argv)


def check_targets(report: dict[str, Any], per_question: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Every target of :data:`TARGETS` (and the overhead's) against what this report measured."""
    points = {p["pipeline"]: p for p in frontier_points(report, METRIC)}
    lines = {target[0]: target for target in TARGETS}
    variants = [(name, *lines[of][1:]) for name, of in VARIANTS.items() if name in points]
    out = []
    for name, share, speed_up, beats in TARGETS + variants:
        wanted = f"nDCG@10 >= {100 * share:g}% of the teacher's at >= {speed_up:g}x its speed"
        wanted += f", clearly above {beats}" if beats else ""
        row: dict[str, Any] = {"pipeline": name, "target": wanted}
        point = points.get(name)
        if point is None or "share" not in point:
            out.append(row | {"met": None, "measured": f"not measured: no pipeline {name!r} in this run"})
            continue
        measured = f"{100 * point['share']:.1f}% at {point['speed_up']:.1f}x"
        met = point["share"] >= share and point["speed_up"] >= speed_up
        row |= {"share": point["share"], "speed_up": point["speed_up"]}
        if beats:
            difference = _difference(report, per_question, name, beats)
            if difference is None:
                measured += f"; {beats} not measured"
                met = False
            else:
                measured += (
                    f"; {difference['difference'] * 100:+.2f} nDCG points over {beats} "
                    f"(95% CI {difference['low'] * 100:+.2f} to {difference['high'] * 100:+.2f})"
                )
                met = met and difference["low"] > 0
                row["versus"] = difference
        out.append(row | {"met": met, "measured": measured})
    overhead = report.get("overhead")
    target = "pipeline p50 <= 1.3x the model's own encode p50 for one query"
    if overhead is None:
        out.append({"pipeline": None, "target": target, "met": None, "measured": "not measured"})
    else:
        ratio = overhead["pipeline_over_encode"]
        p50 = overhead["p50_ms"]
        measured = f"{p50['pipeline']:.2f} / {p50['encode']:.2f} ms = {ratio:.2f}"
        out.append({"pipeline": overhead["name"], "target": target, "met": overhead["met"], "measured": measured})
    return out


def _difference(
    report: dict[str, Any], per_question: list[dict[str, Any]] | None, name: str, versus: str
) -> dict[str, Any] | None:
    if per_question is None or versus not in report["pipelines"]:
        return None
    pair = {"pipelines": {n: report["pipelines"][n] for n in (versus, name)}}
    return paired_differences(pair, per_question, versus).get(name, {}).get(METRIC)


def target_lines(targets: list[dict[str, Any]]) -> str:
    lines = []
    for t in targets:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        who = f"{t['pipeline']}: " if t["pipeline"] else ""
        lines.append(f"{verdict:>12}  {who}{t['target']}: {t['measured']}")
    return "\n".join(lines)


def measure_overhead(args: argparse.Namespace, systems: dict[str, str]) -> dict[str, Any] | None:
    from benchmarks.probes.overhead import probe

    if not args.overhead or args.overhead not in systems:
        if args.overhead:
            print(f"no overhead figure: no pipeline {args.overhead!r} in this run")
        return None
    data = load_dataset(args.data)
    if args.articles is not None:
        data = data.subset(articles=args.articles, seed=args.seed)
    if args.overhead_questions < len(data.queries):
        data = data.subset(questions=args.overhead_questions, seed=args.seed)
    result = probe(Path(systems[args.overhead]), data, questions=args.overhead_questions, warmup=args.warmup)
    return {"name": args.overhead, **result}


def finish(report: dict[str, Any], per_question: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The report with its ``frontier`` and ``targets`` sections (``overhead`` set by the caller)."""
    report["frontier"] = {"metric": METRIC, "points": frontier_points(report, METRIC)}
    report["targets"] = check_targets(report, per_question)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    entries = present(list(args.entries or []))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise SystemExit(f"pipeline names must be unique, got {names}")
    specs = [teacher_system(args.pipelines, args.runs)] + [system(e, args.pipelines, args.runs) for e in entries]
    eval_dir = args.runs / "eval"
    sample = {"questions": args.questions, "seed": args.seed, "warmup": args.warmup, "articles": args.articles}
    code = evaluate(specs, data=args.data, eval_dir=eval_dir, **sample)
    if code != 0:
        return code
    report = json.loads((eval_dir / "report.json").read_text(encoding="utf-8"))
    overhead = measure_overhead(args, dict(spec.split("=", 1) for spec in specs))
    if overhead is not None:
        report["overhead"] = overhead
    finish(report, load_questions(eval_dir))
    report["eval_command"] = report.get("command", "")
    report["command"] = "python -m benchmarks.speed " + " ".join(argv if argv is not None else sys.argv[1:])
    write_atomic(eval_dir / "report.json", json.dumps(report, indent=2) + "\n")
    svg = frontier_svg(report, METRIC, title=f"SQuAD dev retrieval: {METRIC} against p50 (log), Pareto front in red")
    write_atomic(eval_dir / "frontier.svg", svg)
    print(target_lines(report["targets"]))
    copy_report(eval_dir, args.out)
    write_atomic(args.out.with_suffix(".svg"), svg)
    print(f"drew the frontier in {args.out.with_suffix('.svg')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
