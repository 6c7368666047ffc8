"""``distill train``: recipe -> cached teacher outputs -> trained student -> model card -> student pipelines.

:func:`train` runs the loop every task shares (seed, resolved recipe printed and saved, resume, the
:class:`~distill.training.trainer.Trainer`, run metrics, the log beside the student); a finishing step per task then
writes
that task's files (model card, pipelines) and says where the student is.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.common.outputs import check_output_folder, undone_on_error, write_atomic
from distill.common.processes import is_main_process
from distill.errors import DistillError
from distill.training.recipes import dump_recipe, load_recipe

if TYPE_CHECKING:
    from distill.pipelines.user import UserPipelines

logger = logging.getLogger(__name__)


def train(recipe: dict[str, Any], *, swap: bool = True, user_pipelines: UserPipelines | None = None) -> Path:
    """Run a resolved recipe end to end (resuming an interrupted run) and return the trained model's folder:
    ``<output>/student`` for an embedder or reader student, ``<output>`` itself for a fine-tuned teacher reader.
    With ``swap``, a student's pipelines are written from the teacher's (``recipe.pipelines``).
    ``user_pipelines``: the user's ``recipe.pipelines`` as already read (``distill adapt``), not read again."""
    from distill.training.trainer import CHECKPOINT, Trainer

    kind = recipe["task"]
    if kind not in _FINISH:
        raise DistillError(f"recipe.task must be one of {', '.join(_FINISH)}, got {kind!r}")
    output = Path(recipe["output"])
    # Checked before training, so a wrong folder costs seconds, not a training run.
    pipelines = _teacher_pipelines(recipe) if swap and kind != "finetune_reader" else []
    # A fine-tuned reader is the output folder itself: its checkpoints and log live in a folder beside the weights.
    work = output / "training" if kind == "finetune_reader" else output
    check_output_folder(output, "recipe.output:")
    # A run that fails on bad input leaves no config.yaml or empty folder; one with a checkpoint can be resumed. Of
    # processes launched together, only the main one writes (and so undoes) the run's files.
    main = is_main_process()
    with undone_on_error(output, keep=lambda: not main or (work / CHECKPOINT).exists()):
        _start(recipe, work)
        task = _task(recipe, user_pipelines)
        if main:
            _save_config(recipe, work)  # once the task's models and data have loaded
        trainer = Trainer(task, recipe, work)
        state = trainer.fit()
        if not trainer.is_main:
            return output if kind == "finetune_reader" else work / "student"
        return _FINISH[kind](recipe, task, state, work, pipelines)


def _task(recipe: dict[str, Any], user_pipelines: UserPipelines | None = None) -> Any:
    """The recipe's task, warmed up: its models loaded and the teacher's outputs computed (through the cache)."""
    if recipe["task"] == "embedder":
        from distill.training.tasks.embedder import EmbedderTask

        task = EmbedderTask(recipe, user_pipelines=user_pipelines)
    else:
        from distill.training.tasks.reader import ReaderTask

        task = ReaderTask(recipe)
    task.warm_up()
    return task


def _teacher_pipelines(recipe: dict[str, Any]) -> list[Path]:
    """The teacher's pipeline files the student's are written from: indexing and retrieval for an embedder, the
    extractive QA pipeline for a reader; none when ``recipe.pipelines`` is null."""
    if not recipe["pipelines"]:
        return []
    if isinstance(recipe["pipelines"], dict):  # a user's own pipelines, any file names
        paths = [Path(recipe["pipelines"]["indexing"]), Path(recipe["pipelines"]["query"])]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DistillError(f"recipe.pipelines: {missing} do not exist")
        return paths
    folder = Path(recipe["pipelines"])
    if recipe["task"] == "reader":
        if not folder.exists():
            raise DistillError(
                f"recipe.pipelines: {folder} does not exist; point it at the teacher's extractive QA YAML, or set it "
                "to null to skip writing the student's pipeline"
            )
        return [folder]
    paths = [folder / "indexing.yaml", folder / "retrieval.yaml"]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise DistillError(
            f"recipe.pipelines: {missing} do not exist; point it at the folder of the teacher's YAML pipelines, "
            "or set it to null to skip writing the student's pipelines"
        )
    return paths


def _start(recipe: dict[str, Any], output: Path) -> None:
    from accelerate.utils import set_seed

    # Seeded here, before the task builds its models: a reader's fresh QA head and a loss's projections are random.
    set_seed(recipe["seed"])
    print("resolved recipe:\n" + dump_recipe(recipe), flush=True)
    saved = output / "config.yaml"
    if (output / "checkpoint").exists() and saved.exists() and load_recipe(saved) != recipe:
        raise DistillError(
            f"{output} holds an interrupted run of another recipe ({saved}); resume it with the same recipe, or pick "
            "another output folder"
        )


