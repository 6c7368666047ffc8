"""Reading the user's text files (recipes, pipeline YAML, data, reports) with one-line errors that name the file.

Every reader of a user file goes through here, so a missing file, a folder in a file's place, bytes that are not
UTF-8 and a YAML syntax error read the same wherever they happen. No third-party import but PyYAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from distill.errors import DistillError


def check_file(path: Path, what: str, missing_hint: str = "") -> None:
    """``path`` exists and is a file, else a DistillError naming it as ``what`` (``recipe``, ``data file``...)."""
    if not path.exists():
        raise DistillError(f"{what} {path} does not exist{missing_hint}")
    if not path.is_file():
        raise DistillError(f"{what} {path} is a folder, not a file")


def not_utf8(path: Path) -> DistillError:
    """The error for a file that does not decode as UTF-8, naming its first bad byte."""
    # A decoder's own position counts from the chunk it was reading: find the file's first bad byte instead.
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        where = ""
    except UnicodeDecodeError as e:
        where = f" (byte {e.start}: {raw[e.start : e.start + 1]!r})"
    return DistillError(f"{path} is not UTF-8 text{where}: save it as UTF-8")


def read_text(path: str | Path, what: str, missing_hint: str = "") -> str:
    """A user's text file, checked as :func:`check_file` says and decoded as UTF-8."""
    path = Path(path)
    check_file(path, what, missing_hint)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise not_utf8(path) from None


def yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: what is wrong and where (line and column, counted from 1)."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def parse_yaml(text: str, name: str, *, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """YAML text with a one-line error naming ``name`` and the place. ``yaml.safe_load`` (no Python tags) unless
    ``loader`` (a SafeLoader subclass: pipeline files take Haystack's, which adds ``!!python/tuple`` and no more)."""
    if not issubclass(loader, yaml.SafeLoader):  # nothing wider than safe loading reads a user's file
        raise TypeError(f"parse_yaml takes a yaml.SafeLoader subclass, got {loader.__name__}")
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as e:
        raise DistillError(f"{name} is not valid YAML: {yaml_problem(e)}") from None
