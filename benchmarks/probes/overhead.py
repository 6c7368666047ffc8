"""Where a query's time goes in a Haystack retrieval pipeline: model, embedder's Python, retriever, the rest.

One student pipeline (``distill swap`` of the teacher's YAML, the vectorised retriever) is loaded and indexed as
``distill eval`` does; then each question is timed, interleaved so that machine load hits every figure alike:

- ``pipeline``: ``Pipeline.run`` end to end (the figure ``distill eval`` reports), with each component's span from the
  evaluation's tracer (``text_embedder``, ``retriever``) and ``rest`` = pipeline - spans (Haystack's own run loop);
- ``embedder.run``: the text embedder component called directly (its Python around the model);
- ``encode``: the model's own ``SentenceTransformer.encode([question])`` (for an ONNX export: its encoder's);
- ``tokenize`` and ``forward``: the two halves of ``encode`` (sentence-transformers models only).

The ratio ``pipeline p50 / encode p50`` is issue 22's overhead target (<= 1.3). A few hundred questions on a slice of
SQuAD dev take seconds with MiniLM-L6:

    python -m benchmarks.probes.overhead [--model minilm-l6] [--questions 200] [--articles 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distill.data.datasets import Dataset, load_dataset
from distill.evaluation.runner import LoadedSystem, System, load_systems, run_query, timing_tracer
from distill.pipelines.loading import is_text_embedder, read_pipeline_dict, swap_files

TARGET = 1.3  # issue 22: student pipeline p50 <= 1.3x the student model's own encode time for one query


def _ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def text_embedder_name(query_yaml: Path) -> str:
    names = [n for n, c in read_pipeline_dict(query_yaml)["components"].items() if is_text_embedder(c)]
    if not names:
        raise SystemExit(f"{query_yaml} has no text embedder to measure")
    return names[0]


def encoders(component: Any) -> dict[str, Callable[[str], Any]]:
    """The model calls under the component: ``encode`` and, for a SentenceTransformer, ``tokenize``/``forward``."""
    backend = getattr(component, "embedding_backend", None)
    if backend is None and getattr(component, "encoder", None) is not None:  # distill.components.onnx_embedders
        encoder = component.encoder
        return {"encode": lambda q: encoder.encode([q])}
    if backend is None:
        raise SystemExit(f"{type(component).__name__} holds no SentenceTransformer or ONNX encoder to time")
    import torch

    model = backend.model

    def forward(q: str) -> Any:
        features = model.preprocess([q])
        with torch.inference_mode():
            return model.forward(features)["sentence_embedding"]

    return {"encode": lambda q: model.encode([q]), "tokenize": lambda q: model.preprocess([q]), "forward": forward}


def measure(loaded: LoadedSystem, embedder: str, questions: list[str], warmup: int = 10) -> dict[str, Any]:
    """p50 (and mean) in ms of every part, over ``questions`` interleaved, after ``warmup`` discarded questions."""
    component = loaded.pipeline.get_component(embedder)
    calls = encoders(component)
    times: dict[str, list[float]] = {}
    with timing_tracer() as tracer:
        for i, q in enumerate(questions[:warmup] + questions):
            row = {"pipeline": _ms(lambda q=q: run_query(loaded, q))}
            spans = tracer.pop()
            row |= spans
            row["rest"] = row["pipeline"] - sum(spans.values())
            row["embedder.run"] = _ms(lambda q=q: component.run(text=q))
            tracer.pop()
            row |= {name: _ms(lambda call=call, q=q: call(q)) for name, call in calls.items()}
            if i >= warmup:
                for key, value in row.items():
                    times.setdefault(key, []).append(value)
    p50 = {key: statistics.median(values) for key, values in times.items()}
    out: dict[str, Any] = {
        "questions": len(questions),
        "p50_ms": {k: round(v, 3) for k, v in p50.items()},
        "mean_ms": {k: round(statistics.fmean(v), 3) for k, v in times.items()},
        "pipeline_over_encode": round(p50["pipeline"] / p50["encode"], 3),
        "target": TARGET,
    }
    out["met"] = out["pipeline_over_encode"] <= TARGET
    return out


def breakdown_lines(result: dict[str, Any], embedder: str = "text_embedder") -> str:
    p50 = result["p50_ms"]
    order = ["pipeline", embedder, "retriever", "rest", "embedder.run", "encode", "tokenize", "forward"]
    keys = [k for k in order if k in p50] + [k for k in p50 if k not in order]
    lines = [f"p50 over {result['questions']} questions (ms):"]
    lines += [f"  {k:<16} {p50[k]:8.3f}" for k in keys]
    verdict = "met" if result["met"] else "missed"
    lines.append(
        f"pipeline p50 / encode p50 = {p50['pipeline']:.2f} / {p50['encode']:.2f} = "
        f"{result['pipeline_over_encode']:.2f} (target <= {result['target']}): {verdict}"
    )
    return "\n".join(lines)


def probe(
    query_yaml: Path,
    data: Dataset,
    *,
    questions: int | None = None,
    warmup: int = 10,
    indexing_yaml: Path | None = None,
) -> dict[str, Any]:
    """Load (and index) ``query_yaml`` as ``distill eval`` does and :func:`measure` it on ``questions`` of ``data``'s
    questions (default all; more than the data set holds go round it again)."""
    spec = f"student={query_yaml}" + (f",{indexing_yaml}" if indexing_yaml else "")
    (loaded,) = load_systems([System.parse(spec)], data.documents, progress=False)
    embedder = text_embedder_name(query_yaml)
    texts = [q.text for q in data.queries]
    count = questions if questions is not None else len(texts)
    result = measure(loaded, embedder, [texts[i % len(texts)] for i in range(count)], warmup=warmup)
    return {"pipeline": str(query_yaml), "embedder": embedder, **result}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="minilm-l6", help="swapped into --pipelines (ignored with --query-yaml)")
    p.add_argument("--query-yaml", type=Path, help="measure this retrieval YAML (indexing.yaml beside it) as it is")
    p.add_argument("--pipelines", type=Path, default=Path("pipelines"), help="the teacher's indexing/retrieval YAML")
    p.add_argument("--data", default="squad-dev")
    p.add_argument("--questions", type=int, default=200)
    p.add_argument("--articles", type=int, default=5, help="keep this many whole articles (the index's size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--out", type=Path, help="write the figures as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = load_dataset(args.data).subset(articles=args.articles, seed=args.seed)
    if args.questions < len(data.queries):
        data = data.subset(questions=args.questions, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="distill-overhead-") as tmp:
        query_yaml = args.query_yaml
        if query_yaml is None:
            teacher = [args.pipelines / "indexing.yaml", args.pipelines / "retrieval.yaml"]
            swap_files(teacher, Path(tmp), model=args.model, fast_retriever=True)
            query_yaml = Path(tmp) / "retrieval.yaml"
        result = probe(query_yaml, data, questions=args.questions, warmup=args.warmup)
    result["model"] = args.model if args.query_yaml is None else None
    print(breakdown_lines(result, result["embedder"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
