"""The ``distill`` command line. User errors print one line and exit with status 2.

Why one module over 400 lines: each subcommand is its arguments and a short handler that calls one step of the
library; kept together they read as the command's whole surface, and none of them computes anything itself.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import distill  # noqa: F401  (sets telemetry/offline defaults before anything heavy is imported)
from distill.errors import DistillError

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None]) -> Callable:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (help_text, configure, fn)
        return fn

    return register


def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", help="offline sources to prepare (default: all)")


@command("models", "list the offline model sources and prepare them (assemble, verify checksums)", _models_args)
def cmd_models(args: argparse.Namespace) -> int:
    from distill.common.models import OFFLINE_SOURCES, model_footprint, resolve_model

    names = args.names or list(OFFLINE_SOURCES)
    for name in names:
        if name not in OFFLINE_SOURCES:
            raise DistillError(f"unknown offline source {name!r}; known: {', '.join(OFFLINE_SOURCES)}")
        path = Path(resolve_model(name))
        info = model_footprint(path)
        print(f"{name:12s} {info['parameters'] / 1e6:7.1f}M params  {info['size_bytes'] / 1e6:7.1f} MB  {path}")
        print(f"{'':12s} {OFFLINE_SOURCES[name].description}")
    return 0


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="squad-dev, squad-train, a SQuAD .json, a BEIR folder[:split] or a .jsonl file")
    p.add_argument("--articles", type=int, help="keep this many whole articles (seeded)")
    p.add_argument("--questions", type=int, help="sample this many questions (seeded)")
    p.add_argument("--seed", type=int, default=0)


@command("data", "load a data set and print its size and fingerprint", _data_args)
def cmd_data(args: argparse.Namespace) -> int:
    import json

    data = _load_data(args)
    print(json.dumps(data.summary(), indent=2))
    return 0


def _load_data(args: argparse.Namespace):
    from distill.data.datasets import load_dataset, load_queries, with_queries

    data = load_dataset(args.data)
    queries_file = getattr(args, "queries", None)
    if queries_file is None:
        if args.articles is not None or args.questions is not None:
            data = data.subset(articles=args.articles, questions=args.questions, seed=args.seed)
        return data
    if args.articles is not None:
        data = data.subset(articles=args.articles, seed=args.seed)
    queries = load_queries(queries_file)
    print(queries.summary(), file=sys.stderr)
    data = with_queries(data, queries)
    if args.questions is not None:
        data = data.subset(questions=args.questions, seed=args.seed)
    return data


def _pipelines_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("pipelines"), help="folder for the YAML files")


@command("pipelines", "write the teacher's default indexing, retrieval and extractive-QA YAML", _pipelines_args)
def cmd_pipelines(args: argparse.Namespace) -> int:
    from distill.pipelines.loading import write_default_pipelines

    for path in write_default_pipelines(args.out):
        print(path)
    return 0


def _swap_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pipelines", nargs="+", type=Path, help="teacher pipeline YAML files (or a folder of them)")
    p.add_argument(
        "--model",
        help="the student: a model folder (a `distill export` ONNX folder too), a Hugging Face id or offline source "
        "(omit to copy the teacher's)",
    )
    p.add_argument("--out", required=True, type=Path, help="folder for the student's YAML files")
    p.add_argument("--component", action="append", help="component to swap (repeatable; default: all of its kind)")
    p.add_argument("--index", help="the student's document-store index (default: derived from the model name)")
    p.add_argument(
        "--keep-index", action="store_true", help="keep the teacher's index (a query-only student in its space)"
    )
    p.add_argument(
        "--fast-retriever",
        action="store_true",
        help="use distill's vectorised in-memory retriever (same results as Haystack's, without its per-query "
        "rebuild of the embedding matrix); load such YAML with allowed_modules=['distill.*']",
    )
    p.add_argument(
        "--reader-scores",
        choices=(
            "margin",
            "raw",
        ),  # distill.pipelines.loading.READER_TYPES (not imported here: it loads Haystack; tested)
        default="margin",
        help="how a swapped reader ranks answers across passages: margin (distill's NoAnswerMarginExtractiveReader: "
        "each span over its window's no-answer logits, what training on negatives teaches) or raw (the stock "
        "TransformersExtractiveReader's raw logit sums); default %(default)s",
    )


@command("swap", "write a student's pipelines: the teacher's YAML with the student's model and index", _swap_args)
def cmd_swap(args: argparse.Namespace) -> int:
    from distill.pipelines.loading import swap_files

    paths = _pipeline_paths(args.pipelines)
    if args.model is None and not args.fast_retriever:
        raise DistillError("give --model (the student) and/or --fast-retriever")
    written = swap_files(
        paths,
        args.out,
        model=args.model,
        components=args.component,
        index=args.index,
        keep_index=args.keep_index,
        fast_retriever=args.fast_retriever,
        reader_scores=args.reader_scores,
    )
    for path in written:
        print(path)
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a sentence-transformers embedder: a student folder, the teacher, an offline source")
    p.add_argument("--out", required=True, type=Path, help="folder for the ONNX model (an earlier export is replaced)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--int8", dest="int8", action="store_true", default=True, help="int8 weights (default)")
    precision.add_argument("--fp32", dest="int8", action="store_false", help="float32 weights (no quantisation)")
    p.add_argument(
        "--swap",
        nargs="+",
        type=Path,
        metavar="PIPELINE",
        help="also write these indexing/query YAMLs (or a folder of them) to OUT/pipelines with both embedders "
        "served by the export (distill.components.onnx_embedders) and their own index",
    )
    p.add_argument("--fast-retriever", action="store_true", help="with --swap: distill's vectorised retriever too")


@command(
    "export",
    "export a sentence-transformers embedder to ONNX (int8 by default), served in the same YAML pipelines",
    _export_args,
)
def cmd_export(args: argparse.Namespace) -> int:
    from distill.pipelines.loading import swap_files
    from distill.training.export import export_onnx

    paths = _pipeline_paths(args.swap or [])
    if not args.swap and args.fast_retriever:
        raise DistillError("--fast-retriever goes with --swap PIPELINE...: it changes the pipelines written there")
    out = export_onnx(args.model, args.out, int8=args.int8)
    print(out)
    if paths:
        for path in swap_files(paths, out / "pipelines", model=str(out), fast_retriever=args.fast_retriever):
            print(path)
    return 0


def _dims(text: str) -> int | None:
    if text.lower() in ("none", "null"):
        return None
    return _whole(text, 1, " or none")


def _sif(text: str) -> float | None:
    if text.lower() in ("none", "null"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1) or none, got {text!r}") from None


def _static_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("teacher", help="a sentence-transformers embedder: a folder, a Hugging Face id, an offline source")
    p.add_argument("--out", required=True, type=Path, help="folder for the static sentence-transformers model")
    p.add_argument(
        "--dims",
        type=_dims,
        default=256,
        help="PCA to this width (default 256, model2vec's); none keeps the teacher's width and space (query-only)",
    )
    p.add_argument(
        "--sif",
        type=_sif,
        default=1e-4,
        metavar="A",
        help="SIF coefficient of the Zipf weights a / (a + p(rank)) (default 1e-4, model2vec's); none: no weighting",
    )
    p.add_argument(
        "--swap",
        nargs="+",
        type=Path,
        metavar="PIPELINE",
        help="also write these indexing/query YAMLs (or a folder of them) to OUT/pipelines with the static model "
        "in both embedders and its own index",
    )


@command(
    "static",
    "build a static token-embedding model of a teacher the model2vec way (untrained), an ordinary "
    "sentence-transformers folder",
    _static_args,
)
def cmd_static(args: argparse.Namespace) -> int:
    from distill.pipelines.loading import swap_files
    from distill.training.static import write_static

    paths = _pipeline_paths(args.swap or [])
    out = write_static(args.teacher, args.out, dims=args.dims, sif_coefficient=args.sif)
    print(out)
    if paths:
        for path in swap_files(paths, out / "pipelines", model=str(out)):
            print(path)
    return 0


def _pipeline_paths(given: list[Path]) -> list[Path]:
    """Pipeline files as named on the command line, a folder standing for its *.yaml files."""
    paths: list[Path] = []
    for path in given:
        if path.is_dir():
            paths.extend(sorted(path.glob("*.yaml")))
        elif not path.exists():
            raise DistillError(f"pipeline file {path} does not exist")
        else:
            paths.append(path)
    return paths


def _non_negative(text: str) -> int:
    return _whole(text, 0)


def _whole(text: str, minimum: int, alternative: str = "") -> int:
    """An argparse type: a whole number >= ``minimum`` (the message names what else is accepted)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number{alternative}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}{alternative}, got {value}")
    return value


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "pipelines",
        nargs="+",
        help="NAME=QUERY.yaml[,INDEXING.yaml] (default indexing: indexing.yaml beside the query YAML); the first "
        "is the reference for speed-ups",
    )
    p.add_argument("--data", default="squad-dev", help="data set (see `distill data --help`)")
    p.add_argument(
        "--queries",
        type=Path,
        metavar="FILE",
        help="ask these unlabelled queries (one per line, or JSONL with 'text', 'query' or 'question') of the "
        "corpus of --data instead of its own questions: no relevance figures, only agreement with --reference",
    )
    p.add_argument("--articles", type=int)
    p.add_argument("--questions", type=int, help="a seeded sample of this many questions (whole corpus kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--reference",
        metavar="NAME",
        help="the pipeline whose top 10 the others' agreement is measured against (default: the first, the teacher)",
    )
    p.add_argument("--warmup", type=_non_negative, default=5, help="warm-up queries per pipeline, not timed")
    p.add_argument(
        "--context",
        choices=["retrieved", "gold"],
        default="retrieved",
        help="retrieved: run each whole pipeline (default); gold: ask each pipeline's reader alone, with the "
        "question's gold paragraph as its context",
    )
    p.add_argument(
        "--versus",
        metavar="NAME",
        help="also report each other pipeline's nDCG@10 / F1 minus this pipeline's, in points, with a paired "
        "bootstrap interval (e.g. the distilled student against the hard-label one)",
    )
    p.add_argument("--out", type=Path, default=Path("runs/eval"), help="folder for report.json and questions.jsonl")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let the pipelines set trust_remote_code, which runs the Python code of their model folders "
        "(refused without this flag)",
    )


