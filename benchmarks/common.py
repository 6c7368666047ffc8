"""What the recipe-driven probes share: their command line and the report they write."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def recipe_bench_main(
    module: str, doc: str, run: Callable[[str, list[str]], dict[str, Any]], summary: str, argv: list[str] | None
) -> dict[str, Any]:
    """Command line shared by the recipe-driven benchmarks: `python -m MODULE RECIPE [key=value ...] [--out FILE]`.

    Runs `run(recipe, overrides)`, records the command that made the report in it, prints `report[summary]` and
    writes the report as JSON to `--out` when given.
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = run(args.recipe, args.overrides)
    report["command"] = f"python -m {module} " + " ".join(
        [args.recipe, *args.overrides] + (["--out", str(args.out)] if args.out else [])
    )
    print(json.dumps(report[summary], indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
