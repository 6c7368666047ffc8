"""What distill learns from a user's pair of pipelines (indexing and query YAML), read once.

``distill adapt`` builds one :class:`UserPipelines` with :func:`read_user_pipelines` and passes it along (the teacher,
the plan, training, the swap, evaluation); the commands that take paths build their own where they need one. Each
component has at most one role, found from its type's class name under any component name (:data:`ROLES`); the
components in no role are kept as the file holds them (:attr:`UserPipeline.rest`). What documents pass through
before the indexing pipeline's document embedder (cleaners, splitters, whatever the file connects there) is its
preprocessing (:attr:`UserPipeline.preprocessing`), found from the connections rather than from class names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.pipelines.loading import is_generator, is_reader, is_text_embedder, read_pipeline_dict, type_name
from distill.pipelines.stores import store_name, store_type

KEYWORD_MARKS = ("BM25", "Keyword")  # in a retriever's class name: it ranks by words, so no student changes its list


def is_keyword_retriever(component: dict[str, Any]) -> bool:
    name = type_name(component)
    return "Retriever" in name and any(mark in name for mark in KEYWORD_MARKS)


# Role -> what a component in it looks like. A component takes the first role that matches, so a narrower role goes
# above a wider one (`keyword_retriever` above `retriever`). The roles of a query pipeline's retrieval part and of
# what distill never runs (the prompt builder and the generator) are read by distill.pipelines.retrieval.
ROLES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "document_embedder": lambda c: type_name(c).endswith("DocumentEmbedder"),
    "text_embedder": is_text_embedder,
    "writer": lambda c: type_name(c).endswith("DocumentWriter"),
    "keyword_retriever": is_keyword_retriever,
    "retriever": lambda c: "Retriever" in type_name(c),
    "joiner": lambda c: type_name(c).endswith("DocumentJoiner"),
    "ranker": lambda c: "Ranker" in type_name(c),
    "reader": is_reader,
    "prompt_builder": lambda c: type_name(c).endswith("PromptBuilder"),
    "generator": is_generator,
}


@dataclass(frozen=True)
class Store:
    """A document store as a component's settings serialise it."""

    component: str  # the writer or retriever whose ``init_parameters.document_store`` it is
    type: str  # its class name
    name: str | None  # the index, collection or table it reads and writes; None for a store stores.py does not know


@dataclass(frozen=True)
class UserPipeline:
    """One pipeline file as :func:`~distill.pipelines.loading.read_pipeline_dict` returns it, its components by role.

    ``data`` is shared by everything that holds this object: copy it before changing it (``swap``, ``fit_devices``
    and ``resolve_models`` do)."""

    path: Path
    data: dict[str, Any]
    roles: Mapping[str, tuple[str, ...]]  # role -> component names in the file's order; only the roles present
    stores: tuple[Store, ...]

    @classmethod
    def parse(cls, path: Path, data: dict[str, Any]) -> UserPipeline:
        roles: dict[str, tuple[str, ...]] = {}
        stores = []
        for name, component in data["components"].items():
            role = next((role for role, looks_like in ROLES.items() if looks_like(component)), None)
            if role is not None:
                roles[role] = (*roles.get(role, ()), name)
            store = (component.get("init_parameters") or {}).get("document_store")
            if isinstance(store, dict):
                stores.append(Store(name, store_type(store), store_name(store)))
        return cls(path, data, roles, tuple(stores))

    def named(self, role: str) -> tuple[str, ...]:
        """The components in ``role`` (none: an empty tuple)."""
        return self.roles.get(role, ())

    def role_of(self, component: str) -> str | None:
        """The role of component ``component`` (None: in no role)."""
        return next((role for role, names in self.roles.items() if component in names), None)

    @property
    def preprocessing(self) -> tuple[str, ...]:
        """The components upstream of the document embedder, in the file's order (none without exactly one)."""
        names = self.named("document_embedder")
        return upstream(self.data, names[0]) if len(names) == 1 else ()

    @property
    def rest(self) -> dict[str, dict[str, Any]]:
        """The components in no role, as the file holds them."""
        placed = {name for names in self.roles.values() for name in names}
        return {name: c for name, c in self.data["components"].items() if name not in placed}


@dataclass(frozen=True)
class UserPipelines:
    """A user's indexing pipeline (documents in) and query pipeline (questions in), each read once."""

    indexing: UserPipeline
    query: UserPipeline

    @property
    def teacher_model(self) -> str | None:
        """The model of the indexing pipeline's document embedder as the file names it (None unless it has exactly
        one that names one); :class:`~distill.teacher.embedders.PipelineTeacher` checks it is one to distil."""
        names = self.indexing.named("document_embedder")
        if len(names) != 1:
            return None
        model = (self.indexing.data["components"][names[0]].get("init_parameters") or {}).get("model")
        return model if isinstance(model, str) and model else None

    @property
    def files(self) -> list[tuple[Path, dict[str, Any]]]:
        """Each file's path and dict, indexing first (what :func:`~distill.pipelines.loading.swap_pipelines` takes)."""
        return [(self.indexing.path, self.indexing.data), (self.query.path, self.query.data)]


Edge = tuple[str, str, str, str]  # sender, its socket, receiver, its socket


def edges(data: dict[str, Any]) -> list[Edge]:
    """A pipeline dict's connections as (sender, socket, receiver, socket)."""
    out = []
    for connection in data.get("connections") or []:
        sender, _, out_socket = connection["sender"].partition(".")
        receiver, _, in_socket = connection["receiver"].partition(".")
        out.append((sender, out_socket, receiver, in_socket))
    return out


def ancestors(edges: list[Edge], nodes: Iterable[str]) -> set[str]:
    """The components whose outputs reach any of ``nodes`` through ``edges``."""
    found: set[str] = set()
    todo = list(nodes)
    while todo:
        node = todo.pop()
        for sender, _, receiver, _ in edges:
            if receiver == node and sender not in found:
                found.add(sender)
                todo.append(sender)
    return found


def upstream(data: dict[str, Any], name: str) -> tuple[str, ...]:
    """The components whose outputs reach component ``name`` through the connections, in the file's order."""
    found = ancestors(edges(data), [name]) - {name}
    return tuple(c for c in data["components"] if c in found)


def read_user_pipelines(indexing: str | Path, query: str | Path) -> UserPipelines:
    """Read and parse both files (errors name the file: missing, not YAML, not a pipeline)."""
    indexing, query = Path(indexing), Path(query)
    index_data, query_data = read_pipeline_dict(indexing), read_pipeline_dict(query)
    return UserPipelines(UserPipeline.parse(indexing, index_data), UserPipeline.parse(query, query_data))