@command("eval", "run pipelines on the same questions; report quality and latency side by side", _eval_args)
def cmd_eval(args: argparse.Namespace) -> int:
    from distill.common.outputs import check_output_folder
    from distill.evaluation.report import (
        agreement_table,
        answer_source_lines,
        answer_sources,
        comparison_table,
        component_table,
        difference_lines,
        load_questions,
        relative_lines,
        scored_lines,
    )
    from distill.evaluation.runner import System, evaluate
    from distill.pipelines.loading import trusting_remote_code

    check_output_folder(args.out, "--out")  # before the pipelines run, not when the report is written
    systems = [System.parse(spec) for spec in args.pipelines]
    data = _load_data(args)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "handler"}
    with trusting_remote_code(args.trust_remote_code):
        report = evaluate(
            systems,
            data,
            warmup=args.warmup,
            out_dir=args.out,
            command=_command_line(),
            config=config,
            progress=True,
            context=args.context,
            versus=args.versus,
            reference=args.reference,
        )
    print(comparison_table(report))
    if scored := scored_lines(report):
        print(scored)
    if agreement := agreement_table(report):
        print(agreement)
    print(component_table(report))
    if report["relative"]:
        print(relative_lines(report["relative"]))
    if report.get("differences"):
        print(difference_lines(report["differences"]))
    if sources := answer_sources(report, load_questions(args.out) or []):
        print(answer_source_lines(sources))
    print(f"wrote {args.out / 'report.json'} and {args.out / 'questions.jsonl'}")
    return 0


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", type=Path, help="a recipe YAML (see recipes/)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optimizer.lr=1e-4 data.questions=500")
    p.add_argument("--no-swap", action="store_true", help="do not write the student's pipeline YAML")


