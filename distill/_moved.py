"""The flat layout's module paths (before the stage packages), kept importable for users' code and YAML files.

``from distill.cache import TeacherCache`` and a pipeline YAML that names ``distill.components_onnx.OnnxTextEmbedder``
(what ``distill swap`` wrote before) keep working: an old module name imports its new module, and
:mod:`distill.components` registers the old component type names. The old names that became packages of the same name
(``distill.data``, ``distill.components``, ``distill.pipelines``, ``distill.evaluation``) re-export what they held.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

MODULES = {
    "distill.files": "distill.common.files",
    "distill.outputs": "distill.common.outputs",
    "distill.processes": "distill.common.processes",
    "distill.provenance": "distill.common.provenance",
    "distill.models": "distill.common.models",
    "distill.metrics": "distill.common.metrics",
    "distill.components_onnx": "distill.components.onnx_embedders",
    "distill.components_reader": "distill.components.readers",
    "distill.pipeline_checks": "distill.pipelines.checks",
    "distill.stores": "distill.pipelines.stores",
    "distill.pgvector_checks": "distill.pipelines.pgvector_checks",
    "distill.store_pipelines": "distill.pipelines.store_pipelines",
    "distill.cache": "distill.teacher.cache",
    "distill.pipeline_teacher": "distill.teacher.embedders",
    "distill.recipes": "distill.training.recipes",
    "distill.trainer": "distill.training.trainer",
    "distill.train": "distill.training.train",
    "distill.average": "distill.training.average",
    "distill.model_card": "distill.training.model_card",
    "distill.static": "distill.training.static",
    "distill.export": "distill.training.export",
    "distill.losses": "distill.training.losses",
    "distill.tasks": "distill.training.tasks",
    "distill.agreement": "distill.evaluation.agreement",
    "distill.report": "distill.evaluation.report",
    "distill.catalog": "distill.ui.catalog",
    "distill.live": "distill.ui.live",
    "distill.figures": "distill.ui.figures",
}


def moved_name(name: str) -> str | None:
    """The new name of an old module name, or of a module inside an old package (``distill.tasks.reader``)."""
    for old, new in MODULES.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The module is the new one, already executed."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec:
        new = moved_name(fullname) if fullname.startswith("distill.") else None
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())


def reexport(package: str, module: str, names: list[str]) -> Callable[[str], Any]:
    """A package's ``__getattr__`` that serves ``names`` from ``module`` on first use, so that importing the package
    (``distill.evaluation.report``, say) does not import haystack or torch through its re-exports."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
