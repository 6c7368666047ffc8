"""Same answers from other stores: the in-memory pipeline against pgvector (exact and HNSW) and Qdrant local mode.

All four pipelines are the library's own YAML (:mod:`distill.pipelines.store_pipelines`) around one embedder, loaded and
indexed by ``distill eval``'s :func:`distill.evaluation.runner.load_systems` (so the document vectors are the same
cached
rows in every store), on one throwaway PostgreSQL server (:class:`benchmarks.local_postgres.LocalPostgres`) and a
temporary Qdrant folder. Every question runs through every pipeline, interleaved. Reported per store: the share of
questions whose top-k ids equal the in-memory ones (ties aside: positions whose scores differ by less than ``tol``
may swap), the recall of the exact (in-memory) top-k, index build time and query p50 / p95 (whole pipeline).

    python -m benchmarks.stores --embedder minilm-l6 --out benchmarks/results/squad-dev-stores.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from haystack import Document

from benchmarks.common import command_line, finish_report

TIE_TOLERANCE = 1e-4
STORES = {
    "in-memory": None,
    "pgvector-exact": ("pgvector", {}),
    "pgvector-hnsw": ("pgvector", {"search_strategy": "hnsw"}),
    "qdrant": ("qdrant", {}),
}


def same_ranking(reference: list[Document], other: list[Document], tol: float = TIE_TOLERANCE) -> bool:
    """Whether ``other`` lists the ids of ``reference`` in the same order, ties aside: two ids may trade places only
    where their scores are within ``tol``, and every id scored clearly above the reference's last is in both."""
    if [d.id for d in reference] == [d.id for d in other]:
        return True
    if len(reference) != len(other):
        return False
    if any(a.id != b.id and abs(a.score - b.score) > tol for a, b in zip(reference, other)):
        return False
    cut = reference[-1].score
    return {d.id for d in reference if d.score > cut + tol} <= {d.id for d in other}


def recall_of(reference: list[Document], other: list[Document]) -> float:
    ids = {d.id for d in reference}
    return len(ids & {d.id for d in other}) / len(ids) if ids else 1.0


def write_pipelines(folder: Path, embedder: str, top_k: int, qdrant_path: Path) -> dict[str, Path]:
    """One folder of indexing + retrieval YAML per store; returns each retrieval YAML."""
    from distill.pipelines.loading import build_default_pipelines
    from distill.pipelines.store_pipelines import build_store_pipelines

    out = {}
    for name, spec in STORES.items():
        target = folder / name
        target.mkdir(parents=True)
        if spec is None:
            texts = build_default_pipelines(embedder=embedder, index="bench-in-memory", top_k=top_k)
        else:
            kind, settings = spec
            settings = {**settings, "path": str(qdrant_path)} if kind == "qdrant" else settings
            table = f"distill_bench_{name.replace('-', '_')}"
            texts = build_store_pipelines(kind, embedder=embedder, name=table, top_k=top_k, **settings)
        for pipeline in ("indexing", "retrieval"):
            (target / f"{pipeline}.yaml").write_text(texts[pipeline], encoding="utf-8")
        out[name] = target / "retrieval.yaml"
    return out


def compare(
    documents: list[Document], questions: list[str], retrieval: dict[str, Path], tol: float = TIE_TOLERANCE
) -> dict[str, Any]:
    """Index every store, ask every question of every pipeline, and compare each store with the in-memory one."""
    from distill.evaluation.runner import System, load_systems, run_query

    systems = [System(name, path, path.with_name("indexing.yaml")) for name, path in retrieval.items()]
    loaded = load_systems(systems, documents, progress=False)
    results: dict[str, list[list[Document]]] = {s.name: [] for s in systems}
    seconds: dict[str, list[float]] = {s.name: [] for s in systems}
    for item in loaded:  # warm-up: first queries pay for connections and caches
        for question in questions[:3]:
            run_query(item, question)
    for question in questions:
        for item in loaded:
            start = time.perf_counter()
            docs, _ = run_query(item, question)
            seconds[item.system.name].append(time.perf_counter() - start)
            results[item.system.name].append(docs)
    reference = results["in-memory"]
    report: dict[str, Any] = {}
    for item in loaded:
        name = item.system.name
        same = [same_ranking(r, o, tol) for r, o in zip(reference, results[name])]
        recalls = [recall_of(r, o) for r, o in zip(reference, results[name])]
        ms = sorted(1000 * s for s in seconds[name])
        report[name] = {
            "same_top_k": sum(same) / len(same),
            "questions_differing": len(same) - sum(same),
            "recall_of_exact_top_k": sum(recalls) / len(recalls),
            "index_seconds": round(item.index_seconds, 3),
            "query_p50_ms": round(statistics.median(ms), 2),
            "query_p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
        }
    return report


def run(embedder: str, questions: int, top_k: int, seed: int) -> dict[str, Any]:
    import random

    from benchmarks.local_postgres import LocalPostgres
    from distill.common.provenance import library_versions, machine_info
    from distill.data.datasets import load_dataset

    data = load_dataset("squad-dev")
    asked = [q.text for q in random.Random(seed).sample(data.queries, min(questions, len(data.queries)))]
    with LocalPostgres() as server, tempfile.TemporaryDirectory(prefix="bench-stores-") as tmp:
        os.environ["PG_CONN_STR"] = server.connection_string
        retrieval = write_pipelines(Path(tmp), embedder, top_k, Path(tmp) / "qdrant")
        stores = compare(data.documents, asked, retrieval)
    return {
        "embedder": embedder,
        "documents": len(data.documents),
        "questions": len(asked),
        "top_k": top_k,
        "tie_tolerance": TIE_TOLERANCE,
        "stores": stores,
        "machine": machine_info(),
        "versions": library_versions(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="minilm-l6")
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = run(args.embedder, args.questions, args.top_k, args.seed)
    report["command"] = command_line("benchmarks.stores", argv)
    return finish_report(report, report["stores"], args.out)


if __name__ == "__main__":
    main()
