"""Teacher outputs computed once, stored memory-mapped on disk, and reused across runs and students.

One cache holds fixed-shape float rows (a 768-d embedding, a reader's ``(2, max_seq_len)`` start/end logits) under
string keys. Its folder is ``root / f"{kind}-{sha256(namespace)[:16]}"``::

    manifest.json              namespace, row_shape, dtype and format version; any mismatch rebuilds the folder
    shard-000000.data.npy      (capacity, *row_shape) rows, memory-mapped
    shard-000000.keys.npy      (capacity, 16) uint8: the first 16 bytes of sha256(key) of each row
    shard-000000.commit.json   rows committed so far, and the sha256 of their data bytes and key bytes
    shard-000001.*             ...

and beside it ``<folder>.lock``, held with ``flock`` while a process reads or writes, so a second run waits.

Processes launched together (``torchrun``, ``accelerate launch``; :func:`distill.common.processes.teacher_shard`)
split a
pass instead: each computes every ``count``-th batch of the missing keys outside the lock, then takes the lock to
write its batch into shards of its own (a shard's files are created and first committed in one hold of the lock, so
nobody else ever sees them uncommitted), and finally polls until every key is there and reads them all.

A shard is written once, batch by batch: the rows are flushed first, then the commit record is replaced atomically,
so rows past the committed count (a run killed mid-batch) are ignored and recomputed. New rows always go to new
shards; old ones are never rewritten. On open every shard is checked (files readable, shapes agree, checksums match)
and a bad one is discarded with a warning, so its rows are recomputed rather than served.

Why one module over 400 lines: one on-disk format; its writer, reader, checks and recovery must agree byte for
byte, and each is tested against the others.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from distill.common.models import distill_home
from distill.common.outputs import write_atomic
from distill.common.processes import teacher_shard
from distill.errors import DistillError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
DIGEST_BYTES = 16
# Target size of one shard's data file: big enough to keep the file count low, small enough to verify quickly.
SHARD_BYTES = 64 << 20
_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SHARD_FILE = re.compile(r"shard-(\d{6})\.(data\.npy|keys\.npy|commit\.json)")


def key_digest(key: str) -> bytes:
    """What the cache stores for a key: the first 16 bytes of its sha256 (never the key itself)."""
    return hashlib.sha256(key.encode("utf-8")).digest()[:DIGEST_BYTES]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _write_json_atomic(path: Path, value: Any) -> str:
    """Write ``value`` to a temporary file, fsync it and rename it over ``path``; return the text written."""
    text = canonical_json(value)
    write_atomic(path, text, fsync=True)
    return text


def _raw_bytes(array: np.ndarray) -> np.ndarray:
    """A flat uint8 view of a C-contiguous array: what its rows look like on disk, for hashing."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(_raw_bytes(array)).hexdigest()


def _shard_paths(folder: Path, shard_id: int) -> tuple[Path, Path, Path]:
    stem = f"shard-{shard_id:06d}"
    return folder / f"{stem}.data.npy", folder / f"{stem}.keys.npy", folder / f"{stem}.commit.json"


class _BadShard(Exception):
    """A shard that must not be used; the message names the file and what is wrong with it."""


@dataclass
class _Shard:
    id: int
    rows: int
    data: np.ndarray  # read-only memmap of shape (capacity, *row_shape); rows past `rows` are not committed


