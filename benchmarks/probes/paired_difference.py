"""Probe (not part of the package): the paired difference in mean F1 (or another per-question score) between two
pipelines of one evaluation folder, with a 95% percentile bootstrap over the questions (2,000 resamples, seed 0).

    python benchmarks/probes/paired_difference.py runs/reader-mpnet-eval-gold distilled hard-label-3k [f1]
"""

import json
import sys

import numpy as np


def main(evaluation: str, first: str, second: str, score: str = "f1") -> None:
    with open(f"{evaluation}/questions.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    a = np.array([r["runs"][first][score] for r in rows], dtype=np.float64)
    b = np.array([r["runs"][second][score] for r in rows], dtype=np.float64)
    diff = a - b
    resampled = diff[np.random.default_rng(0).integers(0, len(diff), (2000, len(diff)))].mean(axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    scale = 100.0 if max(a.max(), b.max()) <= 1 else 1.0  # F1 and EM are stored as fractions
    print(
        f"{first} - {second}: {score} {scale * diff.mean():+.2f} (95% CI {scale * low:+.2f} to {scale * high:+.2f}); "
        f"{first} better on {(diff > 0).sum()}, worse on {(diff < 0).sum()} of {len(diff)} questions"
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
