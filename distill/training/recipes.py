"""Distillation recipes: one YAML file is the single source of truth for a run.

``load_recipe(path, overrides)`` merges the file over :data:`EMBEDDER_DEFAULTS`, applies ``key.sub=value``
overrides from the command line, and validates everything before a model is loaded: unknown keys, unknown losses,
negative weights and impossible combinations are errors that name the field.

Why one module over 400 lines: each task's defaults sit beside the checks of the same keys, so that a key cannot
gain a default without its check (docs/recipes.md is tested against these defaults).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from distill.common.files import parse_yaml, read_text
from distill.errors import DistillError

# How pseudo-queries are cut from a passage (distill/training/tasks/queries.py).
PSEUDO_KINDS = ("title", "sentence", "mixed", "question")

# Every key a recipe may set, with its default. Comments say why a default is what it is.
EMBEDDER_DEFAULTS: dict[str, Any] = {
    "task": "embedder",
    "teacher": "mpnet-base",
    # A model spec (folder, hub id, offline source), {"from_teacher": {"layers": [0, 4, 8, 11]}}, or a static
    # token-embedding student initialised from the teacher: static, i.e. {"static": {"dims": 256, "sif_coefficient":
    # 1e-4}} (distill/training/static.py; dims null keeps the teacher's width and space, as a query-only one must).
    "student": "minilm-l6",
    # Train only a query encoder into the teacher's space; documents keep the teacher's embeddings and index.
    "query_only": False,
    # Cross-batch memory: the student's (detached) embeddings of the last N training passages join listwise_kl's
    # in-batch passages as extra columns, scored by the teacher's cached embeddings of the same passages. 0 = off.
    # A query-only student takes "corpus": every corpus passage's teacher embedding (the index it will search).
    "passage_memory": 0,
    # L2-SP: anchor * sum of squared differences between the student's weights and its starting weights, a pull
    # toward what the student knew before (so that adapting to one domain costs the others less). 0 = off.
    "anchor": 0.0,
    "data": {
        "train": "squad-train",
        "questions": 2000,  # seeded sample of (question, paragraph) pairs; null = all
        "seed": 0,
        "hard_negatives": False,  # add the teacher's top-ranked wrong training passage to every query
        # Also train on every other question about the sampled passages. The teacher's cost is in the passages
        # (4.4/s on 2 cores against 55 questions/s), so this multiplies the questions (~4.7 per SQuAD paragraph)
        # at a fraction of the teacher time.
        "sibling_questions": False,
        # The dev slice that picks the best checkpoint. Set dev to the training set (squad-train) to hold its
        # dev_articles out of training, so that the benchmark's own dev set is not used to choose the student.
        "dev": "squad-dev",
        "dev_articles": 4,  # a dev slice small enough to evaluate every eval_every steps on 2 cores
        "dev_questions": 200,
        # gold: train on (question, relevant passage) pairs. teacher: no labels; the teacher ranks the whole corpus
        # (data.train) for every training query, and its ranking is the only supervision
        # (distill/training/tasks/silver.py).
        "labels": "gold",
        # With labels: teacher. Unlabelled queries: a text file (one per line), a JSONL file, or a BEIR folder:split
        # (that split's query ids, never its judgements). null = none.
        "queries": None,
        # Pseudo-queries cut from the corpus, one per sampled passage (its title or one of its sentences: the inverse
        # cloze task); 0 = none, null = one per passage.
        "pseudo_queries": 0,
        "pseudo_kind": "mixed",  # title, sentence, mixed (either in turn), or question (a sentence that asks, if any)
        # Variants of each user query (data.queries) with a fifth of its words left out, each labelled by the teacher
        # afresh (augmentation; never of a held-out query); 0 = none.
        "query_variants": 0,
        "candidates": 20,  # the teacher's top-k per query; a hard negative is drawn from ranks 2..k
        # With labels: teacher and hard_negatives, how many distinct hard negatives each query draws from those ranks:
        # the listwise loss then sees more of the teacher's ranking of each query's own candidates (each one more
        # passage per query for the student to embed in every step).
        "negatives_per_query": 1,
        # With labels: teacher and hard_negatives, where they come from: "teacher" (its ranks 2..candidates),
        # "student" (the untrained student's own top-candidates that the teacher ranks below its top 10: where the
        # student disagrees; one more pass of the student over the corpus, cached) or "both" (half from each).
        "negatives_from": "teacher",
        "passages": None,  # with labels: teacher, a seeded sample of this many corpus passages (a budget); null = all
    },
    "losses": [
        {"name": "listwise_kl", "weight": 1.0, "temperature": 0.05},
        {"name": "similarity_matrix", "weight": 1.0},
    ],
    # ema: decay of an exponential moving average of the weights (e.g. 0.98); the dev slice then scores, and the
    # student saves, the averaged weights (the raw ones are logged as dev_raw/...). null trains without one.
    "optimizer": {"lr": 2.0e-5, "weight_decay": 0.01, "warmup_ratio": 0.1, "grad_clip": 1.0, "ema": None},
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
    # The teacher's indexing.yaml and retrieval.yaml to swap the student into (written to <output>/pipelines), or a
    # mapping {indexing: FILE, query: FILE} of a user's own pipelines (any file and component names); null skips the
    # swap. With teacher: pipelines, the teacher is these pipelines' document and text embedders, run as Haystack
    # runs them (prefix, meta fields, truncation) and cached as `distill eval` indexes with them.
    "pipelines": "pipelines",
    "teacher_batch_size": 32,
    "teacher_precision": "fp32",  # or bf16 (a GPU's teacher pass; cached under its own key)
}

# Shared by reader fine-tuning and reader distillation: SQuAD-style windows, as Haystack's
# TransformersExtractiveReader makes them at inference (pipelines/extractive_qa.yaml: max_seq_length 384, stride 128).
_READER_COMMON: dict[str, Any] = {
    "optimizer": {"lr": 5.0e-5, "weight_decay": 0.01, "warmup_ratio": 0.1, "grad_clip": 1.0, "ema": None},
    "batch_size": 16,
    "max_length": 384,  # tokens per window (question + context)
    "stride": 128,  # tokens shared by consecutive windows of a long context
    "max_query_length": 64,  # longer questions are cut so that every window keeps some context
    "max_answer_length": 30,  # tokens, when decoding spans
    "epochs": 1,
    "max_steps": None,
    "eval_every": 100,
    "log_every": 10,
    "save_every": 100,
    "seed": 0,
    "mixed_precision": "auto",
}

_READER_DATA: dict[str, Any] = {
    "train": "squad-train",
    "questions": 4000,  # a seeded permutation of the labelled questions; the first N train. null = all
    "seed": 0,
    "dev": "squad-dev",
    "dev_questions": 300,  # gold paragraph as context, for checkpoint selection
    # An answer whose text is not at its stated offset: false = look for it in the context, else skip and count it;
    # true = stop with the question id.
    "strict_answers": False,
    # Retrieved passages without the answer as extra training windows (hard target: position 0, "no answer"; soft
    # target: the teacher's distributions on them): {per_question: N, retriever: RETRIEVAL_YAML} (its indexing.yaml
    # beside it), mined once per retriever and corpus and cached (distill/training/tasks/negatives.py). null = none.
    "negatives": None,
}

# `distill finetune-reader RECIPE`: an encoder fine-tuned as an extractive reader (the teacher) on gold answers.
FINETUNE_READER_DEFAULTS: dict[str, Any] = {
    "task": "finetune_reader",
    # Any encoder: a folder, a Hugging Face id, or the offline sources mpnet-base / minilm-l6. Its QA head starts
    # random. Optional layers keep only those encoder layers.
    "model": "minilm-l6",
    "layers": None,
    "data": dict(_READER_DATA),
    **copy.deepcopy(_READER_COMMON),
    "output": "runs/reader-teacher",
}

# `distill train RECIPE` with task: reader: a fine-tuned reader distilled into a student.
READER_DEFAULTS: dict[str, Any] = {
    "task": "reader",
    "teacher": "runs/reader-teacher",  # a fine-tuned extractive reader (`distill finetune-reader`)
    # A model spec, {from_teacher: {layers: [...]}} or {model: SPEC, layers: [...]}.
    "student": {"from_teacher": {"layers": [0, 5]}},
    "data": {
        **_READER_DATA,
        # Questions without gold answers (teacher soft labels only): squad-train takes the questions that follow the
        # labelled ones in the same permutation (never the same question twice); a SQuAD .json or .jsonl of
        # (question, passage) lines gives its own. null = none.
        "unlabelled": None,
        "unlabelled_questions": None,
    },
    "losses": [{"name": "start_end_kl", "weight": 1.0, "temperature": 1.5, "alpha": 0.75}],
    **copy.deepcopy(_READER_COMMON),
    "teacher_batch_size": 32,
    "teacher_precision": "fp32",  # or bf16 (a GPU's teacher pass; cached under its own key)
    "output": "runs/students/reader-minilm-2l",
    # The teacher's extractive_qa.yaml to swap the student into (written to <output>/pipelines); null skips it.
    "pipelines": "pipelines/extractive_qa.yaml",
}

DEFAULTS = {"embedder": EMBEDDER_DEFAULTS, "reader": READER_DEFAULTS, "finetune_reader": FINETUNE_READER_DEFAULTS}


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
    value = parse_yaml(raw, f"override {text!r}: value") if raw else None
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
                if int(part) >= len(node):
                    where = ".".join(path[:i]) or "recipe"
                    raise DistillError(f"override {text!r}: {where} has {len(node)} entries, so no entry {part}")
                node = node[int(part)]
                continue
            if not isinstance(node, dict) or part not in node:
                raise DistillError(f"override {text!r}: unknown key {'.'.join(path[: i + 1])!r}")
            node = node[part]
        last = path[-1]
        if isinstance(node, list) and last.isdigit():
            if int(last) > len(node):
                where = ".".join(path[:-1])
                raise DistillError(f"override {text!r}: {where} has {len(node)} entries, so no entry {last}")
            node[int(last) : int(last) + 1] = [value]  # one past the end appends
        elif (
            isinstance(node, dict)
            and isinstance(node.get(last), dict)
            and isinstance(value, dict)
            and last != "student"
        ):
            # a section given whole merges as in a recipe file: unknown keys refused, the others keep their values
            node[last] = _merge(node[last], value, ".".join(path))
        elif isinstance(node, dict) and (last in node or isinstance(node.get("name"), str)):
            node[last] = value
        else:
            raise DistillError(f"override {text!r}: unknown key {'.'.join(path)!r}")
    return recipe


def _normalise_losses(losses: Any, allowed: list[str]) -> list[dict[str, Any]]:
    """Check a recipe's loss list; return it as {name, weight (float), **settings} entries."""
    from distill.training.losses import LOSSES, check_loss_settings

    if not isinstance(losses, list) or not losses:
        raise DistillError("recipe.losses must be a non-empty list of {name, weight, ...}")
    normalised = []
    for i, entry in enumerate(losses):
        if not isinstance(entry, dict) or "name" not in entry:
            raise DistillError(f"recipe.losses[{i}] must be a mapping with a 'name', got {entry!r}")
        name = entry["name"]
        if not isinstance(name, str) or name not in LOSSES:
            raise DistillError(f"recipe.losses[{i}].name: unknown loss {name!r}; known: {', '.join(LOSSES)}")
        if name not in allowed:
            kind = "a reader" if "reader" in LOSSES[name].tasks else "an embedder"
            raise DistillError(f"recipe.losses[{i}]: {name} is {kind} loss; this recipe takes {', '.join(allowed)}")
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise DistillError(f"recipe.losses[{i}].weight must be >= 0, got {weight!r}")
        check_loss_settings(
            name, {k: v for k, v in entry.items() if k not in ("name", "weight")}, f"recipe.losses[{i}]"
        )
        normalised.append({**entry, "weight": float(weight)})
    if not any(e["weight"] > 0 for e in normalised):
        raise DistillError("recipe.losses: at least one loss needs a weight > 0")
    return normalised


