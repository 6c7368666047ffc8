"""Off-the-shelf MiniLM-L6 on NFCorpus dev at several passage lengths: does reading more of each abstract help?

Raw sentence-transformers, exact search over the corpus (title, newline, abstract, as examples/nfcorpus embeds it),
nDCG@10 with exponential gains (2^rel - 1) against the dev qrels: a probe outside the project's evaluation, so its
figures compare with each other, not with `distill eval`'s (linear gains, as BEIR computes them).

    python -m benchmarks.probes.nfcorpus_max_length 256 384     # prints: length nDCG@10
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np


def main(lengths: list[int], root: Path = Path("../shared/data/nfcorpus")) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from distill.common.models import resolve_model

    torch.set_num_threads(1)
    docs = [json.loads(line) for line in (root / "corpus.jsonl").open(encoding="utf-8")]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (root / "queries.jsonl").open(encoding="utf-8"))}
    qrels: dict[str, dict[str, int]] = {}
    for line in (root / "qrels" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, grade = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(grade)
    qids = [q for q in qrels if q in queries]
    model = SentenceTransformer(str(resolve_model("minilm-l6")), device="cpu")
    ids = [d["_id"] for d in docs]
    texts = [(d.get("title", "") + "\n" + d["text"]).strip() for d in docs]
    query_emb = model.encode([queries[q] for q in qids], normalize_embeddings=True)
    for length in lengths:
        model.max_seq_length = length
        passages = model.encode(texts, batch_size=32, normalize_embeddings=True)
        scores, found = query_emb @ passages.T, []
        for i, qid in enumerate(qids):
            top, rel = np.argsort(-scores[i])[:10], qrels[qid]
            dcg = sum((2 ** rel.get(ids[j], 0) - 1) / math.log2(r + 2) for r, j in enumerate(top))
            ideal = sorted(rel.values(), reverse=True)[:10]
            idcg = sum((2**g - 1) / math.log2(r + 2) for r, g in enumerate(ideal))
            found.append(dcg / idcg if idcg else 0.0)
        print(length, round(float(np.mean(found)), 4), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [256, 384])