def _finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", type=Path, help="a recipe YAML with task: finetune_reader (see recipes/)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data.questions=500 model=mpnet-base")


_TRAIN_HELP = "distil a teacher (embedder or reader) into a student as a recipe says (resumes an interrupted run)"
_FINETUNE_HELP = (
    "fine-tune an encoder as an extractive reader on SQuAD-format data (the teacher; resumes an interrupted run)"
)


@command("train", _TRAIN_HELP, _train_args)
def cmd_train(args: argparse.Namespace) -> int:
    return _train(args, finetune=False, swap=not args.no_swap)


@command("finetune-reader", _FINETUNE_HELP, _finetune_args)
def cmd_finetune_reader(args: argparse.Namespace) -> int:
    return _train(args, finetune=True, swap=False)


def _pseudo_count(text: str) -> int | None:
    return None if text == "all" else _non_negative(text)


def _adapt_args(p: argparse.ArgumentParser) -> None:
    from distill.adapt import AdaptOptions  # the defaults

    p.add_argument("indexing", type=Path, help="your indexing pipeline YAML (its document embedder is the teacher)")
    p.add_argument("query", type=Path, help="your query pipeline YAML (its text embedder embeds with the same model)")
    p.add_argument("--corpus", required=True, help="your documents: a BEIR folder, a .jsonl of passages, a SQuAD .json")
    p.add_argument(
        "--queries", help="unlabelled queries: a text file (one per line), a .jsonl, or a BEIR folder:split (ids only)"
    )
    p.add_argument(
        "--pseudo-queries",
        type=_pseudo_count,
        default=AdaptOptions.pseudo_queries,
        help="pseudo-queries cut from the corpus (titles, sentences): a number or 'all' (one per passage; a number "
        "above the passages takes more sentences from each); default 0, or all when --queries is not given",
    )
    p.add_argument(
        "--query-variants",
        type=_non_negative,
        default=AdaptOptions.query_variants,
        metavar="N",
        help="N variants of each of your queries with a fifth of its words left out, each labelled by the teacher "
        "(augmentation; never of a held-out query; needs --queries); default 0",
    )
    p.add_argument(
        "--student", default=AdaptOptions.student, help=f"the student to distil into (default: {AdaptOptions.student})"
    )
    p.add_argument("--budget", help="cap the work: minutes (30m, 1.5h) or passages (2000p); says what it left out")
    p.add_argument(
        "--eval-data", help="a labelled data set to score relevance on (e.g. BEIR folder:dev); default: agreement"
    )
    p.add_argument("--eval-questions", type=int, help="a seeded sample (seed 0) of this many --eval-data questions")
    p.add_argument("--out", type=Path, default=AdaptOptions.out, help="folder for the recipe, student and reports")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override (repeatable), e.g. epochs=2")
    p.add_argument("--plan-only", action="store_true", help="check the data, print the plan, write the recipe, stop")
    p.add_argument("--anyway", action="store_true", help="train even when the student already matches the teacher")
    p.add_argument(
        "--query-only",
        action="store_true",
        help="train only a query encoder into the teacher's space: documents keep the teacher's embeddings and index",
    )


