"""The model card (README.md) and metrics.json written into every saved student folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.losses import KIND
from distill.provenance import library_versions, machine_info
from distill.recipes import dump_recipe

REFERENCES = {
    "listwise_kl": "Hinton et al., Distilling the Knowledge in a Neural Network, 2015; in-batch listwise KL as in "
    "RocketQAv2 (Ren et al., 2021)",
    "margin_mse": "Hofstätter et al., Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge "
    "Distillation, 2020",
    "rkd_distance": "Park et al., Relational Knowledge Distillation, CVPR 2019",
    "rkd_angle": "Park et al., Relational Knowledge Distillation, CVPR 2019",
    "similarity_matrix": "in-batch similarity matching, as in setfit's DistillationTrainer",
    "embedding_mse": "Reimers & Gurevych, Making Monolingual Sentence Embeddings Multilingual using Knowledge "
    "Distillation, 2020",
    "cosine": "cosine-distance matching of teacher embeddings",
    "start_end_kl": "Hinton et al., 2015; T=1.5, alpha=0.75 as in deepset's tinyroberta-squad2",
    "start_end_ce": "Devlin et al., BERT, 2019 (SQuAD fine-tuning objective)",
    "attention_relation": "Wang et al., MiniLMv2, Findings of ACL 2021",
    "token_similarity": "Tung & Mori, Similarity-Preserving Knowledge Distillation, ICCV 2019",
    "hidden_state_mse": "Jiao et al., TinyBERT, 2020; Romero et al., FitNets, 2015",
}


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _card_tail(recipe: dict[str, Any]) -> list[str]:
    """The versions and the resolved recipe, closing every card."""
    return [
        "",
        "## Versions",
        "",
        *[f"- {k} {v}" for k, v in library_versions().items()],
        "",
        "## Recipe",
        "",
        "```yaml",
        dump_recipe(recipe).rstrip(),
        "```",
        "",
    ]


def _weight_average_lines(recipe: dict[str, Any]) -> list[str]:
    ema = recipe["optimizer"].get("ema")
    if not ema:
        return []
    return [
        "",
        f"Weights: an exponential moving average (decay {ema}); the dev slice scored, and this folder holds, the "
        "averaged weights.",
    ]


def write_student_files(folder: Path, recipe: dict[str, Any], metrics: dict[str, Any], *, kind: str) -> None:
    """config.yaml (the resolved recipe), metrics.json and README.md beside the student's weights."""
    folder = Path(folder)
    (folder / "config.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(model_card(recipe, metrics, kind=kind), encoding="utf-8")


def model_card(recipe: dict[str, Any], metrics: dict[str, Any], *, kind: str) -> str:
    data = recipe["data"]
    student = recipe["student"]
    student_text = (
        f"the teacher with layers {student['from_teacher']['layers']} kept" if isinstance(student, dict) else student
    )
    lines = [
        "---",
        "library_name: sentence-transformers" if kind == "embedder" else "library_name: transformers",
        "tags: [distillation, haystack]",
        "license: apache-2.0",
        "---",
        f"# Distilled {kind}: {Path(recipe['output']).name}",
        "",
        f"A student distilled from **{recipe['teacher']}** into **{student_text}**"
        + (
            " as a query-only encoder (documents keep the teacher's embeddings and index)."
            if recipe.get("query_only")
            else "."
        ),
        "",
        "## Data",
        f"- training: `{data['train']}`, {data.get('questions') or 'all'} questions (seed {data['seed']})"
        + (" and every other question about their passages" if data.get("sibling_questions") else "")
        + (", with teacher-mined hard negatives" if data.get("hard_negatives") else ""),
        f"- dev slice for checkpoint selection: `{data['dev']}`, {data.get('dev_articles')} articles, "
        f"{data.get('dev_questions')} questions" + (" (held out of training)" if data["dev"] == data["train"] else ""),
        "- SQuAD v1.1 (Rajpurkar et al., 2016) is licensed CC BY-SA 4.0.",
        "",
        "## Losses",
        "| loss | kind | weight | settings | reference |",
        "|---|---|---|---|---|",
    ]
    for entry in recipe["losses"]:
        settings = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("name", "weight")) or "-"
        lines.append(
            f"| {entry['name']} | {KIND[entry['name']]} | {entry['weight']} | {settings} | "
            f"{REFERENCES.get(entry['name'], '-')} |"
        )
    if recipe.get("passage_memory"):
        lines += [
            "",
            f"listwise_kl also scores the student's detached embeddings of the last {recipe['passage_memory']} "
            "training passages (cross-batch memory; Wang et al., CVPR 2020).",
        ]
    lines += _weight_average_lines(recipe)
    dev, teacher, untrained = metrics.get("dev", {}), metrics.get("teacher_dev", {}), metrics.get("untrained_dev", {})
    lines += ["", "## Metrics (dev slice, measured during training)", ""]
    keys = [k for k in dev if not k.startswith("teacher_")]
    if keys:
        lines += ["| metric | teacher | student before distillation | distilled student |", "|---|---|---|---|"]
        lines += [
            f"| {k} | {_fmt(teacher.get(k, '-'))} | {_fmt(untrained.get(k, '-'))} | {_fmt(dev[k])} |" for k in keys
        ]
    train = metrics.get("train", {})
    if train:
        lines += [
            "",
            f"Training: {train.get('steps')} steps, {train.get('examples')} examples in "
            f"{train.get('seconds', 0):.0f} s "
            f"of training steps ({train.get('examples_per_s', 0):.1f} examples/s) on {machine_info()['cpu']}; best "
            f"checkpoint at step {metrics.get('best_step')}.",
        ]
    for name, report in metrics.get("benchmarks", {}).items():
        lines += ["", f"Benchmark `{name}`: see `{report}`."]
    lines += [
        "",
        "## Use",
        "",
        "Swap it into the teacher's Haystack pipelines with `distill swap pipelines/ --model <this folder> --out <dir>`"
        + (" --component text_embedder --keep-index" if recipe.get("query_only") else "")
        + " and compare with `distill eval`.",
    ]
    return "\n".join(lines + _card_tail(recipe))


