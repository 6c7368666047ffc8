"""What a pipeline file must look like before Haystack builds it, and Haystack's refusals as one line.

:func:`check_shape` checks the structure every reader of a pipeline dict relies on (components as a mapping of named
mappings with a class path, init parameters as a mapping, connections as a list of sender/receiver pairs), so a
file that breaks it is one line naming the component, never an ``AttributeError`` from deep inside. :func:`refusal`
turns what Haystack raises while building (its allowlist refusing a module, a type that is not a component, a
component that cannot take its parameters) into one self-sufficient line: the file, the component, the type, and
what to do. Haystack's allowlist stays the authority on what may load; this module only words its answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from haystack import Pipeline

from distill.common.models import HUB_ALIASES, folder_vocab, resolve_model
from distill.errors import DistillError

EXAMPLE_TYPE = "haystack.components.writers.document_writer.DocumentWriter"
# Haystack 2.x kept its (non-chat) generators here; 3.x removed them (distill.pipelines.haystack_yaml).
GENERATORS_MODULE = "haystack.components.generators."
ALLOWED_WORDS = "haystack, haystack_integrations and distill.* load"

_REFUSED = re.compile(r"Refusing to deserialize a class from module '([^']*)'")
_NOT_IMPORTED = re.compile(r"Component '(.*)' \(name: '(.*)'\) not imported")
_NOT_BUILT = re.compile(r"Couldn't deserialize component '(.*)' of class '([^']*)'")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", type(None): "null"}.get(type(value), f"{value!r}")


def check_shape(data: Any, name: str) -> dict[str, Any]:
    """``data`` if it has a pipeline's structure, else a DistillError naming ``name`` and the part that is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("components"), dict) or not data["components"]:
        raise DistillError(f"{name} is not a Haystack pipeline: it needs a non-empty 'components' mapping")
    for component, spec in data["components"].items():
        if not isinstance(component, str):
            raise DistillError(f"{name}: component name {component!r} must be text")
        if not isinstance(spec, dict):
            raise DistillError(
                f"{name}: component {component!r} must be a mapping with 'type' and 'init_parameters', got "
                f"{_kind(spec)}"
            )
        kind = spec.get("type")
        if not isinstance(kind, str) or not re.fullmatch(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*", kind):
            raise DistillError(
                f"{name}: component {component!r} needs a 'type' that is a class path (module.Class, e.g. "
                f"{EXAMPLE_TYPE}), got {kind!r}"
            )
        params = spec.get("init_parameters")
        if params is not None and not isinstance(params, dict):
            raise DistillError(
                f"{name}: component {component!r}: init_parameters must be a mapping of settings, got {_kind(params)}"
            )
    runs = data.get("max_runs_per_component", 100)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise DistillError(f"{name}: max_runs_per_component must be a positive whole number, got {runs!r}")
    connections = data.get("connections", [])
    if not isinstance(connections, list):
        raise DistillError(f"{name}: connections must be a list of sender/receiver pairs, got {_kind(connections)}")
    for i, connection in enumerate(connections):
        ends = [connection.get(k) for k in ("sender", "receiver")] if isinstance(connection, dict) else []
        if len(ends) != 2 or not all(isinstance(end, str) and "." in end for end in ends):
            raise DistillError(
                f"{name}: connections[{i}] must be a mapping with 'sender' and 'receiver' as component.socket "
                f"(e.g. text_embedder.embedding), got {connection!r}"
            )
    return data


def _types(value: Any) -> Iterator[str]:
    """Every class path a component's settings name under a ``type`` key (nested objects: stores, secrets)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "type" and isinstance(item, str):
                yield item
            else:
                yield from _types(item)
    elif isinstance(value, list):
        for item in value:
            yield from _types(item)


def _refused(module: str, data: dict[str, Any], name: str, component: str | None = None) -> DistillError:
    """The allowlist's refusal of ``module``, naming the component and the type that asked for it."""
    found = None
    for candidate, spec in data["components"].items():
        if component is not None and candidate != component:
            continue
        for kind in _types(spec):
            if kind.rsplit(".", 1)[0] == module or kind.startswith(module + "."):
                found = (candidate, kind)
                break
        if found:
            break
    who = f"component {found[0]!r} names type {found[1]!r}" if found else f"a component names module {module!r}"
    return DistillError(
        f"{name}: {who}, but module {module!r} is not on Haystack's trusted-module allowlist ({ALLOWED_WORDS}; a "
        "pipeline file may name no other code): use a Haystack or distill component type there"
    )


def first_line(error: BaseException) -> str:
    """An error's first non-blank line, less Haystack's advice to load with ``unsafe=True`` (not a CLI's fix)."""
    line = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return line.split(" If you trust the source")[0]


def refusal(error: Exception, data: dict[str, Any], name: str) -> DistillError:
    """What Haystack raised while building ``data`` (from file ``name``) as one line that says what to fix."""
    text = str(error)
    if match := _REFUSED.search(text):
        return _refused(match.group(1), data, name)
    if match := _NOT_IMPORTED.search(text):
        kind, component = match.groups()
        if kind.startswith(GENERATORS_MODULE):
            return DistillError(
                f"{name}: component {component!r} has type {kind!r}, a Haystack 2.x generator that this Haystack does "
                "not have: replace it by a chat generator (e.g. haystack.components.generators.chat.openai."
                "OpenAIChatGenerator after a ChatPromptBuilder), or leave it out of the pipeline"
            )
        return DistillError(
            f"{name}: component {component!r} has type {kind!r}, which is not a Haystack component class that imports "
            f"here: give a component's class path (e.g. {EXAMPLE_TYPE}), or install the package that provides it"
        )
    if match := _NOT_BUILT.search(text):
        component, cls = match.groups()
        cause = error.__cause__ if error.__cause__ is not None else error
        if inner := _REFUSED.search(str(cause)):
            return _refused(inner.group(1), data, name, component)
        return DistillError(
            f"{name}: component {component!r} ({cls}) cannot be built from its init_parameters: {first_line(cause)}"
        )
    return DistillError(f"{name}: {first_line(error)}")


# What a component's own checks raise when its settings are wrong (Haystack checks many only at warm-up or at a run).
SETTINGS_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OSError, RuntimeError)


