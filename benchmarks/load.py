"""Load on the pgvector query pipeline: N concurrent clients, a bounded number of questions, latency and errors.

One throwaway PostgreSQL server (:class:`benchmarks.local_postgres.LocalPostgres`) holds the corpus, indexed once by
``distill eval``'s :func:`distill.evaluation.runner.load_systems` from the library's own pgvector YAML
(:mod:`distill.pipelines.store_pipelines`). The questions are first asked one at a time (the reference answers), then by
``clients`` threads at once, each with its own pipeline loaded from the same YAML (its own database connection, as a
service's workers would have: a ``PgvectorDocumentStore`` keeps one connection and one cursor, so threads sharing one
store would share a cursor) pulling questions from one queue. Reported: p50 / p95 / max latency per question (whole
pipeline, text embedder included), throughput, errors (count and the first messages) and the questions whose
concurrent top-k ids differ from the sequential ones.

    python -m benchmarks.load --embedder minilm-l6 --clients 8 --questions 800 --out benchmarks/results/load.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from haystack import Document

from benchmarks.common import command_line, finish_report

MAX_ERROR_SAMPLES = 5


def percentile(ms: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``ms`` (the convention of :mod:`benchmarks.stores`)."""
    return round(ms[int(q * (len(ms) - 1))], 2) if ms else 0.0


def load_test(
    documents: list[Document], questions: list[str], retrieval: Path, clients: int = 8, warmup: int = 2
) -> dict[str, Any]:
    """Index ``documents`` through ``retrieval``'s indexing.yaml, ask ``questions`` in order, then concurrently."""
    from distill.evaluation.runner import System, load_systems, run_query
    from distill.pipelines.checks import warm_up
    from distill.pipelines.loading import load_pipeline

    [reference] = load_systems([System("pgvector", retrieval, retrieval.with_name("indexing.yaml"))], documents)
    for question in questions[:warmup]:
        run_query(reference, question)
    sequential_ids, sequential_ms = [], []
    for question in questions:
        start = time.perf_counter()
        docs, _ = run_query(reference, question)
        sequential_ms.append(1000 * (time.perf_counter() - start))
        sequential_ids.append([d.id for d in docs])

    workers = []
    for _ in range(clients):  # each client its own pipeline and connection, loaded and warmed before the clock
        pipeline = load_pipeline(retrieval)
        warm_up(pipeline, str(retrieval))
        worker = dataclasses.replace(reference, pipeline=pipeline)
        for question in questions[:warmup]:
            run_query(worker, question)
        workers.append(worker)
    todo: queue.Queue[int] = queue.Queue()
    for i in range(len(questions)):
        todo.put(i)
    answers: dict[int, list[str]] = {}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_line = threading.Barrier(clients)

    def client(worker: Any) -> None:
        start_line.wait()
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            start = time.perf_counter()
            try:
                docs, _ = run_query(worker, questions[i])
            except Exception as e:  # noqa: BLE001 - a load test counts every failure, whatever its kind
                with lock:
                    errors.append(f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")
                continue
            elapsed = 1000 * (time.perf_counter() - start)
            with lock:
                latencies.append(elapsed)
                answers[i] = [d.id for d in docs]

    threads = [threading.Thread(target=client, args=(w,)) for w in workers]
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall
    differing = [i for i, ids in answers.items() if ids != sequential_ids[i]]
    ms, seq = sorted(latencies), sorted(sequential_ms)
    return {
        "clients": clients,
        "questions": len(questions),
        "answered": len(answers),
        "errors": len(errors),
        "error_samples": errors[:MAX_ERROR_SAMPLES],
        "answers_differing_from_sequential": len(differing),
        "p50_ms": round(statistics.median(ms), 2) if ms else 0.0,
        "p95_ms": percentile(ms, 0.95),
        "max_ms": round(ms[-1], 2) if ms else 0.0,
        "wall_seconds": round(wall, 3),
        "questions_per_second": round(len(answers) / wall, 2) if wall > 0 else 0.0,
        "sequential": {
            "p50_ms": round(statistics.median(seq), 2),
            "p95_ms": percentile(seq, 0.95),
            "questions_per_second": round(len(seq) / (sum(seq) / 1000), 2),
        },
        "index_seconds": round(reference.index_seconds, 3),
    }


def run(
    embedder: str, clients: int, questions: int, top_k: int, seed: int, hnsw: bool, documents: int | None = None
) -> dict[str, Any]:
    import random

    from benchmarks.local_postgres import LocalPostgres
    from distill.common.provenance import library_versions, machine_info
    from distill.data.datasets import load_dataset
    from distill.pipelines.store_pipelines import write_store_pipelines

    data = load_dataset("squad-dev")
    corpus = data.documents[:documents] if documents else data.documents  # the load is on queries, not on the corpus
    rng = random.Random(seed)
    asked = [q.text for q in rng.sample(data.queries, min(questions, len(data.queries)))]
    settings = {"search_strategy": "hnsw"} if hnsw else {}
    with LocalPostgres() as server, tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        os.environ["PG_CONN_STR"] = server.connection_string
        paths = write_store_pipelines("pgvector", tmp, embedder=embedder, name="distill_load", top_k=top_k, **settings)
        result = load_test(corpus, asked, paths[1], clients=clients)
    return {
        "embedder": embedder,
        "store": "pgvector-hnsw" if hnsw else "pgvector-exact",
        "documents": len(corpus),
        "top_k": top_k,
        "load": result,
        "machine": machine_info(),
        "versions": library_versions(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="minilm-l6")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--questions", type=int, default=800)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hnsw", action="store_true", help="an HNSW index instead of exact search")
    parser.add_argument("--documents", type=int, help="index only the first N paragraphs (default: all 2,067)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still stops its PostgreSQL server
    report = run(args.embedder, args.clients, args.questions, args.top_k, args.seed, args.hnsw, args.documents)
    report["command"] = command_line("benchmarks.load", argv)
    return finish_report(report, report["load"], args.out)


if __name__ == "__main__":
    main()
