"""What the serving-speed benchmarks share: each model swapped into the teacher's YAML, and one ``distill eval``.

Every pipeline keeps the teacher's indexing and retrieval YAML with the vectorised retriever and changes only its
embedders (``distill swap``): ``fp32`` serves any sentence-transformers folder or offline source through Haystack's
SentenceTransformers embedders (a static student too), ``int8`` first exports the model (``distill export``, reused
while the source weights are unchanged) and serves it through ``distill.components.onnx_embedders``, and
``query-only`` swaps the
text embedder alone so that documents keep the teacher's index. Each pipeline's files live in ``RUNS/NAME``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill import cli
from distill.common.models import HUB_ALIASES, ONNX_EXPORT_FILE, model_fingerprint, resolve_model
from distill.errors import DistillError
from distill.pipelines.loading import is_text_embedder, read_pipeline_dict, swap_files
from distill.training.export import export_onnx

KINDS = ("fp32", "int8", "query-only")


@dataclass(frozen=True)
class Entry:
    """One pipeline to compare: its name in the report, the model and how it is served (one of :data:`KINDS`)."""

    name: str
    model: str
    kind: str = "fp32"


def teacher_files(pipelines: Path) -> list[Path]:
    return [pipelines / "indexing.yaml", pipelines / "retrieval.yaml"]


def model_folder(model: str) -> Path | None:
    """The local folder of ``model`` (a folder, an offline source, the teacher's Hub id), or None when absent."""
    try:
        folder = Path(resolve_model(HUB_ALIASES.get(model, model)))
    except DistillError:
        return None
    return folder if folder.is_dir() else None


def _export(model: str, out: Path) -> Path:
    """``distill export`` of ``model`` to ``out`` (int8), unless ``out`` already holds one of the same weights made
    the way ``distill export`` makes them today (the weights' scaling chosen against the fp32 graph)."""
    folder = model_folder(model)
    described = out / ONNX_EXPORT_FILE
    if folder is not None and described.is_file():
        info = json.loads(described.read_text(encoding="utf-8"))
        same = info.get("precision") == "int8" and "int8_tried" in info
        if same and info.get("source_weights") == model_fingerprint(folder):
            print(f"reusing the int8 export in {out}")
            return out
    return export_onnx(model, out)


def teacher_system(pipelines: Path, runs: Path) -> str:
    """The teacher's own pipelines with the vectorised retriever: ``teacher=RUNS/teacher/pipelines/retrieval.yaml``."""
    folder = runs / "teacher" / "pipelines"
    swap_files(teacher_files(pipelines), folder, model=None, fast_retriever=True)
    return f"teacher={folder / 'retrieval.yaml'}"


def system(entry: Entry, pipelines: Path, runs: Path) -> str:
    """Swap ``entry`` into the teacher's pipelines (exporting it first for ``int8``); ``NAME=retrieval.yaml``."""
    if entry.kind not in KINDS:
        raise DistillError(f"{entry.name}: kind must be one of {', '.join(KINDS)}, got {entry.kind!r}")
    teacher = teacher_files(pipelines)
    if entry.kind == "int8":
        export = _export(entry.model, runs / entry.name)
        folder = export / "pipelines"
        swap_files(teacher, folder, model=str(export), fast_retriever=True)
    elif entry.kind == "query-only":
        folder = runs / entry.name / "pipelines"
        queries = [n for n, c in read_pipeline_dict(teacher[1])["components"].items() if is_text_embedder(c)]
        swap_files(teacher, folder, model=entry.model, components=queries, keep_index=True, fast_retriever=True)
    else:
        folder = runs / entry.name / "pipelines"
        swap_files(teacher, folder, model=entry.model, fast_retriever=True)
    return f"{entry.name}={folder / 'retrieval.yaml'}"


def present(entries: list[Entry]) -> list[Entry]:
    """The entries whose model is here; one printed line for each one skipped, so a fresh machine runs the rest."""
    kept = []
    for entry in entries:
        if model_folder(entry.model) is None:
            print(f"skipping {entry.name}: model {entry.model} is not here (train or download it first)")
        else:
            kept.append(entry)
    return kept


def evaluate(
    systems: list[str],
    *,
    data: str,
    questions: int,
    seed: int,
    warmup: int,
    eval_dir: Path,
    articles: int | None = None,
) -> int:
    """One ``distill eval`` of ``systems`` into ``eval_dir``; the first is the reference of shares and speed-ups."""
    sample = ["--questions", str(questions), "--seed", str(seed), "--warmup", str(warmup)]
    if articles is not None:
        sample += ["--articles", str(articles)]
    return cli.main(["eval", *systems, "--data", data, *sample, "--out", str(eval_dir)])


def copy_report(eval_dir: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(eval_dir / "report.json", out)
    print(f"copied the report to {out}")


def add_eval_args(parser: Any, runs: str) -> None:
    """The options every lineup benchmark shares: the teacher's pipelines, the data and the seeded sample, warm-up,
    the folder of its exports and YAML."""
    parser.add_argument(
        "--pipelines", type=Path, default=Path("pipelines"), help="the teacher's indexing/retrieval YAML"
    )
    parser.add_argument("--data", default="squad-dev")
    parser.add_argument("--questions", type=int, default=2000, help="seeded question sample (whole corpus kept)")
    parser.add_argument("--articles", type=int, help="keep this many whole articles (a quick look)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=Path, default=Path(runs), help="folder for the exports, YAML and report")
