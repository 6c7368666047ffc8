"""The teacher pass split over processes launched together (``accelerate launch``): each fills its share of the
shared cache, and every process then holds the rows one process alone computes, byte for byte."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from distill.common.processes import teacher_shard

WORKER = REPO / "tests" / "sharded_teacher_pass.py"


def committed_shards(root) -> dict[str, int]:
    """Committed shard files per cache folder (one per writing process on a cold cache)."""
    return {p.name: len(list(p.glob("shard-*.commit.json"))) for p in sorted(root.iterdir()) if p.is_dir()}


def test_a_sharded_teacher_pass_equals_the_one_process_pass(tmp_path, tiny_embedder, tiny_reader, tiny_pipelines):
    args = [str(WORKER), str(tiny_embedder), str(tiny_reader), str(tiny_pipelines), str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    alone = subprocess.run(
        [sys.executable, *args], env=env | {"DISTILL_HOME": str(tmp_path / "alone")}, cwd=REPO, timeout=300
    )
    assert alone.returncode == 0
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    result = subprocess.run(
        [*launch, *args],
        env=env | {"DISTILL_HOME": str(tmp_path / "sharded")},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = np.load(tmp_path / "alone.npz")
    for rank in ("0", "1"):
        got = np.load(tmp_path / f"{rank}.npz")
        for name in ("embeddings", "documents", "logits"):
            assert got[name].shape == expected[name].shape and got[name].shape[0] >= 150, name
            np.testing.assert_array_equal(got[name], expected[name], err_msg=f"{name} of process {rank}")
    # The same cache folders (keys do not depend on the number of processes); each process wrote its own shard.
    alone_shards = committed_shards(tmp_path / "alone" / "teacher-cache")
    sharded = committed_shards(tmp_path / "sharded" / "teacher-cache")
    assert sorted(sharded) == sorted(alone_shards) and len(sharded) == 3
    assert set(alone_shards.values()) == {1} and set(sharded.values()) == {2}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (0, 1)),
        ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}, (1, 2)),
        (
            {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "DISTILL_SHARED_CACHE": "1"},
            (3, 4),
        ),
    ],
)
def test_a_teacher_pass_splits_over_one_machine_unless_the_cache_is_shared(monkeypatch, env, expected):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "DISTILL_SHARED_CACHE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert teacher_shard() == expected


def test_cache_keys_depend_on_the_precision_only(tmp_path, tiny_embedder, monkeypatch):
    """The cache folder of a teacher pass is the same on a GPU machine, in a launched process and alone; bf16 rows go
    to a folder of their own, and fp32 keeps the key it had before the setting existed."""
    import torch

    from distill.training.tasks.embedder import TeacherEmbeddings

    texts = ["the nile flows north", "mozart was born in salzburg", "the moon"]
    alone = TeacherEmbeddings(str(tiny_embedder), cache_root=tmp_path)
    fp32 = alone.encode(texts, 16, "fp32")
    assert alone._namespace(16) == {"kind": "st-embeddings", "teacher": alone.fingerprint, "max_length": 16, "dim": 32}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    assert TeacherEmbeddings(str(tiny_embedder), cache_root=tmp_path)._namespace(16) == alone._namespace(16)
    monkeypatch.undo()
    bf16 = TeacherEmbeddings(str(tiny_embedder), cache_root=tmp_path, precision="bf16")
    assert bf16._namespace(16) == alone._namespace(16) | {"precision": "bf16"}
    rows = bf16.encode(texts, 16, "bf16")  # runs on the CPU too
    assert rows.dtype == np.float32 and np.abs(rows - fp32).max() < 0.05 and not np.array_equal(rows, fp32)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2
