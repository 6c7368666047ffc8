"""The part of a user's query pipeline that retrieves, and the list of documents distill scores in it.

Evaluation, ``distill adapt`` and the UI ask the same of a query pipeline, here:

- :func:`retrieval_part` chooses the scored list on purpose: the documents entering the prompt builder (a RAG
  pipeline), else those entering the reader (extractive QA), else the one list of documents the pipeline ends with.
  Beside it, where that list is not the embedding retriever's own (hybrid retrieval joined with BM25, a ranker), the
  embedding retriever's list is scored too, so that a report shows how much of a teacher-student difference survives
  fusion and reranking.
- It leaves out what distill never builds nor runs: prompt builders, generators (named one, or outputting
  ``replies``, or a 2.x one Haystack 3 removed), whatever they feed and whatever only feeds them. Every other
  component and connection stays exactly as written.
- It refuses, in one line naming the component and what to change, a query pipeline whose student or scored list
  would be a guess: two text embedders, a joiner of embedding retrievers of different models, a generator that the
  retrieval depends on, a prompt that needs an input distill cannot give, and (``require_embedding``, where a teacher
  is distilled) no embedding retriever at all.
- :func:`render_prompt` runs the prompt builder alone on a question and the scored documents (a pure template), so the
  UI shows what the generator would receive without calling it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from distill.errors import DistillError
from distill.pipelines.haystack_yaml import unbuildable_generators
from distill.pipelines.loading import pipeline_from_dict, type_name
from distill.pipelines.user import Edge, UserPipeline
from distill.pipelines.user import ancestors as _ancestors
from distill.pipelines.user import edges as _edges

# Roles whose components output a list of documents (distill.pipelines.user.ROLES).
DOCUMENT_ROLES = ("keyword_retriever", "retriever", "joiner", "ranker")
# A prompt's variables that take the user's question (Haystack's tutorials name it `query` or `question`).
QUESTION_VARIABLES = ("query", "question", "text")


@dataclass(frozen=True)
class RetrievalPart:
    """A query pipeline's retrieval part (what distill builds and times) and the lists it scores."""

    name: str  # the file, as errors name it
    data: dict[str, Any]  # the pipeline less ``pruned`` (the file's own dict when nothing is pruned: do not change it)
    scored: str  # the component whose documents are scored
    scored_role: str | None  # its role in distill.pipelines.user.ROLES
    into: str | None  # the prompt builder or reader that receives the scored list (None: the pipeline's output)
    embedding: str | None  # the embedding retriever whose own list is scored beside (None: ``scored`` is it, or none)
    upstream: tuple[str, ...]  # the components up to ``embedding``, itself included: what its list costs
    reader: str | None
    prompt_builder: str | None  # the prompt builder that receives the scored list
    prompt_documents: str | None  # its input that takes them
    prompt_question: tuple[str, ...]  # its inputs that take the question
    pruned: tuple[str, ...]  # left out, in the file's order
    prompt_component: dict[str, Any] | None = None  # the prompt builder's settings as written (for render_prompt)

    def describe(self) -> str:
        """What is scored, in words: ``the documents 'joiner' sends into 'prompt_builder' (and ...)``."""
        into = f" sends into {self.into!r}" if self.into else " outputs"
        text = f"the documents {self.scored!r}{into}"
        if self.embedding:
            text += f", and beside them the list of the embedding retriever {self.embedding!r}"
        if self.pruned:
            text += f" (not built: {', '.join(map(repr, self.pruned))})"
        return text


def _descendants(edges: list[Edge], nodes: Iterable[str]) -> set[str]:
    return _ancestors([(r, rs, s, ss) for s, ss, r, rs in edges], nodes)


def _without(data: dict[str, Any], left_out: set[str]) -> dict[str, Any]:
    """``data`` less the components ``left_out`` and their connections, everything else as it is."""
    return {
        **data,
        "components": {n: c for n, c in data["components"].items() if n not in left_out},
        "connections": [
            c
            for c in data.get("connections") or []
            if c["sender"].partition(".")[0] not in left_out and c["receiver"].partition(".")[0] not in left_out
        ],
    }


def _kind(data: dict[str, Any], component: str) -> str:
    return type_name(data["components"][component])


def _embedding_retrievers(pipeline: UserPipeline, edges: list[Edge]) -> list[str]:
    """The retrievers that search by the embedding of a text embedder, in the file's order."""
    texts = set(pipeline.named("text_embedder"))
    fed = {r for s, _, r, _ in edges if s in texts}
    return [n for n in pipeline.named("retriever") if n in fed]