@command(
    "adapt",
    "distil your own retrieval pipeline on your own documents, with no labels: plan, train, swap, evaluate",
    _adapt_args,
)
def cmd_adapt(args: argparse.Namespace) -> int:
    from distill.adapt import AdaptOptions, adapt

    options = AdaptOptions(
        indexing=args.indexing,
        query=args.query,
        corpus=args.corpus,
        queries=args.queries,
        pseudo_queries=args.pseudo_queries,
        query_variants=args.query_variants,
        student=args.student,
        budget=args.budget,
        eval_data=args.eval_data,
        eval_questions=args.eval_questions,
        out=args.out,
        overrides=tuple(args.set or ()),
        plan_only=args.plan_only,
        query_only=args.query_only,
        anyway=args.anyway,
    )
    return adapt(options, command=_command_line())


def _train(args: argparse.Namespace, *, finetune: bool, swap: bool) -> int:
    """Parse the recipe once and train it; each command refuses the other's recipes, naming the right command."""
    from distill.training.recipes import load_recipe
    from distill.training.train import train

    recipe = load_recipe(args.recipe, args.overrides)
    if finetune and recipe["task"] != "finetune_reader":
        raise DistillError(
            f"`distill finetune-reader` needs a recipe with task: finetune_reader, got {recipe['task']!r} (distil "
            "with `distill train`)"
        )
    if not finetune and recipe["task"] == "finetune_reader":
        raise DistillError(f"{args.recipe} fine-tunes a teacher reader: run `distill finetune-reader {args.recipe}`")
    train(recipe, swap=swap)
    return 0


