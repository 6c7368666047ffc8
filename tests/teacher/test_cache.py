import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from distill.common import models
from distill.errors import DistillError
from distill.teacher.cache import TeacherCache, key_digest

ROW = (2, 3)
NAMESPACE = {"kind": "embeddings", "teacher": "abc", "max_length": 8}
KEYS = [f"text {i}" for i in range(10)]


def truth(key: str) -> np.ndarray:
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed).standard_normal(ROW).astype(np.float32)


class Teacher:
    """A fake teacher for one get() call: records every batch it is asked for; can fail on a chosen call."""

    def __init__(self, keys: list[str], fail_on_call: int | None = None, error: BaseException | None = None):
        self.keys = keys
        self.fail_on_call = fail_on_call
        self.error = error or KeyboardInterrupt()
        self.batches: list[list[str]] = []

    def __call__(self, positions: list[int]) -> np.ndarray:
        if self.fail_on_call is not None and len(self.batches) + 1 == self.fail_on_call:
            raise self.error
        self.batches.append([self.keys[p] for p in positions])
        return np.stack([truth(self.keys[p]) for p in positions])

    @property
    def seen(self) -> list[str]:
        return [key for batch in self.batches for key in batch]


def make_cache(root: Path, **kwargs) -> TeacherCache:
    kwargs.setdefault("namespace", NAMESPACE)
    kwargs.setdefault("row_shape", ROW)
    return TeacherCache(root, **kwargs)


def fetch(cache: TeacherCache, keys: list[str], **kwargs) -> tuple[np.ndarray, Teacher]:
    teacher = Teacher(keys, kwargs.pop("fail_on_call", None))
    rows = cache.get(keys, teacher, progress=False, **kwargs)
    return rows, teacher


def expected(keys: list[str]) -> np.ndarray:
    return np.stack([truth(k) for k in keys])


def shard_files(cache: TeacherCache, suffix: str = ".data.npy") -> list[Path]:
    return sorted(cache.folder.glob(f"shard-*{suffix}"))


def test_second_get_computes_nothing_and_keeps_order(tmp_path):
    cache = make_cache(tmp_path)
    rows, teacher = fetch(cache, KEYS, batch_size=4)
    assert teacher.seen == KEYS
    assert [len(b) for b in teacher.batches] == [4, 4, 2]
    np.testing.assert_array_equal(rows, expected(KEYS))
    assert rows.dtype == np.float32 and rows.shape == (10, *ROW)

    again = make_cache(tmp_path)
    rows, teacher = fetch(again, KEYS[::-1])
    assert teacher.batches == []
    np.testing.assert_array_equal(rows, expected(KEYS[::-1]))
    assert len(again) == 10 and "text 3" in again and "text 99" not in again
    assert not isinstance(rows, np.memmap) and rows.flags.writeable


def test_new_keys_go_to_a_new_shard_and_duplicates_are_computed_once(tmp_path):
    cache = make_cache(tmp_path)
    fetch(cache, KEYS[:5])
    (old,) = shard_files(cache)
    before = (old.read_bytes(), old.stat().st_mtime_ns)

    keys = ["text 7", "text 1", "text 7", "text 8", "text 1", "text 8"]
    rows, teacher = fetch(cache, keys)
    assert teacher.seen == ["text 7", "text 8"]
    np.testing.assert_array_equal(rows, expected(keys))
    assert len(shard_files(cache)) == 2
    assert (old.read_bytes(), old.stat().st_mtime_ns) == before
    assert len(cache) == 7


def test_shards_roll_over_and_read_back(tmp_path):
    cache = make_cache(tmp_path, shard_rows=3)
    fetch(cache, KEYS, batch_size=4)
    assert len(shard_files(cache)) == 4
    rows, teacher = fetch(make_cache(tmp_path, shard_rows=3), KEYS[::2])
    assert teacher.seen == []
    np.testing.assert_array_equal(rows, expected(KEYS[::2]))


def test_the_stored_keys_are_hashes_not_the_texts(tmp_path):
    cache = make_cache(tmp_path)
    fetch(cache, ["a secret passage"])
    for path in cache.folder.iterdir():
        assert b"secret" not in path.read_bytes()