def _scored(pipeline: UserPipeline, edges: list[Edge], never: set[str]) -> tuple[str, str | None, str | None]:
    """The scored component, the prompt builder or reader that receives its list, and the input it arrives at."""
    name, components = str(pipeline.path), pipeline.data["components"]
    for role in ("prompt_builder", "reader"):
        receivers = set(pipeline.named(role))
        into = [(s, r, rs) for s, ss, r, rs in edges if r in receivers and ss == "documents" and s not in never]
        if len({s for s, _, _ in into}) > 1:
            into = [edge for edge in into if edge[2] == "documents"] or into
        senders = list(dict.fromkeys(s for s, _, _ in into))
        if len(senders) > 1:
            raise DistillError(
                f"{name}: components {senders} each send documents into {into[0][1]!r}: distill scores the one list "
                "it receives; join them with a DocumentJoiner before it"
            )
        if senders:
            return into[0][0], into[0][1], into[0][2]
    producers = [
        n
        for n in components
        if n not in never
        and (pipeline.role_of(n) in DOCUMENT_ROLES or any(s == n and ss == "documents" for s, ss, *_ in edges))
    ]
    last = [n for n in producers if not any(s == n and ss == "documents" and r in producers for s, ss, r, _ in edges)]
    if len(last) > 1:
        embedding = [n for n in last if n in _embedding_retrievers(pipeline, edges)]
        if len(embedding) != 1:
            raise DistillError(
                f"{name}: components {last} each end with a list of documents and none feeds another: distill scores "
                "one list on purpose; join them with a DocumentJoiner (or keep one)"
            )
        last = embedding
    if not last:
        raise DistillError(
            f"{name}: no component outputs documents: distill evaluates what a query pipeline retrieves; add an "
            "embedding retriever (e.g. InMemoryEmbeddingRetriever) fed by a SentenceTransformersTextEmbedder"
        )
    return last[0], None, None


def _model(data: dict[str, Any], component: str) -> str:
    return str((data["components"][component].get("init_parameters") or {}).get("model"))


def _check_embedders(pipeline: UserPipeline, edges: list[Edge], kept: set[str]) -> None:
    """One text embedder: a student replaces one teacher, and one embedding list is scored beside a fused one."""
    name, data = str(pipeline.path), pipeline.data
    texts = [n for n in pipeline.named("text_embedder") if n in kept]
    for joiner in (n for n in pipeline.named("joiner") if n in kept):
        feeding = _ancestors(edges, [joiner])
        retrievers = [r for r in _embedding_retrievers(pipeline, edges) if r in feeding]
        models = {r: _model(data, s) for r in retrievers for s, _, rr, _ in edges if rr == r and s in texts}
        if len(set(models.values())) > 1:
            listed = ", ".join(f"{r!r} ({m})" for r, m in models.items())
            raise DistillError(
                f"{name}: component {joiner!r} joins embedding retrievers of different models ({listed}): a student "
                "replaces one teacher model; keep one of them, or embed every retriever's query with the same model"
            )
    if len(texts) > 1:
        listed = ", ".join(f"{t!r} ({_model(data, t)})" for t in texts)
        idle = [t for t in texts if not any(s == t and r in pipeline.named("retriever") for s, _, r, _ in edges)]
        fix = f"remove {idle[0]!r}, which feeds no retriever" if idle else "keep one, with the retriever it feeds"
        raise DistillError(
            f"{name}: {len(texts)} text embedders ({listed}): distill distils the one text embedder that embeds the "
            f"question for the embedding retriever; {fix}"
        )


def _alone(part: RetrievalPart) -> Any | None:
    """The prompt builder in a pipeline of its own (None: none, or it does not build here, e.g. a class this Haystack
    does not have: nothing to render, nothing to check)."""
    if part.prompt_builder is None or part.prompt_component is None:
        return None
    only = {"components": {part.prompt_builder: copy.deepcopy(part.prompt_component)}, "connections": []}
    try:
        return pipeline_from_dict(only, name=part.name)
    except DistillError:
        return None


def _check_prompt(part: RetrievalPart, data: dict[str, Any], edges: list[Edge]) -> tuple[str, ...]:
    """The prompt builder's inputs that take the question; a required one distill cannot fill is refused."""
    builder, alone = part.prompt_builder, _alone(part)
    if builder is None or alone is None:
        return ()
    inputs = alone.inputs().get(builder, {})
    fed = {rs for _, _, r, rs in edges if r == builder}
    question = tuple(s for s in inputs if s in QUESTION_VARIABLES and s not in fed)
    missing = [
        s for s, info in inputs.items() if info.get("is_mandatory") and s not in (*question, part.prompt_documents)
    ]
    if missing:
        raise DistillError(
            f"{part.name}: component {builder!r} ({_kind(data, builder)}) requires prompt variable {missing[0]!r}, "
            f"which distill cannot give (it gives the question as {' or '.join(QUESTION_VARIABLES)} and the documents "
            f"as {part.prompt_documents!r}): drop {missing[0]!r} from its required_variables (or give it a default in "
            "the template)"
        )
    return question


