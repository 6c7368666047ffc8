"""Queries without labels, for training a student on a user's corpus: the user's own (a query file, or a BEIR
split's query ids without their qrels), pseudo-queries cut from the corpus (a passage's title, or one of its
sentences: the inverse cloze task, Lee et al., ACL 2019; or, where it has one, a sentence that asks, so that
pseudo-queries look more like questions), and variants of the user's queries with words left out (the teacher labels
each variant afresh: augmentation that keeps the teacher's function and not a copied label, as in "Knowledge
distillation: A good teacher is patient and consistent", Beyer et al., CVPR 2022; random deletion is EDA's, Wei and
Zou, EMNLP 2019). Each query keeps its kind (``user``, ``title``, ``sentence``, ``question``, ``variant``), which the
card counts."""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from haystack import Document

from distill.common.files import read_text
from distill.errors import DistillError
from distill.training.recipes import PSEUDO_KINDS

QUERY_KINDS = ("user", "title", "sentence", "question", "variant")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


@dataclass
class QueryFile:
    """Unlabelled queries as read, and what reading them skipped."""

    texts: list[str]
    source: str
    blank: int = 0
    duplicates: int = 0
    not_utf8: int = 0  # lines of the query file that are not UTF-8 text, skipped


def read_queries(spec: str) -> QueryFile:
    """Unlabelled queries from a query file (:func:`distill.data.datasets.load_queries`: one per line, or JSONL), or
    from a
    BEIR folder with a split (``folder:train``: the queries that split's qrels name; only their ids are read, never
    their judgements). Blank lines are skipped and duplicates kept once, both counted."""
    from distill.data.datasets import load_queries

    folder, _, split = spec.rpartition(":") if ":" in spec and not Path(spec).exists() else (spec, "", "")
    path = Path(folder)
    if not path.is_dir():
        found = load_queries(path)
        return QueryFile([q.text for q in found], spec, found.blank_lines, found.duplicates, found.not_utf8)
    if not split:
        raise DistillError(f"queries {spec!r}: a BEIR folder needs a split, e.g. {spec}:train")
    qrels = path / "qrels" / f"{split}.tsv"
    ids = {line.split("\t", 1)[0] for line in read_text(qrels, "qrels file").splitlines()[1:] if line.strip()}
    found = load_queries(path / "queries.jsonl")
    texts = [q.text for q in found if q.id in ids]
    if not texts:
        raise DistillError(f"{qrels} names none of the queries in {path / 'queries.jsonl'}")
    return QueryFile(texts, spec, found.blank_lines, found.duplicates, found.not_utf8)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text or "") if s.strip()]


def pseudo_queries(documents: list[Document], count: int | None, kind: str, seed: int) -> list[tuple[str, str]]:
    """Up to ``count`` pseudo-queries (text, kind) from a seeded sample of passages, one per passage in a round: its
    title (``title``), one of its sentences of 4 to 40 words (``sentence``: the inverse cloze task), either in turn
    (``mixed``), or one of its sentences that ends in a question mark where it has one, else a sentence
    (``question``: forum answers quote and ask questions, which look more like a user's queries than statements do).
    ``question`` draws the same sentence as ``sentence`` first and replaces it from a second seeded draw only where
    the passage asks something, so a passage that asks nothing gives the same pseudo-query (and cached teacher row) as
    with ``sentence`` (unless a sentence is shared between passages). A title shared by several passages (the chunks
    of one document, a SQuAD article's paragraphs) names none of them: such a passage, and one whose title or
    sentence is already taken, gives one of its other sentences instead. Passages with nothing usable (no title, no
    sentence of that length) give none. ``None`` is one round; a ``count`` beyond what one round gives takes further
    rounds over the same passages in the same order, each passage giving a sentence not yet taken, until ``count`` or
    until a round gives nothing new (the first round is the same whatever ``count`` is, so a larger count adds
    queries and never changes the first ones)."""
    if kind not in PSEUDO_KINDS:
        raise DistillError(f"recipe.data.pseudo_kind must be one of {', '.join(PSEUDO_KINDS)}, got {kind!r}")
    rng = random.Random(seed)
    asking = random.Random(seed + 3)
    order = list(range(len(documents)))
    rng.shuffle(order)
    titles = Counter(str(d.meta.get("title") or "").strip() for d in documents)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    while True:
        before = len(out)
        for n, i in enumerate(order):
            if count is not None and len(out) >= count:
                return out
            doc = documents[i]
            wanted = kind if kind != "mixed" else ("title", "sentence")[n % 2]
            title = str(doc.meta.get("title") or "").strip()
            if wanted == "title" and title and titles[title] == 1 and title not in seen:
                seen.add(title)
                out.append((title, "title"))
                continue
            options = [s for s in sentences(doc.content or "") if 4 <= len(s.split()) <= 40 and s not in seen]
            if options:
                text, made = rng.choice(options), "sentence"
                if kind == "question" and (questions := [s for s in options if s.endswith("?")]):
                    text, made = asking.choice(questions), "question"
                seen.add(text)
                out.append((text, made))
        if count is None or len(out) == before:
            return out


def query_variants(
    queries: list[tuple[str, str]], per_query: int, seed: int, skip: set[int] | frozenset[int] = frozenset()
) -> list[tuple[str, str]]:
    """Up to ``per_query`` variants (text, ``variant``) of each user query of 3 or more words, in the queries' order:
    each drops a seeded fifth of its words (at least one; two or more are kept), in their order. Positions in
    ``skip`` (the held-out queries) give none, so no variant of a held-out query is trained on. A variant that is
    already a query, or already drawn, is not repeated; a query with fewer distinct variants gives fewer."""
    if per_query <= 0:
        return []
    rng = random.Random(seed + 2)
    seen = {text for text, _ in queries}
    out: list[tuple[str, str]] = []
    for i, (text, kind) in enumerate(queries):
        words = text.split()
        if kind != "user" or i in skip or len(words) < 3:
            continue
        drop = min(max(1, round(len(words) / 5)), len(words) - 2)
        made = 0
        for _ in range(4 * per_query):  # a few tries: short queries have few distinct variants
            gone = set(rng.sample(range(len(words)), drop))
            variant = " ".join(w for n, w in enumerate(words) if n not in gone)
            if variant in seen:
                continue
            seen.add(variant)
            out.append((variant, "variant"))
            made += 1
            if made == per_query:
                break
    return out
