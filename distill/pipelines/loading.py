"""The one place where Haystack YAML becomes pipelines: build the defaults, load with the allowlist, swap models.

- :func:`build_default_pipelines` writes ``pipelines/*.yaml`` with ``Pipeline.dumps`` (plain Haystack loads them).
- :func:`read_pipeline_dict` reads every pipeline file and :func:`dump_pipeline_dict` writes them, as Haystack does
  (:mod:`distill.pipelines.haystack_yaml`: its YAML loader and dumper, older class paths mapped to today's).
- :func:`load_pipeline` reads a YAML, fits devices to this machine, resolves model specs to local folders (the
  offline sources stand in for their Hugging Face ids), and deserialises with Haystack's allowlist plus ``distill.*``.
- :func:`swap` replaces a teacher's model by a student's in the named components (default: every component of the
  student's kind) and points the document store at the student's own index (table, collection:
  :mod:`distill.pipelines.stores`),
  so a student of another width never meets the teacher's embeddings.

A relative local ``model:`` path in a YAML file means the folder beside that file when one is there, else the folder
under the working directory (the committed ``pipelines/*.yaml`` name ``runs/reader-teacher`` from the repository
root); :func:`swap_files` writes local model folders relative to the YAML it writes, so its output works from anywhere.

Why one module over 470 lines: loading and swapping are one contract (what a swap writes, loading must read back:
model paths, devices, indexes, the allowlist); the stores' own rules (:mod:`distill.pipelines.stores`), the shape checks
(:mod:`distill.pipelines.checks`) and the ONNX components already live apart.
"""

from __future__ import annotations

import copy
import importlib
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from haystack import Pipeline
from haystack.core.errors import DeserializationError, PipelineError

from distill.common.files import read_text
from distill.common.models import (
    HUB_ALIASES,
    HUB_IDS,
    OFFLINE_SOURCES,
    ONNX_EXPORT_FILE,
    folder_vocab,
    is_static_folder,
    resolve_model,
)
from distill.common.outputs import check_output_folder, named_parts, write_atomic
from distill.errors import DistillError
from distill.pipelines.checks import GENERATORS_MODULE, check_query_only_static, check_shape, first_line, refusal
from distill.pipelines.haystack_yaml import (
    dump_pipeline_yaml,
    parse_pipeline_yaml,
    report_unbuildable_generators,
    upgrade_types,
)
from distill.pipelines.stores import connect_stores, model_width, move_stores

logger = logging.getLogger(__name__)

ALLOWED_MODULES = ["distill.*"]
TEACHER_EMBEDDER = "sentence-transformers/all-mpnet-base-v2"
TEACHER_READER = "runs/reader-teacher"
TEACHER_INDEX = "teacher"

EMBEDDER_SUFFIXES = ("TextEmbedder", "DocumentEmbedder")
READER_SUFFIXES = ("ExtractiveReader",)


class NothingToSwap(DistillError):
    """The pipeline holds no component of the student's kind."""


# How the project's readers serve (distill/training/tasks/windows.py decodes the same way): the reader ranks the
# answers of all
# retrieved passages by sigmoid(calibration_factor * span score), never normalised per passage; `no_answer: true` adds
# its "every answer is wrong" answer (prod(1 - score)), so that the pipeline says when no passage answers. It never
# moves the best real answer, which `distill eval` scores.
READER_SERVING: dict[str, Any] = {"no_answer": True, "calibration_factor": 0.1}
# How a swapped reader scores spans (`distill swap --reader-scores`), by the component type it serves as: "margin",
# distill's NoAnswerMarginExtractiveReader (each span's logits minus its window's no-answer logits:
# distill/components/readers.py), or "raw", the stock TransformersExtractiveReader (raw logit sums). A reader of any
# other type keeps it. docs/benchmarks/readers.md measures both.
READER_TYPES = {
    "margin": "distill.components.readers.NoAnswerMarginExtractiveReader",
    "raw": "haystack_integrations.components.readers.transformers.extractive_reader.TransformersExtractiveReader",
}
DEFAULT_READER_SCORES = "margin"