class _ShardWriter:
    """Appends rows to one new shard. Each append flushes the rows, then commits them by replacing the record."""

    def __init__(self, folder: Path, shard_id: int, capacity: int, row_shape: tuple[int, ...], dtype: np.dtype):
        self.id = shard_id
        self.capacity = capacity
        self.rows = 0
        self.record_text = ""
        self.paths = _shard_paths(folder, shard_id)
        data_path, keys_path, _ = self.paths
        self.data = np.lib.format.open_memmap(data_path, mode="w+", dtype=dtype, shape=(capacity, *row_shape))
        self.keys = np.lib.format.open_memmap(keys_path, mode="w+", dtype=np.uint8, shape=(capacity, DIGEST_BYTES))
        # Running hashes, so a commit costs one batch of hashing rather than the whole shard.
        self._data_hash = hashlib.sha256()
        self._keys_hash = hashlib.sha256()

    @property
    def free(self) -> int:
        return self.capacity - self.rows

    def append(self, rows: np.ndarray, digests: np.ndarray) -> None:
        start, end = self.rows, self.rows + len(rows)
        self.data[start:end] = rows
        self.keys[start:end] = digests
        self.data.flush()
        self.keys.flush()
        self._data_hash.update(_raw_bytes(rows))
        self._keys_hash.update(_raw_bytes(digests))
        self.rows = end
        record = {
            "rows": self.rows,
            "capacity": self.capacity,
            "data_sha256": self._data_hash.hexdigest(),
            "keys_sha256": self._keys_hash.hexdigest(),
        }
        self.record_text = _write_json_atomic(self.paths[2], record)

    def close(self) -> None:
        """Release the memmaps; a shard that never committed a row is removed."""
        self.data = self.keys = None  # type: ignore[assignment]
        if self.rows == 0:
            for path in self.paths:
                path.unlink(missing_ok=True)