def _check_optimizer(recipe: dict[str, Any]) -> None:
    """The optimiser and precision settings every recipe shares."""
    opt = recipe["optimizer"]
    if not isinstance(opt, dict):
        raise DistillError(f"recipe.optimizer must be a mapping of settings (lr, weight_decay, ...), got {opt!r}")
    for key in ("lr", "weight_decay", "warmup_ratio"):
        _number(opt.get(key), f"optimizer.{key}")
    if opt.get("grad_clip") is not None:
        _number(opt["grad_clip"], "optimizer.grad_clip", "or null")
    _positive(recipe, "optimizer.lr", float)
    if opt["weight_decay"] < 0:
        raise DistillError(f"recipe.optimizer.weight_decay must be >= 0, got {opt['weight_decay']!r}")
    if not 0 <= opt["warmup_ratio"] < 1:
        raise DistillError(f"recipe.optimizer.warmup_ratio must be in [0, 1), got {opt['warmup_ratio']!r}")
    if opt["grad_clip"] is not None and opt["grad_clip"] <= 0:
        raise DistillError(f"recipe.optimizer.grad_clip must be > 0 or null, got {opt['grad_clip']!r}")
    ema = opt["ema"]
    if ema is not None and (isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 < ema < 1):
        raise DistillError(f"recipe.optimizer.ema must be a decay in (0, 1) or null, got {ema!r}")
    if "teacher_precision" in recipe and recipe["teacher_precision"] not in ("fp32", "bf16"):
        raise DistillError(f"recipe.teacher_precision must be fp32 or bf16, got {recipe['teacher_precision']!r}")
    if recipe["mixed_precision"] not in ("auto", "no", "bf16", "fp16"):
        raise DistillError(f"recipe.mixed_precision must be auto, no, bf16 or fp16, got {recipe['mixed_precision']!r}")


