"""``distill export``: a sentence-transformers embedder (a student or the teacher) as an ONNX folder, int8 by default.

The transformer is exported with ``torch.onnx.export`` (the TorchScript exporter, opset 17: inputs ``input_ids`` and
``attention_mask``, output the token embeddings) and, unless ``int8=False``, quantised with ONNX Runtime's
``quantize_dynamic`` (int8 weights, activations quantised per batch at run time; of three ways to scale the weights,
the one whose embeddings of a few probe texts are closest to the fp32 graph's, recorded with its cosine).
Tokenisation, pooling and normalisation stay outside the graph, as sentence-transformers does them, so the folder
holds what reproduces the whole pipeline without torch:

- ``model.onnx``: the transformer;
- ``tokenizer.json`` (and the tokenizer's other files): the same tokenizer, read by the ``tokenizers`` library;
- ``config.json``: the transformer's Hugging Face config (for the record, and so the folder reads as a model folder);
- ``distill_onnx.json`` (:data:`distill.common.models.ONNX_EXPORT_FILE`): precision, pooling mode, whether a
  ``Normalize`` module follows, ``max_seq_length``, lower-casing, the embedding width, the pad token and the source;
- ``head.npz``, only for a query-only student (Transformer -> Pooling [-> Normalize] -> Dense [-> Normalize], the
  Dense layer linear: the head that puts its queries into the teacher's space): the head's weight and bias, applied
  in float32 after pooling (``normalize_pooled`` says whether the pooled rows are normalised first).

:mod:`distill.components.onnx_embedders` serves such a folder in Haystack pipelines. What the exporter does not
reproduce is
refused with one line: a folder without ``modules.json``, modules other than Transformer -> Pooling [-> Normalize]
[-> Dense [-> Normalize]], a Dense layer with an activation, pooling modes other than mean, cls and max, a default
prompt, a slow tokenizer.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from distill.common.models import HUB_ALIASES, ONNX_EXPORT_FILE, model_fingerprint, model_footprint, resolve_model
from distill.common.outputs import check_output_folder, follow_umask, undone_on_error, write_atomic
from distill.components.onnx_embedders import EXPORT_FORMAT
from distill.errors import DistillError

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
POOLING_MODES = ("mean", "cls", "max")
HEAD_FILE = "head.npz"
# the module lists the export reproduces: a plain embedder, and a query-only student with its linear head
EXPORTABLE = (
    [],
    ["Normalize"],
    ["Dense"],
    ["Dense", "Normalize"],
    ["Normalize", "Dense"],
    ["Normalize", "Dense", "Normalize"],
)
OPSET = 17


def _module_kinds(folder: Path, spec: str) -> list[str]:
    """The class names of the folder's sentence-transformers modules, in order, checked to be exportable."""
    path = folder / "modules.json"
    if not path.is_file():
        raise DistillError(
            f"{spec} has no modules.json: `distill export` exports sentence-transformers embedders (a reader or a "
            "plain transformers folder cannot be served as an embedder)"
        )
    try:
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, KeyError, TypeError):
        raise DistillError(f"{path} is not a sentence-transformers modules list (JSON with a 'type' each)") from None
    expected = ["Transformer", "Pooling"]
    if kinds[:2] != expected or kinds[2:] not in EXPORTABLE:
        raise DistillError(
            f"{spec} has modules {kinds}; `distill export` reproduces Transformer -> Pooling [-> Normalize] "
            "[-> Dense [-> Normalize]] only: serve this model with the SentenceTransformers embedders"
        )
    return kinds