def _average_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", type=Path, help="two or more model folders of one architecture and tokenizer")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="a new folder for the averaged model (an earlier average there is replaced)",
    )
    p.add_argument("--weights", nargs="+", type=float, help="one positive weight per model (default: equal)")
    p.add_argument(
        "--dev",
        type=Path,
        metavar="RECIPE",
        help="an embedder or reader recipe: also score the teacher, each model and the average on its dev slice",
    )


@command(
    "average",
    "average the weights of students of one architecture (e.g. one recipe's seeds) into one model of the same size",
    _average_args,
)
def cmd_average(args: argparse.Namespace) -> int:
    from distill.training.average import average_weights

    if args.dev is not None:
        from distill.training.recipes import load_recipe

        recipe = load_recipe(args.dev, [])
        if recipe["task"] not in ("embedder", "reader"):
            raise DistillError(f"--dev {args.dev}: scoring on a dev slice needs an embedder or a reader recipe")
    out = average_weights(args.models, args.out, args.weights)
    print(out)
    if args.dev is not None:
        from distill.training.average import add_dev_scores
        from distill.training.tasks.embedder import score_on_dev_slice
        from distill.training.tasks.reader import score_readers_on_dev_slice

        score = score_readers_on_dev_slice if recipe["task"] == "reader" else score_on_dev_slice
        scores = score(recipe, [*map(str, args.models), str(out)])
        add_dev_scores(out, args.dev, scores)
        metrics = list(scores["teacher"])
        print(f"dev slice of {args.dev}:")
        print("\t".join(["model", *metrics]))
        for name, row in scores.items():
            print("\t".join([name, *(f"{row[m]:.4f}" for m in metrics)]))
    return 0


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "report",
        nargs="+",
        help="a report.json (or its folder); several evaluated on the same questions are compared as one, and "
        "LABEL=REPORT names that report's pipelines LABEL/NAME (e.g. two `distill adapt` runs' eval folders, "
        "compared with --versus LABEL/distilled)",
    )
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument(
        "--versus",
        metavar="NAME",
        help="also print each other pipeline's nDCG@10 / F1 minus this pipeline's, in points, with a paired "
        "bootstrap interval (needs the report's questions.jsonl)",
    )
    p.add_argument(
        "--reference",
        metavar="NAME",
        help="measure every pipeline's agreement with this one's top 10 again, from questions.jsonl (e.g. after "
        "merging reports)",
    )


@command(
    "report",
    "print the comparison table of an evaluation report (or of several over the same questions, as one), and (from "
    "its questions.jsonl) what share of the first pipeline's nDCG@10 / F1 each other pipeline keeps, with a paired "
    "bootstrap interval (95 percent)",
    _report_args,
)
def cmd_report(args: argparse.Namespace) -> int:
    from distill.evaluation.agreement import add_agreement
    from distill.evaluation.report import (
        agreement_table,
        answer_source_lines,
        answer_sources,
        comparison_table,
        difference_lines,
        merge_reports,
        paired_differences,
        relative_lines,
        relative_quality,
        scored_lines,
    )

    report, questions = merge_reports(args.report)
    where = " ".join(map(str, args.report))
    if args.versus is not None and questions is None:
        raise DistillError(f"--versus compares question by question, but there is no questions.jsonl beside {where}")
    if args.reference is not None:
        if questions is None:
            raise DistillError(f"--reference compares top 10s question by question; no questions.jsonl beside {where}")
        add_agreement(report, questions, args.reference)
    print(comparison_table(report, markdown=args.markdown))
    if scored := scored_lines(report):
        print(scored)
    if agreement := agreement_table(report, markdown=args.markdown):
        print(agreement)
    if len(args.report) > 1:
        print(f"{len(args.report)} reports on the same questions; each latency as its own run measured it")
    relative = report.get("relative")
    if relative is None and questions is not None:
        relative = relative_quality(report, questions)  # a report written before the bootstrap was added
    if relative:
        print(relative_lines(relative))
    differences = report.get("differences")
    if args.versus is not None:
        differences = paired_differences(report, questions, args.versus)
    if differences:
        print(difference_lines(differences))
    if questions is not None and (sources := answer_sources(report, questions)):
        print(answer_source_lines(sources))
    return 0


def _command_line() -> str:
    return " ".join(["distill", *map(shlex.quote, sys.argv[1:])])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distill", description=__doc__ or "")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, configure, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.handler(args)
    except DistillError as e:
        print(f"distill {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"distill {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
