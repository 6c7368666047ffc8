"""A tiny repository layout for the UI tests: pipelines, a distilled student folder and real evaluation reports.

Built from the tiny models and tiny SQuAD of conftest.py by the library itself (build_default_pipelines, swap,
evaluate), with paths relative to the workspace root as `distill eval` writes them from the repository root.
Like the repository, it has committed benchmark reports beside a probe's output in benchmarks/results/.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.data.datasets import Dataset, load_squad_file
from distill.evaluation.runner import System, evaluate
from distill.pipelines.loading import build_default_pipelines, dump_pipeline_dict, read_pipeline_dict, swap

STUDENT = "tiny-distilled"


@dataclass
class Workspace:
    root: Path
    retrieval_report: Path
    qa_report: Path
    broken_report: Path
    student: Path
    benchmarks: Path

    def env(self) -> dict[str, str]:
        """Settings that point the app at this workspace (run it with the root as working directory)."""
        return {
            "DISTILL_REPORTS": "benchmarks/results/*.json:reports/*/report.json",
            "DISTILL_STUDENTS": "students/*",
            "DISTILL_LIVE_REPORT": "reports/qa/report.json",
        }


def _write(folder: Path, texts: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")


def _swapped(teacher: Path, folder: Path, model: Path, index: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(teacher.glob("*.yaml")):
        data = swap(read_pipeline_dict(path), model=str(model), index=index)
        (folder / path.name).write_text(dump_pipeline_dict(data), encoding="utf-8")


def write_student_folder(folder: Path, embedder: Path | None = None) -> Path:
    """A hand-made distilled student in the trainer's layout (the weights are a copy of a tiny embedder)."""
    if embedder is not None:
        shutil.copytree(embedder, folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(
        "# tiny-distilled\n\nA 32-d student distilled from a 48-d teacher on tiny SQuAD.\n\n"
        "| metric | teacher | student |\n| --- | --- | --- |\n| recall@10 | 0.93 | 0.90 |\n",
        encoding="utf-8",
    )
    (folder / "config.yaml").write_text(
        "teacher: tiny-st-48\nstudent: tiny-st\nlosses:\n- name: listwise_kl\n  weight: 1.0\n"
        "- name: similarity_matrix\n  weight: 0.5\nlr: 0.0001\nseed: 0\n",
        encoding="utf-8",
    )
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "dev": {"recall@10": 0.9, "mrr@10": 0.7},
                "teacher_dev": {"recall@10": 0.93, "mrr@10": 0.75},
                "untrained_dev": {"recall@10": 0.85, "mrr@10": 0.7},
                "best_step": 100,
                "train": {"steps": 100, "seconds": 12.5, "examples_per_s": 40.0},
            }
        ),
        encoding="utf-8",
    )
    rows = []
    for step in range(10, 110, 10):
        rows.append(
            {
                "step": step,
                "epoch": step / 100,
                "lr": 1e-4,
                "loss": 1.0 / step**0.5,
                "loss/listwise_kl": 0.6 / step**0.5,
                "loss/similarity_matrix": 0.4 / step**0.5,
                "examples_per_s": 40.0,
            }
        )
        if step % 50 == 0:
            rows.append(
                {"step": step, "dev/recall@10": 0.8 + step / 1000, "dev/mrr@10": 0.6, "dev/teacher_recall@10": 0.93}
            )
    (folder / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def _evaluate(name: str, folders: dict[str, str], pipeline: str, data: Dataset, config: dict[str, Any]) -> None:
    """``distill eval NAME=pipelines/FOLDER/PIPELINE.yaml ... --out reports/NAME``, run from the workspace root."""
    evaluate(
        [System.parse(f"{system}=pipelines/{folder}/{pipeline}.yaml") for system, folder in folders.items()],
        data,
        warmup=1,
        out_dir=Path("reports") / name,
        command=f"distill eval (ui test, {name})",
        config=config,
        progress=False,
    )


def _benchmarks(root: Path) -> Path:
    """benchmarks/results/ as committed: copies of the reports (without their questions) and a probe's output."""
    folder = root / "benchmarks" / "results"
    folder.mkdir(parents=True)
    for name in ("retrieval", "qa"):
        shutil.copy(root / "reports" / name / "report.json", folder / f"tiny-{name}.json")
    speed = {"command": "python -m distill.bench_trainer", "steps": 20, "ours": {"texts_per_s": 40.0}, "ratio": 1.1}
    (folder / "trainer-speed.json").write_text(json.dumps(speed), encoding="utf-8")
    lengths = {"command": "python -m distill.bench_lengths", "pipelines": ["teacher", "distilled"], "groups": []}
    (folder / "passage-length.json").write_text(json.dumps(lengths), encoding="utf-8")
    return folder


def build_workspace(root: Path, squad: Path, teacher: Path, student: Path, reader: Path) -> Workspace:
    """Pipelines for a wide teacher, an off-the-shelf student and a distilled one; two reports and a broken one."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(squad, root / "squad.json")
    distilled = write_student_folder(root / "students" / STUDENT, student)
    texts = build_default_pipelines(embedder=str(teacher), reader=str(reader), index="ui-teacher")
    qa = read_pipeline_dict(texts["extractive_qa"])
    # The tiny reader has 128 positions: a longer window (the default 384) would overflow them on long questions.
    qa["components"]["reader"]["init_parameters"].update(max_seq_length=128, stride=32)
    texts["extractive_qa"] = dump_pipeline_dict(qa)
    _write(root / "pipelines" / "teacher", texts)
    _swapped(root / "pipelines" / "teacher", root / "pipelines" / "offshelf", student, "ui-offshelf")
    _swapped(root / "pipelines" / "teacher", root / "pipelines" / "distilled", distilled, "ui-distilled")
    data = load_squad_file(root / "squad.json")
    config = {"data": "squad.json", "articles": None, "questions": None, "seed": 0}
    with contextlib.chdir(root):
        retrieval = {"teacher": "teacher", "minilm": "offshelf", "distilled": "distilled"}
        _evaluate("retrieval", retrieval, "retrieval", data, config)
        _evaluate("qa", {"teacher-qa": "teacher", "distilled-qa": "distilled"}, "extractive_qa", data, config)
    broken = root / "reports" / "broken" / "report.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"pipelines": {"teacher": ', encoding="utf-8")
    return Workspace(
        root=root,
        retrieval_report=root / "reports" / "retrieval" / "report.json",
        qa_report=root / "reports" / "qa" / "report.json",
        broken_report=broken,
        student=distilled,
        benchmarks=_benchmarks(root),
    )


_BUILT: dict[tuple[str, ...], Workspace] = {}


def shared_workspace(tmp_path_factory, squad: Path, teacher: Path, student: Path, reader: Path) -> Workspace:
    """One workspace per test session for the same tiny models (test modules only read it, never change it)."""
    key = tuple(str(p) for p in (squad, teacher, student, reader))
    if key not in _BUILT:
        _BUILT[key] = build_workspace(tmp_path_factory.mktemp("ui-workspace"), squad, teacher, student, reader)
    return _BUILT[key]
