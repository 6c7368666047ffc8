"""Haystack's own pipeline YAML, as users' files hold it: read and written the way ``Pipeline.loads`` / ``dumps`` do,
with the class paths of Haystack 2.x (and of distill's older layout) mapped to where they live now.

- :func:`parse_pipeline_yaml` reads with ``haystack.marshal.yaml.YamlLoader``: safe loading plus ``!!python/tuple``,
  which ``Pipeline.dumps`` writes for every tuple (a ChatPromptBuilder's ``required_variables``, say). Every other
  Python tag (``!!python/object``...) stays refused, as one line naming the file and the place.
- :func:`dump_pipeline_yaml` writes with Haystack's ``YamlDumper``, so that those tuples read back as tuples in plain
  ``Pipeline.loads``.
- :func:`upgrade_types` rewrites the class paths of :data:`MOVED_TYPES` (Haystack 2.x components that 3.x moved to
  integration packages) and of distill's own moved components, logging one line per class (old -> new). What a swap
  writes therefore names the new paths.
- :func:`unbuildable_generators` names the components that are 2.x generators this Haystack no longer has
  (``OpenAIGenerator``, ``HuggingFaceAPIGenerator``...). They are kept as written: a retrieval evaluation never runs
  them, and whoever builds a whole RAG pipeline must leave them out or replace them (e.g. by ``OpenAIChatGenerator``
  after a ``ChatPromptBuilder``). Any other class that does not import stays Haystack's refusal, worded by
  :func:`distill.pipelines.checks.refusal`.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import yaml
from haystack.marshal.yaml import YamlDumper, YamlLoader

from distill.common.files import parse_yaml
from distill.pipelines.checks import GENERATORS_MODULE

logger = logging.getLogger(__name__)

_ST = "haystack_integrations.components.embedders.sentence_transformers"
_ST_RANKERS = "haystack_integrations.components.rankers.sentence_transformers"
_TRANSFORMERS = "haystack_integrations.components"

# Haystack 2.x class path -> Haystack 3.x class path. Each row is in Haystack's MIGRATION.md ("Components Moved to
# External Packages", "TransformersSimilarityRanker removed"), and was checked by building the component from a YAML
# that haystack-ai 2.31's Pipeline.dumps() wrote, under haystack-ai 3.4.1 with sentence-transformers-haystack 2.0.0
# and transformers-haystack 2.0.0 (tests/pipelines/test_haystack_yaml.py keeps those YAMLs).
MOVED_TYPES: dict[str, str] = {
    "haystack.components.embedders.sentence_transformers_text_embedder.SentenceTransformersTextEmbedder": (
        f"{_ST}.sentence_transformers_text_embedder.SentenceTransformersTextEmbedder"
    ),
    "haystack.components.embedders.sentence_transformers_document_embedder.SentenceTransformersDocumentEmbedder": (
        f"{_ST}.sentence_transformers_document_embedder.SentenceTransformersDocumentEmbedder"
    ),
    "haystack.components.embedders.sentence_transformers_sparse_text_embedder.SentenceTransformersSparseTextEmbedder": (
        f"{_ST}.sentence_transformers_sparse_text_embedder.SentenceTransformersSparseTextEmbedder"
    ),
    "haystack.components.embedders.sentence_transformers_sparse_document_embedder."
    "SentenceTransformersSparseDocumentEmbedder": (
        f"{_ST}.sentence_transformers_sparse_document_embedder.SentenceTransformersSparseDocumentEmbedder"
    ),
    "haystack.components.embedders.image.sentence_transformers_doc_image_embedder."
    "SentenceTransformersDocumentImageEmbedder": (
        f"{_ST}.sentence_transformers_doc_image_embedder.SentenceTransformersDocumentImageEmbedder"
    ),
    "haystack.components.rankers.sentence_transformers_similarity.SentenceTransformersSimilarityRanker": (
        f"{_ST_RANKERS}.sentence_transformers_similarity.SentenceTransformersSimilarityRanker"
    ),
    "haystack.components.rankers.sentence_transformers_diversity.SentenceTransformersDiversityRanker": (
        f"{_ST_RANKERS}.sentence_transformers_diversity.SentenceTransformersDiversityRanker"
    ),
    # Removed, not moved: Haystack names SentenceTransformersSimilarityRanker its replacement (same cross-encoder).
    "haystack.components.rankers.transformers_similarity.TransformersSimilarityRanker": (
        f"{_ST_RANKERS}.sentence_transformers_similarity.SentenceTransformersSimilarityRanker"
    ),
    "haystack.components.readers.extractive.ExtractiveReader": (
        f"{_TRANSFORMERS}.readers.transformers.extractive_reader.TransformersExtractiveReader"
    ),
    "haystack.components.classifiers.zero_shot_document_classifier.TransformersZeroShotDocumentClassifier": (
        f"{_TRANSFORMERS}.classifiers.transformers.zero_shot_document_classifier.TransformersZeroShotDocumentClassifier"
    ),
    "haystack.components.routers.transformers_text_router.TransformersTextRouter": (
        f"{_TRANSFORMERS}.routers.transformers.text_router.TransformersTextRouter"
    ),
    "haystack.components.routers.zero_shot_text_router.TransformersZeroShotTextRouter": (
        f"{_TRANSFORMERS}.routers.transformers.zero_shot_text_router.TransformersZeroShotTextRouter"
    ),
}
# Settings the new class does not take: (old path, setting) -> why dropping it keeps the component's behaviour.
DROPPED_SETTINGS: dict[tuple[str, str], str] = {
    ("haystack.components.rankers.transformers_similarity.TransformersSimilarityRanker", "calibration_factor"): (
        "SentenceTransformersSimilarityRanker scales scores as sigmoid(logit), the old ranker's default factor 1.0"
    ),
}
DISTILL_OLD_PREFIX = "distill."

# (file, old class path) pairs already reported: a file is read several times in one run (swap, eval, the teacher).
_reported: set[tuple[str, str]] = set()


def parse_pipeline_yaml(text: str, name: str) -> Any:
    """Pipeline YAML text as ``Pipeline.loads`` reads it (safe loading plus tuples), with a one-line error."""
    return parse_yaml(text, name, loader=YamlLoader)


def dump_pipeline_yaml(data: dict[str, Any]) -> str:
    """``data`` as YAML that plain ``Pipeline.loads`` reads back, tuples included, in the dict's own order."""
    return yaml.dump(data, Dumper=YamlDumper, sort_keys=False, allow_unicode=True)