def test_an_interrupted_pass_resumes_where_it_stopped(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        fetch(make_cache(tmp_path), KEYS, batch_size=3, fail_on_call=3)
    rows, teacher = fetch(make_cache(tmp_path), KEYS, batch_size=3)
    assert teacher.seen == KEYS[6:]
    np.testing.assert_array_equal(rows, expected(KEYS))


def test_an_interrupt_before_the_first_commit_leaves_no_files(tmp_path):
    cache = make_cache(tmp_path)
    fetch(cache, KEYS[:2])
    with pytest.raises(KeyboardInterrupt):
        fetch(cache, KEYS, fail_on_call=1)
    assert len(shard_files(cache)) == 1 and len(cache) == 2


def test_rows_past_the_committed_count_are_ignored(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        fetch(make_cache(tmp_path), KEYS, batch_size=3, fail_on_call=3)
    cache = make_cache(tmp_path)
    (data_path,) = shard_files(cache)
    # What a run killed after writing rows but before committing them leaves: real keys beside garbage rows.
    data = np.load(data_path, mmap_mode="r+")
    keys = np.load(data_path.with_name(data_path.name.replace(".data", ".keys")), mmap_mode="r+")
    assert data.shape[0] == 10
    data[6:] = 1e6
    keys[6:] = np.frombuffer(b"".join(key_digest(k) for k in KEYS[6:]), np.uint8).reshape(4, -1)
    data.flush(), keys.flush()
    del data, keys

    rows, teacher = fetch(cache, KEYS)
    assert teacher.seen == KEYS[6:]
    np.testing.assert_array_equal(rows, expected(KEYS))


def _flip_byte(path: Path, from_end: int) -> None:
    blob = bytearray(path.read_bytes())
    blob[-from_end] ^= 0xFF
    path.write_bytes(bytes(blob))


CORRUPTIONS = {
    "data byte flipped": lambda data, keys, commit: _flip_byte(data, 5),
    "key byte flipped": lambda data, keys, commit: _flip_byte(keys, 20),
    "data truncated": lambda data, keys, commit: os.truncate(data, data.stat().st_size - 7),
    "keys for fewer rows": lambda data, keys, commit: np.save(keys, np.zeros((2, 16), np.uint8)),
    "data of another shape": lambda data, keys, commit: np.save(data, np.zeros((3, 6), np.float32)),
    "commit record garbage": lambda data, keys, commit: commit.write_text("{not json"),
    "commit record missing": lambda data, keys, commit: commit.unlink(),
    "data file replaced by a folder": lambda data, keys, commit: (data.unlink(), data.mkdir()),
    "commit record replaced by a folder": lambda data, keys, commit: (commit.unlink(), commit.mkdir()),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_damaged_shard_is_discarded_with_a_warning_and_recomputed(tmp_path, caplog, corruption):
    fetch(make_cache(tmp_path, shard_rows=3), KEYS[:6])
    cache = make_cache(tmp_path, shard_rows=3)
    data, keys, commit = (cache.folder / f"shard-000001{s}" for s in (".data.npy", ".keys.npy", ".commit.json"))
    CORRUPTIONS[corruption](data, keys, commit)

    with caplog.at_level(logging.WARNING, logger="distill.teacher.cache"):
        rows, teacher = fetch(cache, KEYS[:6])
    assert teacher.seen == KEYS[3:6]
    np.testing.assert_array_equal(rows, expected(KEYS[:6]))
    assert any("shard-000001" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)

    caplog.clear()
    rows, teacher = fetch(make_cache(tmp_path, shard_rows=3), KEYS[:6])
    assert teacher.seen == [] and not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_another_namespace_uses_another_folder(tmp_path):
    first = make_cache(tmp_path)
    fetch(first, KEYS[:3])
    other = make_cache(tmp_path, namespace={**NAMESPACE, "max_length": 16})
    assert other.folder != first.folder and other.folder.name.startswith("embeddings-")
    _, teacher = fetch(other, KEYS[:3])
    assert teacher.seen == KEYS[:3]
    assert len(first) == 3


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: {**m, "namespace": {**m["namespace"], "teacher": "other"}},
        lambda m: {**m, "row_shape": [3, 2]},
        lambda m: {**m, "dtype": "<f8"},
        lambda m: {**m, "format": 0},
        lambda m: "not a manifest",
    ],
)
def test_an_edited_manifest_rebuilds_the_cache(tmp_path, caplog, edit):
    cache = make_cache(tmp_path)
    fetch(cache, KEYS[:3])
    manifest = cache.folder / "manifest.json"
    manifest.write_text(json.dumps(edit(json.loads(manifest.read_text()))))

    with caplog.at_level(logging.WARNING, logger="distill.teacher.cache"):
        rows, teacher = fetch(make_cache(tmp_path), KEYS[:3])
    assert teacher.seen == KEYS[:3]
    np.testing.assert_array_equal(rows, expected(KEYS[:3]))
    assert any("manifest.json" in r.getMessage() for r in caplog.records)


def test_the_same_namespace_with_another_row_shape_rebuilds(tmp_path):
    fetch(make_cache(tmp_path), KEYS[:3])
    wide = make_cache(tmp_path, row_shape=(4,))
    rows = wide.get(KEYS[:3], lambda positions: np.ones((len(positions), 4)), progress=False)
    assert rows.shape == (3, 4) and len(wide) == 3


def test_nan_from_the_teacher_is_an_error_naming_the_key(tmp_path):
    cache = make_cache(tmp_path)

    def compute(positions):
        rows = expected([KEYS[p] for p in positions])
        if 5 in positions:
            rows[positions.index(5), 1, 2] = np.nan
        return rows

    with pytest.raises(DistillError, match=r"keys\[5\].*NaN or inf"):
        cache.get(KEYS, compute, batch_size=4, progress=False)
    assert len(cache) == 4  # the batches before it were kept


def test_a_wrong_shape_from_the_teacher_is_an_error(tmp_path):
    cache = make_cache(tmp_path)
    with pytest.raises(DistillError, match=r"shape \(2, 6\).*expected \(2, 2, 3\)"):
        cache.get(KEYS[:2], lambda positions: np.zeros((len(positions), 6)), progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"namespace": {"teacher": "x"}}, "needs a 'kind'"),
        ({"namespace": {"kind": "../up"}}, "needs a 'kind'"),
        ({"namespace": {"kind": "e", "path": Path("/x")}}, "plain JSON"),
        ({"row_shape": (0,)}, "row_shape"),
        ({"dtype": "int32"}, "float rows"),
    ],
)
def test_bad_settings_are_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(DistillError, match=message):
        make_cache(tmp_path, **kwargs)


