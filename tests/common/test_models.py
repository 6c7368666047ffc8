import io
import zipfile
from pathlib import Path

import pytest

from distill.common import models
from distill.errors import DistillError


def _split_zip(tmp_path: Path, files: dict[str, bytes], parts: int = 3) -> list[Path]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    blob = buffer.getvalue()
    size = len(blob) // parts + 1
    paths = []
    for i in range(parts):
        p = tmp_path / f"model.zip.00{i + 1}"
        p.write_bytes(blob[i * size : (i + 1) * size])
        paths.append(p)
    return paths


def test_assemble_from_parts_verifies_and_strips_top_folder(tmp_path):
    weights = b"weights" * 100
    parts = _split_zip(tmp_path, {"m/model.safetensors": weights, "m/config.json": b"{}", "m/desktop.ini": b"x"})
    import hashlib

    dest = models.assemble_from_parts(
        parts,
        tmp_path / "out" / "m",
        weights_file="model.safetensors",
        expected_sha256=hashlib.sha256(weights).hexdigest(),
    )
    assert (dest / "model.safetensors").read_bytes() == weights
    assert (dest / "config.json").exists() and not (dest / "desktop.ini").exists()


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing(tmp_path):
    parts = _split_zip(tmp_path, {"m/model.safetensors": b"tampered"})
    dest = tmp_path / "out" / "m"
    with pytest.raises(DistillError, match="checksum mismatch.*make setup"):
        models.assemble_from_parts(parts, dest, weights_file="model.safetensors", expected_sha256="0" * 64)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # the temporary folder is gone too


def test_truncated_parts_are_a_clear_error(tmp_path):
    parts = _split_zip(tmp_path, {"m/model.safetensors": b"x" * 1000})
    with pytest.raises(DistillError, match="valid zip"):
        models.assemble_from_parts(parts[:2], tmp_path / "o", weights_file="model.safetensors", expected_sha256="0")


def test_resolve_model_local_folder_hub_id_and_errors(tmp_path, tiny_embedder):
    assert models.resolve_model(tiny_embedder) == str(tiny_embedder)
    assert models.resolve_model("someone/some-model") == "someone/some-model"
    with pytest.raises(DistillError, match="unknown model 'no-such-model'.*mpnet-base"):
        models.resolve_model("no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistillError, match="neither config.json nor modules.json"):
        models.resolve_model(tmp_path / "empty")


def test_missing_package_names_the_fix(monkeypatch):
    with pytest.raises(DistillError, match="not installed: run `make setup`"):
        models._package_file("no-such-distribution-xyz", "x")


def test_footprint_counts_parameters_from_safetensors_header(tiny_embedder):
    import torch
    from sentence_transformers import SentenceTransformer

    expected = sum(p.numel() for p in SentenceTransformer(str(tiny_embedder), device="cpu").parameters())
    info = models.model_footprint(tiny_embedder)
    assert info["parameters"] == expected
    assert info["size_bytes"] > expected * torch.finfo(torch.float32).bits // 8


@pytest.mark.slow
def test_offline_sources_resolve_to_real_models():
    mpnet = Path(models.resolve_model("mpnet-base"))
    assert (mpnet / ".verified").read_text().strip() == models.MPNET_SHA256
    # 109,486,464 parameters + the 514-entry position_ids buffer stored with them
    assert models.model_footprint(mpnet)["parameters"] == 109_486_978
    minilm = Path(models.resolve_model("minilm-l6"))
    assert (minilm / "modules.json").exists()
    assert (
        models.model_footprint(minilm)["parameters"] == 22_713_728
    )  # 22,713,216 parameters + the 512-entry position_ids buffer
