"""Run by tests/test_cache_sharded.py in each launched process (and once alone): the teacher passes over a small
corpus (sentence-transformers embeddings, a pipeline's document embeddings, reader logits), saved to OUT/<rank>.npz.

Usage: python tests/sharded_teacher_pass.py EMBEDDER READER PIPELINES OUT
"""

import os
import sys
from pathlib import Path

import numpy as np

import distill  # noqa: F401  (telemetry off, hub offline)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import LONG, build_tokenizer  # noqa: E402

WORDS = "the nile river flows north mozart was born in salzburg piano invented italy moon orbits earth mars red".split()


def texts(n: int) -> list[str]:
    """``n`` texts of varied lengths, with repeats (a repeated key is computed once and copied)."""
    out = [" ".join(WORDS[(i + 3 * j) % len(WORDS)] for j in range(3 + i % 37)) for i in range(n)]
    return out + out[:9]


def main(embedder: str, reader: str, pipelines: str, out: str) -> None:
    from haystack import Document

    from distill.pipelines.loading import read_pipeline_dict
    from distill.teacher.embedders import document_embeddings
    from distill.training.tasks.embedder import TeacherEmbeddings
    from distill.training.tasks.reader import TeacherReader
    from distill.training.tasks.windows import ReaderExample, make_windows

    corpus = texts(150)
    embeddings = TeacherEmbeddings(embedder).encode(corpus, 32, "teacher: corpus")
    data = read_pipeline_dict(Path(pipelines) / "indexing.yaml")
    name = next(n for n, c in data["components"].items() if c["type"].endswith("DocumentEmbedder"))
    docs = [Document(content=t) for t in corpus]
    documents = document_embeddings(data, name, docs, progress=False)
    examples = [
        ReaderExample(f"q{i}", f"{WORDS[i % 18]} {WORDS[i // 18]}?", LONG[: 60 + i % 7 * 30], ("Nile",), 4, "Nile")
        for i in range(150)
    ]
    windows = make_windows(build_tokenizer(), examples, max_length=48, stride=16, max_query_length=8)
    logits = TeacherReader(reader, max_length=48).logits(windows, progress=False)
    rank = os.environ.get("RANK", "alone")
    np.savez(Path(out) / f"{rank}.npz", embeddings=embeddings, documents=documents, logits=logits)


if __name__ == "__main__":
    main(*sys.argv[1:5])
