"""The shared training loop on a hand-made task: resume equals an uninterrupted run, the log is cut back."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from distill.training import trainer
from distill.training.trainer import LOG_FILE, Trainer


class _Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.dropout = nn.Dropout(0.5)  # draws from torch's generator every step: a resume must draw the same

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"mse": ((self.dropout(self.linear(batch["x"])) - batch["y"]) ** 2).mean()}


class _Task:
    best_metric = "score"

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.data = [(torch.randn(4, 8, generator=generator), torch.randn(4, 8, generator=generator)) for _ in range(5)]
        self.net = _Model()

    def model(self) -> nn.Module:
        return self.net

    def batches(self, epoch: int) -> list[int]:
        return list(range(len(self.data)))

    def collate(self, batch: int) -> dict[str, torch.Tensor]:
        x, y = self.data[batch]
        return {"x": x, "y": y}

    def batch_examples(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["x"])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return {"score": -float(sum(model({"x": x, "y": y})["mse"] for x, y in self.data))}

    def save(self, model: nn.Module, folder: Path) -> None:
        folder.mkdir(parents=True)
        torch.save(model.state_dict(), folder / "weights.pt")


RECIPE = {
    "seed": 3,
    "optimizer": {"lr": 1e-2, "weight_decay": 0.01, "warmup_ratio": 0.1, "grad_clip": 1.0},
    "max_steps": None,
    "epochs": 3,
    "log_every": 1,
    "eval_every": 4,
    "save_every": 3,
    "mixed_precision": "no",
}


def _fit(output: Path) -> tuple[dict[str, torch.Tensor], list[dict]]:
    torch.manual_seed(123)  # whatever came before: the trainer's seed decides
    task = _Task()
    Trainer(task, RECIPE, output).fit()
    rows = [json.loads(line) for line in (output / LOG_FILE).read_text().splitlines()]
    return {k: v.clone() for k, v in task.net.state_dict().items()}, rows


def _without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "examples_per_s"} for row in rows]


# 5 batches an epoch, 15 steps: killed after the checkpoint at step 3, 6 or 12 (mid-epoch) or 5 (an epoch's end).
@pytest.mark.parametrize(("save_every", "kill_after"), [(3, 1), (3, 2), (3, 4), (5, 1)])
def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, monkeypatch, save_every, kill_after):
    monkeypatch.setitem(RECIPE, "save_every", save_every)
    weights, rows = _fit(tmp_path / "whole")

    original = trainer.Trainer._save_checkpoint
    saves = {"n": 0}

    def save_then_die(self, state):
        original(self, state)
        saves["n"] += 1
        if saves["n"] == kill_after:
            # Rows written after the checkpoint and before the kill: the resumed run must not keep them twice.
            self._log({"step": state.step + 1, "loss": 0.0})
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "resumed")
    monkeypatch.setattr(trainer.Trainer, "_save_checkpoint", original)
    resumed_weights, resumed_rows = _fit(tmp_path / "resumed")

    for name, tensor in weights.items():
        assert torch.equal(tensor, resumed_weights[name]), name
    assert _without_timing(resumed_rows) == _without_timing(rows)
    steps = [row["step"] for row in resumed_rows if "loss" in row]
    assert steps == list(range(1, 16))


def test_cut_log_keeps_the_rows_up_to_the_checkpoint(tmp_path):
    run = Trainer(_Task(), RECIPE, tmp_path)
    rows = [{"step": 0}, {"step": 3, "loss": 1.0}, {"step": 3, "dev/score": 0.5}, {"step": 4, "loss": 2.0}]
    (tmp_path / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    run._cut_log(3)
    assert [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()] == rows[:3]
    # A kill in the middle of a write leaves half a row: it was written after the checkpoint, so it goes too.
    (tmp_path / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows[:3]) + '{"step": 4, "lo')
    run._cut_log(3)
    assert [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()] == rows[:3]


def test_run_length_follows_max_steps_or_epochs_and_refuses_no_batches(tmp_path, monkeypatch):
    from distill.errors import DistillError

    task = _Task()  # 5 batches an epoch, one process
    assert Trainer(task, RECIPE, tmp_path)._setup_length() == trainer.RunLength(steps=15, epochs=3, per_process=5)
    capped = Trainer(task, RECIPE | {"max_steps": 7}, tmp_path)._setup_length()
    assert capped == trainer.RunLength(steps=7, epochs=2, per_process=5)
    monkeypatch.setattr(task, "batches", lambda epoch: [])
    with pytest.raises(DistillError, match="gives no batch: add data or lower batch_size"):
        Trainer(task, RECIPE, tmp_path)._setup_length()
