"""What one passage costs in each store, measured: bytes per document in Haystack's in-memory store (Python objects),
the vectorised retriever's float32 matrix, and a pgvector table and its HNSW index (with the index build time).

The documents are SQuAD dev paragraphs (cycled, each made unique) with random unit vectors of the teacher's width:
sizes do not depend on the vectors' values, and no model runs. ``docs/scale.md`` scales these figures to 100M passages.

    python -m benchmarks.index_size --documents 10000 --out benchmarks/results/index-size.json
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import command_line, finish_report


def _documents(n: int, width: int, seed: int = 0) -> list[Any]:
    from haystack import Document

    from distill.data.datasets import load_dataset

    paragraphs = [d.content for d in load_dataset("squad-dev").documents]
    rows = np.random.default_rng(seed).standard_normal((n, width)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return [Document(content=f"{paragraphs[i % len(paragraphs)]} [{i}]", embedding=rows[i].tolist()) for i in range(n)]


def in_memory_bytes(n: int, width: int) -> dict[str, float]:
    """Bytes per document held by an ``InMemoryDocumentStore`` (documents built inside the measurement)."""
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    gc.collect()
    tracemalloc.start()
    store = InMemoryDocumentStore()
    store.write_documents(_documents(n, width))
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    content = sum(len(d.content or "") for d in store.storage.values()) / n
    del store
    return {"bytes_per_document": round(current / n, 1), "mean_content_chars": round(content, 1)}


def pgvector_bytes(n: int, width: int) -> dict[str, float]:
    from benchmarks.local_postgres import LocalPostgres
    from distill.pipelines.store_pipelines import make_store

    docs = _documents(n, width)
    with LocalPostgres() as server:
        os.environ["PG_CONN_STR"] = server.connection_string
        store, _ = make_store("pgvector", "distill_size", width)
        start = time.perf_counter()
        for i in range(0, n, 1000):
            store.write_documents(docs[i : i + 1000])
        write_seconds = time.perf_counter() - start
        table = server.execute("SELECT pg_total_relation_size('distill_size')")[0][0]
        keyword = server.execute("SELECT pg_relation_size('distill_size_keyword')")[0][0]
        start = time.perf_counter()
        server.execute(
            "CREATE INDEX distill_size_hnsw ON distill_size USING hnsw (embedding vector_cosine_ops) "
            "WITH (m = 16, ef_construction = 64)"
        )
        build_seconds = time.perf_counter() - start
        hnsw = server.execute("SELECT pg_relation_size('distill_size_hnsw')")[0][0]
        store.close()
    return {
        "table_bytes_per_document": round((table - keyword) / n, 1),
        "keyword_index_bytes_per_document": round(keyword / n, 1),
        "hnsw_bytes_per_document": round(hnsw / n, 1),
        "hnsw_build_seconds": round(build_seconds, 2),
        "write_seconds": round(write_seconds, 2),
        "documents_per_second_written": round(n / write_seconds, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10000)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from distill.common.provenance import library_versions, machine_info

    report = {
        "documents": args.documents,
        "width": args.width,
        "float32_matrix_bytes_per_document": 4 * args.width,
        "in_memory": in_memory_bytes(args.documents, args.width),
        "pgvector": pgvector_bytes(args.documents, args.width),
        "machine": machine_info(),
        "versions": library_versions(),
        "command": command_line("benchmarks.index_size", argv),
    }
    return finish_report(report, {k: report[k] for k in ("in_memory", "pgvector")}, args.out)


if __name__ == "__main__":
    main()