def _settings(model: Any, spec: str, kinds: list[str]) -> dict[str, Any]:
    """What the component needs besides the graph, read from the loaded SentenceTransformer."""
    transformer, pooling = model[0], model[1]
    mode = pooling.pooling_mode
    if not isinstance(mode, str) or mode not in POOLING_MODES:
        raise DistillError(
            f"{spec} pools with {mode!r}; `distill export` implements pooling modes {', '.join(POOLING_MODES)}"
        )
    if getattr(model, "default_prompt_name", None):
        raise DistillError(
            f"{spec} has a default prompt ({model.default_prompt_name!r}); export a model without one and give the "
            "prompt as the embedders' prefix"
        )
    tokenizer = transformer.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise DistillError(f"{spec}'s tokenizer has no fast form (tokenizer.json), which the ONNX embedders read")
    if getattr(tokenizer, "padding_side", "right") != "right" or tokenizer.pad_token_id is None:
        raise DistillError(f"{spec}'s tokenizer pads on the left or has no pad token; the ONNX embedders pad right")
    dense = model[kinds.index("Dense")] if "Dense" in kinds else None
    if dense is not None and type(dense.activation_function).__name__ != "Identity":
        raise DistillError(
            f"{spec}'s Dense layer has the activation {type(dense.activation_function).__name__}; `distill export` "
            "reproduces a linear head only"
        )
    return {
        "pooling": mode,
        "normalize": kinds[-1] == "Normalize",
        "max_seq_length": int(model.max_seq_length),
        "do_lower_case": bool(getattr(transformer, "do_lower_case", False)),
        "dimension": int(dense.linear.out_features if dense is not None else pooling.pooling_output_dimension),
        "pad_token_id": int(tokenizer.pad_token_id),
        **({"head": HEAD_FILE, "normalize_pooled": kinds[2] == "Normalize"} if dense is not None else {}),
    }


def _write_head(model: Any, kinds: list[str], path: Path) -> None:
    """The Dense head's weight (out x in) and bias as float32 arrays (a zero bias where it has none)."""
    linear = model[kinds.index("Dense")].linear
    weight = linear.weight.detach().cpu().numpy().astype(np.float32)
    bias = linear.bias.detach().cpu().numpy().astype(np.float32) if linear.bias is not None else np.zeros(len(weight))
    np.savez(path, weight=weight, bias=bias.astype(np.float32))


def _token_embeddings(auto_model: Any) -> Any:
    """The transformer as a module of the graph's two input tensors, returning its token embeddings."""
    import torch

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = auto_model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return TokenEmbeddings().eval()


