"""Training speed of our trainer against sentence-transformers' ``SentenceTransformerTrainer`` + ``MSELoss``.

Both train the same student on the same SQuAD train texts (questions and their paragraphs), with the same number of
texts per optimiser step and the same maximum length, in one process, one after the other, each for ``steps`` steps
after ``warmup`` discarded ones. The unit is texts per second: our examples are (question, passage) pairs, two texts
each, so our batch holds half as many examples. Teacher embeddings come from the same cache for both.

    python -m benchmarks.trainer_speed --steps 20 --texts-per-step 32 --out benchmarks/results/trainer-speed.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from distill.common.provenance import library_versions, machine_info


def _ours(recipe: dict[str, Any], steps: int, warmup: int) -> dict[str, float]:
    """Our real Trainer (Accelerate loop, clipping, scheduler, logging), timed from its per-step log rows."""
    from distill.training.tasks.embedder import EmbedderTask
    from distill.training.trainer import LOG_FILE, Trainer

    out = Path(tempfile.mkdtemp(prefix="ours-"))
    try:
        run = dict(recipe, output=str(out), max_steps=steps + warmup, log_every=1, eval_every=10_000, save_every=10_000)
        task = EmbedderTask(run)
        task.warm_up()
        Trainer(task, run, out).fit()
        rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    timed = [r for r in rows if "examples_per_s" in r and r["step"] > warmup]
    pairs = recipe["batch_size"] * len(timed)
    seconds = sum(recipe["batch_size"] / r["examples_per_s"] for r in timed)
    return {"texts": 2 * pairs, "seconds": round(seconds, 2), "texts_per_s": round(2 * pairs / seconds, 2)}


def _peer(recipe: dict[str, Any], steps: int, warmup: int, texts_per_step: int) -> dict[str, float]:
    from datasets import Dataset as HFDataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses
    from transformers import TrainerCallback

    from distill.training.tasks.embedder import EmbedderTask, load_sentence_transformer

    task = EmbedderTask(recipe)  # the same pairs and cached teacher embeddings
    task.warm_up()
    pairs = task.pairs
    texts, labels = [], []
    for i, p in enumerate(pairs.positive):
        texts += [pairs.queries[i], pairs.passages[p]]
        labels += [task.t_query[i].tolist(), task.t_passage[p].tolist()]
    n = texts_per_step * (steps + warmup)
    student = load_sentence_transformer(recipe["student"], max_length=recipe["max_length"]["passage"])
    if student.get_embedding_dimension() != task.teacher.dim:
        # The peer's documented variant for a narrower student: a trainable Dense head to the teacher's width.
        from sentence_transformers.sentence_transformer.modules import Dense

        student.append(Dense(student.get_embedding_dimension(), task.teacher.dim))
    data = HFDataset.from_dict({"text": texts[:n], "label": labels[:n]})
    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
            marks.append(time.perf_counter())

    out = tempfile.mkdtemp(prefix="peer-")
    try:
        args = SentenceTransformerTrainingArguments(
            output_dir=out,
            per_device_train_batch_size=texts_per_step,
            num_train_epochs=1,
            learning_rate=recipe["optimizer"]["lr"],
            save_strategy="no",
            report_to=[],
            logging_steps=10_000,
            dataloader_drop_last=True,
            seed=recipe["seed"],
            use_cpu=not torch.cuda.is_available(),
        )
        trainer = SentenceTransformerTrainer(
            model=student, args=args, train_dataset=data, loss=losses.MSELoss(student), callbacks=[Clock()]
        )
        trainer.train()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    timed = marks[warmup - 1 :] if warmup else [marks[0]] + marks
    seconds = timed[-1] - timed[0]
    counted = texts_per_step * (len(timed) - 1)
    return {"texts": counted, "seconds": round(seconds, 2), "texts_per_s": round(counted / seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    from distill.training.recipes import load_recipe

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/embedder-squad.yaml")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--texts-per-step", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/trainer-speed.json"))
    args = parser.parse_args(argv)
    if args.texts_per_step % 2:
        parser.error("--texts-per-step must be even (our examples are question-passage pairs)")
    # MSE on every text only: the peer's documented recipe; our run uses the default recipe's losses.
    recipe = load_recipe(args.recipe, [f"batch_size={args.texts_per_step // 2}"])
    torch.manual_seed(recipe["seed"])
    ours = _ours(recipe, args.steps, args.warmup)
    peer = _peer(recipe, args.steps, args.warmup, args.texts_per_step)
    result = {
        "command": "python -m benchmarks.trainer_speed " + " ".join(argv or __import__("sys").argv[1:]),
        "texts_per_step": args.texts_per_step,
        "max_length": recipe["max_length"],
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "ours": ours | {"losses": [e["name"] for e in recipe["losses"]]},
        "sentence_transformers_trainer": peer | {"losses": ["MSELoss"]},
        "ratio": round(ours["texts_per_s"] / peer["texts_per_s"], 3),
        "machine": machine_info(),
        "versions": library_versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("ours", "sentence_transformers_trainer", "ratio")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