class TeacherCache:
    """Rows of teacher outputs under string keys, computed once and memory-mapped from disk afterwards.

    ``namespace`` names everything the outputs depend on; it must hold a ``kind`` (a short name used as the folder
    prefix) and be JSON-serialisable, for example
    ``{"kind": "embeddings", "teacher": model_fingerprint(path), "max_length": 256, "normalize": True}``.

    >>> cache = TeacherCache(TeacherCache.default_root(), namespace={"kind": "demo"}, row_shape=(2,))  # doctest: +SKIP
    >>> cache.get(["a", "b"], lambda positions: np.ones((len(positions), 2)))  # doctest: +SKIP
    array([[1., 1.], [1., 1.]], dtype=float32)
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        namespace: dict[str, Any],
        row_shape: tuple[int, ...],
        dtype: str | np.dtype = "float32",
        shard_rows: int | None = None,
    ):
        kind = namespace.get("kind") if isinstance(namespace, dict) else None
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise DistillError(
                "the cache namespace needs a 'kind' such as 'embeddings' (letters, digits, '_', '.', '-'; at most 64), "
                f"got {kind!r}"
            )
        try:
            text = canonical_json(namespace)
        except (TypeError, ValueError) as e:
            raise DistillError(f"the cache namespace must be plain JSON (str, number, bool, list, dict): {e}") from None
        shape = tuple(int(d) for d in row_shape)
        if not shape or min(shape) < 1:
            raise DistillError(f"row_shape must be one or more positive sizes, got {tuple(row_shape)}")
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise DistillError(f"the cache stores float rows: dtype must be float16, float32 or float64, got {dtype}")
        row_bytes = int(np.prod(shape)) * self.dtype.itemsize
        self.shard_rows = shard_rows if shard_rows is not None else max(1, SHARD_BYTES // row_bytes)
        if self.shard_rows < 1:
            raise DistillError(f"shard_rows must be >= 1, got {shard_rows}")
        self.namespace: dict[str, Any] = json.loads(text)
        self.row_shape = shape
        self.root = Path(root).expanduser()
        self.folder = self.root / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        self._shards: dict[int, _Shard] = {}
        self._index: dict[bytes, tuple[int, int]] = {}
        # Shards whose checksums this object already verified, by (commit record, file stats): avoids rehashing on
        # every call in one process while still catching a file changed by anyone else.
        self._verified: dict[int, tuple] = {}

    @classmethod
    def default_root(cls) -> Path:
        return distill_home() / "teacher-cache"

    @property
    def lock_path(self) -> Path:
        return self.root / f"{self.folder.name}.lock"

    def __repr__(self) -> str:
        return f"TeacherCache({str(self.folder)!r}, row_shape={self.row_shape}, dtype={self.dtype.name})"

    def __len__(self) -> int:
        """The number of distinct keys stored."""
        with self._locked():
            if not self.folder.exists():
                return 0
            self._open()
            return len(self._index)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        with self._locked():
            if not self.folder.exists():
                return False
            self._open()
            return key_digest(key) in self._index

    def missing(self, keys: Sequence[str]) -> list[int]:
        """What a :meth:`get` of ``keys`` would compute: the position of the first occurrence of each key not stored
        yet, in order."""
        first: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key_digest(key), i)
        with self._locked():
            if self.folder.exists():
                self._open()
            return [i for digest, i in first.items() if digest not in self._index]

    def clear(self) -> None:
        """Delete every stored row (the whole folder)."""
        with self._locked():
            self._wipe()

    def get(
        self,
        keys: Sequence[str],
        compute: Callable[[list[int]], np.ndarray],
        *,
        batch_size: int = 64,
        progress: bool = True,
        desc: str = "teacher",
        lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Rows for ``keys``, shape ``(len(keys), *row_shape)``, in order, as a fresh array.

        Stored keys are read from disk. The others are computed by ``compute(positions)``, where ``positions`` index
        into ``keys`` (at most ``batch_size`` of them, each distinct key once) and the result has shape
        ``(len(positions), *row_shape)``; each batch is stored as it comes, so an interrupted pass resumes where it
        stopped. Raises DistillError for a result of the wrong shape or one holding NaN or inf.

        With ``lengths`` (one per key, e.g. its text's length), missing keys are computed longest first, so that each
        batch pads to about its own length rather than to one long text among short ones (and an out-of-memory
        error shows in the first batch, not the last); ``positions`` still index into ``keys``.
        """
        if batch_size < 1:
            raise DistillError(f"batch_size must be >= 1, got {batch_size}")
        if lengths is not None:
            if len(lengths) != len(keys):
                raise DistillError(f"lengths must give one length per key: {len(lengths)} for {len(keys)} keys")
            order = sorted(range(len(keys)), key=lambda i: -lengths[i])
            ordered = self.get(
                [keys[i] for i in order],
                lambda positions: compute([order[p] for p in positions]),
                batch_size=batch_size,
                progress=progress,
                desc=desc,
            )
            out = np.empty_like(ordered)
            out[order] = ordered
            return out
        digests = []
        for i, key in enumerate(keys):
            if not isinstance(key, str):
                raise DistillError(f"cache keys must be str, got {type(key).__name__} at keys[{i}]")
            digests.append(key_digest(key))
        out = np.empty((len(digests), *self.row_shape), dtype=self.dtype)
        index, count = teacher_shard()
        if count > 1:
            self._get_sharded(out, digests, compute, batch_size, progress, desc, index, count)
            return out
        with self._locked():
            self._open()
            missing: dict[bytes, int] = {}  # digest -> first position, in order of first appearance
            copies: list[tuple[int, int]] = []  # (position, first position) for repeats of a missing key
            hits: list[tuple[int, int, int]] = []  # (position, shard, row)
            for pos, digest in enumerate(digests):
                found = self._index.get(digest)
                if found is not None:
                    hits.append((pos, *found))
                elif digest in missing:
                    copies.append((pos, missing[digest]))
                else:
                    missing[digest] = pos
            self._read_rows(out, hits)
            if missing:
                distinct = len(set(digests))
                logger.info(
                    "%s: %d of %d distinct keys cached in %s; computing %d",
                    desc,
                    distinct - len(missing),
                    distinct,
                    self.folder,
                    len(missing),
                )
                self._compute(out, list(missing.values()), digests, compute, batch_size, progress, desc)
        if copies:
            dst, src = np.array(copies).T
            out[dst] = out[src]
        return out

    def _get_sharded(
        self,
        out: np.ndarray,
        digests: list[bytes],
        compute: Callable[[list[int]], np.ndarray],
        batch_size: int,
        progress: bool,
        desc: str,
        index: int,
        count: int,
    ) -> None:
        """:meth:`get` in process ``index`` of ``count`` launched together: the distinct keys, in order of first
        appearance, are cut into batches of ``batch_size``, and this process computes the missing keys of batches
        ``index``, ``index + count``, ... (on a cold cache, the very batches one process would compute, so the rows
        are the same). Each process computes outside the lock and writes its own shards under it; then it waits
        until every key is in the cache and reads them all."""
        first: dict[bytes, int] = {}
        for pos, digest in enumerate(digests):
            first.setdefault(digest, pos)
        distinct = list(first.items())
        with self._locked():
            self._open()
            cached = {d for d, _ in distinct if d in self._index}
        mine = [
            [(d, p) for d, p in distinct[start : start + batch_size] if d not in cached]
            for start in range(index * batch_size, len(distinct), count * batch_size)
        ]
        mine = [batch for batch in mine if batch]
        todo = sum(len(batch) for batch in mine)
        if todo:
            logger.info("%s: process %d of %d computes %d of %d keys", desc, index, count, todo, len(distinct))
        writer: _ShardWriter | None = None
        left = todo
        bar = tqdm(total=todo, desc=f"{desc} [{index}/{count}]", unit="row", disable=not progress or not todo)
        try:
            for batch in mine:
                positions = [p for _, p in batch]
                rows = self._checked(compute(positions), positions)
                batch_digests = np.frombuffer(b"".join(d for d, _ in batch), dtype=np.uint8).reshape(-1, DIGEST_BYTES)
                done = 0
                with (
                    self._locked()
                ):  # every shard file is created and committed under the lock: no one sees it half made
                    while done < len(batch):
                        if writer is None or writer.free == 0:
                            if writer is not None:
                                self._finish(writer)
                            writer = _ShardWriter(
                                self.folder,
                                self._next_shard_id(),
                                min(left, self.shard_rows),
                                self.row_shape,
                                self.dtype,
                            )
                        n = min(writer.free, len(batch) - done)
                        writer.append(rows[done : done + n], batch_digests[done : done + n])
                        done += n
                        left -= n
                bar.update(len(batch))
        finally:
            bar.close()
            if writer is not None:
                with self._locked():
                    self._finish(writer)
        self._wait_for_all(out, digests, [d for d, _ in distinct], desc)

    def _next_shard_id(self) -> int:
        """The id after every shard file in the folder, whoever wrote it. Call under the lock."""
        ids = [int(m.group(1)) for p in self.folder.iterdir() if (m := _SHARD_FILE.fullmatch(p.name))]
        return max(ids, default=-1) + 1

    def _wait_for_all(self, out: np.ndarray, digests: list[bytes], distinct: list[bytes], desc: str) -> None:
        """Poll the cache until the other processes have stored every key, then read all rows into ``out``. A
        process that dies stops the launch (torchrun ends the others); one that hangs is caught by the stall limit."""
        stall = float(os.environ.get("DISTILL_SHARD_STALL_S", "1800"))
        pause, seen, since = 0.1, -1, time.monotonic()
        while True:
            with self._locked():
                self._open()
                have = sum(d in self._index for d in distinct)
                if have == len(distinct):
                    hits = [(pos, *self._index[d]) for pos, d in enumerate(digests)]
                    self._read_rows(out, hits)
                    return
            if have != seen:
                seen, since = have, time.monotonic()
            elif time.monotonic() - since > stall:
                raise DistillError(
                    f"{desc}: {len(distinct) - have} of {len(distinct)} teacher rows never arrived in {self.folder} "
                    f"from the other processes in {stall:.0f} s; check that they are running (or raise "
                    "DISTILL_SHARD_STALL_S)"
                )
            time.sleep(pause)
            pause = min(2.0, pause * 1.5)

    # -- reading ---------------------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                # A warning, so that a run that seems to hang says why without --verbose.
                logger.warning("waiting for %s, which is using the teacher cache %s", holder, self.folder)
                fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            f.truncate()
            f.write(f"process {os.getpid()} ({' '.join(sys.argv)[:200]})")
            f.flush()
            try:
                yield
            finally:
                f.truncate(0)
                fcntl.flock(f, fcntl.LOCK_UN)

    def _manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "namespace": self.namespace,
            "row_shape": list(self.row_shape),
            "dtype": self.dtype.str,
        }

    def _wipe(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self._shards, self._index, self._verified = {}, {}, {}

    def _open(self) -> None:
        """Check the manifest (rebuilding on a mismatch) and load every usable shard. Call under the lock."""
        manifest_path = self.folder / "manifest.json"
        expected = self._manifest()
        if manifest_path.exists():
            try:
                found = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                found, problem = None, f"is unreadable ({e})"
            else:
                fields = [k for k in expected if not isinstance(found, dict) or found.get(k) != expected[k]]
                problem = f"differs in {', '.join(fields)}"
            if found != expected:
                logger.warning(
                    "teacher cache %s: %s %s; rebuilding the cache", self.folder, manifest_path.name, problem
                )
                self._wipe()
        elif self.folder.exists() and any(self.folder.iterdir()):
            logger.warning("teacher cache %s has no manifest.json; rebuilding the cache", self.folder)
            self._wipe()
        if not manifest_path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(manifest_path, expected)
        for tmp in self.folder.glob(".*.tmp"):  # a commit interrupted before its rename
            tmp.unlink(missing_ok=True)
        self._load_shards()

    def _load_shards(self) -> None:
        ids = sorted({int(m.group(1)) for p in self.folder.iterdir() if (m := _SHARD_FILE.fullmatch(p.name))})
        shards: dict[int, _Shard] = {}
        index: dict[bytes, tuple[int, int]] = {}
        for shard_id in ids:
            try:
                shard, digests = self._read_shard(shard_id)
            except _BadShard as e:
                logger.warning("teacher cache %s: discarding shard %s; its rows will be recomputed", self.folder, e)
                self._discard(shard_id)
                continue
            shards[shard_id] = shard
            for row, digest in enumerate(digests):
                index.setdefault(digest, (shard_id, row))
        self._shards, self._index = shards, index

    def _read_shard(self, shard_id: int) -> tuple[_Shard, list[bytes]]:
        data_path, keys_path, commit_path = _shard_paths(self.folder, shard_id)
        if not commit_path.exists():
            raise _BadShard(f"{data_path.name}: never committed (left by a killed run)")
        try:
            record_text = commit_path.read_text(encoding="utf-8")
            record = json.loads(record_text)
            rows, capacity = int(record["rows"]), int(record["capacity"])
            data_sha, keys_sha = str(record["data_sha256"]), str(record["keys_sha256"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise _BadShard(f"{commit_path.name}: unreadable commit record ({e})") from None
        data = _load_memmap(data_path)
        keys = _load_memmap(keys_path)
        if data.shape != (capacity, *self.row_shape) or data.dtype != self.dtype:
            expected_shape = (capacity, *self.row_shape)
            raise _BadShard(
                f"{data_path.name}: holds {data.shape} {data.dtype}, expected {expected_shape} {self.dtype}"
            )
        if keys.shape != (capacity, DIGEST_BYTES) or keys.dtype != np.uint8:
            raise _BadShard(f"{keys_path.name}: holds {keys.shape} {keys.dtype} keys for {capacity} rows")
        if not 0 <= rows <= capacity:
            raise _BadShard(f"{commit_path.name}: commits {rows} rows of a shard of {capacity}")
        signature = (record_text, _stat(data_path), _stat(keys_path))
        if self._verified.get(shard_id) != signature:
            if _sha256(data[:rows]) != data_sha:
                raise _BadShard(f"{data_path.name}: checksum mismatch")
            if _sha256(keys[:rows]) != keys_sha:
                raise _BadShard(f"{keys_path.name}: checksum mismatch")
            self._verified[shard_id] = signature
        blob = keys[:rows].tobytes()
        digests = [blob[i : i + DIGEST_BYTES] for i in range(0, len(blob), DIGEST_BYTES)]
        return _Shard(shard_id, rows, data), digests

    def _discard(self, shard_id: int) -> None:
        data_path, keys_path, commit_path = _shard_paths(self.folder, shard_id)
        # The commit record goes first: a crash in between leaves an uncommitted shard, discarded on the next open.
        for path in (commit_path, data_path, keys_path):
            if path.is_dir() and not path.is_symlink():  # something put a folder where a shard file belongs
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        self._verified.pop(shard_id, None)

    def _read_rows(self, out: np.ndarray, hits: list[tuple[int, int, int]]) -> None:
        if not hits:
            return
        positions, shard_ids, rows = (np.array(column) for column in zip(*hits))
        for shard_id in np.unique(shard_ids):
            chosen = shard_ids == shard_id
            order = np.argsort(rows[chosen], kind="stable")  # read each shard front to back
            out[positions[chosen][order]] = self._shards[int(shard_id)].data[rows[chosen][order]]

    # -- writing ---------------------------------------------------------------------------------------------------

    def _compute(
        self,
        out: np.ndarray,
        todo: list[int],
        digests: list[bytes],
        compute: Callable[[list[int]], np.ndarray],
        batch_size: int,
        progress: bool,
        desc: str,
    ) -> None:
        next_id = max(self._shards, default=-1) + 1
        writer: _ShardWriter | None = None
        bar = tqdm(total=len(todo), desc=desc, unit="row", disable=not progress)
        try:
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                rows = self._checked(compute(list(batch)), batch)
                batch_digests = np.frombuffer(b"".join(digests[p] for p in batch), dtype=np.uint8)
                batch_digests = batch_digests.reshape(len(batch), DIGEST_BYTES)
                done = 0
                while done < len(batch):
                    if writer is None or writer.free == 0:
                        if writer is not None:
                            self._finish(writer)
                        capacity = min(len(todo) - start - done, self.shard_rows)
                        writer = _ShardWriter(self.folder, next_id, capacity, self.row_shape, self.dtype)
                        next_id += 1
                    n = min(writer.free, len(batch) - done)
                    writer.append(rows[done : done + n], batch_digests[done : done + n])
                    done += n
                out[batch] = rows
                bar.update(len(batch))
        finally:
            bar.close()
            if writer is not None:
                self._finish(writer)

    def _checked(self, result: Any, batch: list[int]) -> np.ndarray:
        rows = np.asarray(result)
        expected = (len(batch), *self.row_shape)
        if rows.shape != expected:
            raise DistillError(
                f"the teacher returned an array of shape {rows.shape} for {len(batch)} keys; expected {expected} "
                "(one row per position passed to compute, in the same order)"
            )
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        bad = ~np.isfinite(rows.reshape(len(batch), -1)).all(axis=1)
        if bad.any():
            first = batch[int(np.argmax(bad))]
            raise DistillError(
                f"the teacher output for keys[{first}] holds NaN or inf ({int(bad.sum())} such rows in a batch of "
                f"{len(batch)}); nothing of this batch was stored. Check that input, or the teacher's dtype"
            )
        return rows

    def _finish(self, writer: _ShardWriter) -> None:
        writer.close()
        if writer.rows:  # its checksums were computed while writing: no need to verify it again in this process
            data_path, keys_path, _ = writer.paths
            self._verified[writer.id] = (writer.record_text, _stat(data_path), _stat(keys_path))


def _load_memmap(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise _BadShard(f"{path.name}: unreadable or truncated ({e})") from None


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns
