"""Haystack embedders that serve a ``distill export`` folder (an int8 or fp32 ONNX model) without torch.

:class:`OnnxDocumentEmbedder` and :class:`OnnxTextEmbedder` take the same inputs, give the same outputs and honour the
same text settings (prefix, suffix, meta fields and their separator, ``normalize_embeddings``, batch size, progress
bar) as Haystack's ``SentenceTransformersDocumentEmbedder`` and ``SentenceTransformersTextEmbedder``; ``model`` is
the export folder. Each text goes through the folder's own tokenizer (``tokenizers``, truncated to the exported
``max_seq_length``), the ONNX graph (ONNX Runtime on the CPU, spinning threads off so that it never slows a torch
model sharing the cores: docs/benchmarks/speed.md, "Platform traps"), then the exported pooling and normalisation in
numpy.

:func:`onnx_embedder` turns a SentenceTransformers embedder of a pipeline dict into its ONNX twin (``distill swap``
with an export folder as the model); load such YAML with ``allowed_modules=["distill.*"]``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, component, default_from_dict, default_to_dict

from distill.common.models import ONNX_EXPORT_FILE
from distill.errors import DistillError

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "distill-onnx/1"
# Settings of the SentenceTransformers embedders that the ONNX twins take over as they are.
SHARED_SETTINGS = ("prefix", "suffix", "batch_size", "progress_bar", "normalize_embeddings")
DOCUMENT_SETTINGS = ("meta_fields_to_embed", "embedding_separator")


def is_onnx_export(model: str | Path) -> bool:
    return (Path(model).expanduser() / ONNX_EXPORT_FILE).is_file()


def read_export(folder: str | Path) -> dict[str, Any]:
    """The description of an export folder, checked to hold its graph and tokenizer (one-line errors)."""
    folder = Path(folder).expanduser()
    path = folder / ONNX_EXPORT_FILE
    if not folder.is_dir():
        raise DistillError(f"ONNX model folder {folder} does not exist: make it with `distill export MODEL --out DIR`")
    if not path.is_file():
        raise DistillError(f"{folder} has no {ONNX_EXPORT_FILE}: it is not a `distill export` folder")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DistillError(f"{path} is not readable JSON ({type(e).__name__}): export the model again") from None
    if not isinstance(info, dict) or info.get("format") != EXPORT_FORMAT:
        raise DistillError(f"{path} is not a {EXPORT_FORMAT} description: export the model again")
    for name in (
        str(info.get("onnx", "model.onnx")),
        "tokenizer.json",
        *([str(info["head"])] if info.get("head") else []),
    ):
        if not (folder / name).is_file():
            raise DistillError(f"{folder} lacks {name}, which the export wrote: export the model again")
    return info


def _pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' Pooling on (batch, sequence, width) token embeddings and their attention mask."""
    if mode == "cls":
        return tokens[:, 0]
    weights = mask[..., None].astype(tokens.dtype)
    if mode == "max":
        return np.where(weights > 0, tokens, np.finfo(tokens.dtype).min).max(axis=1)
    return (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)


def _normalise(rows: np.ndarray) -> np.ndarray:
    """torch.nn.functional.normalize: rows over max(norm, 1e-12)."""
    return rows / np.clip(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12, None)


