"""The docs cannot drift: docs/recipes.md against the recipe defaults, README.md's length, every relative link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from distill.training.recipes import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
RECIPES_DOC = ROOT / "docs" / "recipes.md"
# A Markdown link or image target: [text](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
KEY_TABLE_HEADER = "| key | default | meaning |"


def flatten(defaults: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys as recipes are merged: nested mappings key by key, except `student`, which is one value."""
    for key, value in defaults.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and key != "student":
            yield from flatten(value, dotted + ".")
        else:
            yield dotted, value


def render(value: Any) -> str:
    """A default as YAML writes it, on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def unquote(cell: str) -> str:
    if not (cell.startswith("`") and cell.endswith("`") and len(cell) >= 2):
        raise AssertionError(f"docs/recipes.md: expected a `code` cell, got {cell!r}")
    return cell[1:-1]


def recipe_tables(text: str) -> list[dict[str, str]]:
    """Every key/default table of the doc, as {dotted key: default cell}, in order."""
    tables: list[dict[str, str]] = []
    rows: dict[str, str] | None = None
    for line in text.splitlines():
        if line.strip() == KEY_TABLE_HEADER:
            rows = {}
            tables.append(rows)
        elif rows is not None and line.startswith("|"):
            if set(line.replace("|", "").strip()) <= {"-", ":", " "}:
                continue  # the separator row
            key, default, *_ = cells(line)
            key = unquote(key)
            assert key not in rows, f"docs/recipes.md repeats {key!r} in one table"
            rows[key] = unquote(default)
        else:
            rows = None
    return tables


def doc_tables_by_task() -> dict[str, dict[str, str]]:
    by_task: dict[str, dict[str, str]] = {}
    for table in recipe_tables(RECIPES_DOC.read_text(encoding="utf-8")):
        assert "task" in table, "every recipe table in docs/recipes.md needs its `task` row"
        task = yaml.safe_load(table["task"])
        assert task not in by_task, f"docs/recipes.md has two tables for task {task!r}"
        by_task[task] = table
    return by_task


def test_recipe_doc_has_one_table_per_task() -> None:
    assert set(doc_tables_by_task()) == set(DEFAULTS)


@pytest.mark.parametrize("task", sorted(DEFAULTS))
def test_recipe_doc_keys_equal_the_code_defaults(task: str) -> None:
    documented = doc_tables_by_task()[task]
    in_code = dict(flatten(DEFAULTS[task]))
    assert set(documented) == set(in_code), (
        f"docs/recipes.md, task {task}: missing {sorted(set(in_code) - set(documented))}, "
        f"not in the code {sorted(set(documented) - set(in_code))}"
    )


@pytest.mark.parametrize("task", sorted(DEFAULTS))
def test_recipe_doc_defaults_equal_the_code(task: str) -> None:
    documented = doc_tables_by_task()[task]
    for key, value in flatten(DEFAULTS[task]):
        assert documented[key] == render(value), f"docs/recipes.md, task {task}: {key} is {render(value)!r} in code"
        assert yaml.safe_load(documented[key]) == value, f"docs/recipes.md, task {task}: {key} does not read back"


def test_flatten_and_render_on_a_hand_made_recipe() -> None:
    defaults = {"student": {"from_teacher": {"layers": [0, 5]}}, "data": {"questions": None, "dev": "squad-dev"}}
    assert list(flatten(defaults)) == [
        ("student", {"from_teacher": {"layers": [0, 5]}}),
        ("data.questions", None),
        ("data.dev", "squad-dev"),
    ]
    assert [render(v) for v in (None, False, 2.0e-5, "auto", [{"name": "x", "weight": 1.0}])] == [
        "null",
        "false",
        "2.0e-05",
        "auto",
        "[{name: x, weight: 1.0}]",
    ]


def test_recipe_tables_parser_reads_keys_and_defaults() -> None:
    rows = "| `task` | `reader` | what |\n| `data.seed` | `0` | s |"
    text = f"intro\n\n{KEY_TABLE_HEADER}\n|---|---|---|\n{rows}\n\nafter"
    assert recipe_tables(text) == [{"task": "reader", "data.seed": "0"}]


def test_readme_is_at_most_200_lines() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert 0 < len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Link targets that name a file in the repository (no scheme, no bare #anchor), without their #anchor."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # links inside code blocks are not links
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_relative_links_parser() -> None:
    text = "[a](docs/x.md) [b](https://example.org) [c](#top) ![d](img.png) [e](y.md#part)\n```\n[f](z.md)\n```"
    assert relative_links(text) == ["docs/x.md", "img.png", "y.md"]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(path: Path) -> None:
    links = relative_links(path.read_text(encoding="utf-8"))
    broken = [target for target in links if not (path.parent / target).exists()]
    assert not broken, f"{path.relative_to(ROOT)} links to missing files: {broken}"


def test_the_docs_exist() -> None:
    for name in ("recipes.md", "architecture.md", "benchmarks/README.md"):
        assert (ROOT / "docs" / name).is_file(), f"docs/{name} is missing"
