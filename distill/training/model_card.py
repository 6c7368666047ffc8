"""The model card (README.md) and metrics.json written into every saved student folder.

A card starts with the YAML front matter that the Hugging Face Hub reads (library, base model, data sets, tags,
licence and the dev-slice metrics as ``model-index``); :func:`rewrite_card` refreshes it on a saved folder from its
``config.yaml`` and ``metrics.json`` without touching the body.

Why one module over 400 lines: the card's body and its front matter are written from the same recipe and
metrics, so that what the Hub reads and what a person reads cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from distill.common.models import HUB_ALIASES, HUB_IDS, looks_like_hub_id
from distill.common.outputs import named_parts, write_atomic
from distill.common.provenance import library_versions, machine_info
from distill.errors import DistillError
from distill.training.losses import KIND, LOSSES
from distill.training.recipes import dump_recipe

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


SQUAD = "rajpurkar/squad"
SQUAD_SPLITS = {"squad-dev": "validation", "squad-train": "train"}
# BEIR folders named after a BEIR data set are that data set on the Hub.
BEIR = frozenset(
    "arguana climate-fever cqadupstack dbpedia-entity fever fiqa hotpotqa msmarco nfcorpus nq quora scidocs scifact "
    "trec-covid webis-touche2020".split()
)
# Both offline base models are Apache-2.0; SQuAD's CC BY-SA 4.0 is stated in every card's body.
LICENSE = "apache-2.0"
EMBEDDER_TAGS = ["sentence-transformers", "feature-extraction", "sentence-similarity"]


def run_name(output: Any) -> str:
    """A run's name for its card: its output folder's, or the nearest parent's where that is a generic ``run``
    (``distill adapt`` trains into ``OUT/run``, so its students are named after ``OUT``)."""
    return named_parts(Path(str(output)))[0]


def _teacher_labelled(data: dict[str, Any]) -> bool:
    return data.get("labels") == "teacher"


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


def _loss_table(recipe: dict[str, Any]) -> list[str]:
    lines = ["| loss | kind | weight | settings | reference |", "|---|---|---|---|---|"]
    for entry in recipe["losses"]:
        settings = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("name", "weight")) or "-"
        lines.append(
            f"| {entry['name']} | {KIND[entry['name']]} | {entry['weight']} | {settings} | "
            f"{REFERENCES.get(entry['name'], '-')} |"
        )
    return lines


def _training_lines(metrics: dict[str, Any], unit: str) -> list[str]:
    """The training time and throughput in ``unit`` (examples, windows), where the metrics have them."""
    train = metrics.get("train", {})
    if not train:
        return []
    return [
        "",
        f"Training: {train.get('steps')} steps, {train.get('examples')} {unit} in {train.get('seconds', 0):.0f} s "
        f"of training steps ({train.get('examples_per_s', 0):.1f} {unit}/s) on {machine_info()['cpu']}; best "
        f"checkpoint at step {metrics.get('best_step')}.",
    ]


def write_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    """``folder``/metrics.json, the one writer of it (students, fine-tuned readers, weight averages).

    Atomic, because the student browser takes a folder with a metrics.json for a saved model and ``distill average
    --dev`` rewrites the file in place: a kill mid-write must leave the old file or the new one, never half of one."""
    write_atomic(Path(folder) / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def write_student_files(folder: Path, recipe: dict[str, Any], metrics: dict[str, Any], *, kind: str) -> None:
    """config.yaml (the resolved recipe), metrics.json and README.md beside the student's weights."""
    folder = Path(folder)
    (folder / "config.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
    write_metrics(folder, metrics)
    (folder / "README.md").write_text(model_card(recipe, metrics, kind=kind), encoding="utf-8")


def _gold_lines(data: dict[str, Any]) -> list[str]:
    return [
        f"- training: `{data['train']}`, {data.get('questions') or 'all'} questions (seed {data['seed']})"
        + (" and every other question about their passages" if data.get("sibling_questions") else "")
        + (", with teacher-mined hard negatives" if data.get("hard_negatives") else ""),
        f"- dev slice for checkpoint selection: `{data['dev']}`, {data.get('dev_articles')} articles, "
        f"{data.get('dev_questions')} questions" + (" (held out of training)" if data["dev"] == data["train"] else ""),
        "- SQuAD v1.1 (Rajpurkar et al., 2016) is licensed CC BY-SA 4.0.",
    ]


def _teacher_labelled_lines(recipe: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """What a student trained without labels saw: the corpus, each kind of training query, what was skipped."""
    info = metrics.get("training_data") or {}
    corpus, kinds = info.get("corpus") or {}, info.get("training_queries") or {}
    data = recipe["data"]
    lines = [
        "- **no relevance labels**: the teacher ranked the whole corpus for every training query; its top-1 was the "
        f"positive, its top-{data['candidates']} the pool of hard negatives, its scores the soft labels",
        f"- corpus `{data['train']}`: {corpus.get('passages', '?')} passages ({corpus.get('skipped_empty', 0)} "
        f"empty and {corpus.get('skipped_duplicates', 0)} duplicates skipped; longer than the token limit, so cut: "
        + ", ".join(f"{k} {v}" for k, v in (corpus.get("cut") or {}).items())
        + ")"
        + (_chunking_words(chunking) if (chunking := corpus.get("chunking")) else ""),
        "- training queries by kind: "
        + ", ".join(f"{kinds.get(k, 0)} {label}" for k, label in _QUERY_KINDS.items())
        + (f" (user queries from `{data['queries']}`{_query_file_words(info)})" if data.get("queries") else "")
        + _long_query_words(info),
        f"- checkpoint chosen on {info.get('dev_queries', '?')} held-out training queries by agreement with the "
        f"teacher (silver nDCG@10 over the {info.get('dev_pool_passages', '?')} passages of their teacher top-10s)",
    ]
    return lines


def _query_file_words(info: dict[str, Any]) -> str:
    read = info.get("query_file") or {}
    if not read:
        return ""
    return (
        f"; {read.get('blank', 0)} blank, {read.get('duplicates', 0)} repeated and {read.get('not_utf8', 0)} "
        "not UTF-8 lines skipped"
    )


def _long_query_words(info: dict[str, Any]) -> str:
    cut = info.get("queries_cut") or {}
    if "student" not in cut:
        return ""
    return f"; {cut['student']} longer than the student's {cut['limit']} tokens, so cut"


def _chunking_words(chunking: dict[str, Any]) -> str:
    """Where the indexing pipeline splits documents: the passages are its chunks."""
    return (
        f": the chunks that the indexing pipeline's `{' -> '.join(chunking['components'])}` cut from "
        f"{chunking['documents']} documents ({chunking['chunks']} chunks; {chunking['skipped_empty_chunks']} empty and "
        f"{chunking['duplicate_chunks']} duplicate chunks skipped), as the pipeline writes them"
    )


_QUERY_KINDS = {
    "user": "user queries",
    "title": "pseudo-queries from titles",
    "sentence": "pseudo-queries cut from passages (inverse cloze)",
    "question": "pseudo-queries that are questions asked in passages",
    "variant": "variants of user queries with words left out",
}


def model_card(recipe: dict[str, Any], metrics: dict[str, Any], *, kind: str) -> str:
    data = recipe["data"]
    student = recipe["student"]
    if isinstance(student, dict) and "static" in student:
        settings = student["static"]
        student_text = (
            f"a static token-embedding model of the teacher (model2vec's construction: {settings['dims'] or 'full'}"
            f" dims, SIF coefficient {settings['sif_coefficient']}), then trained"
        )
    elif isinstance(student, dict):
        student_text = f"the teacher with layers {student['from_teacher']['layers']} kept"
    else:
        student_text = student
    lines = [
        f"# Distilled {kind}: {run_name(recipe['output'])}",
        "",
        f"A student distilled from **{recipe['teacher']}** into **{student_text}**"
        + (
            " as a query-only encoder (documents keep the teacher's embeddings and index)."
            if recipe.get("query_only")
            else "."
        ),
        "",
        "## Data",
        *(_teacher_labelled_lines(recipe, metrics) if data.get("labels") == "teacher" else _gold_lines(data)),
        "",
        "## Losses",
        *_loss_table(recipe),
    ]
    if recipe.get("anchor"):
        lines += ["", f"An L2-SP anchor (weight {recipe['anchor']}) held the weights near the student's start."]
    if recipe.get("passage_memory") == "corpus":
        lines += [
            "",
            "listwise_kl scores each query against every corpus passage's teacher embedding (the index the student "
            "searches), not only the batch's passages.",
        ]
    elif recipe.get("passage_memory"):
        lines += [
            "",
            f"listwise_kl also scores the student's detached embeddings of the last {recipe['passage_memory']} "
            "training passages (cross-batch memory; Wang et al., CVPR 2020).",
        ]
    lines += _weight_average_lines(recipe)
    dev, teacher, untrained = metrics.get("dev", {}), metrics.get("teacher_dev", {}), metrics.get("untrained_dev", {})
    heading = (
        "held-out training queries: agreement with the teacher, measured during training"
        if _teacher_labelled(data)
        else "dev slice, measured during training"
    )
    lines += ["", f"## Metrics ({heading})", ""]
    keys = [k for k in dev if not k.startswith("teacher_")]
    if keys:
        lines += ["| metric | teacher | student before distillation | distilled student |", "|---|---|---|---|"]
        lines += [
            f"| {k} | {_fmt(teacher.get(k, '-'))} | {_fmt(untrained.get(k, '-'))} | {_fmt(dev[k])} |" for k in keys
        ]
    lines += _training_lines(metrics, "examples")
    for name, report in metrics.get("benchmarks", {}).items():
        lines += ["", f"Benchmark `{name}`: see `{report}`."]
    lines += [
        "",
        "## Use",
        "",
        "Swap it into the teacher's Haystack pipelines with `distill swap pipelines/ --model <this folder> --out <dir>"
        + (" --component <your text embedder> --keep-index" if recipe.get("query_only") else "")
        + "` and compare with `distill eval`"
        + (
            " (only the query path changes: the documents keep the teacher's index)."
            if recipe.get("query_only")
            else "."
        ),
    ]
    return front_matter(embedder_metadata(recipe, metrics)) + "\n".join(lines + _card_tail(recipe))


def write_reader_files(folder: Path, recipe: dict[str, Any], metrics: dict[str, Any]) -> None:
    folder = Path(folder)
    (folder / "config.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
    write_metrics(folder, metrics)
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


def _negative_lines(negatives: dict[str, Any] | None, finetune: bool) -> list[str]:
    """What the reader learnt "no answer" from: the retrieved passages without the answer, and every skip."""
    if not negatives:
        return []
    from distill.training.tasks.negatives import FEWER, HOLDS_ANSWER, NONE_FOUND

    target = "position 0 (no answer)" if finetune else "position 0 (no answer) and the teacher's distributions on them"
    return [
        f"- negatives: {negatives['negatives']} passages for {negatives['questions']} questions (up to "
        f"{negatives['per_question']} each), the top-ranked passages that `{negatives['retriever']}` retrieves for a "
        f"question, neither its gold paragraph nor holding a gold answer string; their target is {target}",
        f"- negatives skipped: {negatives[HOLDS_ANSWER]} retrieved passages held a gold answer string outside the gold "
        f"paragraph (neither a clean negative nor gold: left out); {negatives[NONE_FOUND]} questions got no negative "
        f"(every retrieved passage was gold or held an answer); {negatives[FEWER]} got fewer than asked",
    ]


def reader_card(recipe: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The model card of an extractive reader: a fine-tuned teacher, a distilled student or a student trained on gold
    spans only. The three differ in their title and opening, and a teacher's card has no losses and no teacher column;
    the data, metrics and use sections are one skeleton."""
    finetune = recipe["task"] == "finetune_reader"
    if finetune:
        title, intro = _finetuned_reader_opening(recipe, metrics)
    elif _distilled(recipe):
        title, intro = _distilled_reader_opening(recipe, metrics)
    else:
        title, intro = _gold_spans_reader_opening(recipe, metrics)
    lines = [title, "", intro, "", "## Data", *_reader_data_lines(recipe, metrics, finetune), ""]
    if not finetune:
        lines += ["## Losses", *_loss_table(recipe), ""]
    lines += _reader_metrics_lines(metrics, finetune)
    lines += _training_lines(metrics, "windows")
    lines += [
        "",
        "## Use",
        "",
        "`TransformersExtractiveReader(model=<this folder>)`, or swap it into the teacher's pipeline with "
        "`distill swap pipelines/extractive_qa.yaml --model <this folder> --out <dir>` (served by distill's "
        "`NoAnswerMarginExtractiveReader`, which ranks answers across passages by each span's margin over its "
        "window's no-answer logits; `--reader-scores raw` keeps the stock reader) and compare with "
        "`distill eval ...` (end to end) and `distill eval ... --context gold`.",
    ]
    return front_matter(reader_metadata(recipe, metrics)) + "\n".join(lines + _card_tail(recipe))


def _finetuned_reader_opening(recipe: dict[str, Any], metrics: dict[str, Any]) -> tuple[str, str]:
    """A fine-tuned teacher reader's title and first paragraph."""
    layers = f" (encoder layers {recipe['layers']})" if recipe.get("layers") else ""
    negatives = " and on retrieved passages without the answer (target: no answer)" if metrics.get("negatives") else ""
    return (
        f"# Extractive reader: {Path(recipe['output']).name}",
        f"**{recipe['model']}**{layers} fine-tuned for extractive question answering on gold answers{negatives}.",
    )


def _distilled_reader_opening(recipe: dict[str, Any], metrics: dict[str, Any]) -> tuple[str, str]:
    """A student reader's title and first paragraph, when a loss learns from the teacher."""
    intro = f"A student reader distilled from **{recipe['teacher']}** into **{_reader_student(recipe['student'])}**."
    return f"# Distilled reader: {Path(recipe['output']).name}", intro + _student_reader_notes(metrics)


def _gold_spans_reader_opening(recipe: dict[str, Any], metrics: dict[str, Any]) -> tuple[str, str]:
    """A student reader's title and first paragraph, when no weighted loss learns from the teacher."""
    intro = (
        f"**{_reader_student(recipe['student'])}** (teacher: {recipe['teacher']}) trained on gold answer spans only, "
        "without teacher outputs: the undistilled baseline at a distillation recipe's budget."
    )
    return f"# Reader trained on gold spans only: {Path(recipe['output']).name}", intro + _student_reader_notes(metrics)


def _reader_student(student: Any) -> str:
    """A reader recipe's ``student`` in words."""
    if isinstance(student, dict) and "from_teacher" in student:
        return f"the teacher with encoder layers {student['from_teacher']['layers']} kept"
    if isinstance(student, dict):
        return f"{student['model']} with encoder layers {student['layers']} kept"
    return str(student)


def _student_reader_notes(metrics: dict[str, Any]) -> str:
    """What closes a student reader's first paragraph: where its weights started, and how the teacher's outputs
    reached a student that tokenizes differently."""
    notes = _warm_start(metrics)
    if metrics.get("cross_tokenizer"):
        notes += (
            " Teacher and student tokenize differently: the teacher's start/end probabilities were mapped onto "
            "the student's tokens through character offsets."
        )
    return notes


def _reader_data_lines(recipe: dict[str, Any], metrics: dict[str, Any], finetune: bool) -> list[str]:
    """A reader card's data section: the questions, the windows, what was skipped, the negatives, the dev slice."""
    data = recipe["data"]
    lines = [
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
        negative = f" ({windows['negative']} of them of negatives)" if windows.get("negative") else ""
        lines.append(f"- windows: {windows['labelled']} labelled, {windows['unlabelled']} unlabelled{negative}")
    if metrics.get("skipped"):
        lines.append(f"- skipped or corrected: {metrics['skipped']}")
    lines += _negative_lines(metrics.get("negatives"), finetune)
    return lines + [
        f"- windows of {recipe['max_length']} tokens, stride {recipe['stride']}, questions cut at "
        f"{recipe['max_query_length']} tokens (as `TransformersExtractiveReader` at inference)",
        f"- dev slice for checkpoint selection: `{data['dev']}`, {data.get('dev_questions')} questions, gold "
        "paragraph as context",
        "- SQuAD v1.1 (Rajpurkar et al., 2016) is licensed CC BY-SA 4.0.",
        *_weight_average_lines(recipe)[1:],
    ]


def _reader_metrics_lines(metrics: dict[str, Any], finetune: bool) -> list[str]:
    """The dev-slice table: before and after fine-tuning for a teacher; teacher, untrained and trained student for a
    student."""
    dev, teacher, untrained = metrics.get("dev", {}), metrics.get("teacher_dev", {}), metrics.get("untrained_dev", {})
    lines = ["## Metrics (dev slice, measured during training; SQuAD v1.1 EM / F1)", ""]
    if finetune:
        lines += ["| metric | before fine-tuning | fine-tuned |", "|---|---|---|"]
        return lines + [f"| {k} | {_fmt(untrained.get(k, '-'))} | {_fmt(v)} |" for k, v in dev.items()]
    lines += ["| metric | teacher | student before training | student |", "|---|---|---|---|"]
    return lines + [
        f"| {k} | {_fmt(teacher.get(k, '-'))} | {_fmt(untrained.get(k, '-'))} | {_fmt(v)} |" for k, v in dev.items()
    ]


def _distilled(recipe: dict[str, Any]) -> bool:
    """Whether any weighted loss learns from the teacher (else the student trained on gold labels only)."""
    return any(LOSSES[e["name"]].needs_teacher for e in recipe.get("losses", []) if e["weight"] > 0)


def front_matter(metadata: dict[str, Any]) -> str:
    """The block the Hub reads at the top of a README.md: ``---``, the metadata as YAML, ``---``."""
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n"


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """A card's front matter (empty where it has none) and the body after it."""
    if text.startswith("---\n"):
        end = text.find("\n---\n", 3)
        if end >= 0:
            return yaml.safe_load(text[4:end]) or {}, text[end + 5 :]
    return {}, text


def hub_model(spec: Any) -> str | None:
    """The Hub id of a model spec: an offline source's, or the spec itself where it is one. None for a local folder:
    a spec under ``runs/`` (where recipes write their models) or one that exists here."""
    if isinstance(spec, dict):
        spec = spec.get("model")
    if not isinstance(spec, str):
        return None
    if spec in HUB_IDS or spec in HUB_ALIASES:
        return HUB_IDS.get(spec, spec)
    local = spec.startswith("runs/") or Path(spec).expanduser().exists()
    return spec if looks_like_hub_id(spec) and not local else None


def hub_dataset(spec: Any) -> str | None:
    """The Hub id of a data spec: SQuAD's for ``squad-*``, BEIR's for a BEIR folder named after its data set."""
    if spec in SQUAD_SPLITS:
        return SQUAD
    name = Path(str(spec).partition(":")[0]).name
    return f"BeIR/{name}" if name in BEIR else None


def _base_model(recipe: dict[str, Any]) -> str | None:
    """The Hub model the student started from: the teacher's where the student is the teacher with layers dropped."""
    if recipe.get("task") == "finetune_reader":
        return hub_model(recipe.get("model"))
    student = recipe.get("student")
    if isinstance(student, dict) and "from_teacher" in student:
        return hub_model(recipe.get("teacher"))
    return hub_model(student)


def _datasets(data: dict[str, Any]) -> list[str]:
    # Trained on teacher labels, a student never sees its recipe's `dev` set: its checkpoint is chosen on held-out
    # training queries of its own corpus.
    keys = ("train",) if _teacher_labelled(data) else ("train", "unlabelled", "dev")
    ids = [hub_dataset(data.get(key)) for key in keys]
    return list(dict.fromkeys(i for i in ids if i))


def _dev_dataset(data: dict[str, Any]) -> dict[str, Any]:
    """The model-index dataset of the dev slice the metrics were measured on (for a student trained on teacher
    labels: its held-out training queries over its own corpus)."""
    if _teacher_labelled(data):
        corpus = str(data["train"])
        label = "SQuAD v1.1" if corpus in SQUAD_SPLITS else Path(corpus.partition(":")[0]).name
        name = f"{label}: {data.get('dev_questions')} held-out training queries, agreement with the teacher"
        return {"type": hub_dataset(corpus) or label, "name": name}
    dev = str(data["dev"])
    path, _, split = dev.partition(":")
    label = "SQuAD v1.1" if dev in SQUAD_SPLITS else Path(path).name
    parts = [
        f"{data[k]} {k.removeprefix('dev_')}" for k in ("dev_articles", "dev_questions") if data.get(k) is not None
    ]
    if data["dev"] == data.get("train"):
        parts.append("held out of training")
    about = f" ({', '.join(parts)})" if parts else ""
    entry: dict[str, Any] = {"type": hub_dataset(dev) or label, "name": f"{label} dev slice{about}"}
    if SQUAD_SPLITS.get(dev, split):
        entry["split"] = SQUAD_SPLITS.get(dev, split)
    return entry


def _scores(row: Any) -> dict[str, float]:
    """A metrics.json row's numbers, less the teacher_* copies an embedder's trainer logs beside its own scores."""
    numbers = (int, float)
    return {
        k: v
        for k, v in (row or {}).items()
        if isinstance(v, numbers) and not isinstance(v, bool) and not k.startswith("teacher_")
    }


def _model_index(recipe: dict[str, Any], metrics: dict[str, Any], task: dict[str, str]) -> list[dict[str, Any]]:
    """The dev-slice scores of metrics.json as the Hub's model-index: the model's own, then the teacher's on the same
    slice under ``teacher_<metric>`` types (so no leaderboard mistakes them for this model's). Empty where
    metrics.json has no dev scores or the recipe no dev slice."""
    own, teacher = _scores(metrics.get("dev")), _scores(metrics.get("teacher_dev"))
    data = recipe.get("data") or {}
    if not own or "dev" not in data:
        return []
    rows = [{"type": k, "value": v, "name": f"{k} (this model)"} for k, v in own.items()]
    rows += [
        {"type": f"teacher_{k}", "value": v, "name": f"{k} of the teacher ({recipe.get('teacher')})"}
        for k, v in teacher.items()
    ]
    results = [{"task": task, "dataset": _dev_dataset(data), "metrics": rows}]
    return [{"name": run_name(recipe["output"]), "results": results}]


def _metadata(
    recipe: dict[str, Any],
    metrics: dict[str, Any],
    *,
    library: str,
    pipeline_tag: str,
    tags: list[str],
    task: dict[str, str],
) -> dict[str, Any]:
    out: dict[str, Any] = {"library_name": library, "pipeline_tag": pipeline_tag}
    base, datasets = _base_model(recipe), _datasets(recipe.get("data") or {})
    if base:
        out["base_model"] = base
    if datasets:
        out["datasets"] = datasets
    out |= {"tags": tags, "license": LICENSE}
    index = _model_index(recipe, metrics, task)
    if index:
        out["model-index"] = index
    return out


def embedder_metadata(recipe: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """The Hub front matter of a distilled embedder's card."""
    task = {"type": "information-retrieval", "name": "Passage retrieval (questions to their paragraphs)"}
    return _metadata(
        recipe,
        metrics,
        library="sentence-transformers",
        pipeline_tag="sentence-similarity",
        tags=[*EMBEDDER_TAGS, "knowledge-distillation", "haystack"],
        task=task,
    )


def reader_metadata(recipe: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """The Hub front matter of an extractive reader's card (a fine-tuned teacher, a distilled or a gold-spans
    student); only a student that learnt from the teacher is tagged knowledge-distillation."""
    distilled = recipe.get("task") != "finetune_reader" and _distilled(recipe)
    tags = ["extractive-qa", *(["knowledge-distillation"] if distilled else []), "haystack"]
    task = {"type": "question-answering", "name": "Extractive question answering (gold paragraph as context)"}
    return _metadata(recipe, metrics, library="transformers", pipeline_tag="question-answering", tags=tags, task=task)


def average_metadata(*, reader: bool = False) -> dict[str, Any]:
    """The Hub front matter of a weight average (``distill average``): its ingredients are local folders and its dev
    slice lives in another recipe, so no base model, data set or model-index."""
    if reader:
        library, pipeline_tag, tags = "transformers", "question-answering", ["extractive-qa"]
    else:
        library, pipeline_tag, tags = "sentence-transformers", "sentence-similarity", list(EMBEDDER_TAGS)
    return {
        "library_name": library,
        "pipeline_tag": pipeline_tag,
        "tags": [*tags, "model-soup", "haystack"],
        "license": LICENSE,
    }


AVERAGE_CARD_TITLE = "# Weight average of"


def average_card(folders: Sequence[Path], weights: Sequence[float], weights_file: Path, *, reader: bool) -> str:
    """The model card of a weight average (``distill average``): each ingredient with its weight and the sha256
    prefix of its ``weights_file``, the hashes saying which weights went in when a folder is retrained later."""
    rows = "\n".join(
        f"| `{folder}` | {w:.4g} | `{_sha256(folder / weights_file)[:16]}` |" for folder, w in zip(folders, weights)
    )
    return (
        front_matter(average_metadata(reader=reader)) + f"{AVERAGE_CARD_TITLE} {len(folders)} students\n\n"
        "Every floating-point tensor is the weighted mean of the same tensor in these models "
        f"(`{weights_file}` sha256 prefix of each ingredient):\n\n"
        f"| model | weight | weights sha256 |\n|---|---|---|\n{rows}\n\n"
        "Their own cards, recipes and dev-slice metrics stay in their folders; this average has not been scored "
        "by training. Measure it with `distill swap` and `distill eval`.\n\n"
        'Reference: Wortsman et al., "Model soups: averaging weights of multiple fine-tuned models improves '
        'accuracy without increasing inference time", ICML 2022.\n'
    )


def write_average_files(out: Path, folders: Sequence[Path], weights: Sequence[float], weights_file: Path) -> None:
    """README.md, config.yaml and metrics.json of a weight average, what a training run writes beside a student."""
    reader = not (folders[0] / "modules.json").exists()  # sentence-transformers folders have one, readers do not
    (out / "README.md").write_text(average_card(folders, weights, weights_file, reader=reader), encoding="utf-8")
    # What the student browser reads beside the card: the "recipe" of an average is its ingredients and weights.
    (out / "config.yaml").write_text(
        yaml.safe_dump(
            {"task": "average", "kind": "reader" if reader else "embedder", "models": [str(f) for f in folders]}
            | {"weights": list(weights)},
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    write_metrics(out, {"average_of": [str(f) for f in folders], "weights": list(weights)})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def card_metadata(recipe: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """The front matter of a saved folder's card, by its recipe's task (an average: by the ``kind`` its config.yaml
    records, ``embedder`` in averages written before it did)."""
    task = recipe.get("task")
    if task == "average":
        return average_metadata(reader=recipe.get("kind") == "reader")
    if task in ("reader", "finetune_reader"):
        return reader_metadata(recipe, metrics)
    return embedder_metadata(recipe, metrics)


def rewrite_card(folder: str | Path) -> Path:
    """Replace the front matter of ``folder``/README.md by the one its config.yaml and metrics.json give now, keeping
    the body byte for byte (its versions and timings are those of the run that wrote it)."""
    folder = Path(folder)
    card = folder / "README.md"
    for name in ("README.md", "config.yaml"):
        if not (folder / name).is_file():
            raise DistillError(f"{folder} has no {name}: rewrite_card needs a saved folder with a card and its recipe")
    recipe = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    _, body = split_front_matter(card.read_text(encoding="utf-8"))
    card.write_text(front_matter(card_metadata(recipe, metrics)) + body, encoding="utf-8")
    return card