def _never_built(pipeline: UserPipeline) -> set[str]:
    """The prompt builders and generators: distill builds neither (nor what they feed)."""
    data = pipeline.data
    return {*pipeline.named("generator"), *unbuildable_generators(data), *pipeline.named("prompt_builder")}


def retrieval_part(pipeline: UserPipeline, *, require_embedding: bool = False) -> RetrievalPart:
    """The retrieval part of query pipeline ``pipeline`` and what is scored in it (see the module docstring);
    ``require_embedding`` refuses a pipeline without an embedding retriever (no student would change its results).

    Where a component of it cannot be built (a class path off Haystack's allowlist, a setting its class does not
    take), that is the error, before any about the pipeline's shape: the shape is read from class names."""
    try:
        return _retrieval_part(pipeline, require_embedding)
    except DistillError:
        never = _never_built(pipeline)
        rest = _without(pipeline.data, never | _descendants(_edges(pipeline.data), never))
        if rest["components"]:
            pipeline_from_dict(rest, name=str(pipeline.path), connect=False)
        raise


def _retrieval_part(pipeline: UserPipeline, require_embedding: bool) -> RetrievalPart:
    data, name = pipeline.data, str(pipeline.path)
    components, edges = data["components"], _edges(data)
    never = _never_built(pipeline)
    scored, into, socket = _scored(pipeline, edges, never)
    feeding = _ancestors(edges, [scored]) | {scored}
    if blocked := [n for n in components if n in feeding & never]:
        raise DistillError(
            f"{name}: component {blocked[0]!r} ({_kind(data, blocked[0])}) feeds the retrieval ({scored!r}), but "
            "distill never runs generators or prompt builders: retrieve with the question itself to distil this "
            "pipeline"
        )
    pruned = never | _descendants(edges, never)
    grew = True
    while grew:  # what only feeds left-out components is left out too
        grew = False
        for n in components:
            receivers = {r for s, _, r, _ in edges if s == n}
            if n not in pruned and n not in feeding and receivers and receivers <= pruned:
                pruned.add(n)
                grew = True
    kept = set(components) - pruned
    _check_embedders(pipeline, edges, kept)
    embedding_retrievers = [r for r in _embedding_retrievers(pipeline, edges) if r in kept]
    if require_embedding and not embedding_retrievers:
        keyword = [n for n in pipeline.named("keyword_retriever") if n in kept]
        what = (
            f"component {keyword[0]!r} ({_kind(data, keyword[0])}) ranks by keywords, which no student changes"
            if keyword
            else "no retriever searches by a text embedder's embedding"
        )
        raise DistillError(
            f"{name}: no embedding retriever: {what}; add a SentenceTransformersTextEmbedder feeding an embedding "
            "retriever (e.g. InMemoryEmbeddingRetriever) on the same document store"
        )
    beside = [r for r in embedding_retrievers if r in feeding]
    embedding = beside[0] if len(beside) == 1 and beside[0] != scored else None
    upstream = _ancestors(edges, [embedding]) | {embedding} if embedding else set()
    if pruned:
        data = _without(data, pruned)
    readers = [n for n in pipeline.named("reader") if n in kept]
    builder = into if into in pipeline.named("prompt_builder") else None
    part = RetrievalPart(
        name=name,
        data=data,
        scored=scored,
        scored_role=pipeline.role_of(scored),
        into=into,
        embedding=embedding,
        upstream=tuple(n for n in components if n in upstream),
        reader=readers[0] if readers else None,
        prompt_builder=builder,
        prompt_documents=socket if builder else None,
        prompt_question=(),
        pruned=tuple(n for n in components if n in pruned),
        prompt_component=components[builder] if builder else None,
    )
    question = _check_prompt(part, pipeline.data, edges)
    return dataclasses.replace(part, prompt_question=question) if question else part


def prompt_builder(part: RetrievalPart) -> Any | None:
    """The pipeline's prompt builder built alone, ready for :func:`render_prompt` (None: none, or it does not build)."""
    alone = _alone(part)
    return alone.get_component(part.prompt_builder) if alone is not None else None


def render_prompt(builder: Any, part: RetrievalPart, question: str, documents: list[Any]) -> str:
    """The prompt ``builder`` (the pipeline's own, built alone) renders from ``question`` and ``documents``, as text:
    a chat prompt as ``role: text`` per message."""
    inputs: dict[str, Any] = {socket: question for socket in part.prompt_question}
    if part.prompt_documents:
        inputs[part.prompt_documents] = documents
    prompt = builder.run(**inputs)["prompt"]
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{getattr(m.role, 'value', m.role)}: {m.text or ''}" for m in prompt)