def type_name(component: dict[str, Any]) -> str:
    return str(component.get("type", "")).rsplit(".", 1)[-1]


def is_embedder(component: dict[str, Any]) -> bool:
    return type_name(component).endswith(EMBEDDER_SUFFIXES)


def is_text_embedder(component: dict[str, Any]) -> bool:
    return type_name(component).endswith("TextEmbedder")


def is_reader(component: dict[str, Any]) -> bool:
    return type_name(component).endswith(READER_SUFFIXES)


# Only classes in Haystack's own namespaces are imported to read what they output: a file cannot name code to run.
TRUSTED_PREFIXES = ("haystack.", "haystack_integrations.")


def declares_output(kind: str, socket: str) -> bool:
    """Whether the component class at path ``kind`` declares output ``socket`` on its ``run`` (False for a class
    that does not import here, one outside :data:`TRUSTED_PREFIXES`, or one that sets its outputs when built)."""
    module, _, name = kind.rpartition(".")
    if not kind.startswith(TRUSTED_PREFIXES):
        return False
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    outputs = getattr(getattr(cls, "run", None), "_output_types_cache", None)
    return isinstance(outputs, dict) and socket in outputs


def is_generator(component: dict[str, Any]) -> bool:
    """An LLM generator (chat or not, OpenAI, Hugging Face API or local, a 2.x one Haystack 3 removed): named one, or
    a class that outputs ``replies``. distill never builds or runs one; its ``model`` is the generator's business."""
    kind = str(component.get("type", ""))
    return "Generator" in type_name(component) or kind.startswith(GENERATORS_MODULE) or declares_output(kind, "replies")


def read_pipeline_dict(source: str | Path) -> dict[str, Any]:
    """A pipeline YAML file (or YAML text) as a dict, with a clear error for a missing or malformed file.

    Every pipeline file is read here, as Haystack reads it (:mod:`distill.pipelines.haystack_yaml`: its loader, tuples
    included; Haystack 2.x and distill's older class paths mapped to today's, one warning per class; 2.x generators
    that no longer exist kept as written, with a warning). A file's relative local ``model`` paths are read as the
    module docstring says (beside the file, else from here).
    """
    text = str(source)
    name, folder = text, None
    if "\n" not in text:
        path = Path(text)
        name, text, folder = str(path), read_text(path, "pipeline file"), path.parent
    data = upgrade_types(check_shape(parse_pipeline_yaml(text, name), name), name[:80])
    report_unbuildable_generators(data, name[:80])
    return _models_beside(data, folder) if folder is not None else data


def _local_model(params: dict[str, Any]) -> str | None:
    """The component's ``model`` where it is a relative path (not an offline source, a Hub alias or absolute)."""
    model = params.get("model")
    if not isinstance(model, str) or not model or model in OFFLINE_SOURCES or model in HUB_ALIASES:
        return None
    return None if Path(model).expanduser().is_absolute() or model.startswith("~") else model


