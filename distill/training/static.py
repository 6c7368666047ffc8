"""Static token-embedding students: a teacher's vocabulary turned into one vector per token, the model2vec way.

model2vec (Tulkens and van Dongen, 2024, https://github.com/MinishLab/model2vec) passes every token of the teacher's
tokenizer through the teacher as its own short input, mean-pools the last hidden states, reduces them by PCA and
weights each row by an estimate of the token's frequency (SIF weights from Zipf's law over the vocabulary rank). A
text's embedding is then the mean of its tokens' rows. model2vec's ``distill`` extra cannot install beside our pins
(transformers < 5.4), so this module does the same computation itself and saves the result as an ordinary
sentence-transformers folder: ``StaticEmbedding(tokenizer, embedding_weights=...)`` (+ ``Normalize`` where the
teacher normalises), which Haystack's stock SentenceTransformers embedders load as any other model.

The token pass is a teacher pass (about 30k inputs for all-mpnet-base-v2), cached through :mod:`distill.teacher.cache`
under the teacher's fingerprint, so that building several widths, or a trained student after the untrained one,
runs the teacher once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from distill.common.models import STATIC_TYPE, model_fingerprint, resolve_model
from distill.common.outputs import check_output_folder, write_atomic
from distill.errors import DistillError
from distill.teacher.cache import TeacherCache

logger = logging.getLogger(__name__)

DEFAULT_DIMS = 256  # model2vec's default pca_dims
DEFAULT_SIF = 1e-4  # model2vec's default sif_coefficient
# model2vec's default token_remove_pattern: BERT's placeholder tokens, never produced by tokenising real text.
REMOVE_PATTERN = r"\[unused\d+\]"
STATIC_SETTINGS = {"dims": DEFAULT_DIMS, "sif_coefficient": DEFAULT_SIF}
INFO_FILE = "distill_static.json"


# --- the recipe's `student: {static: {...}}` ----------------------------------------------------------------------


def check_static_student(student: Any, query_only: bool, field: str = "recipe.student") -> dict[str, Any]:
    """``static`` or ``{static: {dims, sif_coefficient}}`` as the resolved ``{static: {...}}`` with every setting."""
    if student == "static":
        given: Any = {}
    elif isinstance(student, dict) and set(student) == {"static"}:
        given = student["static"] if student["static"] is not None else {}
    else:
        shape = "static or {static: {dims: 256, sif_coefficient: 1.0e-4}}"
        raise DistillError(f"{field} must be {shape}, got {student!r}")
    if not isinstance(given, dict):
        raise DistillError(f"{field}.static must be a mapping of settings (dims, sif_coefficient), got {given!r}")
    unknown = sorted(set(given) - set(STATIC_SETTINGS))
    if unknown:
        raise DistillError(f"{field}.static: unknown settings {unknown}; known: {', '.join(STATIC_SETTINGS)}")
    settings = {**STATIC_SETTINGS, **given}
    check_settings(settings["dims"], settings["sif_coefficient"], f"{field}.static.")
    if query_only and settings["dims"] is not None:
        raise DistillError(
            f"{field}.static.dims must be null for a query-only static student (got {settings['dims']}): its queries "
            "are searched against the teacher's document embeddings, so it keeps the teacher's width and space"
        )
    return {"static": settings}


def check_settings(dims: Any, sif_coefficient: Any, where: str = "--") -> None:
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise DistillError(f"{where}dims must be a positive whole number or null (the teacher's width), got {dims!r}")
    sif = sif_coefficient
    if sif is not None and (isinstance(sif, bool) or not isinstance(sif, (int, float)) or not 0 < sif < 1):
        raise DistillError(
            f"{where}sif_coefficient must be in (0, 1) (model2vec: 1e-4) or null (no weighting), got {sif!r}"
        )


# --- the token pass -------------------------------------------------------------------------------------------------


def kept_tokens(vocab: dict[str, int], size: int, pattern: str | None = REMOVE_PATTERN) -> np.ndarray:
    """The token ids that get a row of their own (model2vec drops those matching ``pattern``), in id order."""
    regex = re.compile(pattern) if pattern else None
    dropped = {i for token, i in vocab.items() if regex is not None and regex.match(token)}
    return np.array([i for i in range(size) if i not in dropped], dtype=np.int64)


def _frame(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens around each vocabulary token, as the tokenizer puts them: ``[bos, token, eos]``
    (``encode("A")``). model2vec reverses them (``[eos, token, bos]``, "works better on our benchmarks",
    model2vec/distill/inference.py); for all-mpnet-base-v2 that collapses every token onto nearly one vector
    (cosine 0.9999 between any two rows before centring; after it, paris-france 0.98 and paris-banana -0.99),
    while the tokenizer's own order keeps them apart (0.48 and -0.08; measured here over 1,510 tokens; the slow
    test in tests/test_static.py checks that the real teacher's rows stay apart)."""
    ids = tokenizer.encode("A")
    if len(ids) < 3:
        return [], []  # a tokenizer without special tokens: each token alone
    return [ids[0]], [ids[-1]]


