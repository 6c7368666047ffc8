"""A seeded fuzz of recipe and pipeline YAML through the CLI (issue 21's Deliver section).

Each case mutates a working file (a key deleted, a value's type swapped, an unknown key added, non-UTF-8 bytes put
in, the text cut short) and runs the command in-process. Every case must end in exit status 0 or 2, with exactly one
line on stderr when 2 and never a traceback, and leave nothing half-written: no ``config.yaml`` of a run that did not
finish, no ``*.tmp`` file, no empty folder the run made.

No case loads a real model: the recipes' teachers and students are folders that do not exist (a recipe that gets
through validation fails at its teacher, before any work), and the offline sources (which a deleted ``teacher`` would
fall back to) are refused for the duration. Pipelines are the library's defaults over the tiny models of conftest.
"""

from __future__ import annotations

import copy
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO

from distill import cli
from distill.common import models
from distill.errors import DistillError
from distill.pipelines.haystack_yaml import YamlDumper, parse_pipeline_yaml

# Another seed explores other cases: DISTILL_FUZZ_SEED=7 pytest tests/test_fuzz.py
SEED = int(os.environ.get("DISTILL_FUZZ_SEED", "21"))
RECIPE_CASES = 300
PIPELINE_CASES = 150
EVAL_CASES = 10

VALUES: list[Any] = ["text", 7, -1, 0.5, [1, "a"], {"k": 1}, None, True, "", []]
OVERRIDE_VALUES = ["abc", "1", "-1", "0", "null", "[1, 2]", "{a: 1}", "1e-4", "", "[", "true", "caf\u00e9", "{"]
# Deleting these would fall back to the real SQuAD files, which the fuzz leaves alone (too slow, not its subject).
KEEP = {("data", "train"), ("data", "dev")}


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a YAML tree (mapping keys and list positions), the root's children first."""
    out = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _parent(tree: Any, path: tuple) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    return tree


def mutate(rng: random.Random, tree: Any) -> tuple[Any, str]:
    """One structural mutation of a copy of ``tree`` and what it was."""
    tree = copy.deepcopy(tree)
    paths = [p for p in _paths(tree) if p not in KEEP]
    path = rng.choice(paths)
    parent = _parent(tree, path)
    op = rng.choice(["delete", "swap", "swap", "unknown"])
    if op == "delete" or (op == "unknown" and not isinstance(parent, dict)):
        del parent[path[-1]]
        return tree, f"delete {path}"
    if op == "swap":
        value = copy.deepcopy(rng.choice(VALUES))
        parent[path[-1]] = value
        return tree, f"set {path} = {value!r}"
    parent[f"bogus_{rng.randrange(100)}"] = copy.deepcopy(rng.choice(VALUES))
    return tree, f"unknown key beside {path}"


def corrupt(rng: random.Random, text: str) -> tuple[bytes, str]:
    """The YAML as bytes, now and then cut short or carrying bytes that are not UTF-8."""
    raw = text.encode("utf-8")
    roll = rng.random()
    if roll < 0.12:
        at = rng.randrange(len(raw) + 1)
        return raw[:at] + rng.choice([b"\xff", b"\xe9", b"\xc3(", b"\x80\x80"]) + raw[at:], f"bad byte at {at}"
    if roll < 0.24:
        at = rng.randrange(len(raw))
        return raw[:at], f"cut at {at}"
    return raw, ""


def leftovers(folder: Path, before: set[Path], finished: bool) -> list[str]:
    """What a run left half-written under ``folder``: new empty folders, temporary files, an unfinished config."""
    bad = []
    for path in folder.rglob("*"):
        if path.name.endswith(".tmp"):
            bad.append(f"temporary file {path}")
        elif path.is_dir() and path not in before and not any(path.iterdir()):
            bad.append(f"empty folder {path}")
        elif path.name == "config.yaml" and path not in before and not finished:
            bad.append(f"config.yaml of a failed run {path}")
    return bad


def check_case(code: int, err: str, command: str) -> list[str]:
    """Exit 0 or 2, no traceback, and on 2 the error as one line. ``eval`` draws progress bars on stderr before
    it fails (indexing, loading weights): those may come first, but the error is one line and the last."""
    problems = []
    if code not in (0, 2):
        problems.append(f"exit status {code}")
    if "Traceback" in err:
        problems.append("a traceback")
    if code == 2:
        lines = err.splitlines() if command != "eval" else re.split(r"[\r\n]+", err.strip())
        errors = [line for line in lines if line.startswith(f"distill {command}: ")]
        one = len(lines) == 1 if command != "eval" else len(errors) == 1 and lines[-1] == errors[0]
        if not one or not err.endswith("\n") or not lines[-1].startswith(f"distill {command}: error: "):
            problems.append(f"not one line: {err[-600:]!r}")
    return problems


@pytest.fixture
def no_offline_sources(monkeypatch):
    def refuse() -> Path:
        raise DistillError("offline sources are out of bounds in the fuzz")

    for name, source in list(models.OFFLINE_SOURCES.items()):
        monkeypatch.setitem(models.OFFLINE_SOURCES, name, models.OfflineSource(name, source.description, refuse))