def _models_beside(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Point each relative ``model`` that names a folder beside the YAML file at that folder, as seen from here.

    A path found there wins; one that is not there stays as written, for the working directory (the YAMLs written
    before paths were relative to their file, and the committed teacher YAMLs, name folders from the repository
    root). Unchanged when the YAML sits in the working directory, so the strings (and the cache keys built from
    them) are the same as before.
    """
    if folder.resolve() == Path.cwd().resolve():
        return data
    for component in data["components"].values():
        params = component.get("init_parameters") or {}
        model = _local_model(params)
        if model is not None and (folder / model).exists():
            params["model"] = Path(os.path.normpath(folder / model)).as_posix()
    return data


def _models_relative_to(data: dict[str, Any], folder: Path) -> bool:
    """Rewrite each relative ``model`` that names an existing folder from here relative to ``folder`` (where the YAML
    goes); True when any was."""
    rewritten = False
    for component in data["components"].values():
        params = component.get("init_parameters") or {}
        model = _local_model(params)
        if model is not None and Path(model).exists():
            try:
                params["model"] = Path(os.path.relpath(model, folder)).as_posix()
            except ValueError:  # another drive (Windows): only an absolute path reaches it
                params["model"] = str(Path(model).resolve())
            rewritten = True
    return rewritten


RELATIVE_PATHS_NOTE = (
    "# Local model folders in this file are relative to this file's folder. distill (eval, the UI) resolves them so\n"
    "# from any working directory; plain Haystack (Pipeline.loads) resolves them against the working directory, so\n"
    "# load it from this file's folder there.\n"
)


def fit_devices(data: dict[str, Any], device: str | None = None) -> dict[str, Any]:
    """Drop devices saved by the machine that dumped the YAML, so they resolve here (or set ``device``)."""
    data = copy.deepcopy(data)
    for component in data["components"].values():
        params = component.get("init_parameters") or {}
        if is_generator(component):
            continue  # never built by distill: its settings stay as written
        if "device" in params:
            params["device"] = {"type": "single", "device": device} if device else None
        kwargs = params.get("model_kwargs")
        if isinstance(kwargs, dict):
            kwargs.pop("device_map", None)
    return data


def resolve_models(data: dict[str, Any]) -> dict[str, Any]:
    """Replace each component's ``model`` by a loadable local folder where one exists (a generator's ``model`` names
    an LLM, not a folder: left as written)."""
    data = copy.deepcopy(data)
    for name, component in data["components"].items():
        params = component.get("init_parameters") or {}
        model = params.get("model")
        if not isinstance(model, str) or is_generator(component):
            continue
        spec = HUB_ALIASES.get(model, model)
        try:
            params["model"] = resolve_model(spec)
        except DistillError as e:
            raise DistillError(f"component {name!r}: {e}") from None
    return data


_TRUST_REMOTE_CODE: ContextVar[bool] = ContextVar("trust_remote_code", default=False)


@contextmanager
def trusting_remote_code(trust: bool = True) -> Iterator[None]:
    """Let the pipelines loaded inside this block set ``trust_remote_code`` (``distill eval --trust-remote-code``)."""
    token = _TRUST_REMOTE_CODE.set(trust)
    try:
        yield
    finally:
        _TRUST_REMOTE_CODE.reset(token)


def _remote_code_settings(value: Any, where: str) -> Iterator[str]:
    """Where a component's settings turn on ``trust_remote_code``, at any depth (model_kwargs, tokenizer_kwargs...)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "trust_remote_code" and item not in (False, None):
                yield f"{where}.{key}"
            else:
                yield from _remote_code_settings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _remote_code_settings(item, f"{where}[{i}]")


def refuse_remote_code(data: dict[str, Any], name: str = "pipeline") -> None:
    """The allowlist keeps a pipeline file from naming code to run; ``trust_remote_code`` would run the Python of
    whatever model folder it names, so a file may only set it when the user said so on the command line."""
    if _TRUST_REMOTE_CODE.get():
        return
    for component, spec in (data.get("components") or {}).items():
        params = spec.get("init_parameters") if isinstance(spec, dict) else None
        found = next(_remote_code_settings(params, "init_parameters"), None)
        if found is not None:
            raise DistillError(
                f"{name}: component {component!r} sets {found}, which runs the Python code of its model folder: "
                "remove it, or pass --trust-remote-code if you trust that code"
            )