def token_outputs(
    teacher: str,
    *,
    load: Callable[[], Any] | None = None,
    batch_size: int = 256,
    cache_root: Path | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, rows)``: every kept vocabulary token of ``teacher`` passed through its transformer as
    ``[bos, token, eos]`` and mean-pooled over the three positions (as model2vec does), one row per id in ``ids``.

    ``load`` returns the teacher as a SentenceTransformer (default: loaded from ``teacher``); it is called only
    when some token is not cached yet."""
    import torch
    from transformers import AutoTokenizer

    path = resolve_model(teacher)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not getattr(tokenizer, "is_fast", False):
        raise DistillError(f"teacher {teacher} has no fast tokenizer (tokenizer.json): a static model needs one")
    backend = tokenizer.backend_tokenizer
    size = backend.get_vocab_size(with_added_tokens=True)
    ids = kept_tokens(backend.get_vocab(with_added_tokens=True), size)
    before, after = _frame(tokenizer)
    width = _hidden_size(path)
    namespace = {
        "kind": "static-tokens",
        "teacher": model_fingerprint(path),
        "frame": [before, after],
        "vocab": hashlib.sha256(backend.to_str().encode("utf-8")).hexdigest()[:16],
        "dim": width,
    }
    cache = TeacherCache(cache_root or TeacherCache.default_root(), namespace=namespace, row_shape=(width,))
    model: list[Any] = []

    def compute(positions: list[int]) -> np.ndarray:
        if not model:
            from sentence_transformers import SentenceTransformer

            model.append(load() if load is not None else SentenceTransformer(path, device="cpu"))
        auto = model[0][0].auto_model
        batch = torch.tensor([[*before, int(ids[p]), *after] for p in positions])
        inputs = {"input_ids": batch, "attention_mask": torch.ones_like(batch)}
        if "token_type_ids" in tokenizer.model_input_names:
            inputs["token_type_ids"] = torch.zeros_like(batch)
        with torch.no_grad():
            hidden = auto(**{k: v.to(auto.device) for k, v in inputs.items()}).last_hidden_state
        return hidden.float().mean(dim=1).cpu().numpy()

    rows = cache.get([str(i) for i in ids], compute, batch_size=batch_size, progress=progress, desc="teacher: tokens")
    return ids, rows


def _hidden_size(path: str) -> int:
    try:
        return int(json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DistillError(f"teacher {path} has no config.json with hidden_size: give a transformer teacher") from None


# --- PCA and SIF weights --------------------------------------------------------------------------------------------


def pca(rows: np.ndarray, dims: int) -> np.ndarray:
    """The rows centred and projected onto their ``dims`` principal axes (sklearn's ``PCA(dims).fit_transform``,
    which model2vec calls, up to the sign of each axis)."""
    x = rows.astype(np.float64)
    x -= x.mean(axis=0)
    values, vectors = np.linalg.eigh(x.T @ x)
    axes = vectors[:, np.argsort(values)[::-1][:dims]]
    return (x @ axes).astype(np.float32)


def sif_weights(count: int, sif_coefficient: float) -> np.ndarray:
    """model2vec's weights (model2vec/distill/distillation.py, ``_post_process_embeddings``): token frequencies
    estimated by Zipf's law from the vocabulary rank, ``p_r = (1 / (r + 2)) / sum_j 1 / (j + 2)`` for the r-th row
    (r = 0, 1, ...), then SIF weights ``a / (a + p_r)`` (Arora et al., 2017) with ``a = sif_coefficient``."""
    inverse_rank = 1.0 / np.arange(2, count + 2, dtype=np.float64)
    probability = inverse_rank / inverse_rank.sum()
    return (sif_coefficient / (sif_coefficient + probability)).astype(np.float32)


def static_weights(
    ids: np.ndarray, rows: np.ndarray, size: int, dims: int | None, sif_coefficient: float | None
) -> np.ndarray:
    """The (size, width) embedding matrix: the kept rows reduced and weighted as model2vec does (ranks counted over
    the kept tokens, as in its smaller vocabulary), zero rows for the dropped ids (which no text produces)."""
    if dims is not None:
        if dims > rows.shape[1]:
            raise DistillError(
                f"dims {dims} is more than the teacher's width {rows.shape[1]}: give dims <= {rows.shape[1]}, "
                "or null to keep the teacher's width and space"
            )
        if dims >= len(rows):
            raise DistillError(f"dims {dims} needs more than {len(rows)} vocabulary tokens for PCA: give fewer dims")
        rows = pca(rows, dims)
    if sif_coefficient is not None:
        rows = rows * sif_weights(len(rows), sif_coefficient)[:, None]
    out = np.zeros((size, rows.shape[1]), dtype=np.float32)
    out[ids] = rows
    return out


# --- the sentence-transformers model ----------------------------------------------------------------------------


def build_static(
    teacher: str,
    *,
    dims: int | None = DEFAULT_DIMS,
    sif_coefficient: float | None = DEFAULT_SIF,
    load: Callable[[], Any] | None = None,
    cache_root: Path | None = None,
    progress: bool = True,
):
    """The untrained static model of ``teacher`` as a SentenceTransformer (on the CPU)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    check_settings(dims, sif_coefficient)
    path = resolve_model(teacher)
    if dims is not None and dims > (width := _hidden_size(path)):  # said before the token pass, not after
        raise DistillError(
            f"dims {dims} is more than the teacher's width {width}: give dims <= {width}, or null to keep the "
            "teacher's width and space"
        )
    ids, rows = token_outputs(path, load=load, cache_root=cache_root, progress=progress)
    # A copy of the teacher's tokenizer: StaticEmbedding turns its padding off; without truncation, as model2vec.
    tokenizer = Tokenizer.from_str(AutoTokenizer.from_pretrained(path).backend_tokenizer.to_str())
    tokenizer.no_truncation()
    weights = static_weights(ids, rows, tokenizer.get_vocab_size(with_added_tokens=True), dims, sif_coefficient)
    modules: list[Any] = [StaticEmbedding(tokenizer, embedding_weights=weights, base_model=str(teacher))]
    if _normalises(Path(path)):
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, device="cpu")


