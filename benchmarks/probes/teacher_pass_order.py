"""The teacher's pass over a corpus, in corpus order against longest first: what padding costs.

The teacher cache computes missing rows in chunks of 64 documents, in the order it is given them; the embedder pads
each of its batches to the batch's longest document. In corpus order a chunk of short FiQA answers pads to its one
long answer; longest first, each chunk pads to about its own length (distill.teacher.embedders.document_embeddings).
This probe times the examples/fiqa indexing pipeline's own document embedder (all-mpnet-base-v2, as Haystack runs
it) over the first N non-empty documents of the corpus both ways, one after the other in one process, and says
how far the rows differ.

    python -m benchmarks.probes.teacher_pass_order 256     # prints: order, seconds, documents/s
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def main(n: int, root: Path = Path("../shared/data/fiqa")) -> None:
    from haystack import Document

    from distill.pipelines.loading import read_pipeline_dict
    from distill.teacher.embedders import build_component

    data = read_pipeline_dict(Path("examples/fiqa/indexing.yaml"))
    embedder = build_component(data, "embedder")
    embedder.progress_bar = False
    with (root / "corpus.jsonl").open(encoding="utf-8") as lines:
        docs = [Document(id=d["_id"], content=d["text"]) for d in map(json.loads, lines) if d["text"].strip()][:n]
    embedder.run(documents=docs[:8])  # warm-up, not timed
    orders = {
        "corpus order": list(range(len(docs))),
        "longest first": sorted(range(len(docs)), key=lambda i: -len(docs[i].content)),
    }
    rows, seconds = {}, {}
    for name, order in orders.items():
        start = time.perf_counter()
        out = np.empty((len(docs), 768), dtype=np.float32)
        for begin in range(0, len(order), 64):
            chunk = order[begin : begin + 64]
            run = embedder.run(documents=[Document(content=docs[i].content) for i in chunk])["documents"]
            out[chunk] = [d.embedding for d in run]
        seconds[name] = time.perf_counter() - start
        rows[name] = out
    for name, s in seconds.items():
        print(f"{name}: {s:.1f} s, {len(docs) / s:.2f} documents/s")
    same = np.abs(rows["corpus order"] - rows["longest first"]).max()
    print(f"speed-up {seconds['corpus order'] / seconds['longest first']:.2f}x; rows differ by at most {same:.1e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