def pipeline_from_dict(data: dict[str, Any], *, name: str = "pipeline", connect: bool = True) -> Pipeline:
    """``data`` built with the allowlist (Haystack's refusals as one line); with ``connect``, its stores connected
    and checked (:func:`~distill.pipelines.stores.connect_stores`)."""
    data = upgrade_types(copy.deepcopy(check_shape(data, name)), name)  # a dict not read by read_pipeline_dict
    refuse_remote_code(data, name)
    try:
        pipeline = Pipeline.from_dict(data, allowed_modules=ALLOWED_MODULES)
    except (DeserializationError, PipelineError) as e:
        raise refusal(e, data, name) from None
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        # Haystack's own checks of components and connections raise these: one line naming the file, not a trace.
        raise DistillError(f"{name} is not a pipeline this Haystack can build: {first_line(e)}") from None
    return connect_stores(pipeline, name) if connect else pipeline


def load_pipeline(
    source: str | Path | dict[str, Any], *, device: str | None = None, name: str | None = None
) -> Pipeline:
    """Load a pipeline YAML (path, text or dict) ready to run on this machine; errors name ``name`` (default: the
    file)."""
    name = name or ("pipeline" if isinstance(source, dict) else str(source)[:80])
    data = check_shape(source, name) if isinstance(source, dict) else read_pipeline_dict(source)
    return pipeline_from_dict(resolve_models(fit_devices(data, device)), name=name)


def dump_pipeline_dict(data: dict[str, Any]) -> str:
    """``data`` as pipeline YAML that plain ``Pipeline.loads`` reads back (Haystack's dumper: tuples stay tuples)."""
    return dump_pipeline_yaml(data)


def model_kind(model: str) -> str:
    """``embedder`` for a sentence-transformers folder, ``reader`` for a question-answering model."""
    folder = Path(resolve_model(HUB_ALIASES.get(model, model)))
    if (folder / "modules.json").exists() or (folder / ONNX_EXPORT_FILE).exists():
        return "embedder"
    config = folder / "config.json"
    if config.exists():
        text = config.read_text(encoding="utf-8")
        if "ForQuestionAnswering" in text:
            return "reader"
    raise DistillError(
        f"cannot tell whether {model} is an embedder or a reader (no modules.json, no *ForQuestionAnswering "
        "architecture in config.json): pass --component to name the components to swap"
    )


def slug(text: str) -> str:
    """A readable index-name part for a model: a folder's parent and name (trained students are all called
    ``student`` inside their run folder), reaching further up past generic folder names (``a/run/student`` and
    ``b/run/student`` must not share an index: :func:`distill.common.outputs.named_parts`), or the spec itself."""
    path = Path(text)
    name = text
    if path.exists():
        resolved = path.resolve()
        parts = named_parts(resolved)
        name = "-".join(parts if len(parts) > 1 else [resolved.parent.name, *parts])
    return re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-").lower()