class OnnxEncoder:
    """An export folder loaded: texts -> embeddings, as ``SentenceTransformer.encode`` gives them."""

    def __init__(self, folder: str | Path, intra_op_num_threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder).expanduser()
        self.info = read_export(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_num_threads or 0  # 0: ONNX Runtime's default (the physical cores)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            graph = folder / str(self.info.get("onnx", "model.onnx"))
            self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as e:  # ONNX Runtime and tokenizers raise their own types for a damaged file
            raise DistillError(f"cannot load the export in {folder}: {str(e).splitlines()[0][:200]}") from None
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=int(self.info["max_seq_length"]))
        self.pad_id = int(self.info.get("pad_token_id") or 0)
        self.head = None  # a query-only student's linear head into the teacher's space: (weight.T, bias)
        if self.info.get("head"):
            with np.load(folder / str(self.info["head"])) as head:
                self.head = (head["weight"].T.astype(np.float32), head["bias"].astype(np.float32))

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(texts), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        (tokens,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        pooled = _pool(tokens, mask, str(self.info["pooling"]))
        if self.head is not None:
            pooled = _normalise(pooled) if self.info.get("normalize_pooled") else pooled
            pooled = pooled @ self.head[0] + self.head[1]
        return _normalise(pooled) if self.info.get("normalize") else pooled

    def encode(
        self, texts: list[str], *, batch_size: int = 32, normalize: bool = False, progress: bool = False
    ) -> np.ndarray:
        """One float32 row per text. Like sentence-transformers, batches go longest first (less padding)."""
        if not texts:
            return np.zeros((0, int(self.info["dimension"])), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), max(batch_size, 1))
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="Batches", unit="batch")
        rows = np.concatenate([self._batch([texts[i] for i in order[s : s + batch_size]]) for s in starts])
        out = np.empty_like(rows)
        out[order] = rows
        out = _normalise(out) if normalize else out
        return out.astype(np.float32, copy=False)


class _OnnxEmbedder:
    """What both embedders share: settings, serialisation, loading."""

    _settings: tuple[str, ...] = SHARED_SETTINGS

    def _store(self, **settings: Any) -> None:
        for key, value in settings.items():
            setattr(self, key, value)
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {self.batch_size}")
        self.encoder: OnnxEncoder | None = None

    def to_dict(self) -> dict[str, Any]:
        names = ("model", *self._settings, "intra_op_num_threads")
        return default_to_dict(self, **{name: getattr(self, name) for name in names})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Load the tokenizer and the ONNX Runtime session once."""
        if self.encoder is None:
            self.encoder = OnnxEncoder(self.model, self.intra_op_num_threads)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.encoder is None:
            self.warm_up()
        assert self.encoder is not None
        return self.encoder.encode(
            texts, batch_size=self.batch_size, normalize=self.normalize_embeddings, progress=self.progress_bar
        )


@component
class OnnxDocumentEmbedder(_OnnxEmbedder):
    """``SentenceTransformersDocumentEmbedder`` over a ``distill export`` folder: documents in, with embeddings out.

    Usage:
    ```python
    embedder = OnnxDocumentEmbedder(model="runs/minilm-l6-int8")
    embedder.warm_up()
    embedder.run(documents=[Document(content="I love pizza!")])["documents"][0].embedding
    ```
    """

    _settings = (*SHARED_SETTINGS, *DOCUMENT_SETTINGS)

    def __init__(
        self,
        model: str,
        prefix: str = "",
        suffix: str = "",
        batch_size: int = 32,
        progress_bar: bool = True,
        normalize_embeddings: bool = False,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        intra_op_num_threads: int | None = None,
    ) -> None:
        """
        :param model: A folder written by ``distill export``.
        :param prefix: Text added before each document's text (e.g. an instruction some models need).
        :param suffix: Text added after each document's text.
        :param batch_size: Documents per ONNX Runtime call.
        :param progress_bar: Show a progress bar over the batches.
        :param normalize_embeddings: L2-normalise the embeddings (after the model's own Normalize, if it has one).
        :param meta_fields_to_embed: Meta fields embedded before the content, joined by ``embedding_separator``.
        :param embedding_separator: Separator between the meta fields and the content.
        :param intra_op_num_threads: ONNX Runtime's threads per call; None: its default (the physical cores).
        """
        self.model = model
        self.meta_fields_to_embed = meta_fields_to_embed or []
        self.embedding_separator = embedding_separator
        self.intra_op_num_threads = intra_op_num_threads
        self._store(
            prefix=prefix,
            suffix=suffix,
            batch_size=batch_size,
            progress_bar=progress_bar,
            normalize_embeddings=normalize_embeddings,
        )

    def _text(self, doc: Document) -> str:
        meta = [str(doc.meta[k]) for k in self.meta_fields_to_embed if k in doc.meta and doc.meta[k] is not None]
        return self.prefix + self.embedding_separator.join([*meta, doc.content or ""]) + self.suffix

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed ``documents``; returns copies with ``embedding`` set."""
        if not isinstance(documents, list) or (documents and not isinstance(documents[0], Document)):
            raise TypeError(
                "OnnxDocumentEmbedder expects a list of Documents as input; to embed a string, use the "
                "OnnxTextEmbedder."
            )
        rows = self._encode([self._text(doc) for doc in documents]).tolist()
        return {"documents": [replace(doc, embedding=row) for doc, row in zip(documents, rows, strict=True)]}


@component
class OnnxTextEmbedder(_OnnxEmbedder):
    """``SentenceTransformersTextEmbedder`` over a ``distill export`` folder: a string in, ``embedding`` out.

    Usage:
    ```python
    embedder = OnnxTextEmbedder(model="runs/minilm-l6-int8", progress_bar=False)
    embedder.warm_up()
    embedder.run(text="Where was Mozart born?")["embedding"]
    ```
    """

    def __init__(
        self,
        model: str,
        prefix: str = "",
        suffix: str = "",
        batch_size: int = 32,
        progress_bar: bool = True,
        normalize_embeddings: bool = False,
        intra_op_num_threads: int | None = None,
    ) -> None:
        """
        :param model: A folder written by ``distill export``.
        :param prefix: Text added before the text (e.g. ``"query: "``).
        :param suffix: Text added after the text.
        :param batch_size: Kept for parity with the SentenceTransformers embedder (one text per call).
        :param progress_bar: Show a progress bar (as Haystack's embedder does, over one batch).
        :param normalize_embeddings: L2-normalise the embedding (after the model's own Normalize, if it has one).
        :param intra_op_num_threads: ONNX Runtime's threads per call; None: its default (the physical cores).
        """
        self.model = model
        self.intra_op_num_threads = intra_op_num_threads
        self._store(
            prefix=prefix,
            suffix=suffix,
            batch_size=batch_size,
            progress_bar=progress_bar,
            normalize_embeddings=normalize_embeddings,
        )

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, Any]:
        """Embed one string."""
        if not isinstance(text, str):
            raise TypeError(
                "OnnxTextEmbedder expects a string as input; to embed a list of Documents, use the "
                "OnnxDocumentEmbedder."
            )
        return {"embedding": self._encode([self.prefix + text + self.suffix])[0].tolist()}


