"""How much the teacher's listwise distribution tells the student, with and without hard negatives.

For the training batches a recipe would make (same pairs, same length-grouped batches), the teacher's softmax over
each question's candidates (the batch's paragraphs, then also one teacher-mined hard negative per question) at the
loss's temperature: its probability on the positive and its entropy. A distribution that is almost one-hot on the
positive carries little more than the gold label. Teacher embeddings come from the cache.

    python -m benchmarks.probes.teacher_softness recipes/embedder-squad-kl-4k.yaml \
        --out benchmarks/results/teacher-softness.json
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def _stats(probs: np.ndarray) -> tuple[list[float], list[float]]:
    positive = np.diag(probs[:, : probs.shape[0]]).tolist()
    entropy = (-(probs * np.log(probs + 1e-12)).sum(axis=1)).tolist()
    return positive, entropy


def softness(query: np.ndarray, passage: np.ndarray, positive: list[int], batches: list[list[int]], temperature: float):
    from distill.training.tasks.embedder import mine_hard_negatives

    negative = mine_hard_negatives(query, passage, positive)
    out: dict[str, dict[str, list[float]]] = {"in_batch": {}, "with_hard_negatives": {}}
    for key in out:
        out[key] = {"p_positive": [], "entropy": []}
    for batch in batches:
        q = query[batch]
        pos = passage[[positive[i] for i in batch]]
        neg = passage[[negative[i] for i in batch]]
        for key, candidates in (("in_batch", pos), ("with_hard_negatives", np.concatenate([pos, neg]))):
            p, h = _stats(_softmax(q @ candidates.T / temperature))
            out[key]["p_positive"] += p
            out[key]["entropy"] += h
    return {
        key: {
            "p_positive_mean": float(np.mean(v["p_positive"])),
            "p_positive_median": float(np.median(v["p_positive"])),
            "entropy_mean_nats": float(np.mean(v["entropy"])),
        }
        for key, v in out.items()
    }


def run(recipe_path: str, overrides: list[str]) -> dict[str, Any]:
    from distill.training.recipes import load_recipe
    from distill.training.tasks.common import length_grouped_batches
    from distill.training.tasks.embedder import TeacherEmbeddings, training_split

    recipe = load_recipe(recipe_path, overrides)
    pairs, _ = training_split(recipe["data"])
    teacher = TeacherEmbeddings(recipe["teacher"], batch_size=recipe["teacher_batch_size"])
    query = teacher.encode(pairs.queries, recipe["max_length"]["query"], "teacher: training questions")
    passage = teacher.encode(pairs.passages, recipe["max_length"]["passage"], "teacher: training passages")
    lengths = [len(pairs.passages[p]) for p in pairs.positive]
    batches = length_grouped_batches(lengths, pairs.positive, recipe["batch_size"], recipe["seed"] * 1000)
    temperatures = sorted({e["temperature"] for e in recipe["losses"] if "temperature" in e} | {0.05, 0.1})
    return {
        "training_questions": len(pairs.queries),
        "batch_size": recipe["batch_size"],
        "by_temperature": {str(t): softness(query, passage, pairs.positive, batches, t) for t in temperatures},
    }


def main(argv: list[str] | None = None) -> None:
    from benchmarks.common import recipe_bench_main

    recipe_bench_main("benchmarks.probes.teacher_softness", __doc__, run, "by_temperature", argv)


if __name__ == "__main__":
    main()
