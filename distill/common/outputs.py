"""Writing a run's files: atomic writes whose files follow the umask, and output folders a failed run leaves as found.

- :func:`write_atomic` writes a text file under a private temporary name and renames it into place, so a reader (or
  a run killed mid-write) never sees half a file; the file gets the mode an ordinary ``open(..., "w")`` would give.
- :func:`follow_umask` gives files that a library wrote mode 0600 (safetensors writes its files through a private
  temporary file) the mode of an ordinary file: students, checkpoints and averages are shared like any other output.
- :func:`check_output_folder` refuses an output folder that is a file (or lies under one) before any work is done.
- :func:`named_parts` is how a run folder is named (cards, default indexes): from its nearest folder whose name is
  not a generic ``run``/``student``/``output``, so ``a/run/student`` and ``b/run/student`` stay apart.
- :func:`undone_on_error` removes what a run created in its output folder when the run fails on bad input (a
  :class:`~distill.errors.DistillError`) and left nothing worth keeping, so a failed run leaves no ``config.yaml`` and
  no empty folder behind; a folder that was there before the run is never removed.

Standard library only: every writer may import it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from distill.errors import DistillError

GENERIC_FOLDERS = {"run", "runs", "student", "students", "model", "models", "output", "out"}


def named_parts(path: Path) -> list[str]:
    """The parts of ``path`` from its nearest folder not generically named (itself included) down to it: ``[path.name]``
    for ``runs/students/minilm``, ``["mine", "run"]`` for ``runs/adapt/mine/run``."""
    parts = [p for p in path.parts if p not in ("", ".", "/")]
    if not parts:
        return [str(path)]
    start = len(parts) - 1
    while start > 0 and parts[start].lower() in GENERIC_FOLDERS:
        start -= 1
    return parts[start:]


def _umask() -> int:
    try:  # Linux says it without changing it, so no other thread sees a zero umask meanwhile
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0o666 less the umask (0o644 under the usual umask 022)."""
    return 0o666 & ~_umask()


def follow_umask(path: str | Path) -> None:
    """Give ``path`` (a file, or every file under a folder) the mode of an ordinary new file."""
    path = Path(path)
    mode = file_mode()
    for file in [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
        os.chmod(file, mode)


def write_atomic(path: str | Path, text: str, *, fsync: bool = False) -> None:
    """Write ``text`` to ``path`` through a private temporary file beside it, renamed into place (atomic on POSIX).

    Concurrent writers each use their own temporary name, so the last rename wins whole. With ``fsync`` the bytes
    are on disk before the rename (the cache's commit records)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, file_mode())  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_folder(path: str | Path, what: str) -> None:
    """``path`` is a folder or can become one: neither it nor a folder above it is a file."""
    path = Path(path)
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == path else f"lies under {folder}, which is a file"
                raise DistillError(f"{what} {path} {where}: give a folder")
            return


def _first_missing(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist yet (what ``mkdir(parents=True)`` makes)."""
    missing = None
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


@contextmanager
def undone_on_error(folder: str | Path, *, keep: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Run a block that writes into ``folder``; if it raises a DistillError and ``keep()`` is false (e.g. there is no
    checkpoint to resume from), remove what it created there: the folder and the parents it made, or, when the folder
    was there before, the entries that were not. Anything else (a kill, Ctrl-C, a bug) leaves the folder as it is."""
    folder = Path(folder)
    created = _first_missing(folder)
    before = set(os.listdir(folder)) if created is None and folder.is_dir() else set()
    try:
        yield
    except DistillError:
        if not keep():
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            elif folder.is_dir():
                for name in set(os.listdir(folder)) - before:
                    entry = folder / name
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        raise
