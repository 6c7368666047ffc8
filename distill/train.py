"""``distill train``: recipe -> cached teacher outputs -> trained student -> model card -> student pipelines."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from distill.errors import DistillError
from distill.recipes import dump_recipe, load_recipe

logger = logging.getLogger(__name__)


def train_embedder(recipe_path: str | Path | None, overrides: list[str] | None = None, *, swap: bool = True) -> Path:
    """Run a recipe end to end and return the student folder (``<output>/student``)."""
    from distill.embedder import EmbedderTask
    from distill.model_card import write_student_files
    from distill.trainer import LOG_FILE, Trainer, finished

    recipe = load_recipe(recipe_path, overrides)
    output = Path(recipe["output"])
    _start(recipe, output)

    # Checked before training, so a wrong folder costs seconds, not a training run.
    paths: list[Path] = []
    if swap and recipe["pipelines"]:
        paths = [Path(recipe["pipelines"]) / "indexing.yaml", Path(recipe["pipelines"]) / "retrieval.yaml"]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise DistillError(
                f"recipe.pipelines: {missing} do not exist; point it at the folder of the teacher's YAML pipelines, "
                "or set it to null to skip writing the student's pipelines"
            )

    task = EmbedderTask(recipe)
    trainer = Trainer(task, recipe, output)
    state = trainer.fit()
    if not trainer.is_main:
        return output / "student"
    student = output / "student"
    metrics = _run_metrics(task, state, output)
    untrained = metrics["untrained_dev"]
    shutil.copy(output / LOG_FILE, student / LOG_FILE)
    write_student_files(student, recipe, metrics, kind="embedder")
    if paths:
        from distill.pipelines import slug, swap_files

        components = ["text_embedder"] if recipe["query_only"] else None
        written = swap_files(
            paths,
            output / "pipelines",
            model=str(student),
            components=components,
            index=None if recipe["query_only"] else f"student-{slug(str(output))}",
            keep_index=recipe["query_only"],
        )
        print("student pipelines: " + ", ".join(map(str, written)))
    finished(output)
    before = untrained.get(task.best_metric, float("nan"))
    print(
        f"student saved to {student}; dev {task.best_metric} {state.best:.4f} (teacher "
        f"{task.teacher_dev[task.best_metric]:.4f}, before distillation {before:.4f})"
    )
    return student


def _start(recipe: dict[str, Any], output: Path) -> None:
    from accelerate.utils import set_seed

    # Seeded here, before the task builds its models: a reader's fresh QA head and a loss's projections are random.
    set_seed(recipe["seed"])
    output.mkdir(parents=True, exist_ok=True)
    print("resolved recipe:\n" + dump_recipe(recipe), flush=True)
    saved = output / "config.yaml"
    if (output / "checkpoint").exists() and saved.exists() and load_recipe(saved) != recipe:
        raise DistillError(
            f"{output} holds an interrupted run of another recipe ({saved}); resume it with the same recipe, or pick "
            "another output folder"
        )
    saved.write_text(dump_recipe(recipe), encoding="utf-8")


def _run_metrics(task: Any, state: Any, output: Path) -> dict[str, Any]:
    path = output / "untrained_metrics.json"
    untrained = json.loads(path.read_text()) if path.exists() else {}
    return {
        "dev": {k: v for k, v in state.best_metrics.items() if not k.startswith(("teacher_", "untrained_"))},
        "teacher_dev": getattr(task, "teacher_dev", {}),
        "untrained_dev": {k: v for k, v in untrained.items() if not k.startswith("teacher_")},
        "best_step": state.best_step,
        "train": {
            "steps": state.step,
            "examples": state.examples,
            "seconds": round(state.train_seconds, 1),
            "examples_per_s": round(state.examples / max(state.train_seconds, 1e-9), 2),
        },
    }


def _starts_from(student: Any) -> dict[str, Any] | None:
    """For a student that is already a trained reader folder (a run continued from another student): its path and,
    from its metrics.json, how many training steps the saved weights had had in all (a run that kept an earlier best
    checkpoint counts up to that checkpoint; None where it does not say)."""
    from distill.model_card import saved_steps
    from distill.reader import is_reader_folder

    folder = Path(student) if isinstance(student, str) else None
    if folder is None or not folder.is_dir() or not is_reader_folder(folder):
        return None
    try:
        before = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        steps = int(saved_steps(before)) + int((before.get("starts_from") or {}).get("steps") or 0)
    except (OSError, ValueError, TypeError):
        steps = None
    return {"reader": str(student), "steps": steps}


def train_reader(recipe_path: str | Path | None, overrides: list[str] | None = None, *, swap: bool = True) -> Path:
    """Distil a fine-tuned reader into a student (``task: reader``); return ``<output>/student``."""
    from distill.model_card import write_reader_files
    from distill.reader import ReaderTask
    from distill.trainer import LOG_FILE, Trainer, finished

    recipe = recipe_path if isinstance(recipe_path, dict) else load_recipe(recipe_path, overrides)
    if recipe["task"] != "reader":
        raise DistillError(f"train_reader needs a recipe with task: reader, got {recipe['task']!r}")
    output = Path(recipe["output"])
    pipeline = Path(recipe["pipelines"]) if swap and recipe["pipelines"] else None
    if pipeline is not None and not pipeline.exists():
        raise DistillError(
            f"recipe.pipelines: {pipeline} does not exist; point it at the teacher's extractive QA YAML, or set it to "
            "null to skip writing the student's pipeline"
        )
    _start(recipe, output)
    task = ReaderTask(recipe)
    trainer = Trainer(task, recipe, output)
    state = trainer.fit()
    student = output / "student"
    if not trainer.is_main:
        return student
    metrics = _run_metrics(task, state, output)
    metrics["skipped"] = dict(task.counts)
    metrics["cross_tokenizer"] = task.cross_tokenizer
    metrics["train_windows"] = {"labelled": len(task.labelled_rows), "unlabelled": len(task.unlabelled_rows)}
    if (start := _starts_from(recipe["student"])) is not None:
        metrics["starts_from"] = start
    shutil.copy(output / LOG_FILE, student / LOG_FILE)
    write_reader_files(student, recipe, metrics)
    if pipeline is not None:
        from distill.pipelines import swap_files

        # the retrieval half is the teacher's: swap_files copies the indexing pipeline beside it too
        written = swap_files([pipeline], output / "pipelines", model=str(student))
        print("student pipeline: " + ", ".join(map(str, written)))
    finished(output)
    teacher = f"teacher {task.teacher_dev['f1']:.1f}, " if task.teacher_dev else ""
    print(
        f"student saved to {student}; dev F1 {state.best:.1f} ({teacher}before training "
        f"{metrics['untrained_dev'].get('f1', float('nan')):.1f})"
    )
    return student


def finetune_reader(recipe_path: str | Path | None, overrides: list[str] | None = None) -> Path:
    """Fine-tune an encoder as an extractive reader on gold answers (``task: finetune_reader``); the model folder is
    ``<output>`` itself, ready for ``TransformersExtractiveReader(model=<output>)``. Resumes an interrupted run."""
    from distill.model_card import write_reader_files
    from distill.reader import ReaderTask
    from distill.trainer import LOG_FILE, Trainer, finished

    recipe = load_recipe(recipe_path, overrides)
    if recipe["task"] != "finetune_reader":
        raise DistillError(
            f"`distill finetune-reader` needs a recipe with task: finetune_reader, got {recipe['task']!r} (distil "
            "with `distill train`)"
        )
    output = Path(recipe["output"])
    work = output / "training"
    _start(recipe, work)
    task = ReaderTask(recipe)
    trainer = Trainer(task, recipe, work)
    state = trainer.fit()
    if not trainer.is_main:
        return output
    metrics = _run_metrics(task, state, work)
    metrics["skipped"] = dict(task.counts)
    for item in (work / "student").iterdir():
        target = output / item.name
        if target.is_dir():
            shutil.rmtree(target)
        shutil.copy2(item, target) if item.is_file() else shutil.copytree(item, target)
    shutil.copy(work / LOG_FILE, output / LOG_FILE)
    write_reader_files(output, recipe, metrics)
    finished(work)
    shutil.rmtree(work / "student")
    print(f"reader saved to {output}; dev EM {metrics['dev'].get('exact_match', 0):.1f} F1 {state.best:.1f}")
    return output
