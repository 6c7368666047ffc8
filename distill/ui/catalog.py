"""Find and read what runs leave on disk: evaluation reports, their per-question rows, and saved students.

The UI lists these from glob patterns (``DISTILL_REPORTS``, ``DISTILL_STUDENTS``); every reader here raises
:class:`DistillError` with the file and what to do, so a bad file becomes one message instead of a stack trace.
The defaults find a run wherever ``--out`` put it under ``runs/`` (``runs/adapt/mine/eval/report.json``,
``runs/adapt/mine/student``): ``**`` matches folders at any depth, up to :data:`MAX_DEPTH`, never looking inside a
saved model, a checkpoint or a hidden folder, so that a runs/ folder of many trained students stays cheap to list
(the UI lists it on every page load).

The report globs also match JSON that is not an evaluation report (the probes' outputs in ``benchmarks/results/``:
trainer speed, teacher softness...): those are recognised by their keys and set apart, never shown as errors. The
reports are grouped the way a user looks for them: their own runs first, newest first, then the committed benchmark
reports by task (retrieval, reader).

Why one module over 420 lines: it is all the UI reads from disk (finding runs, then their reports, per-question rows
and students), sharing one error style; ui/app.py only draws.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from distill.common.models import ONNX_EXPORT_FILE
from distill.data.datasets import iter_jsonl
from distill.errors import DistillError
from distill.evaluation.report import load_questions, load_report

DEFAULT_REPORTS = os.pathsep.join(["benchmarks/results/*.json", "runs/**/report.json"])
# `distill train` saves OUT/student beside its log and checkpoint: the run folder OUT is what the UI lists.
DEFAULT_STUDENTS = os.pathsep.join(["runs/students/*", "runs/**/student"])
STUDENT_SUBFOLDER = "student"
# How deep `**` looks below its root: runs/adapt/mine/eval/report.json is 3 folders down.
MAX_DEPTH = 6
# Folders `**` never enters: the trainer's checkpoints (weights, optimiser state) and model folders' files.
UNSEARCHED_FOLDERS = ("checkpoint", "checkpoints")
MODEL_FILES = ("modules.json", "config.json", "model.safetensors")
STUDENT_FILES = ("README.md", "config.yaml", "metrics.json", "train_log.jsonl")
# Reports under this folder (relative to the repository root) are the committed benchmarks, not the user's runs.
BENCHMARKS_DIR = "benchmarks"
OWN_RUNS, RETRIEVAL_BENCHMARKS, READER_BENCHMARKS = "runs", "retrieval", "reader"
GROUP_TITLES = {
    OWN_RUNS: "Your runs",
    RETRIEVAL_BENCHMARKS: "Benchmark reports · retrieval",
    READER_BENCHMARKS: "Benchmark reports · reader",
}


def expand(patterns: str, *, base_dir: Path | None = None, dirs: bool = False) -> list[Path]:
    """Paths matching ``os.pathsep``-separated globs, in order, without duplicates.

    ``**`` stands for any folders below (none included), searched as :func:`searched_folders` says. A plain path
    (no ``*?[``) is kept even when it does not exist, so that a mistyped setting shows up as a "does not exist"
    message rather than as nothing at all.
    """
    base = base_dir if base_dir is not None else Path.cwd()
    out: list[Path] = []
    for pattern in (p.strip() for p in patterns.split(os.pathsep)):
        if not pattern:
            continue
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        if "**" in Path(pattern).parts:
            matches = _deep_glob(full)
        elif glob.has_magic(pattern):
            matches = [Path(m) for m in sorted(glob.glob(full))]
        else:
            matches = [Path(full)]
        if dirs and glob.has_magic(pattern):
            matches = [m for m in matches if m.is_dir()]
        out.extend(m for m in matches if m not in out)
    return out


def _deep_glob(pattern: str) -> list[Path]:
    """Matches of a glob with one ``**`` folder: ``root/**/rest`` is ``rest`` globbed in every searched folder below
    each ``root`` (itself a glob)."""
    parts = Path(pattern).parts
    at = parts.index("**")
    roots = glob.glob(str(Path(*parts[:at])))  # `pattern` is absolute: its root part is never empty
    rest = Path(*parts[at + 1 :]) if at + 1 < len(parts) else None
    found: list[Path] = []
    for root in sorted(roots):
        for folder in searched_folders(Path(root)):
            found += [folder] if rest is None else [Path(m) for m in sorted(glob.glob(str(folder / rest)))]
    return found


def is_model_folder(folder: Path) -> bool:
    """A saved model or student: files to load, not runs to list, however many it holds."""
    return is_student_folder(folder) or any((folder / name).is_file() for name in MODEL_FILES)


def searched_folders(root: Path, depth: int = MAX_DEPTH) -> Iterator[Path]:
    """``root`` and the folders below it down to ``depth`` levels, by name, leaving out model folders
    (:func:`is_model_folder`; ``**/student`` still matches one, from its parent), checkpoints and hidden folders: the
    folders ``**`` matches, whose files alone are looked at."""
    if is_model_folder(root):
        return
    yield root
    if depth == 0:
        return
    try:
        with os.scandir(root) as entries:
            below = sorted(
                entry.name
                for entry in entries
                if entry.is_dir(follow_symlinks=False)
                and not entry.name.startswith(".")
                and entry.name not in UNSEARCHED_FOLDERS
            )
    except OSError:  # gone, or not readable: nothing below it to list
        return
    for name in below:
        yield from searched_folders(root / name, depth - 1)


def display_path(path: Path, base_dir: Path | None = None) -> str:
    """``path`` relative to ``base_dir`` (default: the working directory) where it lies below it."""
    base = base_dir if base_dir is not None else Path.cwd()
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


@dataclass
class ReportEntry:
    """A report file and either its contents, the reason it could not be read, or ``other``: valid JSON that is
    not an evaluation report (a probe's output), which the UI lists apart instead of as an error."""

    path: Path
    label: str
    report: dict[str, Any] | None = None
    error: str | None = None
    other: bool = False
    group: str = OWN_RUNS

    @property
    def ok(self) -> bool:
        return self.report is not None

    @property
    def created(self) -> tuple[float, float]:
        """Sort key, newest largest: the report's ``created`` stamp, then the file's time (reports written within
        the same second, or without a stamp)."""
        stamp = float("-inf")
        with_stamp = (self.report or {}).get("created")
        if isinstance(with_stamp, str):
            try:
                stamp = datetime.strptime(with_stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()
            except ValueError:
                pass
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            mtime = float("-inf")
        return stamp, mtime


def is_report(data: Any) -> bool:
    """Whether parsed JSON is a ``distill eval`` report: a mapping of pipeline names to their results.

    The probes' outputs share some keys (``command``, ``machine``; the passage-length probe even has a
    ``pipelines`` list) but never a ``pipelines`` mapping of mappings.
    """
    if not isinstance(data, dict):
        return False
    pipelines = data.get("pipelines")
    return isinstance(pipelines, dict) and bool(pipelines) and all(isinstance(v, dict) for v in pipelines.values())


def _parses_as_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def report_group(entry: ReportEntry, base_dir: Path | None = None) -> str:
    """:data:`OWN_RUNS` for anything outside ``benchmarks/``; else the benchmark's task: reader or retrieval."""
    parts = Path(display_path(entry.path, base_dir)).parts
    if not parts or parts[0] != BENCHMARKS_DIR or entry.report is None:
        return OWN_RUNS
    pipelines = entry.report["pipelines"].values()
    reads = any("reader" in (p.get("models") or {}) or "f1" in (p.get("quality") or {}) for p in pipelines)
    return READER_BENCHMARKS if reads else RETRIEVAL_BENCHMARKS


def read_reports(paths: list[Path], base_dir: Path | None = None) -> list[ReportEntry]:
    entries = []
    for path in paths:
        entry = ReportEntry(path=path, label=report_label(path, base_dir))
        try:
            report = load_report(path)
            if is_report(report):
                entry.report = report
            else:
                entry.other = True
        except DistillError as e:
            # load_report refuses JSON without a 'pipelines' mapping; a file that parses is another tool's output.
            if path.is_file() and _parses_as_json(path) is not None:
                entry.other = True
            else:
                entry.error = str(e)
        except OSError as e:
            entry.error = f"report {path} could not be read: {e.strerror or e}"
        entry.group = report_group(entry, base_dir)
        entries.append(entry)
    return entries


def report_label(path: Path, base_dir: Path | None = None) -> str:
    """``runs/demo-eval`` for ``runs/demo-eval/report.json``; the file path for any other name."""
    shown = display_path(path, base_dir)
    return str(Path(shown).parent) if Path(shown).name == "report.json" else shown


@dataclass
class ReportGroup:
    key: str
    title: str
    entries: list[ReportEntry]


def _newest_first(entries: Iterable[ReportEntry]) -> list[ReportEntry]:
    return sorted(entries, key=lambda e: e.created, reverse=True)


def group_reports(entries: Iterable[ReportEntry]) -> list[ReportGroup]:
    """The readable reports by group (the user's runs, then the benchmarks by task), each newest first; empty
    groups left out."""
    good = [e for e in entries if e.ok]
    groups = []
    for key, title in GROUP_TITLES.items():
        members = _newest_first(e for e in good if e.group == key)
        if members:
            groups.append(ReportGroup(key=key, title=title, entries=members))
    return groups


def ordered_reports(entries: Iterable[ReportEntry]) -> list[ReportEntry]:
    """The readable reports, most wanted first: the user's runs newest first, then every benchmark newest first."""
    good = [e for e in entries if e.ok]
    own = [e for e in good if e.group == OWN_RUNS]
    return _newest_first(own) + _newest_first(e for e in good if e.group != OWN_RUNS)


def newest_report(entries: Iterable[ReportEntry]) -> ReportEntry | None:
    """The report the UI opens on: the user's newest run, else the newest benchmark report."""
    return next(iter(ordered_reports(entries)), None)


def live_report(entries: list[ReportEntry]) -> ReportEntry | None:
    """The newest readable report (the user's runs first) with at least two pipelines: a teacher and a student to
    put side by side."""
    return next((e for e in ordered_reports(entries) if len(e.report["pipelines"]) >= 2), None)


def is_student_folder(folder: Path) -> bool:
    """A folder the trainer saved a student in: its weights beside the resolved recipe and the final metrics."""
    return (folder / "config.yaml").is_file() and (folder / "metrics.json").is_file()


def _is_distilled(folder: Path, roots: Sequence[Path]) -> bool:
    return any(folder == root or root in folder.parents for root in roots) or is_student_folder(folder)


def export_source(folder: Path, base: Path) -> Path | None:
    """The model a ``distill export`` folder was exported from, as its export file names it (read from ``base``)."""
    try:
        source = json.loads((folder / ONNX_EXPORT_FILE).read_text(encoding="utf-8")).get("source")
    except (OSError, ValueError, AttributeError):
        return None
    return (base / source).resolve() if isinstance(source, str) and source else None


def student_runs(paths: Iterable[Path]) -> list[Path]:
    """The student folders to list, newest first: a trainer's ``OUT/student`` as its run folder ``OUT`` (which
    :func:`load_student` reads, log included), each once."""
    runs: list[Path] = []
    for path in paths:
        run = path.parent if path.name == STUDENT_SUBFOLDER and is_student_folder(path) else path
        if run not in runs:
            runs.append(run)
    return sorted(runs, key=_student_time, reverse=True)


def _student_time(folder: Path) -> float:
    """When the student was saved: its metrics file's time (the last file the trainer writes), else the folder's."""
    for candidate in (folder / STUDENT_SUBFOLDER / "metrics.json", folder / "metrics.json", folder):
        try:
            return candidate.stat().st_mtime
        except OSError:
            continue
    return float("-inf")


def distilled_models(report: dict[str, Any], students: Sequence[Path] = (), base_dir: Path | None = None) -> list[str]:
    """The model paths of ``report``, as it records them, that are distilled students (for
    :func:`distill.ui.figures.pipeline_roles`): inside one of ``students``, or a trained student folder anywhere, or
    an ONNX export (``distill export``) of such a folder.

    A report records the paths `distill eval` saw, relative to the folder it ran in (the repository root, which is
    ``base_dir``, default the working directory) or absolute: both are read from there before comparing.
    """
    base = base_dir if base_dir is not None else Path.cwd()
    roots = [Path(s).resolve() for s in students]
    found = []
    for entry in report["pipelines"].values():
        for info in (entry.get("models") or {}).values():
            recorded = str(info.get("path") or info.get("model") or "")
            if not recorded:
                continue
            try:
                folder = (base / recorded).resolve()
            except OSError:
                continue
            source = export_source(folder, base)
            if any(_is_distilled(f, roots) for f in (folder, source) if f is not None) and recorded not in found:
                found.append(recorded)
    return found


def questions_path(report_path: Path) -> Path:
    report_path = Path(report_path)
    folder = report_path if report_path.is_dir() else report_path.parent
    return folder / "questions.jsonl"


def keeps_questions(report_path: Path) -> bool:
    """Whether per-question rows belong beside this report: `distill eval --out` writes ``report.json`` and
    ``questions.jsonl`` in one folder; a report copied under another name (a committed benchmark) has none."""
    report_path = Path(report_path)
    return report_path.is_dir() or report_path.name == "report.json"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a bad line raises :class:`DistillError` naming the file and line."""
    return [row for _, row in iter_jsonl(Path(path))]


def report_questions(report_path: Path) -> list[dict[str, Any]]:
    """The per-question rows ``distill eval`` writes beside ``report.json`` (``questions.jsonl``); the UI needs them,
    so a missing file or a row without its ``runs`` raises :class:`DistillError` saying what to do."""
    path = questions_path(report_path)
    rows = load_questions(path.parent)
    if rows is None:
        raise DistillError(
            f"{path} does not exist: the per-question rows are written by `distill eval --out {path.parent}`"
        )
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not isinstance(row.get("runs"), dict):
            raise DistillError(f"{path}: row {n} has no 'runs' mapping: is it a `distill eval` questions file?")
    return rows


@dataclass
class Student:
    """A saved student folder: model card, resolved recipe, final metrics and training log (each optional).

    ``path`` is the run folder the user picked; ``files`` is where the four files are: the folder itself, or its
    ``student/`` sub-folder where the trainer saves the weights beside them.
    """

    path: Path
    name: str
    files: Path
    card: str | None = None
    config: dict[str, Any] | None = None
    config_text: str | None = None
    metrics: dict[str, Any] | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_student(path: Path) -> Student:
    """Read a student folder. A missing folder raises; a missing or malformed file becomes a listed problem."""
    path = Path(path)
    if not path.is_dir():
        raise DistillError(f"student folder {path} does not exist")
    nested = path / "student"
    files = nested if any((nested / name).exists() for name in ("README.md", "metrics.json")) else path
    student = Student(path=path, name=path.name, files=files)
    card = files / "README.md"
    if card.exists():
        student.card = card.read_text(encoding="utf-8")
    config = files / "config.yaml"
    if config.exists():
        student.config_text = config.read_text(encoding="utf-8")
        try:
            loaded = yaml.safe_load(student.config_text)
            student.config = loaded if isinstance(loaded, dict) else None
        except yaml.YAMLError as e:
            student.problems.append(f"{config} is not valid YAML: {e}")
    metrics = files / "metrics.json"
    if metrics.exists():
        try:
            loaded = json.loads(metrics.read_text(encoding="utf-8"))
            student.metrics = loaded if isinstance(loaded, dict) else {"value": loaded}
        except json.JSONDecodeError as e:
            student.problems.append(f"{metrics} is not valid JSON: {e}")
    log = files / "train_log.jsonl" if (files / "train_log.jsonl").exists() else path / "train_log.jsonl"
    if log.exists():
        try:
            student.log = read_jsonl(log)
        except DistillError as e:
            student.problems.append(str(e))
    expected = STUDENT_FILES
    if (student.config or {}).get("task") == "average":  # a weight average was not trained: it has no log
        expected = tuple(name for name in STUDENT_FILES if name != "train_log.jsonl")
    missing = [name for name in expected if not (files / name).exists() and not (path / name).exists()]
    if missing:
        student.problems.append(f"{files} has no {', '.join(missing)}")
    return student


def student_of(model_path: str | None, students: list[Path]) -> Path | None:
    """The student folder that holds ``model_path`` (the folder itself or a sub-folder of it), if any."""
    if not model_path:
        return None
    try:
        target = Path(model_path).resolve()
    except OSError:
        return None
    for folder in students:
        root = folder.resolve()
        if target == root or root in target.parents:
            return folder
    return None


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"dev": {"recall@10": 0.9}}`` -> ``{"dev.recall@10": 0.9}``; lists stay whole."""
    if not isinstance(data, dict):
        return {prefix or "value": data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out