def _number(value: Any, key: str, alternative: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DistillError(f"recipe.{key} must be a number{' ' + alternative if alternative else ''}, got {value!r}")


def _positive(recipe: dict[str, Any], key: str, kind: type = int, allow_none: bool = False) -> None:
    node: Any = recipe
    for part in key.split("."):
        node = node[part]
    if node is None and allow_none:
        return
    if isinstance(node, bool) or not isinstance(node, (int, float) if kind is float else int) or node <= 0:
        raise DistillError(f"recipe.{key} must be a positive {kind.__name__}, got {node!r}")


def _check_sections(recipe: Any, defaults: dict[str, Any], where: str = "recipe") -> None:
    """Every section the defaults hold as a mapping (data, optimizer, max_length) is a mapping in the recipe too, so
    that the checks below read fields, not a number or null put where a section belongs."""
    for key, default in defaults.items():
        if isinstance(default, dict) and key != "student":
            value = recipe.get(key)
            if not isinstance(value, dict):
                raise DistillError(f"{where}.{key} must be a mapping of settings ({', '.join(default)}), got {value!r}")
            _check_sections(value, default, f"{where}.{key}")


def _check_paths(recipe: dict[str, Any]) -> None:
    """The output folder, the teacher pipelines and the data sets are text (a folder, a file, a data set name)."""
    # an embedder's pipelines may also be a mapping {indexing, query}: _check_teacher_labels checks it
    pipelines_text = not (recipe["task"] == "embedder" and isinstance(recipe.get("pipelines"), dict))
    checks = [("output", False), ("data.train", False), ("data.dev", False)] + [("pipelines", True)] * pipelines_text
    checks += [("data.unlabelled", True)] + ([("teacher", False)] if recipe["task"] == "embedder" else [])
    for key, nullable in checks:
        node: Any = recipe
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            if not (isinstance(node, str) and node) and not (nullable and node is None):
                alternative = " or null" if nullable else ""
                raise DistillError(f"recipe.{key} must be a path or name (text){alternative}, got {node!r}")


def validate(recipe: dict[str, Any]) -> dict[str, Any]:
    """Check a merged recipe; return it with losses normalised to {name, weight, **kwargs}."""
    from distill.training.losses import KIND, LOSSES, losses_for

    _check_sections(recipe, DEFAULTS.get(recipe.get("task"), EMBEDDER_DEFAULTS))
    _check_paths(recipe)
    if recipe["task"] != "embedder":
        return _validate_reader(recipe)
    for key in ("batch_size", "epochs", "eval_every", "log_every", "save_every", "teacher_batch_size"):
        _positive(recipe, key)
    _positive(recipe, "max_steps", allow_none=True)
    _positive(recipe, "max_length.query")
    _positive(recipe, "max_length.passage")
    _positive(recipe, "optimizer.lr", float)
    _positive(recipe, "data.questions", allow_none=True)
    _positive(recipe, "data.dev_questions", allow_none=True)
    _positive(recipe, "data.dev_articles", allow_none=True)
    if recipe["data"]["dev"] == recipe["data"]["train"] and not recipe["data"]["dev_articles"]:
        raise DistillError(
            f"recipe.data.dev_articles must be set when recipe.data.dev is the training set "
            f"({recipe['data']['train']}): that many whole articles are held out of training for the dev slice"
        )
    _check_optimizer(recipe)
    _check_teacher_labels(recipe)
    for key in ("hard_negatives", "sibling_questions"):
        if not isinstance(recipe["data"][key], bool):
            raise DistillError(f"recipe.data.{key} must be true or false, got {recipe['data'][key]!r}")
    student = recipe["student"]
    if student == "static" or (isinstance(student, dict) and "static" in student):
        from distill.training.static import check_static_student

        recipe = {**recipe, "student": check_static_student(student, recipe["query_only"])}
        static_losses = [e.get("name") for e in recipe["losses"] if isinstance(e, dict)]
        if aligned := [n for n in static_losses if n in LOSSES and LOSSES[n].needs_aligned_tokens]:
            raise DistillError(
                f"recipe.losses: {', '.join(aligned)} compare token states, and a static student has none: use "
                "embedding_mse, cosine, listwise_kl or similarity_matrix"
            )
    elif isinstance(student, dict):
        if set(student) != {"from_teacher"} or not isinstance(student["from_teacher"], dict):
            raise DistillError(
                f"recipe.student must be a model spec, static or {{from_teacher: {{layers: [...]}}}}, got {student}"
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
    normalised = _normalise_losses(recipe["losses"], allowed=losses_for("embedder"))
    names = [e["name"] for e in normalised]
    if recipe["query_only"]:
        for name in names:
            if KIND[name] == "relation" or LOSSES[name].needs_aligned_tokens:
                raise DistillError(
                    f"recipe.losses: {name} cannot train a query-only student (its passages are the teacher's own "
                    "embeddings); use listwise_kl, margin_mse, cosine or embedding_mse"
                )
    if isinstance(recipe["anchor"], bool) or not isinstance(recipe["anchor"], (int, float)) or recipe["anchor"] < 0:
        raise DistillError(f"recipe.anchor must be a number >= 0 (0 = off), got {recipe['anchor']!r}")
    if recipe["passage_memory"] != 0:
        if recipe["passage_memory"] != "corpus":
            _positive(recipe, "passage_memory")
        if "listwise_kl" not in names:
            raise DistillError("recipe.passage_memory feeds listwise_kl: add that loss or set passage_memory: 0")
        if recipe["query_only"] != (recipe["passage_memory"] == "corpus"):
            raise DistillError(
                "recipe.passage_memory: corpus (every passage's teacher embedding as a column) is for a query-only "
                "student; a query-only student takes no N-passage memory (its passages are already the teacher's "
                f"fixed embeddings), got passage_memory: {recipe['passage_memory']!r}, query_only: "
                f"{recipe['query_only']!r}"
            )
    if "margin_mse" in names and not recipe["data"]["hard_negatives"]:
        raise DistillError("recipe.losses: margin_mse needs negatives; set data.hard_negatives: true")
    if "margin_mse" in names and recipe["data"]["negatives_per_query"] != 1:
        raise DistillError(
            "recipe.losses: margin_mse compares each query with one negative; set data.negatives_per_query: 1"
        )
    if "rkd_angle" in names and recipe["batch_size"] < 3:
        raise DistillError(f"recipe.batch_size must be >= 3 for rkd_angle, got {recipe['batch_size']}")
    if recipe["batch_size"] < 2 and ("listwise_kl" in names or "similarity_matrix" in names):
        raise DistillError("recipe.batch_size must be >= 2 for in-batch losses (listwise_kl, similarity_matrix)")
    return {**recipe, "losses": normalised}


def _check_teacher_labels(recipe: dict[str, Any]) -> None:
    """The keys of training without labels (data.labels: teacher) and of a user's own pipelines."""
    data, pipelines = recipe["data"], recipe["pipelines"]
    if isinstance(pipelines, dict):
        if set(pipelines) != {"indexing", "query"} or not all(isinstance(v, str) for v in pipelines.values()):
            raise DistillError(
                f"recipe.pipelines must be a folder, null, or {{indexing: FILE, query: FILE}}, got {pipelines!r}"
            )
    elif pipelines is not None and not isinstance(pipelines, str):
        raise DistillError(
            f"recipe.pipelines must be a folder, null, or {{indexing: FILE, query: FILE}}, got {pipelines!r}"
        )
    if recipe["teacher"] == "pipelines" and not isinstance(pipelines, dict):
        raise DistillError("recipe.teacher: pipelines needs recipe.pipelines: {indexing: FILE, query: FILE}")
    if data["labels"] not in ("gold", "teacher"):
        raise DistillError(f"recipe.data.labels must be gold or teacher, got {data['labels']!r}")
    if data["queries"] is not None and not isinstance(data["queries"], str):
        raise DistillError(f"recipe.data.queries must be a file (or folder:split) or null, got {data['queries']!r}")
    _positive(recipe, "data.candidates")
    _positive(recipe, "data.negatives_per_query")
    if data["negatives_per_query"] > 1:
        if data["labels"] != "teacher" or not data["hard_negatives"]:
            raise DistillError(
                "recipe.data.negatives_per_query above 1 draws them from the teacher's ranking: set data.labels: "
                "teacher and data.hard_negatives: true"
            )
        if data["negatives_per_query"] > data["candidates"] - 1:
            raise DistillError(
                f"recipe.data.negatives_per_query ({data['negatives_per_query']}) must be at most data.candidates - 1 "
                f"({data['candidates'] - 1}): they are distinct passages from the teacher's ranks 2..candidates"
            )
    if data["negatives_from"] not in ("teacher", "student", "both"):
        raise DistillError(
            f"recipe.data.negatives_from must be teacher, student or both, got {data['negatives_from']!r}"
        )
    if data["negatives_from"] != "teacher":
        if data["labels"] != "teacher" or not data["hard_negatives"]:
            raise DistillError(
                f"recipe.data.negatives_from: {data['negatives_from']} mines negatives against the teacher's "
                "ranking: set data.labels: teacher and data.hard_negatives: true"
            )
        if not isinstance(recipe["student"], str):
            raise DistillError(
                f"recipe.data.negatives_from: {data['negatives_from']} embeds the corpus with the untrained student: "
                "recipe.student must be a model (a name or a folder), not a student built from the teacher"
            )
        if data["negatives_from"] == "both" and data["negatives_per_query"] < 2:
            raise DistillError(
                "recipe.data.negatives_from: both takes half of each query's negatives from each: set "
                "data.negatives_per_query to 2 or more"
            )
    _positive(recipe, "data.passages", allow_none=True)
    if data["pseudo_queries"] is not None and data["pseudo_queries"] != 0:
        _positive(recipe, "data.pseudo_queries")
    if data["query_variants"] != 0:
        _positive(recipe, "data.query_variants")
    if data["query_variants"] and data["queries"] is None:
        raise DistillError("recipe.data.query_variants varies the user's queries: give data.queries too")
    if data["pseudo_kind"] not in PSEUDO_KINDS:
        raise DistillError(
            f"recipe.data.pseudo_kind must be one of {', '.join(PSEUDO_KINDS)}, got {data['pseudo_kind']!r}"
        )
    if data["labels"] == "gold":
        if data["queries"] is not None or data["pseudo_queries"] != 0 or data["passages"] is not None:
            raise DistillError(
                "recipe.data.queries, data.pseudo_queries and data.passages are for data the teacher labels: set "
                "data.labels: teacher"
            )
        if recipe["teacher"] == "pipelines":
            raise DistillError("recipe.teacher: pipelines labels the data itself: set data.labels: teacher")
    elif data["queries"] is None and data["pseudo_queries"] == 0:
        raise DistillError(
            "recipe.data.labels: teacher needs training queries: give data.queries (a file) and/or data.pseudo_queries"
        )
    elif data["sibling_questions"]:
        raise DistillError("recipe.data.sibling_questions needs gold labels (data.labels: gold)")


def _check_student(student: Any, field: str) -> None:
    if isinstance(student, str):
        return
    if not isinstance(student, dict) or not (set(student) == {"from_teacher"} or set(student) == {"model", "layers"}):
        raise DistillError(
            f"recipe.{field} must be a model spec, {{from_teacher: {{layers: [...]}}}} or {{model: SPEC, layers: "
            f"[...]}}, got {student!r}"
        )
    if "from_teacher" in student and not isinstance(student["from_teacher"], dict):
        raise DistillError(f"recipe.{field}.from_teacher must be a mapping {{layers: [...]}}, got {student!r}")
    layers = student["from_teacher"].get("layers") if "from_teacher" in student else student["layers"]
    where = f"recipe.{field}." + ("from_teacher.layers" if "from_teacher" in student else "layers")
    _check_layers(layers, where)


def _check_layers(layers: Any, where: str) -> None:
    if not isinstance(layers, list) or not layers or not all(isinstance(x, int) and x >= 0 for x in layers):
        raise DistillError(f"{where} must be a non-empty list of layer indices, got {layers}")
    if sorted(set(layers)) != layers:
        raise DistillError(f"{where} must be increasing and unique, got {layers}")


def _check_negatives(value: Any) -> None:
    """``recipe.data.negatives``: null, or ``{per_question: N > 0, retriever: YAML}``."""
    if value is None:
        return
    if not isinstance(value, dict) or set(value) != {"per_question", "retriever"}:
        raise DistillError(
            "recipe.data.negatives must be null or {per_question: N, retriever: RETRIEVAL_YAML} (e.g. "
            f"{{per_question: 2, retriever: pipelines/retrieval.yaml}}), got {value!r}"
        )
    n = value["per_question"]
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise DistillError(f"recipe.data.negatives.per_question must be a positive int, got {n!r}")
    if not isinstance(value["retriever"], str) or not value["retriever"]:
        raise DistillError(
            f"recipe.data.negatives.retriever must be a retrieval pipeline YAML (text), got {value['retriever']!r}"
        )


def _validate_reader(recipe: dict[str, Any]) -> dict[str, Any]:
    """Reader fine-tuning and distillation recipes."""

    for key in ("batch_size", "epochs", "eval_every", "log_every", "save_every", "max_length", "stride"):
        _positive(recipe, key)
    for key in ("max_query_length", "max_answer_length"):
        _positive(recipe, key)
    _positive(recipe, "max_steps", allow_none=True)
    _positive(recipe, "optimizer.lr", float)
    _positive(recipe, "data.questions", allow_none=True)
    _positive(recipe, "data.dev_questions", allow_none=True)
    _check_optimizer(recipe)
    _check_negatives(recipe["data"]["negatives"])
    if recipe["stride"] >= recipe["max_length"] - recipe["max_query_length"] - 3:
        raise DistillError(
            f"recipe.stride ({recipe['stride']}) must be smaller than the context room of a window (max_length "
            f"{recipe['max_length']} - max_query_length {recipe['max_query_length']} - 3 special tokens)"
        )
    if recipe["task"] == "finetune_reader":
        if not isinstance(recipe["model"], str):
            raise DistillError(
                f"recipe.model must be a model spec (folder, hub id, offline source), got {recipe['model']!r}"
            )
        if recipe["layers"] is not None:
            _check_layers(recipe["layers"], "recipe.layers")
        return recipe
    _check_student(recipe["student"], "student")
    if not isinstance(recipe["teacher"], str):
        raise DistillError(
            f"recipe.teacher must be a fine-tuned reader (a folder or hub id), got {recipe['teacher']!r}"
        )
    _positive(recipe, "teacher_batch_size")
    _positive(recipe, "data.unlabelled_questions", allow_none=True)
    from distill.training.losses import losses_for

    normalised = _normalise_losses(recipe["losses"], allowed=losses_for("reader"))
    names = {e["name"] for e in normalised if e["weight"] > 0}
    if recipe["data"]["unlabelled"] is not None and names <= {"start_end_ce"}:
        raise DistillError(
            "recipe.data.unlabelled: questions without answers only teach through the teacher; add start_end_kl "
            "(or another teacher loss) or set data.unlabelled: null"
        )
    return {**recipe, "losses": normalised}


def load_recipe(path: str | Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        raw = parse_yaml(read_text(path, "recipe"), f"recipe {path}")
        if raw is None:
            # Defaults alone would silently train the full default recipe into the benchmark's output folder.
            raise DistillError(
                f"recipe {path} is empty: write at least its `output` folder (every key: docs/recipes.md)"
            )
        if not isinstance(raw, dict):
            raise DistillError(f"recipe {path} must be a mapping of settings")
    task = raw.get("task", "embedder")
    if not isinstance(task, str) or task not in DEFAULTS:
        raise DistillError(f"recipe.task must be one of {', '.join(DEFAULTS)}, got {task!r}")
    recipe = _merge(DEFAULTS[task], raw, "")
    if "losses" in raw:
        recipe["losses"] = raw["losses"]
    return validate(apply_overrides(recipe, overrides or []))


def dump_recipe(recipe: dict[str, Any]) -> str:
    return yaml.safe_dump(recipe, sort_keys=False)
