"""Haystack RAG and hybrid pipelines as their users write them (``examples/``), pointed at the tiny test models.

:func:`tiny_copy` rewrites only what a test must: every sentence-transformers embedder's model (the tiny embedder),
a ranker's cross-encoder (:func:`make_cross_encoder`, a tiny random one: none installs here), and the document
store's index (in-memory stores of one index share their documents inside a test process). Everything else (the
prompt builder, its tuple, the generator and its model) stays as the example holds it.
"""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, build_tokenizer, tiny_bert_config

from distill.pipelines.loading import dump_pipeline_dict, is_embedder, read_pipeline_dict

EXAMPLES = REPO / "examples"


def make_cross_encoder(folder: Path) -> Path:
    """A tiny random cross-encoder (BERT with one relevance logit) that sentence-transformers' CrossEncoder loads."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    config = tiny_bert_config(len(tokenizer))
    config.num_labels = 1
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_copy(
    example: str | Path,
    folder: Path,
    embedder: Path,
    *,
    index: str,
    ranker: Path | None = None,
    names: tuple[str, ...] = ("indexing", "query"),
) -> tuple[Path, ...]:
    """``examples/EXAMPLE/{indexing,query}.yaml`` (or ``names``) written to ``folder`` with the tiny models and
    ``index``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        data = read_pipeline_dict(EXAMPLES / example / f"{name}.yaml")
        for component in data["components"].values():
            params = component.get("init_parameters") or {}
            if is_embedder(component):
                params["model"] = str(embedder)
            elif "Ranker" in component["type"] and ranker is not None:
                params["model"] = str(ranker)
            store = params.get("document_store")
            if isinstance(store, dict):
                store["init_parameters"]["index"] = index
        path = folder / f"{name}.yaml"
        path.write_text(dump_pipeline_dict(data), encoding="utf-8")
        out.append(path)
    return tuple(out)


def rag_report(folder: Path, squad: Path, teacher: Path, student: Path) -> Path:
    """``distill eval teacher=... student=...`` of examples/rag (teacher) and its swap to ``student``: the report
    path (absolute paths inside, so any working directory reads it)."""
    from distill.data.datasets import load_squad_file
    from distill.evaluation.runner import System, evaluate
    from distill.pipelines.loading import swap_files

    indexing, query = tiny_copy("rag", folder / "teacher", teacher, index="live-rag")
    swap_files([indexing, query], folder / "student", model=str(student))
    systems = [System.parse(f"teacher={query}"), System.parse(f"student={folder / 'student' / 'query.yaml'}")]
    config = {"data": str(squad), "articles": None, "questions": None, "seed": 0}
    evaluate(systems, load_squad_file(squad), warmup=0, out_dir=folder / "eval", config=config, progress=False)
    return folder / "eval" / "report.json"
