"""What the benchmarks share: the recipe-driven probes' command line, and the report every benchmark writes."""

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
    return finish_report(report, report[summary], args.out)


def command_line(module: str, argv: list[str] | None) -> str:
    """The command that made a report, as a user would type it again."""
    import sys

    return f"python -m {module} " + " ".join(argv if argv is not None else sys.argv[1:])


def finish_report(report: dict[str, Any], shown: Any, out: Path | None) -> dict[str, Any]:
    """Print the part of the report people read (``shown``) and write the whole report as JSON to ``out``."""
    print(json.dumps(shown, indent=2))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
