"""The training loop every student shares, built on Hugging Face Accelerate.

The same code runs on the CPU, on one GPU (bf16 autocast) and data-parallel under ``accelerate launch``. A *task*
(the embedder or reader specifics) supplies the model, the batches, the loss terms and the dev evaluation; this
module owns what must be right once: AdamW with warm-up and linear decay, gradient clipping, one seed, a progress bar
with each loss term and examples/s, periodic evaluation that keeps the best student, atomic checkpoints that a
killed run resumes from, a clear stop on a NaN or infinite loss, and optionally an exponential moving average of the
weights that the dev slice scores and the saved student keeps.

Why one module over 400 lines: the loop, its checkpoints, the weight average and the resume share one state (step,
epoch, batch, random generators); split apart, a resume could disagree with the run it continues.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from distill.common.outputs import follow_umask, write_atomic
from distill.errors import DistillError

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
LOG_FILE = "train_log.jsonl"
EMA_FILE = "ema.safetensors"


class Task(Protocol):
    """What a kind of student must provide to :class:`Trainer`."""

    best_metric: str  # the dev metric that picks the best checkpoint (higher is better)

    def model(self) -> nn.Module:
        """The student and its loss modules in one module whose ``forward(batch)`` returns the weighted loss terms,
        so that data-parallel training syncs every trainable parameter (projections included)."""
        ...

    def batches(self, epoch: int) -> list[Any]: ...

    def collate(self, batch: Any) -> dict[str, Any]: ...

    def batch_examples(self, batch: dict[str, Any]) -> int: ...

    def evaluate(self, model: nn.Module) -> dict[str, float]: ...

    def save(self, model: nn.Module, folder: Path) -> None: ...


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best: float = -math.inf
    best_step: int = -1
    best_metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    examples: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def record_step(self, examples: int, seconds: float) -> None:
        self.step += 1
        self.batch_in_epoch += 1
        self.examples += examples
        self.train_seconds += seconds


@dataclass(frozen=True)
class RunLength:
    """How long a run trains: ``steps`` optimiser steps, over at most ``epochs`` passes of ``per_process`` batches
    on each process."""

    steps: int
    epochs: int
    per_process: int


class _Progress:
    """The progress bar, and the examples/s of the steps since the last log row: evaluation and checkpoint time
    restart its clock (they are not training), the examples count on."""

    def __init__(self, total: int, initial: int, *, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total, initial=initial, desc="train", unit="step", disable=not enabled, dynamic_ncols=True
        )
        self.examples, self.start = 0, time.perf_counter()

    def step(self, examples: int) -> None:
        self.examples += examples
        self.bar.update(1)

    def rate(self) -> float:
        return self.examples / max(1e-9, time.perf_counter() - self.start)

    def show(self, row: dict[str, Any], rate: float) -> None:
        """Put a log row's loss terms and ``rate`` on the bar, and start the next window."""
        self.bar.set_postfix(
            {k.removeprefix("loss/"): f"{v:.4f}" for k, v in row.items() if "loss" in k} | {"ex/s": f"{rate:.1f}"}
        )
        self.examples, self.start = 0, time.perf_counter()

    def restart_clock(self) -> None:
        self.start = time.perf_counter()

    def close(self) -> None:
        self.bar.close()