def warm_up(pipeline: Any, name: str) -> None:
    """``pipeline.warm_up()`` one component at a time, so a component that cannot load with its settings (a backend
    that does not exist, a model that does not load) is one line naming it and ``name``, the file."""
    for component, instance in pipeline.walk():
        if hasattr(instance, "warm_up"):
            try:
                instance.warm_up()
            except SETTINGS_ERRORS as e:
                raise DistillError(
                    f"{name}: component {component!r} ({type(instance).__name__}) cannot load with its "
                    f"init_parameters: {first_line(e)}"
                ) from e


def run_failure(error: Exception, name: str) -> DistillError:
    """Haystack's ``PipelineRuntimeError`` (a component failed on an input) as one line naming the component."""
    component = getattr(error, "component_name", None)
    cause = error.__cause__
    detail = first_line(cause) if cause is not None else first_line(error)
    if cause is None:
        detail = next((line[7:] for line in str(error).splitlines() if line.startswith("Error: ")), detail)
    who = f"component {component!r}" if component else "a component"
    if _store_failure(cause):
        fix = "check that its document store's server is up and reachable; the pipeline reconnects once it is back"
        return DistillError(f"{name}: {who} failed on a question: {detail} ({fix})")
    return DistillError(f"{name}: {who} failed on a question: {detail} (check its init_parameters)")


def _store_failure(error: BaseException | None) -> bool:
    """Whether a document store (or its database driver) raised ``error``: the server, not the settings, failed."""
    from haystack.document_stores.errors import DocumentStoreError

    from distill.pipelines.stores import DRIVER_MODULES

    return isinstance(error, DocumentStoreError) or type(error).__module__.split(".")[0] in DRIVER_MODULES


QUESTION_SOCKETS = ("text", "query")


def question_inputs(pipeline: Pipeline, name: str) -> list[tuple[str, str]]:
    pairs = []
    for component, sockets in pipeline.inputs().items():
        for socket, info in sockets.items():
            if socket in QUESTION_SOCKETS and info.get("is_mandatory", False):
                pairs.append((component, socket))
    if not pairs:
        raise DistillError(f"pipeline {name!r} has no open 'text' or 'query' input to feed the question into")
    for component, sockets in pipeline.inputs().items():
        for socket, info in sockets.items():
            if info.get("is_mandatory", False) and socket not in QUESTION_SOCKETS:
                raise DistillError(
                    f"pipeline {name!r}: component {component!r} needs input {socket!r}, which no connection feeds "
                    f"and the question cannot: connect it (e.g. text_embedder.embedding -> retriever.query_embedding)"
                )
    return pairs


def check_query_only_static(model: str, width: int | None, vocab: dict[str, int] | None, replaces: str) -> None:
    """A query-only static student searches the documents ``replaces`` embedded: it must have that model's width and
    tokenizer (a static model built from another teacher lives in another space)."""
    from distill.pipelines.stores import model_width

    teacher_width = model_width(replaces)
    if width is not None and teacher_width is not None and width != teacher_width:
        raise DistillError(
            f"static student {model} is {width}-d but the documents were embedded by {replaces} at {teacher_width}-d: "
            "a query-only static student keeps the teacher's width (build it with --dims none / dims: null)"
        )
    try:
        teacher_vocab = folder_vocab(resolve_model(HUB_ALIASES.get(replaces, replaces)))
    except DistillError:
        return  # a model that is not here: nothing to compare against
    if vocab is not None and teacher_vocab is not None and vocab != teacher_vocab:
        raise DistillError(
            f"static student {model} tokenizes unlike {replaces}, whose embeddings the documents keep: a query-only "
            "static student must be built from that teacher (distill static TEACHER), or swapped with its own index"
        )