def swap(
    data: dict[str, Any],
    *,
    model: str,
    components: list[str] | None = None,
    index: str | None = None,
    keep_index: bool = False,
    name_slug: str | None = None,
    reader_scores: str = DEFAULT_READER_SCORES,
) -> dict[str, Any]:
    """Return a copy of ``data`` whose ``components`` (default: all of the model's kind) use ``model``.

    Unless ``keep_index`` (a query-only student that searches the teacher's index), every document store in the
    pipeline moves to ``index`` (default: derived from the student's name) when embedders are swapped. A swapped
    reader serves with :data:`READER_SERVING` and ranks answers as ``reader_scores`` says (:data:`READER_TYPES`).
    """
    if reader_scores not in READER_TYPES:
        raise DistillError(f"reader scores must be one of {list(READER_TYPES)}, got {reader_scores!r}")
    data = copy.deepcopy(data)
    all_components = data["components"]
    if components:
        unknown = [c for c in components if c not in all_components]
        if unknown:
            raise DistillError(f"no component named {unknown} in the pipeline; it has {sorted(all_components)}")
        targets = list(components)
    else:
        kind = model_kind(model)
        check = is_embedder if kind == "embedder" else is_reader
        targets = [name for name, c in all_components.items() if check(c)]
        if not targets:
            raise NothingToSwap(f"the pipeline has no {kind} component")
    swapped_embedder, onnx = False, (Path(model) / ONNX_EXPORT_FILE).is_file()
    for name in targets:
        params = all_components[name].get("init_parameters") or {}
        all_components[name]["init_parameters"] = params  # null in the file reads as no settings
        if "model" not in params:
            raise DistillError(f"component {name!r} has no 'model' parameter to swap")
        if keep_index and is_embedder(all_components[name]) and is_static_folder(model):
            check_query_only_static(model, model_width(model), folder_vocab(model), str(params["model"]))
        # Offline sources are written as their Hugging Face ids, so plain Haystack can load the YAML anywhere.
        params["model"] = HUB_IDS.get(model, model)
        swapped_embedder |= is_embedder(all_components[name])
        if is_reader(all_components[name]):
            params.update(READER_SERVING)
            if all_components[name].get("type") in READER_TYPES.values():  # another reader class keeps its own
                all_components[name]["type"] = READER_TYPES[reader_scores]
        if onnx:  # a `distill export` folder: served by distill's ONNX twin of the SentenceTransformers embedder
            from distill.components.onnx_embedders import onnx_embedder

            all_components[name] = onnx_embedder(all_components[name], model, name)
    if (swapped_embedder and not keep_index) or index:
        width = model_width(model) if swapped_embedder and not keep_index else None
        move_stores(data, index=index, model_slug=name_slug or slug(model), width=width)
    return data


def swap_files(paths: list[Path], out_dir: Path, **options: Any) -> list[Path]:
    """:func:`swap_pipelines` of the pipeline files at ``paths`` (read after ``out_dir`` is checked)."""
    check_output_folder(out_dir, "--out")
    return swap_pipelines([(path, read_pipeline_dict(path)) for path in paths], out_dir, **options)


def _is_query_only(model: str) -> bool:
    """Whether ``model`` is a folder of a query-only student (its training recipe says so) or an export of one (a
    head after pooling)."""
    import json

    import yaml

    folder = Path(model).expanduser()
    try:
        if (folder / "config.yaml").is_file():
            return bool((yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}).get("query_only"))
        if (folder / "distill_onnx.json").is_file():
            return bool(json.loads((folder / "distill_onnx.json").read_text(encoding="utf-8")).get("head"))
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        return False
    return False