def _atomic_replace_dir(tmp: Path, final: Path) -> None:
    """Put ``tmp`` at ``final`` so that a kill at any moment leaves either the old or the new folder complete."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def recover_dir(final: Path) -> None:
    """After a kill between the two renames of :func:`_atomic_replace_dir`, the previous folder is ``.old``."""
    old = final.with_name(final.name + ".old")
    if not final.exists() and old.exists():
        old.rename(final)


class WeightAverage:
    """An exponential moving average of a model's trainable parameters (Polyak averaging; as in Izmailov et al.,
    "Averaging Weights Leads to Wider Optima and Better Generalization", 2018, but exponential).

    After update t: ``avg <- d_t * avg + (1 - d_t) * w`` with ``d_t = min(decay, (1 + t) / (10 + t))``, the usual
    warm-up, so that the first updates are not pinned to the starting weights. :meth:`swapped` puts the averaged
    weights into the model for evaluation or saving and the trained ones back afterwards.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.updates = 0

    def rate(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        weight = 1 - self.rate()
        for avg, param in zip(self.shadow, self.params):
            avg.lerp_(param.detach().to(avg.dtype), weight)

    @contextmanager
    def swapped(self) -> Iterator[None]:
        saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for param, avg in zip(self.params, self.shadow):
                param.copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for param, value in zip(self.params, saved):
                    param.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"shadow.{i}": t.detach().contiguous().cpu() for i, t in enumerate(self.shadow)}
        return state | {"updates": torch.tensor(self.updates)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if len(state) - 1 != len(self.shadow):
            raise DistillError(
                f"the checkpoint's weight average has {len(state) - 1} tensors, the model {len(self.shadow)}: it "
                "belongs to another student; delete the checkpoint folder to start again"
            )
        for i, avg in enumerate(self.shadow):
            avg.copy_(state[f"shadow.{i}"])
        self.updates = int(state["updates"])


def _linear_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Trainer:
    def __init__(self, task: Task, recipe: dict[str, Any], output: Path):
        from accelerate import Accelerator, DistributedDataParallelKwargs
        from accelerate.utils import set_seed

        self.task = task
        self.recipe = recipe
        self.output = Path(output)
        mp = recipe.get("mixed_precision", "auto")
        if mp == "auto":
            mp = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
        # A loss weighted 0 leaves its projection unused in the graph.
        ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
        # cpu=True without a GPU: under `accelerate launch --multi_gpu --num_processes N` the processes then train
        # data-parallel over gloo (DistributedType.MULTI_CPU) instead of each running alone.
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mp, kwargs_handlers=[ddp])
        set_seed(recipe["seed"])
        self.ema: WeightAverage | None = None

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def _log(self, row: dict[str, Any]) -> None:
        if self.is_main:
            with open(self.output / LOG_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    def _save_checkpoint(self, state: TrainState) -> None:
        """Accelerate's full state (model, losses, optimiser, scheduler, RNG) plus ours, swapped in atomically."""
        self.accelerator.wait_for_everyone()
        tmp = self.output / f".{CHECKPOINT}.tmp"
        if self.is_main and tmp.exists():
            shutil.rmtree(tmp)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp), safe_serialization=True)
        # save_state ends without a barrier: every process's own file (its RNG state) must be in tmp before the main
        # process moves tmp, or a slower process writes it into a new, stray tmp and the checkpoint lacks it.
        self.accelerator.wait_for_everyone()
        if self.is_main:
            if self.ema is not None:
                from safetensors.torch import save_file

                save_file(self.ema.state_dict(), str(tmp / EMA_FILE))
            (tmp / "trainer_state.json").write_text(json.dumps(state.to_json()), encoding="utf-8")
            follow_umask(tmp)  # safetensors writes its files 0600
            _atomic_replace_dir(tmp, self.output / CHECKPOINT)
        self.accelerator.wait_for_everyone()

    def _save_best(self, model: nn.Module) -> None:
        if not self.is_main:
            return
        tmp = self.output / ".best.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        self.task.save(self.accelerator.unwrap_model(model), tmp)
        follow_umask(tmp)  # the student's weights are shared like any output, not 0600 as safetensors writes them
        _atomic_replace_dir(tmp, self.output / "student")

    def _score(self, model: nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            metrics = self.task.evaluate(self.accelerator.unwrap_model(model))
        model.train(was_training)
        return metrics

    @contextmanager
    def _averaged(self) -> Iterator[None]:
        """The weights the dev slice scores and the student keeps: the moving average when there is one."""
        if self.ema is None:
            yield
        else:
            with self.ema.swapped():
                yield

    def _evaluate(self, model: nn.Module, state: TrainState) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.is_main:
            raw = self._score(model) if self.ema is not None else {}
            with self._averaged():
                metrics = self._score(model)
                score = metrics[self.task.best_metric]
                self._log(
                    {"step": state.step}
                    | {f"dev/{k}": v for k, v in metrics.items()}
                    | {f"dev_raw/{k}": v for k, v in raw.items() if not k.startswith("teacher_")}
                )
                if score > state.best:
                    state.best, state.best_step, state.best_metrics = score, state.step, dict(metrics)
                    self._save_best(model)
        return metrics

    def fit(self) -> TrainState:
        """Train the task's student to the end of the run, resuming from the checkpoint of a killed run, and save the
        best student on the dev slice (the last weights where no evaluation saved one)."""
        self._setup_output()
        model = self.task.model()
        optimizer = self._setup_optimizer(model)
        length = self._setup_length()
        scheduler = self._setup_scheduler(optimizer, length)
        model, optimizer, scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        self._setup_ema(model)
        state = self._resume(length) if (self.output / CHECKPOINT).exists() else self._score_untrained(model)
        self._train(model, optimizer, scheduler, state, length)
        self._save_last(model)
        return state

    # --- setup ----------------------------------------------------------------------------------------------------
    def _setup_output(self) -> None:
        """The output folder, with the checkpoint and student that a kill between two renames left as ``.old``."""
        self.output.mkdir(parents=True, exist_ok=True)
        if self.is_main:
            recover_dir(self.output / CHECKPOINT)
            recover_dir(self.output / "student")
        self.accelerator.wait_for_everyone()

    def _setup_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """AdamW without weight decay on biases and norms (the usual BERT split)."""
        opt_cfg = self.recipe["optimizer"]
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
        return torch.optim.AdamW(
            [{"params": decay, "weight_decay": opt_cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
            lr=opt_cfg["lr"],
        )

    def _setup_length(self) -> RunLength:
        """How long the run trains, checked against the batches there are: every process needs at least one."""
        batches_per_epoch = len(self.task.batches(0))
        if batches_per_epoch == 0:
            raise DistillError("the training data gives no batch: add data or lower batch_size")
        processes = self.accelerator.num_processes
        per_process = batches_per_epoch // processes
        if per_process == 0:
            raise DistillError(
                f"{batches_per_epoch} batches cannot feed {processes} processes: add data or lower batch_size"
            )
        steps = self.recipe["max_steps"] or per_process * self.recipe["epochs"]
        return RunLength(steps=steps, epochs=math.ceil(steps / per_process), per_process=per_process)

    def _setup_scheduler(
        self, optimizer: torch.optim.Optimizer, length: RunLength
    ) -> torch.optim.lr_scheduler.LRScheduler:
        warmup = int(length.steps * self.recipe["optimizer"]["warmup_ratio"])
        return _linear_schedule(optimizer, warmup, length.steps)

    def _setup_ema(self, model: nn.Module) -> None:
        """The weight average, over the prepared model's parameters (those the optimiser steps)."""
        if self.recipe["optimizer"].get("ema"):
            self.ema = WeightAverage(model, self.recipe["optimizer"]["ema"])

    def _resume(self, length: RunLength) -> TrainState:
        """The state of the checkpoint a killed run left: Accelerate's, the weight average and ours; the log is cut
        back to it."""
        checkpoint = self.output / CHECKPOINT
        self.accelerator.load_state(str(checkpoint))
        state = TrainState(**json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")))
        if self.ema is not None:
            if not (checkpoint / EMA_FILE).exists():
                raise DistillError(
                    f"{checkpoint} was written without optimizer.ema: resume with the recipe it was started with"
                )
            from safetensors.torch import load_file

            self.ema.load_state_dict(load_file(str(checkpoint / EMA_FILE)))
        self._cut_log(state.step)
        if self.is_main:
            logger.info("resuming from %s at step %d", checkpoint, state.step)
            print(f"resuming from {checkpoint} at step {state.step}/{length.steps}", flush=True)
        return state

    def _score_untrained(self, model: nn.Module) -> TrainState:
        """A new run's state, its log started with the untrained student's dev scores: the baseline every card and
        the best checkpoint are compared with."""
        state = TrainState()
        if self.is_main:
            (self.output / LOG_FILE).unlink(missing_ok=True)
            untrained = self._score(model)
            self._log({"step": 0, **{f"dev/{k}": v for k, v in untrained.items()}})
            state.best_metrics = {f"untrained_{k}": v for k, v in untrained.items()}
            write_atomic(self.output / "untrained_metrics.json", json.dumps(untrained, indent=2))
        return state

    # --- the step loop --------------------------------------------------------------------------------------------
    def _train(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        state: TrainState,
        length: RunLength,
    ) -> None:
        """Steps until ``length.steps``, epoch by epoch from where ``state`` stands; each step logged, evaluated and
        checkpointed at the recipe's intervals (logged and evaluated at the last step too)."""
        from accelerate.utils import send_to_device

        recipe, acc = self.recipe, self.accelerator
        progress = _Progress(length.steps, state.step, enabled=self.is_main)
        model.train()
        resumed_mid_epoch = state.batch_in_epoch > 0
        while state.step < length.steps and state.epoch < length.epochs:
            loader = self._loader(state.epoch, skip=state.batch_in_epoch, keep_rng=resumed_mid_epoch)
            resumed_mid_epoch = False
            for batch in loader:
                batch = send_to_device(batch, acc.device)
                step_start = time.perf_counter()
                loss, terms = self._step(model, optimizer, scheduler, batch, state.step)
                examples = self.task.batch_examples(batch) * acc.num_processes
                state.record_step(examples, time.perf_counter() - step_start)
                progress.step(examples)
                if state.step % recipe["log_every"] == 0 or state.step == length.steps:
                    self._log_step(state, length, scheduler.get_last_lr()[0], loss, terms, progress)
                if state.step % recipe["eval_every"] == 0 or state.step == length.steps:
                    self._evaluate(model, state)
                    progress.restart_clock()
                if state.step % recipe["save_every"] == 0 and state.step < length.steps:
                    self._save_checkpoint(state)
                    progress.restart_clock()
                if state.step >= length.steps:
                    break
            if state.step >= length.steps:
                break
            state.epoch += 1
            state.batch_in_epoch = 0
        progress.close()

    def _step(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        batch: dict[str, Any],
        step: int,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One optimiser step on ``batch`` (and the weight average's update); the loss and its terms."""
        acc = self.accelerator
        with acc.autocast():
            terms = model(batch)
            loss = sum(terms.values())
        if not torch.isfinite(loss):
            values = {k: float(v.detach()) for k, v in terms.items()}
            raise DistillError(
                f"the loss became {float(loss.detach())} at step {step} (terms {values}); lower "
                "optimizer.lr, check the data for empty texts, or raise a loss temperature"
            )
        acc.backward(loss)
        if self.recipe["optimizer"]["grad_clip"]:
            acc.clip_grad_norm_(model.parameters(), self.recipe["optimizer"]["grad_clip"])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update()
        return loss, terms

    def _log_step(
        self,
        state: TrainState,
        length: RunLength,
        lr: float,
        loss: torch.Tensor,
        terms: dict[str, torch.Tensor],
        progress: _Progress,
    ) -> None:
        rate = progress.rate()
        row = {
            "step": state.step,
            "epoch": round(state.epoch + state.batch_in_epoch / length.per_process, 4),
            "lr": lr,
            "loss": float(loss.detach()),
            **{f"loss/{k}": float(v.detach()) for k, v in terms.items()},
            "examples_per_s": round(rate, 2),
        }
        self._log(row)
        progress.show(row, rate)

    def _save_last(self, model: nn.Module) -> None:
        """The last weights (averaged where there is a weight average) where no evaluation saved a student, e.g. when
        every dev score was NaN."""
        self.accelerator.wait_for_everyone()
        if self.is_main and not (self.output / "student").exists():
            with self._averaged():
                self._save_best(model)

    def _loader(self, epoch: int, skip: int, keep_rng: bool = False) -> Iterator[dict[str, Any]]:
        """This process's share of the epoch's batches (every num_processes-th; equal counts, or DDP would hang),
        minus the ``skip`` already trained on before a resume.

        A DataLoader's iterator takes one draw from torch's random generator when it is made. An uninterrupted run
        made this epoch's iterator before the checkpoint's random state was saved, so a run resumed mid-epoch
        (``keep_rng``) makes its iterator without that draw: its dropout masks are then the uninterrupted run's.
        """
        from torch.utils.data import DataLoader

        acc = self.accelerator
        batches = self.task.batches(epoch)
        usable = len(batches) - len(batches) % acc.num_processes
        mine = batches[acc.process_index : usable : acc.num_processes][skip:]
        loader = DataLoader(mine, batch_size=None, shuffle=False, collate_fn=self.task.collate, num_workers=0)
        if not keep_rng:
            return iter(loader)
        rng = torch.random.get_rng_state()
        iterator = iter(loader)
        torch.random.set_rng_state(rng)
        return iterator

    def _cut_log(self, step: int) -> None:
        """Drop the log rows written after the checkpoint a run resumes from: the resumed run writes them again."""
        path = self.output / LOG_FILE
        if not self.is_main or not path.exists():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if _log_step(line) <= step]
        if len(kept) != len(lines):
            write_atomic(path, "".join(line + "\n" for line in kept))


def _log_step(line: str) -> float:
    """A log row's step; a row cut short by the kill that stopped the run counts as written after its checkpoint."""
    try:
        return json.loads(line).get("step", 0)
    except (ValueError, AttributeError):
        return math.inf


def finished(output: Path) -> None:
    """Remove the resume checkpoint once the student and its card are written."""
    checkpoint = Path(output) / CHECKPOINT
    if checkpoint.exists():
        shutil.rmtree(checkpoint)
