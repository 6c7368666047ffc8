"""The benchmark probes on tiny models and hand-made embeddings."""

import json
import math

import pytest
from conftest import write_recipe


def test_query_head_benchmark_runs_on_tiny_models(home, tiny_embedder, tiny_embedder_wide, tiny_squad):
    from benchmarks.probes import query_head as bench_query_head

    path = write_recipe(
        home,
        tiny_embedder_wide,
        tiny_embedder,
        tiny_squad,
        query_only=True,
        losses=[{"name": "cosine", "weight": 1.0, "keys": "query"}],
    )
    out = home / "head.json"
    bench_query_head.main([str(path), "--out", str(out)])
    report = json.loads(out.read_text())
    heads = {row["head"]: row for row in report["heads"]}
    assert set(heads) == {
        "least squares",
        "least squares, inputs + 1e-7 noise",
        "ridge 0.001",
        "ridge 0.01",
        "ridge 0.1",
        "ridge 1.0",
        "ridge 0.1, inputs + 1e-7 noise",
    }
    norms = [heads[f"ridge {r}"]["spectral_norm"] for r in (0.001, 0.01, 0.1, 1.0)]
    assert norms == sorted(norms, reverse=True)  # more ridge, a smaller head
    for row in heads.values():
        assert -1 <= row["dev_cosine"] <= 1 and row["cosine_distance_after_one_step"] >= 0
    assert report["command"].startswith("python -m benchmarks.probes.query_head")


def test_teacher_softness_on_hand_made_embeddings():
    import numpy as np

    from benchmarks.probes.teacher_softness import softness

    passage = np.eye(3, dtype=np.float32)
    query = passage[:2].copy()  # question i is its passage i; the hard negatives are the other question's passage
    out = softness(query, passage, [0, 1], [[0, 1]], temperature=1.0)
    e = math.e
    assert out["in_batch"]["p_positive_median"] == pytest.approx(e / (e + 1))
    assert out["with_hard_negatives"]["p_positive_mean"] == pytest.approx(e / (2 * e + 2))
    h = -(e / (e + 1)) * math.log(e / (e + 1)) - (1 / (e + 1)) * math.log(1 / (e + 1))
    assert out["in_batch"]["entropy_mean_nats"] == pytest.approx(h, rel=1e-5)
