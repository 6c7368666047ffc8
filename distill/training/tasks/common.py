"""What the embedder and reader tasks share: layer surgery on BERT-style encoders, a recorder of every layer's
query/key/value projections, length-grouped batches, and the weighted mix of a task's losses.

Nothing here imports a task module: both tasks import from here, never the other way round.
"""

from __future__ import annotations

import random
from typing import Any

from torch import Tensor, nn

from distill.errors import DistillError

# --- layer surgery and attention projections --------------------------------------------------------------------------


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's layers of a transformers model (a bare encoder or one with a head: through ``base_model``)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise DistillError(
            f"{type(model).__name__}: cannot find its encoder layers (base_model.encoder.layer); layer selection and "
            "attention relations support BERT-, MPNet- and RoBERTa-style encoders"
        )
    return layers


def keep_layers(model: nn.Module, layers: list[int], *, field: str = "layers", owner: str = "the model") -> nn.Module:
    """Keep only ``layers`` of the model's encoder (in place); ``field`` and ``owner`` name them in the error."""
    current = encoder_layers(model)
    if max(layers) >= len(current):
        raise DistillError(
            f"{field} {layers} names layer {max(layers)}, but {owner} has {len(current)} layers (0..{len(current) - 1})"
        )
    base = getattr(model, "base_model", model)
    base.encoder.layer = nn.ModuleList([current[i] for i in layers])
    model.config.num_hidden_layers = len(layers)
    return model


def qkv_linears(model: nn.Module) -> list[tuple[nn.Module, nn.Module, nn.Module]]:
    """The query, key and value projections of every encoder layer (BERT: attention.self.query; MPNet: attn.q)."""
    out = []
    for i, layer in enumerate(encoder_layers(model)):
        found: dict[str, nn.Module] = {}
        for name, module in layer.named_modules():
            last = name.rsplit(".", 1)[-1]
            if (
                isinstance(module, nn.Linear)
                and "attention" in name
                and last in ("query", "key", "value", "q", "k", "v")
            ):
                found.setdefault(last[0], module)
        if set(found) != {"q", "k", "v"}:
            raise DistillError(f"layer {i} of {type(model).__name__}: cannot find its query/key/value projections")
        out.append((found["q"], found["k"], found["v"]))
    return out


class QKVRecorder:
    """Forward hooks that keep the last output of every q, k, v projection."""

    def __init__(self, model: nn.Module):
        self.outputs: list[list[Tensor | None]] = []
        for i, triple in enumerate(qkv_linears(model)):
            self.outputs.append([None, None, None])
            for j, linear in enumerate(triple):
                linear.register_forward_hook(self._hook(i, j))

    def _hook(self, i: int, j: int):
        def hook(module, inputs, output):
            self.outputs[i][j] = output

        return hook

    def take(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        out = [tuple(x) for x in self.outputs]
        for row in self.outputs:
            row[:] = [None, None, None]
        return out  # type: ignore[return-value]


# --- batches ----------------------------------------------------------------------------------------------------------


def length_grouped_batches(lengths: list[int], positive: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of similar passage length (less padding), never two pairs with the same passage in one batch (the
    in-batch losses would treat a question's own passage as a negative), in a seeded random order."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        group = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        pending = group
        while pending:
            batch, seen, rest = [], set(), []
            for i in pending:
                if len(batch) < batch_size and positive[i] not in seen:
                    batch.append(i)
                    seen.add(positive[i])
                else:
                    rest.append(i)
            if len(batch) == 1 and batches:
                # A lone leftover joins an earlier batch that lacks its passage, rather than train alone.
                fits = [b for b in batches if positive[batch[0]] not in {positive[j] for j in b}]
                home = min(fits, key=len, default=None)
                if home is not None:
                    home.append(batch[0])
                    batch = []
            if batch:
                batches.append(batch)
            pending = rest
    rng.shuffle(batches)
    return batches


def length_grouped_rows(rows: list[int], lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """``rows`` (e.g. window numbers) in batches of similar length, ``lengths[i]`` being row ``rows[i]``'s, in a
    seeded random order: :func:`length_grouped_batches` where no two rows share a passage."""
    local = length_grouped_batches(lengths, list(range(len(rows))), batch_size, seed)
    return [[rows[i] for i in batch] for batch in local]


# --- the weighted mix of losses ---------------------------------------------------------------------------------------


def split_losses(losses: list[tuple[str, float, nn.Module]]) -> tuple[list[str], list[float], nn.ModuleList]:
    """A recipe's built ``(name, weight, loss)`` triples as the names, weights and modules a task's module keeps
    (the losses in a ModuleList, so that their parameters, e.g. hidden-state projections, train and are saved)."""
    names = [name for name, _, _ in losses]
    weights = [weight for _, weight, _ in losses]
    return names, weights, nn.ModuleList([loss for _, _, loss in losses])


def loss_requirements(losses: list[tuple[str, float, nn.Module]]) -> set[str]:
    """The model outputs beyond the final ones that some loss reads (e.g. ``hidden_states``, ``qkv``)."""
    return {key for _, _, loss in losses for key in getattr(loss, "requires", ())}


def weighted_losses(
    names: list[str], weights: list[float], losses: nn.ModuleList, student: dict[str, Any], teacher: dict[str, Any]
) -> dict[str, Tensor]:
    """The loss terms ``{name: weight * loss(student, teacher)}``, which the trainer sums; a loss of weight 0 is
    not run (it may need outputs that were not computed)."""
    return {name: weight * loss(student, teacher) for name, weight, loss in zip(names, weights, losses) if weight > 0}