def _normalises(folder: Path) -> bool:
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(str(m.get("type", "")).endswith("Normalize") for m in modules if isinstance(m, dict))


def write_static(
    teacher: str,
    out: Path,
    *,
    dims: int | None = DEFAULT_DIMS,
    sif_coefficient: float | None = DEFAULT_SIF,
    progress: bool = True,
) -> Path:
    """``distill static``: build the untrained static model of ``teacher`` into the folder ``out``."""
    check_settings(dims, sif_coefficient)
    check_output_folder(out, "--out")
    start = time.perf_counter()
    model = build_static(teacher, dims=dims, sif_coefficient=sif_coefficient, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out), safe_serialization=True)
    info = {
        "teacher": str(teacher),
        "dims": dims,
        "sif_coefficient": sif_coefficient,
        "width": int(model.get_embedding_dimension()),
        "vocabulary": int(model[0].num_embeddings),
        "removed_pattern": REMOVE_PATTERN,
        "seconds": round(time.perf_counter() - start, 1),
        "method": "model2vec (token pass [bos, token, eos], mean-pooled; PCA; Zipf/SIF weights), without model2vec",
    }
    write_atomic(out / INFO_FILE, json.dumps(info, indent=2) + "\n")
    return out


# --- static students in training and in pipelines -----------------------------------------------------------------


def is_static(model: Any) -> bool:
    """Whether a SentenceTransformer starts with a StaticEmbedding (no attention masks, no token states)."""
    try:
        first = model[0]
    except (TypeError, IndexError, KeyError):
        return False
    return type(first).__name__ == STATIC_TYPE