def _save_config(recipe: dict[str, Any], output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    write_atomic(output / "config.yaml", dump_recipe(recipe))


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


def _train_windows(task: Any) -> dict[str, int]:
    """A reader's training windows: labelled (hard targets; negatives included), unlabelled, and the negatives."""
    return {
        "labelled": len(task.labelled_rows),
        "unlabelled": len(task.unlabelled_rows),
        "negative": len(task.negative_rows),
    }


def _starts_from(student: Any) -> dict[str, Any] | None:
    """For a student that is already a trained reader folder (a run continued from another student): its path and,
    from its metrics.json, how many training steps the saved weights had had in all (a run that kept an earlier best
    checkpoint counts up to that checkpoint; None where it does not say)."""
    from distill.training.model_card import saved_steps
    from distill.training.tasks.reader import is_reader_folder

    folder = Path(student) if isinstance(student, str) else None
    if folder is None or not folder.is_dir() or not is_reader_folder(folder):
        return None
    try:
        before = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        steps = int(saved_steps(before)) + int((before.get("starts_from") or {}).get("steps") or 0)
    except (OSError, ValueError, TypeError):
        steps = None
    return {"reader": str(student), "steps": steps}


# --- one finishing step per task: (recipe, task, state, work folder, teacher pipelines) -> the model's folder -------


def _finish_embedder(recipe: dict[str, Any], task: Any, state: Any, output: Path, pipelines: list[Path]) -> Path:
    from distill.training.model_card import write_student_files
    from distill.training.trainer import LOG_FILE, finished

    student = output / "student"
    metrics = _run_metrics(task, state, output)
    if task.silver is not None:
        metrics["training_data"] = task.silver.summary
    shutil.copy(output / LOG_FILE, student / LOG_FILE)
    write_student_files(student, recipe, metrics, kind="embedder")
    if pipelines:
        from distill.pipelines.loading import is_text_embedder, read_pipeline_dict, slug, swap_pipelines

        # the teacher's pipelines as its task read them, else as the files hold them now
        parsed = task.user_pipelines.files if task.user_pipelines else [(p, read_pipeline_dict(p)) for p in pipelines]
        text_embedders = [n for _, data in parsed for n, c in data["components"].items() if is_text_embedder(c)]
        written = swap_pipelines(
            parsed,
            output / "pipelines",
            model=str(student),
            components=text_embedders if recipe["query_only"] else None,
            keep_index=recipe["query_only"],
            name_slug=slug(str(output)),
        )
        print("student pipelines: " + ", ".join(map(str, written)))
    finished(output)
    before = metrics["untrained_dev"].get(task.best_metric, float("nan"))
    print(
        f"student saved to {student}; dev {task.best_metric} {state.best:.4f} (teacher "
        f"{task.teacher_dev[task.best_metric]:.4f}, before distillation {before:.4f})"
    )
    if (warning := below_its_start(task.best_metric, state.best, before)) is not None:
        logger.warning(warning)
    return student


def below_its_start(metric: str, best: float, before: float) -> str | None:
    """A warning when no checkpoint of the run beat the untrained student on the dev slice (NaN: not measured)."""
    if not best < before:
        return None
    return (
        f"training left the student below where it started: dev {metric} {best:.4f} at its best against "
        f"{before:.4f} before distillation; the untrained student is the better one. Try a lower optimizer.lr; a "
        "static student with dims: null keeps uncentred token rows, which train badly: give dims the teacher's width"
    )


def _finish_reader(recipe: dict[str, Any], task: Any, state: Any, output: Path, pipelines: list[Path]) -> Path:
    from distill.training.model_card import write_reader_files
    from distill.training.trainer import LOG_FILE, finished

    student = output / "student"
    metrics = _run_metrics(task, state, output)
    metrics["skipped"] = dict(task.counts)
    metrics["cross_tokenizer"] = task.cross_tokenizer
    metrics["train_windows"] = _train_windows(task)
    if task.negatives is not None:
        metrics["negatives"] = task.negatives.as_dict()
    if (start := _starts_from(recipe["student"])) is not None:
        metrics["starts_from"] = start
    shutil.copy(output / LOG_FILE, student / LOG_FILE)
    write_reader_files(student, recipe, metrics)
    if pipelines:
        from distill.pipelines.loading import swap_files

        # the retrieval half is the teacher's: swap_files copies the indexing pipeline beside it too
        written = swap_files(pipelines, output / "pipelines", model=str(student))
        print("student pipeline: " + ", ".join(map(str, written)))
    finished(output)
    teacher = f"teacher {task.teacher_dev['f1']:.1f}, " if task.teacher_dev else ""
    print(
        f"student saved to {student}; dev F1 {state.best:.1f} ({teacher}before training "
        f"{metrics['untrained_dev'].get('f1', float('nan')):.1f})"
    )
    return student


def _finish_finetuned_reader(recipe: dict[str, Any], task: Any, state: Any, work: Path, pipelines: list[Path]) -> Path:
    """The fine-tuned reader moves from ``<output>/training/student`` up into ``<output>``, ready for
    ``TransformersExtractiveReader(model=<output>)``; a teacher has no student pipelines to write."""
    from distill.training.model_card import write_reader_files
    from distill.training.trainer import LOG_FILE, finished

    output = work.parent
    metrics = _run_metrics(task, state, work)
    metrics["skipped"] = dict(task.counts)
    metrics["train_windows"] = _train_windows(task)
    if task.negatives is not None:
        metrics["negatives"] = task.negatives.as_dict()
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


_FINISH: dict[str, Callable[[dict[str, Any], Any, Any, Path, list[Path]], Path]] = {
    "embedder": _finish_embedder,
    "reader": _finish_reader,
    "finetune_reader": _finish_finetuned_reader,
}
