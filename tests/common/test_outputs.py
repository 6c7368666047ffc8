"""distill/common/outputs.py: atomic writes with the umask's mode, library-written files made ordinary, output folders a
failed run leaves as it found them."""

import os
import stat

import pytest

from distill.common.outputs import check_output_folder, follow_umask, undone_on_error, write_atomic
from distill.errors import DistillError


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_atomic_follows_the_umask_and_leaves_no_temporary_file(tmp_path, umask_022):
    target = tmp_path / "report.json"
    write_atomic(target, "{}")
    write_atomic(target, '{"a": 1}', fsync=True)
    assert target.read_text() == '{"a": 1}' and mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    os.umask(0o077)
    write_atomic(target, "{}")
    assert mode(target) == 0o600  # a private umask stays private


def test_write_atomic_removes_its_temporary_file_on_failure(tmp_path):
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "x.json", 5)
    assert list(tmp_path.iterdir()) == []


def test_follow_umask_makes_safetensors_files_ordinary(tmp_path, umask_022):
    import torch
    from safetensors.torch import save_file

    (tmp_path / "sub").mkdir()
    save_file({"w": torch.zeros(2)}, str(tmp_path / "sub" / "model.safetensors"))
    assert mode(tmp_path / "sub" / "model.safetensors") == 0o600  # what the library does
    follow_umask(tmp_path)
    assert mode(tmp_path / "sub" / "model.safetensors") == 0o644


def test_check_output_folder_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "f").write_text("x")
    check_output_folder(tmp_path / "new" / "deeper", "--out")
    with pytest.raises(DistillError, match=r"--out .*/f is a file: give a folder"):
        check_output_folder(tmp_path / "f", "--out")
    with pytest.raises(DistillError, match=r"lies under .*/f, which is a file"):
        check_output_folder(tmp_path / "f" / "sub", "--out")


def test_undone_on_error_removes_only_what_the_failed_run_made(tmp_path):
    fresh = tmp_path / "a" / "b"
    with pytest.raises(DistillError), undone_on_error(fresh):
        fresh.mkdir(parents=True)
        (fresh / "config.yaml").write_text("x")
        raise DistillError("bad input")
    assert list(tmp_path.iterdir()) == []  # the parents it made go too

    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("x")
    with pytest.raises(DistillError), undone_on_error(kept):
        (kept / "config.yaml").write_text("x")
        (kept / "student").mkdir()
        raise DistillError("bad input")
    assert [p.name for p in kept.iterdir()] == ["mine.txt"]

    with pytest.raises(DistillError), undone_on_error(fresh, keep=lambda: True):
        fresh.mkdir(parents=True)
        raise DistillError("late")
    assert fresh.is_dir()  # e.g. a checkpoint to resume from

    other = tmp_path / "other"
    with pytest.raises(KeyboardInterrupt), undone_on_error(other):
        other.mkdir()
        raise KeyboardInterrupt
    assert other.is_dir()  # a kill is resumed, not undone
