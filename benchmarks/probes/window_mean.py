"""Probe (not part of the package): a student's SQuAD dev retrieval with every paragraph embedded as the mean of its
L-token windows (stride S) instead of truncated at L tokens, on the questions of an evaluation folder, split by whether
the gold paragraph fits 256 of the student's tokens. Outside the Haystack pipeline: plain dot products.

    python benchmarks/probes/window_mean.py runs/students/minilm-l6-squad-kl-10k-ema/student 256 64 runs/kl10k-ema-eval
"""

import json
import sys

import numpy as np
import torch

from distill.common import metrics
from distill.data.datasets import load_dataset
from distill.training.tasks.embedder import load_sentence_transformer


def main(student_path: str, length: int, stride: int, evaluation: str) -> None:
    docs = load_dataset("squad-dev").documents
    ids, texts = [d.id for d in docs], [d.content or "" for d in docs]
    with open(f"{evaluation}/questions.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    model = load_sentence_transformer(student_path)
    model.eval()
    tokenizer = model.tokenizer
    model.max_seq_length = 64
    queries = model.encode([r["question"] for r in rows], batch_size=64, normalize_embeddings=True)
    model.max_seq_length = length
    truncated = model.encode(texts, batch_size=32, normalize_embeddings=True)

    windows = tokenizer(
        texts,
        max_length=length,
        truncation=True,
        stride=stride,
        return_overflowing_tokens=True,
        padding=True,
        return_tensors="pt",
    )
    owner = windows.pop("overflow_to_sample_mapping").numpy()
    features = {k: v for k, v in windows.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    window_emb = np.zeros((len(owner), truncated.shape[1]), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(owner), 32):
            batch = {k: v[start : start + 32] for k, v in features.items()}
            window_emb[start : start + 32] = model(batch)["sentence_embedding"].numpy()
    mean = np.zeros_like(truncated)
    np.add.at(mean, owner, window_emb)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)

    counts = [len(x) for x in tokenizer(texts, verbose=False)["input_ids"]]
    long_ids = {ids[i] for i, n in enumerate(counts) if n > 256}
    for name, passages in (("truncated", truncated), ("windows-mean", mean)):
        top = np.argsort(-(queries @ passages.T), axis=1)[:, :10]
        ndcg = [metrics.ndcg_at_k([ids[j] for j in t], r["gold_doc_ids"], 10) for t, r in zip(top, rows)]
        longer = [v for v, r in zip(ndcg, rows) if r["gold_doc_ids"][0] in long_ids]
        fits = [v for v, r in zip(ndcg, rows) if r["gold_doc_ids"][0] not in long_ids]
        print(
            f"{name}: all {np.mean(ndcg):.4f}, fits {np.mean(fits):.4f} ({len(fits)}), "
            f"longer {np.mean(longer):.4f} ({len(longer)})"
        )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