def write_reader_files(folder: Path, recipe: dict[str, Any], metrics: dict[str, Any]) -> None:
    folder = Path(folder)
    (folder / "config.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(reader_card(recipe, metrics), encoding="utf-8")


def saved_steps(metrics: dict[str, Any]) -> int | None:
    """How many of a run's training steps the saved model had: its best dev checkpoint's step where the trainer kept
    one, else all of them (None where the metrics do not say)."""
    best, steps = metrics.get("best_step"), (metrics.get("train") or {}).get("steps")
    value = best if isinstance(best, int) and best > 0 else steps
    return value if isinstance(value, int) else None


def _warm_start(metrics: dict[str, Any]) -> str:
    """A sentence for a student that was an extractive reader before this run (a run continued with a fresh
    schedule), with the steps that came before when they are known; empty otherwise."""
    start = metrics.get("starts_from")
    if not start:
        return ""
    text = f" It starts from a reader already trained for extractive QA (`{start['reader']}`, QA head included)"
    before, now = start.get("steps"), saved_steps(metrics)
    if not isinstance(before, int):
        return text + "; the steps below continue it."
    total = f"; the saved weights have had {before + now} steps in all" if isinstance(now, int) else ""
    return text + f": {before} steps before this run; the steps below continue it{total}."


def reader_card(recipe: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The model card of a fine-tuned teacher reader or a distilled student reader."""
    data = recipe["data"]
    finetune = recipe["task"] == "finetune_reader"
    if finetune:
        title = f"# Extractive reader: {Path(recipe['output']).name}"
        layers = f" (encoder layers {recipe['layers']})" if recipe.get("layers") else ""
        intro = f"**{recipe['model']}**{layers} fine-tuned for extractive question answering on gold answers."
    else:
        student = recipe["student"]
        if isinstance(student, dict) and "from_teacher" in student:
            text = f"the teacher with encoder layers {student['from_teacher']['layers']} kept"
        elif isinstance(student, dict):
            text = f"{student['model']} with encoder layers {student['layers']} kept"
        else:
            text = str(student)
        from distill.losses import LOSSES

        distilled = any(LOSSES[e["name"]].needs_teacher for e in recipe["losses"] if e["weight"] > 0)
        if distilled:
            title = f"# Distilled reader: {Path(recipe['output']).name}"
            intro = f"A student reader distilled from **{recipe['teacher']}** into **{text}**."
        else:
            title = f"# Reader trained on gold spans only: {Path(recipe['output']).name}"
            intro = (
                f"**{text}** (teacher: {recipe['teacher']}) trained on gold answer spans only, without teacher "
                "outputs: the undistilled baseline at a distillation recipe's budget."
            )
        intro += _warm_start(metrics)
        if metrics.get("cross_tokenizer"):
            intro += (
                " Teacher and student tokenize differently: the teacher's start/end probabilities were mapped onto "
                "the student's tokens through character offsets."
            )
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: question-answering",
        "tags: [extractive-qa, distillation, haystack]",
        "license: apache-2.0",
        "---",
        title,
        "",
        intro,
        "",
        "## Data",
        f"- training: `{data['train']}`, the first {data.get('questions') or 'all'} questions of a seeded permutation "
        f"(seed {data['seed']}), gold paragraph as context",
    ]
    if not finetune and data.get("unlabelled"):
        lines.append(
            f"- unlabelled (teacher soft labels only): `{data['unlabelled']}`, "
            f"{data.get('unlabelled_questions') or 'all'} questions"
        )
    windows = metrics.get("train_windows")
    if windows:
        lines.append(f"- windows: {windows['labelled']} labelled, {windows['unlabelled']} unlabelled")
    if metrics.get("skipped"):
        lines.append(f"- skipped or corrected: {metrics['skipped']}")
    lines += [
        f"- windows of {recipe['max_length']} tokens, stride {recipe['stride']}, questions cut at "
        f"{recipe['max_query_length']} tokens (as `TransformersExtractiveReader` at inference)",
        f"- dev slice for checkpoint selection: `{data['dev']}`, {data.get('dev_questions')} questions, gold "
        "paragraph as context",
        "- SQuAD v1.1 (Rajpurkar et al., 2016) is licensed CC BY-SA 4.0.",
        *_weight_average_lines(recipe)[1:],
        "",
    ]
    if not finetune:
        lines += ["## Losses", "| loss | kind | weight | settings | reference |", "|---|---|---|---|---|"]
        for entry in recipe["losses"]:
            settings = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("name", "weight")) or "-"
            lines.append(
                f"| {entry['name']} | {KIND[entry['name']]} | {entry['weight']} | {settings} | "
                f"{REFERENCES.get(entry['name'], '-')} |"
            )
        lines.append("")
    dev, teacher, untrained = metrics.get("dev", {}), metrics.get("teacher_dev", {}), metrics.get("untrained_dev", {})
    lines += ["## Metrics (dev slice, measured during training; SQuAD v1.1 EM / F1)", ""]
    if finetune:
        lines += ["| metric | before fine-tuning | fine-tuned |", "|---|---|---|"]
        lines += [f"| {k} | {_fmt(untrained.get(k, '-'))} | {_fmt(v)} |" for k, v in dev.items()]
    else:
        lines += ["| metric | teacher | student before training | student |", "|---|---|---|---|"]
        lines += [
            f"| {k} | {_fmt(teacher.get(k, '-'))} | {_fmt(untrained.get(k, '-'))} | {_fmt(v)} |" for k, v in dev.items()
        ]
    train = metrics.get("train", {})
    if train:
        lines += [
            "",
            f"Training: {train.get('steps')} steps, {train.get('examples')} windows in {train.get('seconds', 0):.0f} s "
            f"of training steps ({train.get('examples_per_s', 0):.1f} windows/s) on {machine_info()['cpu']}; best "
            f"checkpoint at step {metrics.get('best_step')}.",
        ]
    lines += [
        "",
        "## Use",
        "",
        "`TransformersExtractiveReader(model=<this folder>)`, or swap it into the teacher's pipeline with "
        "`distill swap pipelines/extractive_qa.yaml --model <this folder> --out <dir>` and compare with "
        "`distill eval ... --context gold`.",
    ]
    return "\n".join(lines + _card_tail(recipe))