ONNX_TYPES = {
    "DocumentEmbedder": f"{OnnxDocumentEmbedder.__module__}.{OnnxDocumentEmbedder.__qualname__}",
    "TextEmbedder": f"{OnnxTextEmbedder.__module__}.{OnnxTextEmbedder.__qualname__}",
}
# SentenceTransformers settings the ONNX embedders cannot honour, with the value that means "not used".
_UNSUPPORTED = {"truncate_dim": None, "precision": "float32", "encode_kwargs": None, "quantization_ranges": None}


def onnx_embedder(spec: dict[str, Any], model: str, name: str) -> dict[str, Any]:
    """The ONNX twin of the embedder component ``spec`` (a pipeline dict entry), serving export folder ``model``.

    Its text settings are kept; device, token, model and tokenizer kwargs are dropped (ONNX Runtime runs the export on
    the CPU), and a setting that would change the embeddings (``truncate_dim``, ``precision``...) is refused."""
    read_export(model)
    kind = next((k for k in ONNX_TYPES if str(spec.get("type", "")).endswith(k)), None)
    if kind is None:
        raise DistillError(f"component {name!r} ({spec.get('type')}) is not a document or text embedder")
    params = spec.get("init_parameters") or {}
    for key, unused in _UNSUPPORTED.items():
        if params.get(key, unused) not in (unused, {}, []):
            raise DistillError(
                f"component {name!r} sets {key}={params[key]!r}, which the ONNX embedders do not implement: remove "
                "it to serve the export"
            )
    kept = SHARED_SETTINGS + (DOCUMENT_SETTINGS if kind == "DocumentEmbedder" else ())
    new = {"model": model, **{k: params[k] for k in kept if k in params}}
    if "intra_op_num_threads" in params:
        new["intra_op_num_threads"] = params["intra_op_num_threads"]
    return {**spec, "type": ONNX_TYPES[kind], "init_parameters": new}