def _recipe_bases(tmp_path: Path, squad: Path) -> list[dict[str, Any]]:
    """Committed recipes of each task with tiny data, models that do not exist and outputs under ``tmp_path``."""
    bases = []
    for name in ("embedder-squad-kl-4k-hn.yaml", "embedder-squad-layers-4.yaml", "reader-distill-minilm-2l.yaml"):
        recipe = yaml.safe_load((REPO / "recipes" / name).read_text(encoding="utf-8"))
        for key in ("teacher", "model"):
            if key in recipe:
                recipe[key] = str(tmp_path / "no-such-teacher")
        if isinstance(recipe.get("student"), str):
            recipe["student"] = str(tmp_path / "no-such-student")
        recipe["data"] = {**recipe.get("data", {}), "train": str(squad), "dev": str(squad)}
        recipe["pipelines"] = None
        bases.append(recipe)
    teacher = yaml.safe_load((REPO / "recipes" / "reader-teacher-minilm.yaml").read_text(encoding="utf-8"))
    teacher |= {"model": str(tmp_path / "no-such-model"), "data": {**teacher["data"], "train": str(squad)}}
    teacher["data"]["dev"] = str(squad)
    return [*bases, teacher]


def test_fuzzed_recipes_end_in_0_or_2_with_one_line(tmp_path, tiny_squad, capsys, monkeypatch, no_offline_sources):
    rng = random.Random(SEED)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # a mutated relative output lands here, not in the repository
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    bases = _recipe_bases(tmp_path, tiny_squad)
    failures, messages = [], []
    for case in range(RECIPE_CASES):
        base = rng.choice(bases)
        base = {**base, "output": str(work / f"run-{case}" / "out")}
        recipe, what = mutate(rng, base) if rng.random() < 0.8 else (base, "")
        raw, damage = corrupt(rng, yaml.safe_dump(recipe, allow_unicode=True))
        overrides = []
        if rng.random() < 0.3:
            key = ".".join(map(str, rng.choice(_paths(base) + [("bogus",), ("losses", 9, "weight")])))
            overrides.append(f"{key}={rng.choice(OVERRIDE_VALUES)}")
        path = tmp_path / f"recipe-{case}.yaml"
        path.write_bytes(raw)
        command = "finetune-reader" if base.get("task") == "finetune_reader" else "train"
        before = set(work.rglob("*"))
        capsys.readouterr()
        try:
            code = cli.main([command, str(path), *overrides])
        except Exception as e:  # noqa: BLE001  (what the fuzz is for: report the case, then fix the source)
            code, err = -1, f"{type(e).__name__}: {e}"
        else:
            err = capsys.readouterr().err
        problems = check_case(code, err, command) + leftovers(work, before, finished=code == 0)
        if problems:
            failures.append(f"case {case} ({what}; {damage}; {overrides}): {problems} {err.strip()[:300]}")
        messages.append(err)
    assert not failures, "\n".join(failures[:15])
    # The cases reach many checks, and some get through them all to the (missing) teacher: not one early refusal.
    assert len({m.split(" got ")[0][:70] for m in messages}) >= 25
    assert sum("no-such-" in m for m in messages) >= RECIPE_CASES // 10


def _pipeline_bases(tiny_pipelines: Path) -> dict[str, dict[str, Any]]:
    paths = sorted(tiny_pipelines.glob("*.yaml"))
    return {p.name: parse_pipeline_yaml(p.read_text(encoding="utf-8"), p.name) for p in paths}


def test_fuzzed_pipelines_end_in_0_or_2_with_one_line(
    tmp_path, tiny_pipelines, tiny_embedder_wide, tiny_squad, capsys, monkeypatch
):
    from distill.pipelines.loading import load_pipeline

    rng = random.Random(SEED + 1)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    bases = _pipeline_bases(tiny_pipelines)
    eval_cases = set(rng.sample(range(PIPELINE_CASES), EVAL_CASES))
    failures, codes = [], {"swap": [], "eval": []}
    for case in range(PIPELINE_CASES):
        name = rng.choice(sorted(bases))
        data, what = mutate(rng, bases[name])
        raw, damage = corrupt(rng, yaml.dump(data, Dumper=YamlDumper, allow_unicode=True))  # as Pipeline.dumps
        folder = tmp_path / f"pipelines-{case}"
        folder.mkdir()
        for other, text in bases.items():  # the mutated file among untouched neighbours
            (folder / other).write_text(yaml.dump(text, Dumper=YamlDumper), encoding="utf-8")
        (folder / name).write_bytes(raw)
        label = f"case {case} {name} ({what}; {damage})"

        try:
            load_pipeline(folder / name)
        except DistillError as e:
            if "\n" in str(e):
                failures.append(f"{label}: load_pipeline's error is not one line: {e!r}")
        except Exception as e:  # noqa: BLE001
            failures.append(f"{label}: load_pipeline raised {type(e).__name__}: {e}")

        runs = [["swap", str(folder / name), "--model", str(tiny_embedder_wide), "--out", str(work / f"swap-{case}")]]
        if case in eval_cases and name != "indexing.yaml":
            out = work / f"eval-{case}"
            runs.append(["eval", f"a={folder / name}", "--data", str(tiny_squad), "--warmup", "0", "--out", str(out)])
        for args in runs:
            before = set(work.rglob("*"))
            capsys.readouterr()
            try:
                code = cli.main(args)
            except Exception as e:  # noqa: BLE001
                code, err = -1, f"{type(e).__name__}: {e}"
            else:
                err = capsys.readouterr().err
            problems = check_case(code, err, args[0]) + leftovers(work, before, finished=code == 0)
            if problems:
                failures.append(f"{label} {args[0]}: {problems} {err.strip()[:300]}")
            codes[args[0]].append(code)
    assert not failures, "\n".join(failures[:15])
    assert {0, 2} <= set(codes["swap"]) and codes["eval"]  # mutations that still load, and ones that do not