def test_clear_and_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path))
    assert TeacherCache.default_root() == tmp_path / "teacher-cache"
    cache = make_cache(TeacherCache.default_root())
    fetch(cache, KEYS[:3])
    cache.clear()
    assert len(cache) == 0 and not cache.folder.exists()
    _, teacher = fetch(cache, KEYS[:3])
    assert teacher.seen == KEYS[:3]


def wait_until_it_waits(worker: threading.Thread, caplog, timeout: float = 60) -> None:
    """Until ``worker`` says it waits for the lock: it tried it, found it held, and blocks on it (a fixed sleep left a
    slow machine's worker still on its way to the lock, or gave it the lock already released)."""
    deadline = time.monotonic() + timeout
    while "waiting for" not in caplog.text:
        assert worker.is_alive() and time.monotonic() < deadline, f"the worker did not wait for the lock in {timeout} s"
        time.sleep(0.01)


def test_a_second_writer_waits_for_the_lock(tmp_path, caplog):
    cache = make_cache(tmp_path)
    result: dict[str, np.ndarray] = {}
    with open(cache.lock_path, "a") as held, caplog.at_level("WARNING", logger="distill.teacher.cache"):
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=lambda: result.update(rows=fetch(make_cache(tmp_path), KEYS[:2])[0]))
        worker.start()
        wait_until_it_waits(worker, caplog)
        assert not result
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(timeout=60)
    assert not worker.is_alive()
    np.testing.assert_array_equal(result["rows"], expected(KEYS[:2]))


def test_a_waiting_run_says_whom_it_waits_for_and_the_holder_leaves_its_name(tmp_path, caplog):
    cache = make_cache(tmp_path)
    fetch(cache, KEYS[:1])
    assert cache.lock_path.read_text() == ""  # released: no stale holder left behind
    with open(cache.lock_path, "a") as held, caplog.at_level("WARNING", logger="distill.teacher.cache"):
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("process 4242 (distill train recipes/embedder-squad.yaml)")
        held.flush()
        worker = threading.Thread(target=lambda: fetch(make_cache(tmp_path), KEYS[:2]))
        worker.start()
        wait_until_it_waits(worker, caplog)
        held.truncate(0)
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert "waiting for process 4242 (distill train recipes/embedder-squad.yaml)" in caplog.text


# -- model_fingerprint ----------------------------------------------------------------------------------------------


@pytest.fixture
def model_folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    folder = tmp_path / "model"
    (folder / "2_Dense").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights-a")
    (folder / "2_Dense" / "pytorch_model.bin").write_bytes(b"dense")
    (folder / "config.json").write_text("{}")
    return folder


def test_model_fingerprint_is_stable_and_follows_weights_only(model_folder):
    first = models.model_fingerprint(model_folder)
    assert len(first) == 64 and models.model_fingerprint(str(model_folder)) == first

    (model_folder / "config.json").write_text('{"changed": true}')
    (model_folder / "README.md").write_text("notes")
    assert models.model_fingerprint(model_folder) == first

    weights = model_folder / "model.safetensors"
    stat = weights.stat()
    weights.write_bytes(b"weights-b")  # same size: only the mtime tells the memo it changed
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert models.model_fingerprint(model_folder) != first


def test_model_fingerprint_is_memoised(model_folder, monkeypatch):
    calls: list[Path] = []
    real = models.sha256_file

    def counting(path, *args, **kwargs):
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(models, "sha256_file", counting)
    first = models.model_fingerprint(model_folder)
    assert sorted(p.name for p in calls) == ["model.safetensors", "pytorch_model.bin"]
    assert (Path(os.environ["DISTILL_HOME"]) / "fingerprints.json").exists()

    calls.clear()
    assert models.model_fingerprint(model_folder) == first
    assert calls == []


def test_model_fingerprint_needs_weight_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistillError, match="no weight files"):
        models.model_fingerprint(tmp_path / "empty")
    with pytest.raises(DistillError, match="not a folder"):
        models.model_fingerprint(tmp_path / "missing")