def _export_graph(model: Any, path: Path, spec: str) -> None:
    import torch

    transformer = model[0]
    tokenizer = transformer.tokenizer
    sample = tokenizer(["an example sentence to trace", "short"], padding=True, return_tensors="pt")
    wrapped = _token_embeddings(transformer.auto_model)
    axes = {0: "batch", 1: "sequence"}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's warnings about Python branches on shapes: fixed per graph
            torch.onnx.export(
                wrapped,
                (sample["input_ids"], sample["attention_mask"]),
                str(path),
                input_names=["input_ids", "attention_mask"],
                output_names=["token_embeddings"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_embeddings": axes},
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as e:  # the exporter's failures are many and deep; the user needs the model and the first line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DistillError(f"torch.onnx.export cannot trace {spec}: {first[:300]}") from None


# What an int8 graph is checked on: its embeddings against the fp32 graph's, by cosine (mean-pooled token outputs).
PROBE_TEXTS = (
    "What is the capital of France?",
    "Paris is the capital and most populous city of France, on the Seine.",
    "Who wrote the Ninth Symphony?",
    "Beethoven composed nine symphonies; the last has a choral finale.",
    "how do statins affect breast cancer risk",
    "The Nile flows north through eleven countries into the Mediterranean Sea.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "In 1905 Einstein published four papers, on the photoelectric effect, Brownian motion and relativity.",
)

# The dynamic quantisations tried, best first where they work: one scale per output channel of each weight (the
# distilled MiniLM-L6: -0.3 points of nDCG@10 on SQuAD dev against -1.7 with one scale per tensor), the same with
# 7-bit weights (ONNX Runtime's advice for CPUs without VNNI, where u8 x s8 products can saturate: on this AVX2
# machine all-mpnet-base-v2 per channel gave embeddings unrelated to its fp32 ones, cosine ~0.05, and 7-bit per channel
# ~0.92), and ONNX Runtime's default (one scale per tensor). The one closest to the fp32 graph is kept.
QUANTISATIONS = {
    "per output channel": {"per_channel": True},
    "per output channel, 7-bit weights": {"per_channel": True, "reduce_range": True},
    "per tensor": {},
}


def _quantise(source: Path, target: Path, inputs: dict[str, Any]) -> dict[str, Any]:
    """Quantise ``source`` each way of :data:`QUANTISATIONS`, keep at ``target`` the one whose embeddings of
    ``inputs`` are closest to the fp32 graph's (the highest lowest cosine), and say which and how close."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    reference = _pooled(source, inputs)
    tried: dict[str, float] = {}
    best: tuple[float, str, Path] | None = None
    logging.disable(logging.WARNING)  # its root-logger advice to pre-process, which would also configure logging
    try:
        for n, (name, options) in enumerate(QUANTISATIONS.items()):
            candidate = target.with_name(f"int8-{n}.onnx")
            quantize_dynamic(str(source), str(candidate), weight_type=QuantType.QInt8, **options)
            got = _pooled(candidate, inputs)
            cosine = (got * reference).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(reference, axis=1)
            tried[name] = round(float(cosine.min()), 4)
            if best is None or tried[name] > best[0]:
                best = (tried[name], name, candidate)
    finally:
        logging.disable(logging.NOTSET)
    assert best is not None
    cosine, chosen, path = best
    os.replace(path, target)
    return {"int8_scales": chosen, "int8_min_cosine_to_fp32": cosine, "int8_tried": tried}


def _pooled(graph: Path, inputs: dict[str, Any]) -> np.ndarray:
    """Mean-pooled token outputs of an ONNX graph on tokenised ``inputs``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    tokens = session.run(None, {k: inputs[k] for k in ("input_ids", "attention_mask")})[0]
    mask = inputs["attention_mask"][..., None].astype(np.float32)
    return (tokens * mask).sum(1) / mask.sum(1)


def _require_onnxruntime() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise DistillError(f"exporting needs onnx and onnxruntime ({e.name} is missing): run `make setup`") from None


def export_onnx(model: str, out: str | Path, *, int8: bool = True) -> Path:
    """Export the sentence-transformers embedder ``model`` (folder, offline source or cached Hub id) to ``out``.

    Returns ``out``. An earlier export there is replaced; a failed export leaves no folder it created.
    """
    from sentence_transformers import SentenceTransformer

    out = Path(out)
    check_output_folder(out, "--out")
    if out.is_dir() and any(out.iterdir()) and not (out / ONNX_EXPORT_FILE).is_file():
        raise DistillError(f"--out {out} is a folder that holds something other than an export: give a new folder")
    _require_onnxruntime()
    folder = Path(resolve_model(HUB_ALIASES.get(model, model)))  # the teacher's Hub id: its offline source
    if not folder.is_dir():
        raise DistillError(f"{model} is not a local model folder or offline source: download it first")
    kinds = _module_kinds(folder, model)
    st = SentenceTransformer(str(folder), device="cpu")
    settings = _settings(st, model, kinds)
    with undone_on_error(out):
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
            staged = Path(tmp)
            _export_graph(st, staged / "fp32.onnx", model)
            if int8:
                probe = st[0].tokenizer(list(PROBE_TEXTS), padding=True, return_tensors="np")
                probe = {k: v.astype(np.int64) for k, v in probe.items()}
                quantised = _quantise(staged / "fp32.onnx", staged / ONNX_FILE, probe)
            else:
                (staged / "fp32.onnx").rename(staged / ONNX_FILE)
            tokenizer = st[0].tokenizer
            tokenizer.save_pretrained(str(staged / "tokenizer"))
            # The backend tokenizer as sentence-transformers runs it (do_lower_case lives in its normaliser).
            tokenizer.backend_tokenizer.save(str(staged / "tokenizer" / "tokenizer.json"))
            for file in (staged / "tokenizer").iterdir():
                os.replace(file, out / file.name)
            st[0].auto_model.config.to_json_file(str(out / "config.json"))
            if "head" in settings:
                _write_head(st, kinds, staged / HEAD_FILE)
                os.replace(staged / HEAD_FILE, out / HEAD_FILE)
            os.replace(staged / ONNX_FILE, out / ONNX_FILE)
        description = {
            "format": EXPORT_FORMAT,
            "precision": "int8" if int8 else "fp32",
            **(quantised if int8 else {}),
            **settings,
            "onnx": ONNX_FILE,
            "opset": OPSET,
            "inputs": ["input_ids", "attention_mask"],
            "source": str(model),
            "source_weights": model_fingerprint(folder),
            "source_parameters": model_footprint(folder)["parameters"],
        }
        follow_umask(out)
        write_atomic(out / ONNX_EXPORT_FILE, json.dumps(description, indent=2) + "\n")
    logger.info("exported %s to %s (%s)", model, out, description["precision"])
    return out
