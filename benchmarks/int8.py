"""int8 students: fp32 against int8 (``distill export``) of the same embedders, quality and latency in one run.

Each model (default: the off-the-shelf MiniLM-L6; ``--student FOLDER`` adds a distilled one, ``--teacher`` the
teacher's own int8 export) is served twice in the teacher's indexing and retrieval YAML, both with the vectorised
retriever: fp32 through Haystack's SentenceTransformers embedders, int8 through ``distill.components.onnx_embedders``
with its
own index built by the int8 model. One ``distill eval`` then runs the teacher (fp32, the reference for the
speed-ups and the share of its nDCG@10) and every pipeline on the same questions, and the report is copied to
``--out``. Real models: run it on a quiet machine (``make bench-int8``; ``--questions 200 --articles 10`` for a
quick look).

    python -m benchmarks.int8 [--student runs/students/minilm-l6-squad-kl-4k/student] [--teacher] [--questions N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.lineup import Entry, add_eval_args, copy_report, evaluate, system, teacher_system
from distill.pipelines.loading import TEACHER_EMBEDDER

DEFAULT_OUT = Path("benchmarks/results/squad-dev-retrieval-int8.json")


def _model(text: str) -> tuple[str, str]:
    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise argparse.ArgumentTypeError(f"give NAME=MODEL, got {text!r}")
    return name, spec


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=_model, action="append", metavar="NAME=MODEL", help="default: minilm-l6=minilm-l6")
    p.add_argument("--student", type=Path, help="a distilled student folder, served as 'distilled' fp32 and int8")
    p.add_argument("--teacher", action="store_true", help="also the teacher's int8 export ('teacher-int8')")
    add_eval_args(p, "runs/int8")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the report is copied")
    return p.parse_args(argv)


def build_systems(args: argparse.Namespace) -> list[str]:
    """Export and swap every model; the ``NAME=retrieval.yaml`` list for ``distill eval``, the teacher first."""
    models = list(args.model or [("minilm-l6", "minilm-l6")])
    if args.student is not None:
        models.append(("distilled", str(args.student)))
    entries = []
    if args.teacher:
        entries.append(Entry("teacher-int8", TEACHER_EMBEDDER, "int8"))
    for name, spec in models:
        entries += [Entry(name, spec, "fp32"), Entry(f"{name}-int8", spec, "int8")]
    return [teacher_system(args.pipelines, args.runs)] + [system(e, args.pipelines, args.runs) for e in entries]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    systems = build_systems(args)
    eval_dir = args.runs / "eval"
    sample = {"questions": args.questions, "seed": args.seed, "warmup": args.warmup, "articles": args.articles}
    code = evaluate(systems, data=args.data, eval_dir=eval_dir, **sample)
    if code == 0:
        copy_report(eval_dir, args.out)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
