"""Where a retrieval student loses quality: nDCG@10 split by the length of each question's gold paragraph.

Reads an evaluation's ``report.json`` and ``questions.jsonl`` (the ranking of every question by every pipeline),
measures each gold paragraph in a tokenizer's tokens (special tokens included, as ``max_seq_length`` counts them) and
reports every pipeline's nDCG@10, and its share of the first pipeline's, on the questions whose gold paragraph fits in
``--max-length`` tokens and on those whose gold paragraph is longer (and so is cut before it is embedded).

    python -m benchmarks.probes.passage_length runs/kl10k-ema-eval --tokenizer minilm-l6 --max-length 256 \\
        --out benchmarks/results/passage-length-kl-10k-ema.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill.common import metrics
from distill.errors import DistillError


def by_length(rows: list[dict[str, Any]], gold_tokens: list[int], max_length: int) -> dict[str, Any]:
    """nDCG@10 per pipeline on the questions whose gold paragraph has at most / more than ``max_length`` tokens.

    ``rows`` are ``questions.jsonl`` records; ``gold_tokens[i]`` is the length of row i's (first) gold paragraph."""
    if not rows:
        raise DistillError("no questions to split")
    names = list(rows[0]["runs"])
    groups: dict[str, dict[str, Any]] = {}
    for group, keep in (("fits", lambda n: n <= max_length), ("longer", lambda n: n > max_length)):
        chosen = [row for row, n in zip(rows, gold_tokens, strict=True) if keep(n)]
        ndcg = {
            name: sum(metrics.ndcg_at_k(r["runs"][name]["retrieved"], r["gold_doc_ids"], 10) for r in chosen)
            / max(len(chosen), 1)
            for name in names
        }
        first = ndcg[names[0]]
        groups[group] = {
            "questions": len(chosen),
            "pipelines": {
                name: {"ndcg@10": value, "share_of_first": value / first if first else None}
                for name, value in ndcg.items()
            },
        }
    return {"max_length": max_length, "pipelines": names, "groups": groups}


def run(report_dir: Path, tokenizer_spec: str, max_length: int) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from distill.common.models import resolve_model
    from distill.data.datasets import load_dataset
    from distill.evaluation.report import load_questions, load_report

    report = load_report(report_dir)
    rows = load_questions(report_dir)
    if rows is None:
        raise DistillError(f"{report_dir} has no questions.jsonl: run `distill eval ... --out {report_dir}` again")
    data_spec = report.get("config", {}).get("data")
    if not data_spec:
        raise DistillError(f"{report_dir}/report.json does not name its data set (config.data)")
    text = {d.id: d.content or "" for d in load_dataset(data_spec).documents}
    missing = [r["id"] for r in rows if not r["gold_doc_ids"] or r["gold_doc_ids"][0] not in text]
    if missing:
        raise DistillError(f"question {missing[0]} has no gold paragraph in {data_spec} ({len(missing)} in all)")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(tokenizer_spec))
    gold = [text[r["gold_doc_ids"][0]] for r in rows]
    counts = [len(ids) for ids in tokenizer(gold, add_special_tokens=True, verbose=False)["input_ids"]]
    return {"report": str(report_dir), "data": data_spec, "tokenizer": tokenizer_spec} | by_length(
        rows, counts, max_length
    )


def table(result: dict[str, Any]) -> str:
    names = result["pipelines"]
    lines = [
        f"| gold paragraph ({result['tokenizer']} tokens) | questions | "
        + " | ".join(f"{n} nDCG@10" for n in names)
        + " | "
        + " | ".join(f"{n} / {names[0]}" for n in names[1:])
        + " |",
        "|---" * (2 + len(names) + len(names) - 1) + "|",
    ]
    for group, label in (("fits", f"<= {result['max_length']}"), ("longer", f"> {result['max_length']}")):
        g = result["groups"][group]
        p = g["pipelines"]
        shares = [p[n]["share_of_first"] for n in names[1:]]
        lines.append(
            f"| {label} | {g['questions']} | "
            + " | ".join(f"{p[n]['ndcg@10']:.4f}" for n in names)
            + " | "
            + " | ".join("-" if s is None else f"{100 * s:.1f}%" for s in shares)
            + " |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m benchmarks.probes.passage_length", description=__doc__)
    parser.add_argument("report", type=Path, help="an evaluation folder (report.json + questions.jsonl)")
    parser.add_argument("--tokenizer", required=True, help="whose tokens to count: a model folder or offline source")
    parser.add_argument("--max-length", type=int, required=True, help="the student's max_seq_length")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    if args.max_length < 1:
        parser.error("--max-length must be >= 1")
    try:
        result = run(args.report, args.tokenizer, args.max_length)
    except DistillError as e:
        print(f"passage_length: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    result = {
        "command": " ".join(["python -m benchmarks.probes.passage_length", *map(shlex.quote, argv or sys.argv[1:])])
    } | result
    print(table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
