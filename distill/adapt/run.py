"""``distill adapt``, the run: look before you spend, train, swap, evaluate (see :mod:`distill.adapt`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.errors import DistillError

if TYPE_CHECKING:
    from distill.pipelines.user import UserPipelines

from distill.adapt.plan import (
    AdaptOptions,
    build_recipe,
    make_plan,
    parse_budget,
)


def held_out_queries(recipe: dict[str, Any], teacher: Any) -> Any:
    """The corpus asked the held-out training queries (no labels): what agreement is measured on without qrels."""
    from distill.data.datasets import Dataset, Query
    from distill.training.tasks.silver import corpus_documents, held_out, training_queries

    data_cfg = recipe["data"]
    checked = corpus_documents(data_cfg, teacher.passage_texts, teacher.chunker)
    queries, _ = training_queries(data_cfg, checked.documents)
    picked = [Query(f"held-out-{i}", queries[i][0]) for i in held_out(data_cfg, queries)]
    # the pipelines index the corpus documents (their own preprocessing cuts the chunks trained on)
    documents = checked.sources if checked.sources is not None else checked.documents
    return Dataset(name=f"{Path(data_cfg['train']).name}-held-out", documents=documents, queries=picked)


def _systems(pipelines: UserPipelines, shelf: list[Path], distilled: Path | None) -> list[Any]:
    """Teacher (the user's pipelines as read), off-the-shelf student (``shelf``: its swapped indexing and query files)
    and, once trained, the distilled student (its files in ``distilled``)."""
    from distill.evaluation.runner import System

    systems = [System.from_pipelines("teacher", pipelines), System("off-the-shelf", shelf[1], shelf[0])]
    if distilled is not None:
        names = pipelines.query.path.name, pipelines.indexing.path.name
        systems.append(System("distilled", distilled / names[0], distilled / names[1]))
    return systems


def _print_report(report: dict[str, Any]) -> None:
    from distill.evaluation.report import (
        agreement_table,
        comparison_table,
        difference_lines,
        relative_lines,
        scored_lines,
    )

    print(comparison_table(report))
    if scored := scored_lines(report):
        print(scored)
    if table := agreement_table(report):
        print(table)
    if report.get("relative"):
        print(relative_lines(report["relative"]))
    if report.get("differences"):
        print(difference_lines(report["differences"]))


AGREES_ALREADY = 0.95  # silver nDCG@10 of the off-the-shelf student against the teacher


def agreement_note(report: dict[str, Any]) -> str | None:
    """Without labels: a plain sentence when the off-the-shelf student already ranks almost as the teacher does."""
    agreement = report["pipelines"]["off-the-shelf"].get("agreement") or {}
    silver = agreement.get("silver_ndcg@10")
    if silver is None or "ndcg@10" in report["pipelines"]["teacher"]["quality"]:
        return None
    if silver >= AGREES_ALREADY:
        return (
            f"the off-the-shelf student already ranks almost as the teacher does on these queries (silver nDCG@10 "
            f"{silver:.3f}): distillation has little to gain here; without labels nobody can tell which is better"
        )
    return (
        f"the off-the-shelf student agrees with the teacher at silver nDCG@10 {silver:.3f}: distillation moves it "
        "toward the teacher (without labels, whether that is better is the teacher's word)"
    )


def look_before_you_spend(report: dict[str, Any]) -> str | None:
    """A plain sentence when the off-the-shelf student already matches or beats the teacher's relevance (nDCG@10)
    on the evaluation queries; None otherwise (or without labels, where only agreement is known)."""
    pipelines = report["pipelines"]
    teacher, shelf = pipelines["teacher"]["quality"], pipelines["off-the-shelf"]["quality"]
    if "ndcg@10" not in teacher or "ndcg@10" not in shelf:
        return None
    if shelf["ndcg@10"] >= teacher["ndcg@10"]:
        return (
            f"the off-the-shelf student already matches or beats the teacher here (nDCG@10 {shelf['ndcg@10']:.4f} "
            f"vs {teacher['ndcg@10']:.4f}): distilling it toward the teacher would likely make it worse"
        )
    return None


def adapt(options: AdaptOptions, command: str = "") -> int:
    """The ``distill adapt`` command (see the module docstring)."""
    from distill.data.datasets import load_dataset
    from distill.evaluation.runner import evaluate
    from distill.pipelines.loading import load_pipeline, swap_pipelines
    from distill.pipelines.retrieval import retrieval_part
    from distill.pipelines.user import read_user_pipelines
    from distill.teacher.embedders import PipelineTeacher
    from distill.training import recipes
    from distill.training.train import train

    out = options.out
    pipelines = read_user_pipelines(options.indexing, options.query)  # the only read of the two files
    # what evaluation builds and scores of the query pipeline (never its prompt builder or generator); a pipeline
    # that no student could change, or whose scored list would be a guess, is one line before any teacher pass
    retrieval = retrieval_part(pipelines.query, require_embedding=True)
    teacher = PipelineTeacher.from_pipelines(pipelines)
    for data, path in ((pipelines.indexing.data, pipelines.indexing.path), (retrieval.data, pipelines.query.path)):
        # a store or component Haystack cannot build is one line now, not after the plan
        load_pipeline(data, name=str(path))
    budget = parse_budget(options.budget)
    recipe = build_recipe(
        options.indexing,
        options.query,
        corpus=options.corpus,
        queries=options.queries,
        pseudo_queries=options.pseudo_queries,
        student=options.student,
        output=out,
        overrides=list(options.overrides),
    )
    if options.eval_questions is not None and not options.eval_data:
        raise DistillError("--eval-questions samples --eval-data: give --eval-data too (e.g. BEIR_FOLDER:dev)")
    eval_data = load_dataset(options.eval_data) if options.eval_data else None
    if eval_data is not None and options.eval_questions:
        eval_data = eval_data.subset(questions=options.eval_questions, seed=0)
    if eval_data is not None and not any(q.gold_doc_ids for q in eval_data.queries):
        raise DistillError(f"--eval-data {options.eval_data} has no judged queries: leave it out to measure agreement")
    print(
        f"teacher: {teacher.passage_model} ({teacher.indexing_path}: {teacher.document_embedder}, "
        f"{teacher.query_path}: {teacher.text_embedder})"
    )
    print(f"evaluation scores {retrieval.describe()}")
    plan = make_plan(recipe, teacher, budget)
    for line in plan.lines():
        print(line)
    recipe = recipes.validate(recipe)
    out.mkdir(parents=True, exist_ok=True)
    recipe_path = out / "recipe.yaml"
    recipe_path.write_text(
        f"# written by: {command or 'distill adapt'}\n# repeat with: distill train {recipe_path}\n"
        + recipes.dump_recipe(recipe),
        encoding="utf-8",
    )
    print(f"recipe: {recipe_path}")
    if options.plan_only:
        return 0
    data = eval_data if eval_data is not None else held_out_queries(recipe, teacher)
    what = (
        "relevance on " + options.eval_data
        if eval_data is not None
        else "agreement with the teacher on held-out queries"
    )
    print(f"before training: teacher and off-the-shelf student, {what}")
    shelf = swap_pipelines(pipelines.files, out / "off-the-shelf", model=options.student)
    before = evaluate(_systems(pipelines, shelf, None), data, out_dir=out / "before", command=command, progress=True)
    _print_report(before)
    if note := agreement_note(before):
        print(note)
    verdict = look_before_you_spend(before)
    if verdict:
        print(verdict)
        if not options.anyway:
            print("stopping before training (pass --anyway to train regardless)")
            return 0
    student = train(recipe, swap=True, user_pipelines=pipelines)
    report = evaluate(
        _systems(pipelines, shelf, Path(recipe["output"]) / "pipelines"),
        data,
        out_dir=out / "eval",
        command=command,
        progress=True,
        versus="off-the-shelf",
    )
    _print_report(report)
    summary = {
        "student": str(student),
        "recipe": str(recipe_path),
        "report": str(out / "eval" / "report.json"),
        "plan": plan.lines(),
    }
    (out / "adapt.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"student: {student}; pipelines: {Path(recipe['output']) / 'pipelines'}; report: {out / 'eval' / 'report.json'}"
    )
    return 0
