"""The documents a user's indexing pipeline writes: its preprocessing (cleaners, splitters, whatever the file connects
before the document embedder) built from the file exactly as written, run once over a corpus, and cached on disk.

The teacher embeds these chunks (through the teacher cache), a student trains on them, pseudo-queries are cut from
them and evaluation writes them, so every stage sees the passages the pipeline serves, and the teacher's pass over
them is paid once. Each chunk keeps the corpus document it was cut from (:attr:`Chunks.sources`): the splitter's
``source_id`` where that names a corpus document, else the ``doc_id`` every corpus loader puts in meta (a
``DocumentCleaner`` before the splitter gives documents new ids, so ``source_id`` then names the cleaned copy).

Bad input is one line before any teacher pass: a splitter that needs a download at warm-up (NLTK's sentence model,
tiktoken's files: this machine has no network), documents with empty content (counted, skipped), and preprocessing
that leaves no text at all (the first component that did, named).

The cache: ``DISTILL_HOME/chunks/chunks-<sha256(namespace)[:16]>.jsonl``, a header line (format and namespace) and
one ``Document.to_dict()`` a line. The namespace holds the preprocessing components as the file writes them (type,
init_parameters), the connections among them and which output feeds the embedder, the Haystack version that runs
them (splitters change between releases), and the corpus's fingerprint (each document's id, content and meta); a
file whose header differs, or that does not read, is computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haystack import Document

from distill.common.models import distill_home
from distill.common.outputs import write_atomic
from distill.errors import DistillError
from distill.pipelines.checks import first_line, warm_up
from distill.pipelines.loading import load_pipeline, type_name
from distill.pipelines.user import upstream

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Settings that make a splitter download at warm-up: setting -> value -> what it downloads.
DOWNLOADS = {
    "split_by": {"sentence": "NLTK's sentence model", "token": "tiktoken's encoding files"},
    "split_unit": {"token": "tiktoken's encoding files"},
}
# RecursiveDocumentSplitter's default separators include "sentence", which loads NLTK's sentence model.
DEFAULT_SEPARATORS = {"RecursiveDocumentSplitter": ["\n\n", "sentence", "\n", " "]}


def copy_documents(documents: list[Document]) -> list[Document]:
    return [Document(id=d.id, content=d.content, meta=dict(d.meta)) for d in documents]


def _needs_download(component: dict[str, Any]) -> tuple[str, str] | None:
    """(the setting as the file writes it, what it downloads) for a component that downloads at warm-up."""
    params = component.get("init_parameters") or {}
    for key, values in DOWNLOADS.items():
        if params.get(key) in values:
            return f"{key}: {params[key]}", values[params[key]]
    if params.get("respect_sentence_boundary"):
        return "respect_sentence_boundary: true", "NLTK's sentence model"
    separators = params.get("separators", DEFAULT_SEPARATORS.get(type_name(component)))
    if isinstance(separators, list) and "sentence" in separators:
        return "separators with 'sentence'", "NLTK's sentence model"
    return None


@dataclass(frozen=True)
class Preprocessing:
    """The preprocessing of an indexing pipeline: a pipeline of its own, fed the corpus, feeding the embedder."""

    data: dict[str, Any]  # the preprocessing components as the file writes them, and the connections among them
    names: tuple[str, ...]  # in the order they run
    entry: str  # the component the corpus goes into
    output: tuple[str, str]  # (component, socket) whose documents the embedder takes
    name: str  # the file, for errors

    @classmethod
    def of(cls, data: dict[str, Any], embedder: str, name: str) -> Preprocessing | None:
        """The preprocessing before ``embedder`` (None: documents go straight into it), checked before it is built:
        a setting that downloads at warm-up is refused in one line."""
        names = upstream(data, embedder)
        if not names:
            return None
        components = data["components"]
        for component in names:
            if found := _needs_download(components[component]):
                setting, what = found
                raise DistillError(
                    f"{name}: component {component!r} ({type_name(components[component])}) has {setting}, which "
                    f"downloads {what} when it warms up, and distill runs offline: split by words or passages instead "
                    "(split_by: word or passage, with split_length in those units)"
                )
        inner = [
            c
            for c in data.get("connections") or []
            if c["sender"].split(".", 1)[0] in names and c["receiver"].split(".", 1)[0] in names
        ]
        feeds = [
            c["sender"]
            for c in data.get("connections") or []
            if c["receiver"] == f"{embedder}.documents" and c["sender"].split(".", 1)[0] in names
        ]
        entries = [n for n in names if not any(c["receiver"].split(".", 1)[0] == n for c in inner)]
        if len(feeds) != 1 or len(entries) != 1:
            raise DistillError(
                f"{name}: the components before the document embedder {embedder!r} ({', '.join(names)}) are not one "
                f"chain from the corpus to it ({len(entries)} take the corpus, {len(feeds)} feed the embedder): "
                "distill runs the preprocessing as one chain, documents in at one component and out of one"
            )
        sub = {k: v for k, v in data.items() if k not in ("components", "connections")}
        sub |= {"components": {n: components[n] for n in names}, "connections": inner}
        component, socket = feeds[0].split(".", 1)
        return cls(sub, _run_order(names, inner), entries[0], (component, socket), name)

    def namespace(self, documents: list[Document]) -> dict[str, Any]:
        """What the chunks of ``documents`` depend on (the cache's key)."""
        from importlib.metadata import version

        return {
            "kind": "chunks",
            "components": self.data["components"],
            "connections": self.data["connections"],
            "entry": self.entry,
            "output": list(self.output),
            "haystack": version("haystack-ai"),
            "corpus": corpus_fingerprint(documents),
        }


def _run_order(names: tuple[str, ...], connections: list[dict[str, str]]) -> tuple[str, ...]:
    """``names`` sorted so that every sender comes before its receivers (the file's order among equals)."""
    edges = {(c["sender"].split(".", 1)[0], c["receiver"].split(".", 1)[0]) for c in connections}
    order: list[str] = []
    left = list(names)
    while left:
        ready = next((n for n in left if not any(r == n and s in left for s, r in edges)), left[0])
        order.append(ready)
        left.remove(ready)
    return tuple(order)


def corpus_fingerprint(documents: list[Document]) -> str:
    digest = hashlib.sha256()
    for d in documents:
        digest.update(json.dumps([d.id, d.content, d.meta], sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass
class Chunks:
    """What an indexing pipeline's preprocessing made of a corpus: the documents it hands the embedder (what the
    pipeline writes), each with the corpus document it came from."""

    documents: list[Document]
    sources: list[str | None]  # per chunk, the id of its corpus document (None: not found in its meta)
    components: tuple[str, ...]  # the preprocessing, in the order it runs
    given: int  # corpus documents given
    skipped_empty: int  # of them, with empty content: skipped, never preprocessed
    cached: bool = False  # read from the chunk cache rather than computed now

    @property
    def empty(self) -> int:
        """Chunks without text (training skips them; evaluation writes them as the pipeline does)."""
        return sum(not (d.content or "").strip() for d in self.documents)

    @property
    def without_chunks(self) -> int:
        """Corpus documents (of those preprocessed) that gave no chunk."""
        return self.given - self.skipped_empty - len({s for s in self.sources if s is not None})

    def source_map(self) -> dict[str, str]:
        """Chunk id -> its corpus document's id, for the chunks whose document is known."""
        return {d.id: s for d, s in zip(self.documents, self.sources) if s is not None}

    def summary(self) -> dict[str, Any]:
        return {
            "documents": self.given,
            "skipped_empty_documents": self.skipped_empty,
            "chunks": len(self.documents),
            "empty_chunks": self.empty,
            "documents_without_chunks": self.without_chunks,
            "components": list(self.components),
        }


def preprocess(prep: Preprocessing, documents: list[Document]) -> Chunks:
    """The chunks ``prep`` makes of ``documents``: read from the chunk cache, or computed once and stored there.

    Documents with empty content are counted and skipped (a splitter refuses None and skips ""); preprocessing that
    leaves no text is a DistillError naming the first component that left none."""
    kept = [d for d in documents if (d.content or "").strip()]
    skipped = len(documents) - len(kept)
    if skipped:
        logger.warning("%s: skipped %d of %d documents with empty content", prep.name, skipped, len(documents))
    if not kept:
        raise DistillError(f"every one of the {len(documents)} documents has empty content: nothing to index")
    namespace = prep.namespace(kept)
    text = json.dumps(namespace, sort_keys=True, separators=(",", ":"), default=str)
    path = distill_home() / "chunks" / f"chunks-{hashlib.sha256(text.encode()).hexdigest()[:16]}.jsonl"
    chunks = _read(path, json.loads(text))
    cached = chunks is not None
    if chunks is None:
        chunks = _run(prep, kept)
        _write(path, json.loads(text), chunks)
    ids = {d.id for d in kept}
    sources = [next((v for v in (d.meta.get("source_id"), d.meta.get("doc_id")) if v in ids), None) for d in chunks]
    out = Chunks(chunks, sources, prep.names, len(documents), skipped, cached)
    if unknown := sum(s is None for s in sources):
        logger.warning("%s: %d chunks name no corpus document (source_id, doc_id)", prep.name, unknown)
    if out.without_chunks:
        logger.warning("%s: %d documents gave no chunk", prep.name, out.without_chunks)
    logger.info(
        "%s: %d documents -> %d chunks (%s)", prep.name, len(kept), len(chunks), "cached" if cached else "computed"
    )
    return out


def _run(prep: Preprocessing, documents: list[Document]) -> list[Document]:
    from haystack.core.errors import PipelineRuntimeError

    pipeline = load_pipeline(prep.data, name=prep.name)
    if "documents" not in pipeline.inputs().get(prep.entry, {}):
        raise DistillError(
            f"{prep.name}: component {prep.entry!r} ({type_name(prep.data['components'][prep.entry])}) takes no "
            "'documents' input: distill gives the indexing pipeline the corpus as Haystack documents, so it must "
            "start at a component that takes them (leave converters out)"
        )
    warm_up(pipeline, prep.name)
    try:
        inputs = {prep.entry: {"documents": copy_documents(documents)}}
        result = pipeline.run(inputs, include_outputs_from=set(prep.names))
    except PipelineRuntimeError as e:
        who = getattr(e, "component_name", None) or "a preprocessing component"
        cause = e.__cause__ if e.__cause__ is not None else e
        raise DistillError(
            f"{prep.name}: component {who!r} failed on the corpus: {first_line(cause)} (check its init_parameters)"
        ) from e
    for component in prep.names:  # the first component that left no text is the one to change
        out = (result.get(component) or {}).get("documents")
        if out is not None and not any((d.content or "").strip() for d in out):
            _left_nothing(prep, component, len(documents), out)
    component, socket = prep.output
    chunks = (result.get(component) or {}).get(socket) or []
    if not any((d.content or "").strip() for d in chunks):
        _left_nothing(prep, component, len(documents), chunks)
    return chunks


def _left_nothing(prep: Preprocessing, component: str, given: int, out: list[Document]) -> None:
    spec = prep.data["components"][component]
    settings = json.dumps(spec.get("init_parameters") or {}, default=str)
    made = f"{len(out)} documents, all empty" if out else "no documents"
    raise DistillError(
        f"{prep.name}: component {component!r} ({type_name(spec)}) left no text of the {given} documents given to the "
        f"preprocessing (it made {made}): change the init_parameters that remove text ({settings[:200]})"
    )


def _read(path: Path, namespace: dict[str, Any]) -> list[Document] | None:
    if not path.exists():
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
        if header != {"format": FORMAT_VERSION, "namespace": namespace}:
            logger.warning("chunk cache %s was written for other settings; computing the chunks again", path)
            return None
        documents = [Document.from_dict(json.loads(line)) for line in lines[1:]]
    except (OSError, ValueError, IndexError, TypeError, KeyError) as e:
        logger.warning("chunk cache %s does not read (%s); computing the chunks again", path, e)
        return None
    for d in documents:  # JSON has no tuples: the splitter's overlap ranges come back as it wrote them
        for overlap in d.meta.get("_split_overlap") or []:
            if isinstance(overlap, dict) and isinstance(overlap.get("range"), list):
                overlap["range"] = tuple(overlap["range"])
    return documents


def _write(path: Path, namespace: dict[str, Any], documents: list[Document]) -> None:
    try:
        lines = [json.dumps({"format": FORMAT_VERSION, "namespace": namespace})]
        lines += [json.dumps(d.to_dict(flatten=False)) for d in documents]
    except (TypeError, ValueError) as e:  # a meta value JSON cannot hold: the chunks are computed on every run
        logger.warning("the chunks cannot be cached (%s): they will be computed again next time", e)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "\n".join(lines) + "\n")
