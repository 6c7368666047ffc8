"""Average the weights of several students of one architecture into one model (a "model soup").

Students fine-tuned from the same starting point (e.g. the same recipe with other seeds) can be averaged weight by
weight; the average is one model of the same size and speed. Wortsman et al., "Model soups: averaging weights of
multiple fine-tuned models improves accuracy without increasing inference time", ICML 2022.

    distill average --out runs/students/minilm-l6-squad-kl-10k-384-avg/student \\
        runs/students/minilm-l6-squad-kl-10k-384/student runs/students/minilm-l6-squad-kl-10k-384-s1/student
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from distill.common.outputs import check_output_folder, follow_umask
from distill.errors import DistillError
from distill.training.model_card import AVERAGE_CARD_TITLE, write_average_files, write_metrics

if TYPE_CHECKING:
    import torch

# What a training run writes beside the model: they describe one ingredient, not the average.
_RUN_FILES = {"README.md", "config.yaml", "metrics.json", "train_log.jsonl"}
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def _read_card(folder: Path) -> str:
    card = folder / "README.md"
    return card.read_text(encoding="utf-8", errors="replace") if card.is_file() else ""


def _load(path: Path):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise DistillError(f"cannot read {path}: {e}") from None


def average_weights(folders: Sequence[Path], out: Path, weights: Sequence[float] | None = None) -> Path:
    """Write to ``out`` the first folder's model files with every ``*.safetensors`` tensor replaced by the weighted
    mean of that tensor over ``folders`` (weights default to equal; they are normalised to sum to 1).

    The folders must hold the same safetensors files with the same tensor names, shapes and dtypes, and the same
    tokenizer; integer tensors (e.g. position ids) must be equal. ``out`` gets a model card naming the ingredients."""
    folders = [Path(f) for f in folders]
    weights = _normalised_weights(folders, weights)
    out = Path(out)
    _check_out(out, folders)
    files = _weight_files(folders)
    averaged = {rel: _average_file(folders, rel, weights) for rel in files}
    _write_weights(out, folders[0], averaged)
    write_average_files(out, folders, weights, files[0])
    return out


def _normalised_weights(folders: list[Path], weights: Sequence[float] | None) -> list[float]:
    if len(folders) < 2:
        raise DistillError("give at least two model folders to average")
    for folder in folders:
        if not folder.is_dir():
            raise DistillError(f"model folder {folder} does not exist")
    weights = [1.0] * len(folders) if weights is None else [float(w) for w in weights]
    if len(weights) != len(folders):
        raise DistillError(f"--weights: {len(weights)} weights for {len(folders)} models")
    if min(weights) <= 0:
        raise DistillError(f"--weights must be > 0, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


def _check_out(out: Path, folders: list[Path]) -> None:
    """``out`` is new, empty or an earlier average: the average replaces it whole."""
    check_output_folder(out, "--out")
    if out.resolve() in {f.resolve() for f in folders}:
        raise DistillError(f"--out {out} is one of the models to average: choose a new folder")
    if out.exists() and any(out.iterdir()) and AVERAGE_CARD_TITLE not in _read_card(out):
        raise DistillError(
            f"--out {out} exists and is not an earlier weight average: choose a new folder or remove it first"
        )


def _weight_files(folders: list[Path]) -> list[Path]:
    """The ``*.safetensors`` files (relative paths) that every folder holds alike, beside one tokenizer."""
    first = folders[0]
    files = sorted(p.relative_to(first) for p in first.rglob("*.safetensors"))
    if not files:
        raise DistillError(f"{first} holds no *.safetensors weights")
    for folder in folders[1:]:
        theirs = sorted(p.relative_to(folder) for p in folder.rglob("*.safetensors"))
        if theirs != files:
            raise DistillError(f"{folder} holds other weight files than {first}: {theirs} vs {files}")
        for name in _TOKENIZER_FILES:
            a, b = first / name, folder / name
            if a.exists() != b.exists() or (a.exists() and a.read_bytes() != b.read_bytes()):
                raise DistillError(f"{folder} has another tokenizer than {first} ({name} differs): cannot average")
    return files


def _average_file(folders: list[Path], rel: Path, weights: list[float]) -> dict[str, torch.Tensor]:
    """The weighted mean of each floating-point tensor of ``rel`` over ``folders``; the first folder's integer
    tensors, which must be equal in all of them."""
    import torch

    first = folders[0]
    states = [_load(folder / rel) for folder in folders]
    for folder, state in zip(folders[1:], states[1:]):
        if extra := sorted(state.keys() ^ states[0].keys()):
            raise DistillError(
                f"{folder / rel} and {first / rel} hold other tensors ({', '.join(extra[:3])}): "
                "the models do not share an architecture"
            )
    mean = {}
    for key, tensor in states[0].items():
        for folder, state in zip(folders[1:], states[1:]):
            other = state[key]
            if other.shape != tensor.shape or other.dtype != tensor.dtype:
                raise DistillError(
                    f"{folder / rel}: tensor {key!r} is {tuple(other.shape)} {other.dtype}, but "
                    f"{tuple(tensor.shape)} {tensor.dtype} in {first / rel}: not one architecture"
                )
            if not tensor.is_floating_point() and not torch.equal(other, tensor):
                raise DistillError(f"{folder / rel}: integer tensor {key!r} differs from {first / rel}")
        if tensor.is_floating_point():
            total = sum(w * s[key].double() for w, s in zip(weights, states))
            mean[key] = total.to(tensor.dtype).contiguous()
        else:
            mean[key] = tensor
    return mean


def _write_weights(out: Path, first: Path, averaged: dict[Path, dict[str, torch.Tensor]]) -> None:
    """``out`` as a copy of the first folder's model files with the averaged weights in place of its own."""
    from safetensors.torch import save_file

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(first, out, ignore=lambda _dir, names: [n for n in names if n in _RUN_FILES])
    for rel, state in averaged.items():
        save_file(state, str(out / rel), metadata={"format": "pt"})
    follow_umask(out)  # safetensors writes 0600, and the copied weights kept their mode


def add_dev_scores(out: Path, recipe_path: Path, scores: dict[str, dict[str, float]]) -> None:
    """Record ``score_on_dev_slice``'s rows in ``out``/metrics.json: the average as ``dev``, the teacher as
    ``teacher_dev`` and each ingredient as ``ingredient_<i>_dev``, the groups the student browser tables."""
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    rows = dict(scores)
    metrics["dev_recipe"] = str(recipe_path)
    metrics["teacher_dev"] = rows.pop("teacher")
    metrics["dev"] = rows.pop(str(out))
    for i, (name, row) in enumerate(rows.items(), 1):
        metrics[f"ingredient_{i}_dev"] = {"model": name, **row}
    write_metrics(out, metrics)
