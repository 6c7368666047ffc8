"""Average the weights of several students of one architecture into one model (a "model soup").

Students fine-tuned from the same starting point (e.g. the same recipe with other seeds) can be averaged weight by
weight; the average is one model of the same size and speed. Wortsman et al., "Model soups: averaging weights of
multiple fine-tuned models improves accuracy without increasing inference time", ICML 2022.

    distill average --out runs/students/minilm-l6-squad-kl-10k-384-avg/student \\
        runs/students/minilm-l6-squad-kl-10k-384/student runs/students/minilm-l6-squad-kl-10k-384-s1/student
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import yaml

from distill.common.outputs import check_output_folder, follow_umask
from distill.errors import DistillError
from distill.training.model_card import average_metadata, front_matter, write_metrics

# What a training run writes beside the model: they describe one ingredient, not the average.
_RUN_FILES = {"README.md", "config.yaml", "metrics.json", "train_log.jsonl"}
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


_CARD_TITLE = "# Weight average of"


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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def average_weights(folders: Sequence[Path], out: Path, weights: Sequence[float] | None = None) -> Path:
    """Write to ``out`` the first folder's model files with every ``*.safetensors`` tensor replaced by the weighted
    mean of that tensor over ``folders`` (weights default to equal; they are normalised to sum to 1).

    The folders must hold the same safetensors files with the same tensor names, shapes and dtypes, and the same
    tokenizer; integer tensors (e.g. position ids) must be equal. ``out`` gets a model card naming the ingredients."""
    import torch
    from safetensors.torch import save_file

    folders = [Path(f) for f in folders]
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
    weights = [w / total for w in weights]
    out = Path(out)
    check_output_folder(out, "--out")
    if out.resolve() in {f.resolve() for f in folders}:
        raise DistillError(f"--out {out} is one of the models to average: choose a new folder")
    if out.exists() and any(out.iterdir()) and _CARD_TITLE not in _read_card(out):
        raise DistillError(
            f"--out {out} exists and is not an earlier weight average: choose a new folder or remove it first"
        )

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

    averaged: dict[Path, dict[str, torch.Tensor]] = {}
    for rel in files:
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
        averaged[rel] = mean

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(first, out, ignore=lambda _dir, names: [n for n in names if n in _RUN_FILES])
    for rel, state in averaged.items():
        save_file(state, str(out / rel), metadata={"format": "pt"})
    follow_umask(out)  # safetensors writes 0600, and the copied weights kept their mode
    rows = "\n".join(
        f"| `{folder}` | {w:.4g} | `{_sha256(folder / files[0])[:16]}` |" for folder, w in zip(folders, weights)
    )
    reader = not (first / "modules.json").exists()  # sentence-transformers folders have one, readers do not
    (out / "README.md").write_text(
        front_matter(average_metadata(reader=reader)) + f"{_CARD_TITLE} {len(folders)} students\n\n"
        "Every floating-point tensor is the weighted mean of the same tensor in these models "
        f"(`{files[0]}` sha256 prefix of each ingredient):\n\n"
        f"| model | weight | weights sha256 |\n|---|---|---|\n{rows}\n\n"
        "Their own cards, recipes and dev-slice metrics stay in their folders; this average has not been scored "
        "by training. Measure it with `distill swap` and `distill eval`.\n\n"
        'Reference: Wortsman et al., "Model soups: averaging weights of multiple fine-tuned models improves '
        'accuracy without increasing inference time", ICML 2022.\n',
        encoding="utf-8",
    )
    # What the student browser reads beside the card: the "recipe" of an average is its ingredients and weights.
    (out / "config.yaml").write_text(
        yaml.safe_dump(
            {"task": "average", "kind": "reader" if reader else "embedder", "models": [str(f) for f in folders]}
            | {"weights": weights},
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    write_metrics(out, {"average_of": [str(f) for f in folders], "weights": weights})
    return out


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
