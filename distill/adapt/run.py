"""``distill adapt``, the run: look before you spend, train, swap, evaluate (see :mod:`distill.adapt`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
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


def before_key(pipelines: UserPipelines, shelf: list[Path], teacher: Any, student: str, data: Any) -> str:
    """What the measurement before training depends on: the user's pipeline files and the off-the-shelf student's,
    the teacher's and the student's weights, and the questions and documents scored. A rerun with the same key (an
    interrupted run resumed, another ``--set`` lever into the same folder) reuses that measurement."""
    import hashlib

    from distill.common.models import model_fingerprint, resolve_model

    digest = hashlib.sha256()
    for path in (pipelines.indexing.path, pipelines.query.path, *shelf):
        digest.update(Path(path).read_bytes())
    for model in (teacher.model_path, resolve_model(student)):
        digest.update((model_fingerprint(model) if Path(model).is_dir() else model).encode())
    for query in data.queries:
        digest.update(json.dumps([query.id, query.text, list(query.gold_doc_ids), list(query.grades)]).encode())
    for document in data.documents:
        digest.update(json.dumps([document.id, document.content]).encode())
    return digest.hexdigest()


def measure_before(
    pipelines: UserPipelines, shelf: list[Path], teacher: Any, student: str, data: Any, out: Path, command: str
) -> dict[str, Any]:
    """Teacher and off-the-shelf student scored before training, or the same measurement from an earlier run into
    ``out`` when nothing it depends on changed (:func:`before_key`)."""
    from distill.evaluation.runner import evaluate

    key_path, report_path = out / "before" / "key.txt", out / "before" / "report.json"
    key = before_key(pipelines, shelf, teacher, student, data)
    if report_path.is_file() and key_path.is_file() and key_path.read_text(encoding="utf-8").strip() == key:
        print(f"reusing the measurement before training ({report_path}: same pipelines, models and questions)")
        return json.loads(report_path.read_text(encoding="utf-8"))
    key_path.unlink(missing_ok=True)
    before = evaluate(_systems(pipelines, shelf, None), data, out_dir=out / "before", command=command, progress=True)
    key_path.write_text(key + "\n", encoding="utf-8")
    return before


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


# When distilling is worth it, judged before any training from what teacher and off-the-shelf student measured.
# With labels: the teacher's nDCG@10 lead must be clear of zero (95% paired bootstrap) and at least WORTH_IT_POINTS.
# On NFCorpus (docs/benchmarks/own-data.md) the lead was 1.7 points (CI +0.18 to +3.33) and three recipes won back
# at most 0.15 of it, never clear of the noise (a student's difference on 324 queries is +-0.7 to +-1.1 points wide);
# on SQuAD the lead was 2.8 points and pseudo-queries alone won back 1.02 (CI +0.50 to +1.55); on FiQA it is 13.7.
# The best adaptation measured took about a third of its gap, so a gap must be ~3x a difference's half-width (0.5-1
# point on 500-2,000 queries) before that third can show: 2.5 points sits between NFCorpus and SQuAD.
WORTH_IT_POINTS = 2.5
# Without labels: the off-the-shelf student's agreement with the teacher (silver nDCG@10 against the teacher's top 10
# on the same queries). Distillation can at best rank as the teacher does; a student whose interval reaches 0.95
# already does nearly that.
AGREES_ALREADY = 0.95


@dataclass(frozen=True)
class Look:
    """What the look before you spend measured, as one sentence, and its verdict."""

    sentence: str
    verdict: str  # "worth it", "little to gain", or "student ahead" (training could only move it away)
    measured: dict[str, Any]

    @property
    def stop(self) -> bool:
        return self.verdict == "student ahead"


def _interval(result: dict[str, Any], scale: float = 100.0) -> str:
    return f"95% CI {result['low'] * scale:+.1f} to {result['high'] * scale:+.1f}"


def look_before_you_spend(report: dict[str, Any], per_question: list[dict[str, Any]]) -> Look:
    """The gap between teacher and off-the-shelf student measured before training, in one plain sentence with a
    verdict: relevance (nDCG@10, paired bootstrap of the teacher's lead) where the questions have labels, else the
    student's agreement with the teacher (silver nDCG@10, bootstrapped over the questions)."""
    from distill.common import metrics
    from distill.evaluation.report import paired_differences

    pipelines = report["pipelines"]
    teacher, shelf = pipelines["teacher"]["quality"], pipelines["off-the-shelf"]["quality"]
    if "ndcg@10" in teacher and "ndcg@10" in shelf:
        lead = paired_differences(report, per_question, "off-the-shelf")["teacher"]["ndcg@10"]
        points = lead["difference"] * 100
        said = (
            f"teacher nDCG@10 {teacher['ndcg@10']:.3f} vs off-the-shelf {shelf['ndcg@10']:.3f}: a gap of "
            f"{points:.1f} points ({_interval(lead)}, {lead['questions']} questions)"
        )
        if points <= 0:
            verdict = "student ahead"
            said += ": the off-the-shelf student already matches or beats the teacher here; distilling it toward the "
            said += "teacher would likely make it worse"
        elif lead["low"] > 0 and points >= WORTH_IT_POINTS:
            verdict = "worth it"
            said += f": worth it (clear of zero and above {WORTH_IT_POINTS} points)"
        else:
            verdict = "little to gain"
            said += (
                f": little to gain (a gap under {WORTH_IT_POINTS} points or within the noise; the best adaptation "
                "measured won back about a third of its gap)"
            )
        return Look(said, verdict, {"metric": "ndcg@10", "gap_points": points, "interval": lead})
    rows = [q["runs"]["off-the-shelf"].get("agreement") for q in per_question]
    rows = [r for r in rows if r is not None]
    agreement = pipelines["off-the-shelf"].get("agreement") or {}
    if not rows or "silver_ndcg@10" not in agreement:
        return Look("no relevance labels and no agreement measured: the gap is unknown", "little to gain", {})
    silver = [r["silver_ndcg@10"] for r in rows]
    # the student's shortfall from ranking as the teacher does (1 for every question)
    short = metrics.paired_bootstrap_difference(silver, [1.0] * len(silver))
    said = (
        f"without labels, the off-the-shelf student agrees with the teacher at silver nDCG@10 "
        f"{agreement['silver_ndcg@10']:.3f} (overlap@10 {agreement.get('overlap@10', float('nan')):.3f}; "
        f"{short['difference'] * 100:.1f} points short of the teacher's own ranking, {_interval(short)}, "
        f"{len(silver)} questions)"
    )
    if 1 - short["low"] >= AGREES_ALREADY:
        verdict = "little to gain"
        said += ": little to gain, it already ranks almost as the teacher does"
    else:
        verdict = "worth it"
        said += (
            ": worth it by the teacher's word (agreement is not relevance: on NFCorpus the student agreed at 0.571 "
            "and adapting won nothing measurable; a few judged queries with --eval-data tell)"
        )
    return Look(said, verdict, {"metric": "silver_ndcg@10", "gap_points": short["difference"] * 100, "interval": short})


def finished_student(recipe: dict[str, Any]) -> Path | None:
    """The student an earlier run of the same recipe finished (its metrics, card and swapped pipelines written), so
    that a rerun after an interruption in the final evaluation does not train again; None otherwise. An interrupted
    training resumes from its checkpoint instead (:mod:`distill.training.trainer`)."""
    from distill.training import recipes

    output = Path(recipe["output"])
    student, config = output / "student", output / "config.yaml"
    done = (student / "metrics.json").is_file() and (output / "pipelines").is_dir() and config.is_file()
    if not done or (output / "checkpoint").exists():
        return None
    try:
        same = recipes.load_recipe(config) == recipe
    except DistillError:
        return None
    return student if same else None


def adapt(options: AdaptOptions, command: str = "") -> int:
    """The ``distill adapt`` command (see the module docstring)."""
    from distill.data.datasets import load_dataset
    from distill.evaluation.report import load_questions
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
        query_variants=options.query_variants,
        student=options.student,
        output=out,
        overrides=list(options.overrides),
        query_only=options.query_only,
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
    before = measure_before(pipelines, shelf, teacher, options.student, data, out, command)
    _print_report(before)
    look = look_before_you_spend(before, load_questions(out / "before" / "report.json") or [])
    print(f"look before you spend: {look.sentence}")
    (out / "before" / "look.json").write_text(json.dumps(asdict(look), indent=2) + "\n", encoding="utf-8")
    if look.stop:
        if not options.anyway:
            print("stopping before training (pass --anyway to train regardless)")
            return 0
    student = finished_student(recipe)
    if student is not None:
        print(f"reusing {student}: trained by an earlier run of this recipe ({Path(recipe['output']) / 'config.yaml'})")
    else:
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
        "look": look.sentence,
        "verdict": look.verdict,
    }
    (out / "adapt.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"student: {student}; pipelines: {Path(recipe['output']) / 'pipelines'}; report: {out / 'eval' / 'report.json'}"
    )
    return 0