def _distill_moves() -> dict[str, str]:
    """distill's own old component paths (before the stage packages) -> the classes' paths now."""
    from distill.components import OLD_TYPES

    return {old: f"{cls.__module__}.{cls.__qualname__}" for old, cls in OLD_TYPES.items()}


def new_type(kind: str) -> str | None:
    """Where a moved class path lives now, or None when it did not move."""
    if kind in MOVED_TYPES:
        return MOVED_TYPES[kind]
    if kind.startswith(DISTILL_OLD_PREFIX):
        return _distill_moves().get(kind)
    return None


def upgrade_types(data: dict[str, Any], name: str) -> dict[str, Any]:
    """Rewrite, in place, each component type that moved (:func:`new_type`) to its new path, dropping the settings
    the new class does not take (:data:`DROPPED_SETTINGS`); one warning per moved class and file. Returns ``data``."""
    moved: dict[str, list[str]] = {}
    for component, spec in data["components"].items():
        old = spec["type"]
        new = new_type(old)
        if new is None or new == old:
            continue
        spec["type"] = new
        params = spec.get("init_parameters") or {}
        for (kind, setting), why in DROPPED_SETTINGS.items():
            if kind == old and setting in params:
                value = params.pop(setting)
                logger.warning("%s: component %r: dropped %s=%r (%s)", name, component, setting, value, why)
        moved.setdefault(old, []).append(component)
    for old, components in moved.items():
        if (name, old) in _reported:
            continue
        _reported.add((name, old))
        origin = "distill's old class path" if old.startswith(DISTILL_OLD_PREFIX) else "Haystack 2.x class path"
        logger.warning(
            "%s: mapped %s %s -> %s (components %s)", name, origin, old, new_type(old), ", ".join(map(repr, components))
        )
    return data


def _imports(kind: str) -> bool:
    module, _, cls = kind.rpartition(".")
    try:
        return hasattr(importlib.import_module(module), cls)
    except ImportError:
        return False


def unbuildable_generators(data: dict[str, Any]) -> dict[str, str]:
    """Component name -> class path of each generator under ``haystack.components.generators`` that does not import
    here: a 2.x generator Haystack 3 removed (``...generators.openai.OpenAIGenerator``) or moved to a package that is
    not installed. Only Haystack's own namespace is imported to find out, so a file cannot name code to run.

    Such a component is kept in the dict as written; building the pipeline fails on it (one line saying so), so a
    caller that only needs retrieval leaves these components (and their connections) out before building.
    """
    found = {}
    for component, spec in data["components"].items():
        kind = spec.get("type", "")
        if kind.startswith(GENERATORS_MODULE) and not _imports(kind):
            found[component] = kind
    return found


def report_unbuildable_generators(data: dict[str, Any], name: str) -> None:
    """One warning per file naming the generators :func:`unbuildable_generators` finds, kept as written."""
    found = unbuildable_generators(data)
    if not found or (name, "generators") in _reported:
        return
    _reported.add((name, "generators"))
    listed = ", ".join(f"{component!r} ({kind})" for component, kind in found.items())
    logger.warning(
        "%s: kept as written, not buildable with this Haystack (a 2.x generator that Haystack 3 removed or moved): "
        "%s; a retrieval evaluation does not run it",
        name,
        listed,
    )