def swap_pipelines(
    pipelines: list[tuple[Path, dict[str, Any]]],
    out_dir: Path,
    *,
    model: str | None,
    components: list[str] | None = None,
    index: str | None = None,
    keep_index: bool = False,
    fast_retriever: bool = False,
    name_slug: str | None = None,
    reader_scores: str = DEFAULT_READER_SCORES,
) -> list[Path]:
    """Apply the same :func:`swap` to several pipelines, each a file's path and its dict as read (indexing and query
    pipelines stay consistent), and write them into ``out_dir`` under their files' names.

    ``model=None`` copies the pipelines unchanged (with ``fast_retriever``: the teacher's own pipelines, sped up).
    """
    from distill.components.retrievers import use_fast_retrievers

    check_output_folder(out_dir, "--out")
    if model is not None and not keep_index and _is_query_only(model):
        raise DistillError(
            f"{model} is a query-only student (it embeds queries into the teacher's space): swap it with --component "
            "<the query pipeline's text embedder> --keep-index, so that the documents keep the teacher's index"
        )
    paths = [path for path, _ in pipelines]
    outputs, changed = [], False
    for path, data in pipelines:
        present = [c for c in components or [] if c in data["components"]]
        if model is None or (components and not present):
            swapped = copy.deepcopy(data)  # e.g. the indexing YAML of a query-only student stays the teacher's
        else:
            try:
                swapped = swap(
                    data,
                    model=model,
                    components=present or None,
                    index=index,
                    keep_index=keep_index,
                    name_slug=name_slug,
                    reader_scores=reader_scores,
                )
                changed = True
            except NothingToSwap:
                swapped = copy.deepcopy(data)  # e.g. the indexing YAML beside a reader's extractive QA pipeline
        outputs.append((path, swapped))
    if model is not None and not changed:
        kind = "component" if components else f"{model_kind(model)} component"
        raise DistillError(
            f"no {kind} to swap {model} into in {[str(p) for p in paths]}: a reader goes into an extractive QA "
            "pipeline, an embedder into indexing/retrieval pipelines"
        )
    # Every pipeline is swapped before the folder is made, so a bad input leaves no empty or half-filled --out.
    texts: dict[Path, str] = {}
    for path, swapped in outputs:
        if fast_retriever:
            swapped = use_fast_retrievers(swapped)
        note = RELATIVE_PATHS_NOTE if _models_relative_to(swapped, out_dir) else ""
        texts[out_dir / Path(path).name] = note + dump_pipeline_dict(swapped)
    if model is not None and _is_reader_model(model):
        # A reader swap leaves retrieval as it was: the teacher's indexing pipeline fills the student's store too, and
        # `distill eval` finds it beside the query pipeline.
        for path in paths:
            indexing, target = Path(path).with_name("indexing.yaml"), out_dir / "indexing.yaml"
            if indexing.exists() and target not in texts:  # replaces a stale one from an earlier swap
                data = read_pipeline_dict(indexing)  # as the others: today's class paths, models found from out_dir
                note = RELATIVE_PATHS_NOTE if _models_relative_to(data, out_dir) else ""
                texts[target] = note + dump_pipeline_dict(data)
                break  # one indexing pipeline per output folder
    out_dir.mkdir(parents=True, exist_ok=True)
    for target, text in texts.items():
        write_atomic(target, text)
    return list(texts)


def _is_reader_model(model: str) -> bool:
    try:
        return model_kind(model) == "reader"
    except DistillError:
        return False


def build_default_pipelines(
    embedder: str = TEACHER_EMBEDDER, reader: str = TEACHER_READER, index: str = TEACHER_INDEX, top_k: int = 10
) -> dict[str, str]:
    """The teacher's indexing, retrieval and extractive-QA pipelines as YAML text, dumped by Haystack."""
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.components.writers import DocumentWriter
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack.document_stores.types import DuplicatePolicy
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )
    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    def store() -> InMemoryDocumentStore:
        return InMemoryDocumentStore(index=index, embedding_similarity_function="cosine")

    indexing = Pipeline()
    indexing.add_component("document_embedder", SentenceTransformersDocumentEmbedder(model=embedder, batch_size=16))
    indexing.add_component("writer", DocumentWriter(document_store=store(), policy=DuplicatePolicy.OVERWRITE))
    indexing.connect("document_embedder.documents", "writer.documents")

    def query_pipeline() -> Pipeline:
        p = Pipeline()
        p.add_component("text_embedder", SentenceTransformersTextEmbedder(model=embedder, progress_bar=False))
        p.add_component("retriever", InMemoryEmbeddingRetriever(document_store=store(), top_k=top_k))
        p.connect("text_embedder.embedding", "retriever.query_embedding")
        return p

    retrieval = query_pipeline()
    qa = query_pipeline()
    qa.add_component("reader", TransformersExtractiveReader(model=reader, top_k=5, **READER_SERVING))
    qa.connect("retriever.documents", "reader.documents")

    out = {}
    for name, pipeline in (("indexing", indexing), ("retrieval", retrieval), ("extractive_qa", qa)):
        # Devices are resolved on the dumping machine; store none so each machine picks its own.
        out[name] = dump_pipeline_dict(fit_devices(parse_pipeline_yaml(pipeline.dumps(), name)))
    return out


def write_default_pipelines(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in build_default_pipelines().items():
        path = folder / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
