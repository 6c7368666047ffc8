"""Distillation recipes: one YAML file is the single source of truth for a run.

``load_recipe(path, overrides)`` merges the file over :data:`EMBEDDER_DEFAULTS`, applies ``key.sub=value``
overrides from the command line, and validates everything before a model is loaded: unknown keys, unknown losses,
negative weights and impossible combinations are errors that name the field.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from distill.errors import DistillError

# Every key a recipe may set, with its default. Comments say why a default is what it is.
EMBEDDER_DEFAULTS: dict[str, Any] = {
    "task": "embedder",
    "teacher": "mpnet-base",
    # A model spec (folder, hub id, offline source) or {"from_teacher": {"layers": [0, 4, 8, 11]}}.
    "student": "minilm-l6",
    # Train only a query encoder into the teacher's space; documents keep the teacher's embeddings and index.
    "query_only": False,
    "data": {
        "train": "squad-train",
        "questions": 2000,  # seeded sample of (question, paragraph) pairs; null = all
        "seed": 0,
        "hard_negatives": False,  # add the teacher's top-ranked wrong training passage to every query
        "dev": "squad-dev",
        "dev_articles": 4,  # a dev slice small enough to evaluate every eval_every steps on 2 cores
        "dev_questions": 200,
    },
    "losses": [
        {"name": "listwise_kl", "weight": 1.0, "temperature": 0.05},
        {"name": "similarity_matrix", "weight": 1.0},
    ],
    "optimizer": {"lr": 2.0e-5, "weight_decay": 0.01, "warmup_ratio": 0.1, "grad_clip": 1.0},
    "batch_size": 32,
    "max_length": {"query": 64, "passage": 256},
    "epochs": 1,
    "max_steps": None,  # stop after this many optimiser steps (overrides epochs)
    "eval_every": 25,
    "log_every": 5,
    "save_every": 25,
    "seed": 0,
    "mixed_precision": "auto",  # bf16 autocast on a GPU, fp32 on the CPU
    "output": "runs/students/minilm-l6-squad",
    # The teacher's indexing.yaml and retrieval.yaml to swap the student into (written to <output>/pipelines);
    # null skips the swap.
    "pipelines": "pipelines",
    "teacher_batch_size": 32,
}


def _merge(base: dict[str, Any], update: dict[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            known = ", ".join(sorted(base))
            raise DistillError(f"recipe: unknown key {path!r}; known keys here: {known}")
        if isinstance(base[key], dict) and key != "student":
            if not isinstance(value, dict):
                raise DistillError(f"recipe: {path} must be a mapping, got {value!r}")
            out[key] = _merge(base[key], value, path)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise DistillError(f"override {text!r} must look like key=value (e.g. optimizer.lr=1e-4)")
    try:
        value = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError as e:
        raise DistillError(f"override {text!r}: value is not valid YAML: {e}") from None
    if isinstance(value, str):
        try:  # YAML 1.1 reads 1e-4 as a string
            value = float(value)
        except ValueError:
            pass
    return key.split("."), value


def apply_overrides(recipe: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    recipe = copy.deepcopy(recipe)
    for text in overrides:
        path, value = parse_override(text)
        node = recipe
        for i, part in enumerate(path[:-1]):
            if part.isdigit() and isinstance(node, list):
                node = node[int(part)]
                continue
            if not isinstance(node, dict) or part not in node:
                raise DistillError(f"override {text!r}: unknown key {'.'.join(path[: i + 1])!r}")
            node = node[part]
        last = path[-1]
        if isinstance(node, list) and last.isdigit():
            node[int(last)] = value
        elif isinstance(node, dict) and (last in node or isinstance(node.get("name"), str)):
            node[last] = value
        else:
            raise DistillError(f"override {text!r}: unknown key {'.'.join(path)!r}")
    return recipe


def _positive(recipe: dict[str, Any], key: str, kind: type = int, allow_none: bool = False) -> None:
    node: Any = recipe
    for part in key.split("."):
        node = node[part]
    if node is None and allow_none:
        return
    if isinstance(node, bool) or not isinstance(node, (int, float) if kind is float else int) or node <= 0:
        raise DistillError(f"recipe.{key} must be a positive {kind.__name__}, got {node!r}")


def validate(recipe: dict[str, Any]) -> dict[str, Any]:
    """Check a merged recipe; return it with losses normalised to {name, weight, **kwargs}."""
    from distill.losses import KIND, LOSSES

    if recipe["task"] != "embedder":
        raise DistillError(f"recipe.task must be 'embedder' for `distill train`, got {recipe['task']!r}")
    for key in ("batch_size", "epochs", "eval_every", "log_every", "save_every", "teacher_batch_size"):
        _positive(recipe, key)
    _positive(recipe, "max_steps", allow_none=True)
    _positive(recipe, "max_length.query")
    _positive(recipe, "max_length.passage")
    _positive(recipe, "optimizer.lr", float)
    _positive(recipe, "data.questions", allow_none=True)
    _positive(recipe, "data.dev_questions", allow_none=True)
    _positive(recipe, "data.dev_articles", allow_none=True)
    opt = recipe["optimizer"]
    if not 0 <= opt["warmup_ratio"] < 1:
        raise DistillError(f"recipe.optimizer.warmup_ratio must be in [0, 1), got {opt['warmup_ratio']!r}")
    if opt["grad_clip"] is not None and opt["grad_clip"] <= 0:
        raise DistillError(f"recipe.optimizer.grad_clip must be > 0 or null, got {opt['grad_clip']!r}")
    if recipe["mixed_precision"] not in ("auto", "no", "bf16", "fp16"):
        raise DistillError(f"recipe.mixed_precision must be auto, no, bf16 or fp16, got {recipe['mixed_precision']!r}")
    student = recipe["student"]
    if isinstance(student, dict):
        if set(student) != {"from_teacher"} or not isinstance(student["from_teacher"], dict):
            raise DistillError(
                f"recipe.student must be a model spec or {{from_teacher: {{layers: [...]}}}}, got {student}"
            )
        layers = student["from_teacher"].get("layers")
        if not isinstance(layers, list) or not layers or not all(isinstance(x, int) and x >= 0 for x in layers):
            raise DistillError(
                f"recipe.student.from_teacher.layers must be a non-empty list of layer indices, got {layers}"
            )
        if sorted(set(layers)) != layers:
            raise DistillError(f"recipe.student.from_teacher.layers must be increasing and unique, got {layers}")
    elif not isinstance(student, str):
        raise DistillError(f"recipe.student must be a model spec (string) or a mapping, got {student!r}")
    losses = recipe["losses"]
    if not isinstance(losses, list) or not losses:
        raise DistillError("recipe.losses must be a non-empty list of {name, weight, ...}")
    normalised = []
    for i, entry in enumerate(losses):
        if not isinstance(entry, dict) or "name" not in entry:
            raise DistillError(f"recipe.losses[{i}] must be a mapping with a 'name', got {entry!r}")
        if entry["name"] not in LOSSES:
            raise DistillError(f"recipe.losses[{i}].name: unknown loss {entry['name']!r}; known: {', '.join(LOSSES)}")
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise DistillError(f"recipe.losses[{i}].weight must be >= 0, got {weight!r}")
        if KIND[entry["name"]] == "response" and entry["name"].startswith("start_end"):
            raise DistillError(
                f"recipe.losses[{i}]: {entry['name']} is a reader loss; an embedder recipe cannot use it"
            )
        normalised.append({**entry, "weight": float(weight)})
    if not any(e["weight"] > 0 for e in normalised):
        raise DistillError("recipe.losses: at least one loss needs a weight > 0")
    names = [e["name"] for e in normalised]
    if recipe["query_only"]:
        for name in names:
            if KIND[name] == "feature" or name in ("rkd_distance", "rkd_angle", "similarity_matrix"):
                raise DistillError(
                    f"recipe.losses: {name} cannot train a query-only student (its passages are the teacher's own "
                    "embeddings); use listwise_kl, margin_mse, cosine or embedding_mse"
                )
    if "margin_mse" in names and not recipe["data"]["hard_negatives"]:
        raise DistillError("recipe.losses: margin_mse needs negatives; set data.hard_negatives: true")
    if "rkd_angle" in names and recipe["batch_size"] < 3:
        raise DistillError(f"recipe.batch_size must be >= 3 for rkd_angle, got {recipe['batch_size']}")
    if recipe["batch_size"] < 2 and ("listwise_kl" in names or "similarity_matrix" in names):
        raise DistillError("recipe.batch_size must be >= 2 for in-batch losses (listwise_kl, similarity_matrix)")
    return {**recipe, "losses": normalised}


def load_recipe(path: str | Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise DistillError(f"recipe {path} does not exist")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise DistillError(f"recipe {path} is not valid YAML: {e}") from None
        if not isinstance(raw, dict):
            raise DistillError(f"recipe {path} must be a mapping of settings")
    recipe = _merge(EMBEDDER_DEFAULTS, raw, "")
    if "losses" in raw:
        recipe["losses"] = raw["losses"]
    return validate(apply_overrides(recipe, overrides or []))


def dump_recipe(recipe: dict[str, Any]) -> str:
    return yaml.safe_dump(recipe, sort_keys=False)
