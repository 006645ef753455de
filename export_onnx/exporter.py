"""Export open_clip models to a photosearch model pack, gated on ONNX Runtime/torch parity.

A pack holds the dual encoder (image and text graphs, L2-normalised embeddings) and, when asked,
a CoCa cross-attention scorer (an image graph yielding the tokens its decoder attends to, and a
scoring graph yielding log p(query | image) and the token count). Every graph is checked against
torch on the same inputs before the pack is written; a pack that fails is not written.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import open_clip
import torch
import torch.nn.functional as F
from open_clip.coca_model import CoCa
from open_clip.transformer import TextTransformer, text_global_pool
from torch import nn

from photosearch import modelpack
from photosearch.encoders import reverse_caption, trim_padding, trim_text
from photosearch.errors import PackError
from photosearch.export_onnx.lean import lean_copy
from photosearch.export_onnx.scorer import AbsorbedScorer, RerankerScorer
from photosearch.export_onnx.tokenizer_export import write_tokenizer

log = logging.getLogger(__name__)

OPSET = 17
# The scorer needs a symbolic query length, which only the dynamo exporter traces faithfully.
OPSET_DYNAMO = 18
CONFIG_DIR = Path(__file__).parent / "model_configs"
# Parity thresholds (the gate): cosine of embeddings, relative log-likelihood error.
MIN_COSINE = {"fp32": 0.9999, "int8": 0.995}
# int8 gate: a ranking instrument, not a bit-exact one. Scores of one query are compared with
# each other; 1 % of a log-likelihood is well inside the gaps that order a library's photos.
MAX_LOGLIK_REL_ERR = {"fp32": 1e-3, "int8": 1e-2}

open_clip.add_model_config(CONFIG_DIR)

ProgressFn = Callable[[str], None]


class ParityError(PackError):
    """ONNX Runtime's output differs from torch's beyond the gate."""


# ---------------------------------------------------------------------------------------------
# Graph wrappers: each is the exact computation the runtime will perform.


class ImageEmbedding(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(pixels), dim=-1)


class TextEmbedding(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_text(input_ids), dim=-1)


def _project(x: torch.Tensor, projection: nn.Module | torch.Tensor | None) -> torch.Tensor:
    """A text tower's output projection, as open_clip applies it (a layer, a matrix, none)."""
    if isinstance(projection, nn.Linear):
        return projection(x)
    return x if projection is None else x @ projection


class TrimmedTextEmbedding(nn.Module):
    """A causal CLIP text tower that accepts ids cut after the end token.

    A query is a handful of tokens padded to 77; with a causal mask the pooled end token never
    sees the padding, so running only up to it gives the same embedding at a fraction of the
    cost (a 6-token query: about a tenth). Only for :func:`trimmable` models.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        m = self.model
        n = input_ids.shape[1]
        x = m.token_embedding(input_ids) + m.positional_embedding[:n]
        x = m.transformer(x, attn_mask=m.attn_mask[:n, :n])
        x = m.ln_final(x)
        x = text_global_pool(
            x, input_ids, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None)
        )
        return F.normalize(_project(x, m.text_projection), dim=-1)


class TrimmedTowerText(nn.Module):
    """An open_clip ``TextTransformer`` (CoCa's, or a custom-text CLIP's) on ids cut short.

    CoCa appends a class token after the 76 ids, pools it, and masks the padding out of its
    attention, so the pooled token sees only the ids up to the end token (and, with the legacy
    off-by-one mask, the first padding id after it). Cut there, the class token keeps the
    position it has at full length (the last positional embedding) and the same mask rule, so
    the embedding is the same as at full length. The runtime cuts one id after the longest
    query's end token (:func:`photosearch.encoders.trim_text`), which the legacy mask needs.
    """

    def __init__(self, tower: TextTransformer):
        super().__init__()
        self.tower = tower

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        t = self.tower
        n = input_ids.shape[1]
        x = t.token_embedding(input_ids) + t.positional_embedding[:n]
        if t.cls_emb is not None:
            cls = (t.cls_emb + t.positional_embedding[-1]).expand(x.shape[0], 1, -1)
            x = torch.cat([x, cls], 1)
        seq = x.shape[1]
        mask = t.attn_mask[:seq, :seq]
        if t.use_pad_mask or t.cls_emb is not None:
            mask = mask.unsqueeze(0) + t._build_additive_mask(input_ids, seq, x.dtype)
        x = t.transformer(x, attn_mask=mask)
        if t.cls_emb is not None:
            pooled = t.ln_final(x[:, -1])
        else:
            pooled = text_global_pool(
                t.ln_final(x), input_ids, t.pool_type, eos_token_id=getattr(t, "eos_id", None)
            )
        return F.normalize(_project(pooled, t.text_projection), dim=-1)


def trimmed_text(model: nn.Module) -> nn.Module | None:
    """The text graph that takes ids cut after the end token, where it equals the full one.

    That holds when the pooled output ignores everything after the end token: a causal tower
    pooling the end token (CLIP, a custom-text CLIP with a causal mask) or CoCa's class token,
    which masks the padding out. Bidirectional towers (MobileCLIP-S*) attend to the padding,
    so their text graph keeps the fixed length.
    """
    if (
        type(model) is open_clip.model.CLIP
        and getattr(model, "attn_mask", None) is not None
        and getattr(model, "text_pool_type", None) in ("argmax", "eos")
    ):
        return TrimmedTextEmbedding(model)
    tower = getattr(model, "text", None)
    if not isinstance(tower, TextTransformer) or tower.attn_mask is None:
        return None
    if tower.cls_emb is not None or tower.pool_type in ("argmax", "eos"):
        return TrimmedTowerText(tower)
    return None


class RerankerImage(nn.Module):
    """Pixels to the image tokens CoCa's multimodal decoder cross-attends to."""

    def __init__(self, coca: CoCa):
        super().__init__()
        self.visual = coca.visual

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        _, tokens = self.visual(pixels)
        return tokens


# ---------------------------------------------------------------------------------------------
# Model creation


@dataclass
class Source:
    """Where a model's weights come from."""

    model: str
    pretrained: str | None  # open_clip tag, or None for random weights
    checkpoint: Path | None = None
    # The tag's weights, already on disk (``photosearch models prepare`` downloads them itself:
    # resumable, verified); the tag still gives the preprocessing and is recorded as the source.
    weights: Path | None = None
    # open_clip 3.3.0 keeps CoCa's legacy (off-by-one) text padding mask unless told; weights
    # trained with the correct mask must be exported with it too.
    correct_cls_mask: bool = False
    checkpoint_sha256: str | None = field(default=None, init=False)

    def describe(self) -> dict[str, Any]:
        return {
            "library": "open_clip",
            "library_version": open_clip.__version__,
            "model": self.model,
            "pretrained": self.pretrained or "none",
            "checkpoint_sha256": self.checkpoint_sha256,
            "correct_cls_mask": self.correct_cls_mask,
        }


def _unloadable(model: str, weights: Path, e: Exception) -> PackError:
    """Weights that do not load into ``model``: the first line of why, and the file."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return PackError(f"cannot load these weights into {model}: {first[:300]}", file=str(weights))


def create_model(source: Source, *, seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """An open_clip model in inference form, and its preprocessing configuration."""
    if source.model not in open_clip.list_models():
        raise PackError(
            f"unknown open_clip model {source.model!r} "
            "(see open_clip.list_models(); photosearch-tiny-clip/-coca are ours)"
        )
    torch.manual_seed(seed)
    if source.checkpoint is not None:
        if not source.checkpoint.is_file():
            raise PackError("checkpoint file not found", file=str(source.checkpoint))
        if source.pretrained is not None:
            raise PackError("give either a pretrained tag or a checkpoint file, not both")
        source.checkpoint_sha256 = modelpack.sha256_file(source.checkpoint)
        model = open_clip.create_model(source.model, pretrained=None)
        try:
            state = torch.load(source.checkpoint, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            state = {k.removeprefix("module."): v for k, v in state.items()}
            model.load_state_dict(state)
        except Exception as e:  # unpickling and shape errors come in many types
            raise _unloadable(source.model, source.checkpoint, e) from e
    elif source.weights is not None:
        if not source.weights.is_file():
            raise PackError("weights file not found", file=str(source.weights))
        source.checkpoint_sha256 = modelpack.sha256_file(source.weights)
        tag_cfg = open_clip.get_pretrained_cfg(source.model, source.pretrained or "") or {}
        keep = ("mean", "std", "interpolation", "resize_mode", "fill_color")
        try:
            model = open_clip.create_model(
                source.model,
                pretrained=str(source.weights),
                force_preprocess_cfg={k: tag_cfg[k] for k in keep if k in tag_cfg},
            )
        except Exception as e:  # unpickling and shape errors come in many types
            raise _unloadable(source.model, source.weights, e) from e
    else:
        try:
            model = open_clip.create_model(source.model, pretrained=source.pretrained)
        except Exception as e:  # open_clip and huggingface_hub raise many untyped errors
            if source.pretrained is None:
                raise
            raise PackError(
                f"could not load pretrained weights {source.pretrained!r} for {source.model}: "
                f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__} "
                "(unknown tag, or no network: use --checkpoint FILE for weights on disk)"
            ) from e
        if source.pretrained is None and isinstance(model, CoCa):
            # open_clip 3.3.0 leaves this projection as torch.empty: garbage, sometimes NaN.
            width = model.text_decoder.width
            nn.init.normal_(model.text_decoder.text_projection, std=width**-0.5)
    if source.correct_cls_mask:
        if not isinstance(model, CoCa):
            raise PackError(f"--correct-cls-mask applies to CoCa models, not {source.model}")
        model.text.correct_cls_mask = True
    model.eval()
    _reparameterize(model)
    cfg = dict(open_clip.get_model_preprocess_cfg(model))
    return model, cfg


def _reparameterize(model: nn.Module) -> None:
    """Fuse train-time branches (MobileCLIP's FastViT) into their inference form, in place."""
    if not any(hasattr(m, "reparameterize") for m in model.modules()):
        return
    from timm.utils.model import reparameterize_model

    reparameterize_model(model, inplace=True)


def image_spec(cfg: dict[str, Any]) -> modelpack.ImageSpec:
    size = cfg.get("size", 224)
    if isinstance(size, int):
        size = (size, size)
    return modelpack.ImageSpec(
        size=(int(size[0]), int(size[1])),
        mean=tuple(float(x) for x in cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),  # type: ignore[arg-type]
        std=tuple(float(x) for x in cfg.get("std", open_clip.OPENAI_DATASET_STD)),  # type: ignore[arg-type]
        interpolation=str(cfg.get("interpolation", "bicubic")),
        resize_mode=str(cfg.get("resize_mode", "shortest")),
    )


# ---------------------------------------------------------------------------------------------
# Parity inputs: deterministic, varied, in the model's own input space.

PARITY_TEXTS = [
    "a photo of a dog on the beach at sunset",
    "a red car left of a white house",
    "",
    "Zwei Katzen schlafen auf dem Sofa, daneben ein Hund!",
    "东京的夜景",
    "🎉 birthday party with 3 cakes & balloons",
    "IMG_2041.jpg",
    "the quick brown fox jumps over the lazy dog " * 12,
    "a blue square above a small green circle",
    "mountains, snow; lake — reflection?",
    "l'été à Paris",
    "two people walking in the rain with umbrellas",
]


def parity_pixels(spec: modelpack.ImageSpec, n: int = 6, seed: int = 0) -> np.ndarray:
    """Images in [0, 1] (noise, gradients, flat colour, blocks), normalised like the runtime."""
    rng = np.random.default_rng(seed)
    h, w = spec.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    imgs = [
        rng.random((3, h, w), dtype=np.float32),
        np.stack([xx / w, yy / h, (xx + yy) / (w + h)]),
        np.ones((3, h, w), np.float32) * np.array([0.8, 0.2, 0.1], np.float32)[:, None, None],
        ((xx // max(1, w // 4) + yy // max(1, h // 4)) % 2)[None].repeat(3, 0),
    ]
    while len(imgs) < n:
        imgs.append(np.clip(rng.normal(0.5, 0.25, (3, h, w)), 0, 1).astype(np.float32))
    x = np.stack(imgs[:n]).astype(np.float32)
    mean = np.array(spec.mean, np.float32)[None, :, None, None]
    std = np.array(spec.std, np.float32)[None, :, None, None]
    return (x - mean) / std


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(-1)


def _cpu_session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def check_embedding_parity(
    path: Path, input_name: str, x: np.ndarray, reference: np.ndarray, precision: str
) -> dict[str, float]:
    (out,) = _cpu_session(path).run(["embedding"], {input_name: x})
    if not np.all(np.isfinite(out)):
        raise ParityError("ONNX output is not finite", file=path.name)
    cos = _cosines(out, reference)
    figures = {
        "min_cosine": float(cos.min()),
        "max_abs_diff": float(np.abs(out - reference).max()),
        "norm_max_dev": float(np.abs(np.linalg.norm(out, axis=-1) - 1).max()),
    }
    gate = MIN_COSINE[precision]
    if figures["min_cosine"] < gate or figures["norm_max_dev"] > 1e-3:
        raise ParityError(
            f"parity gate failed ({precision}): min cosine {figures['min_cosine']:.6f} "
            f"(needs >= {gate}), norm deviation {figures['norm_max_dev']:.2e}",
            file=path.name,
        )
    return figures


# ---------------------------------------------------------------------------------------------
# Export


def _export(
    module: nn.Module, args: tuple, path: Path, inputs, outputs, dynamic_axes, *, dynamo=False
) -> None:
    # nn.MultiheadAttention's inference fast path is a fused op ONNX has no symbol for.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        _export_unfused(module, args, path, inputs, outputs, dynamic_axes, dynamo)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _export_unfused(module, args, path, inputs, outputs, dynamic_axes, dynamo=False) -> None:
    with torch.no_grad():
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET_DYNAMO if dynamo else OPSET,
            dynamo=dynamo,
            verbose=False,
            **({} if dynamo else {"do_constant_folding": True}),
        )
    if dynamo:
        # The dynamo exporter may leave weights in a side file; fold them into one file.
        import onnx

        proto = onnx.load(str(path), load_external_data=True)
        for side in path.parent.glob(f"{path.name}.data"):
            side.unlink()
        for name in outputs:
            _free_name(proto.graph, name)
        onnx.save(proto, str(path))


def _free_name(graph: Any, name: str) -> None:
    """Rename an inner value that took a graph output's name (dynamo names nn.Embedding's
    output "embedding"), so the graph's own output keeps the name the runtime asks for."""
    producers = [n for n in graph.node if name in n.output]
    if len(producers) < 2:
        return
    final = producers[-1]  # nodes are in topological order: the graph output comes last
    inner = f"{name}__inner"
    for node in graph.node:
        for i, x in enumerate(node.input):
            if x == name:
                node.input[i] = inner
        if node is not final:
            for i, x in enumerate(node.output):
                if x == name:
                    node.output[i] = inner


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of MatMul/Gemm weights (activations quantised at run time).

    Per-channel scales with a 7-bit weight range: on x86 CPUs without VNNI the u8×s8 kernels
    saturate with full-range weights (ViT-B-32's image tower fell to cosine 0.98 here; with
    reduce_range it keeps 0.9997).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        op_types_to_quantize=["MatMul", "Gemm"],
        nodes_to_exclude=_batched_weight_matmuls(onnx.load(str(src))),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
    )


def _batched_weight_matmuls(proto: Any) -> list[str]:
    """MatMul nodes whose constant operand is not a matrix (one weight per attention head):
    ONNX Runtime's per-channel int8 kernels take only 2-D weights, so these stay fp32."""
    dims = {t.name: len(t.dims) for t in proto.graph.initializer}
    for node in proto.graph.node:  # constants folded into Constant nodes count too
        if node.op_type == "Constant" and node.attribute and node.attribute[0].t is not None:
            dims.setdefault(node.output[0], len(node.attribute[0].t.dims))
    return [
        n.name
        for n in proto.graph.node
        if n.op_type == "MatMul" and any(dims.get(x, 2) > 2 for x in n.input)
    ]


def _export_embedding_graph(
    wrapper: nn.Module,
    x: np.ndarray,
    input_name: str,
    dest: Path,
    *,
    quantize: str | None,
    work: Path,
    truth: nn.Module | None = None,
) -> dict[str, Any]:
    """Export ``wrapper``, gate fp32 parity against ``truth`` (default: ``wrapper`` itself; the
    original model when ``wrapper`` is its lean copy), optionally quantise and keep int8 only
    if it passes its gate."""
    with torch.no_grad():
        x_t = torch.from_numpy(x)
        reference = (truth or wrapper)(x_t).numpy()
    dyn = {input_name: {0: "batch"}, "embedding": {0: "batch"}}
    fp32 = work / f"{dest.stem}.fp32.onnx"
    _export(wrapper, (x_t,), fp32, [input_name], ["embedding"], dyn)
    result: dict[str, Any] = {
        "fp32": check_embedding_parity(fp32, input_name, x, reference, "fp32"),
        "precision": "fp32",
    }
    chosen = fp32
    if quantize == "int8":
        q = work / f"{dest.stem}.int8.onnx"
        quantize_int8(fp32, q)
        try:
            result["int8"] = check_embedding_parity(q, input_name, x, reference, "int8")
            chosen = q
            result["precision"] = "int8"
        except ParityError as e:
            result["int8_rejected"] = str(e)
            log.warning("%s: int8 rejected, keeping fp32: %s", dest.name, e)
    shutil.move(str(chosen), dest)
    return result


def _gate_trimmed_text(
    path: Path, ids: np.ndarray, reference: np.ndarray, precision: str
) -> dict[str, float]:
    """The dynamic-length text graph against torch's full-length embeddings: one query at a
    time, each cut after its own end token as the runtime cuts it, plus the batch cut once."""
    outs = [
        _cpu_session(path).run(["embedding"], {"input_ids": trim_text(ids[i : i + 1], 0)})[0]
        for i in range(len(ids))
    ]
    rows = np.concatenate(outs)
    batch = _cpu_session(path).run(["embedding"], {"input_ids": trim_text(ids, 0)})[0]
    cos = np.minimum(_cosines(rows, reference), _cosines(batch, reference))
    figures = {
        "min_cosine": float(cos.min()),
        "max_abs_diff": float(np.abs(rows - reference).max()),
    }
    if not np.isfinite(cos).all() or figures["min_cosine"] < MIN_COSINE[precision]:
        raise ParityError(
            f"dynamic-length parity failed ({precision}): min cosine {figures['min_cosine']:.6f}",
            file=path.name,
        )
    return figures


def _export_trimmed_text(
    model: nn.Module,
    ids: np.ndarray,
    dest: Path,
    *,
    quantize: str | None,
    work: Path,
    lean: nn.Module | None = None,
) -> dict[str, Any] | None:
    """The text graph with a dynamic length, gated on each query cut as the runtime cuts it.

    Returns its parity figures, or None (and writes nothing) when the model does not allow it
    or the graph does not match torch: the caller then exports the fixed-length graph.
    """
    trimmed = trimmed_text(lean if lean is not None else model)  # exported; gated on ``model``
    if trimmed is None:
        return None
    with torch.no_grad():
        reference = TextEmbedding(model).eval()(torch.from_numpy(ids)).numpy()
    fp32 = work / f"{dest.stem}.trim.fp32.onnx"
    sample = trim_text(ids[:2], 0)
    try:
        _export(
            trimmed.eval(),
            (torch.from_numpy(sample),),
            fp32,
            ["input_ids"],
            ["embedding"],
            {"input_ids": {0: "batch", 1: "length"}, "embedding": {0: "batch"}},
            dynamo=True,
        )
    except Exception as e:  # the exporter's failures are many and untyped
        log.warning("text encoder: no dynamic-length graph (%s); exporting fixed length", e)
        return None

    def gate(path: Path, precision: str) -> dict[str, float]:
        return _gate_trimmed_text(path, ids, reference, precision)

    try:
        result: dict[str, Any] = {"fp32": gate(fp32, "fp32"), "precision": "fp32"}
    except ParityError as e:
        log.warning("text encoder: %s; exporting fixed length", e)
        return None
    chosen = fp32
    if quantize == "int8":
        q = work / f"{dest.stem}.trim.int8.onnx"
        quantize_int8(fp32, q)
        try:
            result["int8"] = gate(q, "int8")
            chosen, result["precision"] = q, "int8"
        except ParityError as e:
            result["int8_rejected"] = str(e)
    shutil.move(str(chosen), dest)
    result["dynamic_length"] = True
    return result


@dataclass
class _RerankerReference:
    """torch's answers for the reranker's parity inputs: what every exported graph must match."""

    pixels: np.ndarray
    ids: np.ndarray  # every parity text, padded to the context length
    tokens: np.ndarray  # [images, tokens, width]
    loglik: np.ndarray  # [texts, images]
    counts: np.ndarray  # [texts]
    pad_id: int


def _reranker_reference(
    coca: CoCa, spec: modelpack.ImageSpec, tokenizer: Any, *, backward: bool = False
) -> _RerankerReference:
    """``backward``: the parity texts as a backward captioner reads them (words reversed)."""
    pixels = parity_pixels(spec, n=4, seed=1)
    ids_full = tokenizer(PARITY_TEXTS).numpy()
    if backward:
        ids_full = reverse_caption(ids_full, int(coca.pad_id))
    with torch.no_grad():
        tokens_ref = RerankerImage(coca).eval()(torch.from_numpy(pixels)).numpy()
        # Reference from CoCa's own teacher-forcing path on full-length (padded) ids.
        ll_ref = []
        for i in range(len(PARITY_TEXTS)):
            ids_i = torch.from_numpy(ids_full[i : i + 1]).repeat(len(pixels), 1)
            out = coca(torch.from_numpy(pixels), ids_i)
            logp = out["logits"].log_softmax(-1)
            labels = out["labels"]
            mask = (labels != coca.pad_id).float()
            ll_ref.append(((logp.gather(-1, labels[..., None])[..., 0]) * mask).sum(1).numpy())
    return _RerankerReference(
        pixels=pixels,
        ids=ids_full,
        tokens=tokens_ref,
        loglik=np.stack(ll_ref),
        counts=(ids_full[:, 1:] != coca.pad_id).sum(1),
        pad_id=int(coca.pad_id),
    )


def export_scorer_graph(
    coca: CoCa, ref: _RerankerReference, path: Path, *, absorbed: bool = True
) -> None:
    """The scoring graph, in the absorbed form (the pack's) or open_clip's own (the baseline)."""
    module = (AbsorbedScorer if absorbed else RerankerScorer)(coca).eval()
    _export(
        module,
        (torch.from_numpy(ref.tokens), torch.from_numpy(trim_padding(ref.ids[:1], ref.pad_id))),
        path,
        ["image_tokens", "input_ids"],
        ["log_likelihood", "token_count"],
        {
            "image_tokens": {0: "batch"},
            "input_ids": {1: "length"},
            "log_likelihood": {0: "batch"},
            "token_count": {0: "batch"},
        },
        dynamo=True,
    )


def scorer_error(path: Path, ref: _RerankerReference, tokens: np.ndarray) -> float:
    """Largest relative log-likelihood error of the scorer at ``path`` against torch, over every
    parity text (trimmed as the runtime trims it, and once untrimmed), on ``tokens``."""
    sess = _cpu_session(path)
    worst = 0.0
    queries = [trim_padding(ref.ids[i : i + 1], ref.pad_id) for i in range(len(ref.ids))]
    for i, q in enumerate([*queries, ref.ids[:1]]):
        row = i if i < len(queries) else 0
        try:
            ll, cnt = sess.run(None, {"image_tokens": tokens, "input_ids": q})
        except Exception as e:  # onnxruntime's own untyped errors: this graph is unusable
            raise ParityError(f"ONNX Runtime cannot run it: {e}"[:300], file=path.name) from e
        if not np.all(cnt == ref.counts[row]):
            raise ParityError(f"token count {cnt} != {ref.counts[row]}", file=path.name)
        rel = np.abs(ll - ref.loglik[row]) / np.maximum(np.abs(ref.loglik[row]), 1e-6)
        worst = max(worst, float(rel.max()) if np.isfinite(rel).all() else float("inf"))
    return worst


def _gate_scorer(path: Path, ref: _RerankerReference, tokens: np.ndarray, precision: str) -> float:
    worst = scorer_error(path, ref, tokens)
    gate = MAX_LOGLIK_REL_ERR[precision]
    if not worst <= gate:
        raise ParityError(
            f"log-likelihood differs from torch ({precision}): max rel. error {worst:.2e} "
            f"(gate {gate})",
            file=path.name,
        )
    return worst


def _export_reranker_image(
    coca: CoCa, ref: _RerankerReference, work: Path, quantize: str | None
) -> tuple[Path, float, np.ndarray, np.ndarray | None]:
    """The image-token graph in ``work``, gated at fp32 on its tokens against torch.

    Returns its path, the tokens' relative error, the tokens it gives and, with
    ``quantize="int8"``, the tokens the int8 graph (written beside it) gives, rounded to
    float16 as the runtime stores them.
    """
    fp32 = work / "reranker_image.fp32.onnx"
    wrapper = RerankerImage(coca)
    wrapper.visual = lean_copy(coca.visual)  # gated on ``ref.tokens``, the original's
    _export(
        wrapper.eval(),
        (torch.from_numpy(ref.pixels),),
        fp32,
        ["pixels"],
        ["image_tokens"],
        {"pixels": {0: "batch"}, "image_tokens": {0: "batch"}},
    )
    (tokens,) = _cpu_session(fp32).run(["image_tokens"], {"pixels": ref.pixels})
    err = float(np.abs(tokens - ref.tokens).max() / (np.abs(ref.tokens).max() + 1e-12))
    if not np.isfinite(err) or err > 1e-3:
        raise ParityError(
            f"image tokens differ from torch: rel. error {err:.2e}", file=modelpack.RERANKER_IMAGE
        )
    if quantize != "int8":
        return fp32, err, tokens, None
    quantize_int8(fp32, work / "reranker_image.int8.onnx")
    (tokens_q,) = _cpu_session(work / "reranker_image.int8.onnx").run(
        ["image_tokens"], {"pixels": ref.pixels}
    )
    return fp32, err, tokens, tokens_q.astype(np.float16).astype(np.float32)


def _int8_if_gated(
    fp32: Path, int8: Path, gate: Callable[[Path], float], what: str, result: dict[str, Any]
) -> Path:
    """``int8`` when ``gate(int8)`` passes (its figure recorded), else ``fp32`` and why."""
    try:
        result[f"int8_{what}_loglik_max_rel_err"] = gate(int8)
    except ParityError as e:
        result[f"int8_{what}_rejected"] = str(e)
        log.warning("reranker %s: int8 rejected, keeping fp32: %s", what, e)
        return fp32
    result[f"{what}_precision"] = "int8"
    return int8


def _export_reranker(
    coca: CoCa,
    spec: modelpack.ImageSpec,
    tokenizer: Any,
    staging: Path,
    work: Path,
    quantize: str | None = None,
) -> dict[str, Any]:
    """Both reranker graphs into ``staging``, each gated against torch.

    The scorer is the absorbed form (:mod:`.scorer`), gated at fp32 on the tokens the fp32
    image graph gives (the whole exported path against torch's).
    With ``quantize="int8"`` the int8 scorer and the int8 image graph are each kept only when
    the log-likelihoods they lead to stay within the int8 gate of torch's: the int8 scorer on
    float16-rounded torch tokens, the int8 image graph's tokens (float16, as the cache keeps
    them) through the fp32 scorer, and finally both together.
    """
    ref = _reranker_reference(coca, spec, tokenizer)
    image_fp32, token_err, tokens, tokens_q = _export_reranker_image(coca, ref, work, quantize)
    scorer_fp32 = work / "reranker_scorer.fp32.onnx"
    export_scorer_graph(coca, ref, scorer_fp32)
    result: dict[str, Any] = {
        "form": "absorbed",
        "image_tokens_max_rel_err": token_err,
        "loglik_max_rel_err": _gate_scorer(scorer_fp32, ref, tokens, "fp32"),
        "tokens": int(ref.tokens.shape[1]),
        "token_dim": int(ref.tokens.shape[2]),
        "image_precision": "fp32",
        "scorer_precision": "fp32",
    }
    image, scorer = image_fp32, scorer_fp32
    if quantize == "int8":
        assert tokens_q is not None
        tokens16 = ref.tokens.astype(np.float16).astype(np.float32)
        scorer_q = work / "reranker_scorer.int8.onnx"
        quantize_int8(scorer_fp32, scorer_q)
        scorer = _int8_if_gated(
            scorer_fp32,
            scorer_q,
            lambda p: _gate_scorer(p, ref, tokens16, "int8"),
            "scorer",
            result,
        )
        image = _int8_if_gated(
            image_fp32,
            work / "reranker_image.int8.onnx",
            lambda p: _gate_scorer(scorer_fp32, ref, tokens_q, "int8"),
            "image",
            result,
        )
        if image != image_fp32 and scorer != scorer_fp32:
            # Both int8: their errors add up; the pair must pass the gate too.
            result["int8_both_loglik_max_rel_err"] = worst = scorer_error(scorer, ref, tokens_q)
            if not worst <= MAX_LOGLIK_REL_ERR["int8"]:
                image, result["image_precision"] = image_fp32, "fp32"
                result["int8_image_rejected"] = f"with the int8 scorer: {worst:.2e}"
    shutil.move(str(image), staging / modelpack.RERANKER_IMAGE)
    shutil.move(str(scorer), staging / modelpack.RERANKER_SCORER)
    return result


def parse_reranker(value: str | None) -> Source | str | None:
    """'none' | 'self' | 'NAME:TAG' (TAG may be 'none' for random weights)."""
    if value is None or value == "none":
        return None
    if value == "self":
        return "self"
    name, _, tag = value.partition(":")
    if not name:
        raise PackError(f"--reranker must be NAME:TAG, 'self' or 'none', not {value!r}")
    return Source(model=name, pretrained=None if tag in ("", "none") else tag)


def export_pack(
    source: Source,
    out: Path,
    *,
    reranker: Source | str | None = None,
    backward: Source | None = None,
    quantize: str | None = None,
    name: str | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Export ``source`` (and optionally a CoCa reranker) to a verified pack at ``out``.

    ``reranker`` is None, 'self' (the model is a CoCa and scores too), or another Source.
    ``backward`` is a CoCa trained on reversed captions whose image tower is the reranker's
    (the same image tokens): its scorer graph joins the pack as the backward scorer.
    Returns the manifest written. Raises :class:`ParityError` and writes nothing on failure.
    """
    say = progress or (lambda msg: log.info("%s", msg))
    if quantize not in (None, "int8"):
        raise PackError(f"unsupported quantisation {quantize!r} (only int8)")
    out = Path(out)
    say(f"creating {source.model} ({source.pretrained or 'random weights'})")
    model, cfg = create_model(source)
    spec = image_spec(cfg)
    tok = open_clip.get_tokenizer(source.model)
    context_length = int(tok.context_length)
    manifest: dict[str, Any] = {
        "name": name or out.name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": source.describe(),
    }

    with (
        modelpack.staged_pack(out, overwrite=overwrite) as staging,
        tempfile.TemporaryDirectory(prefix="photosearch-export-") as tmp,
    ):
        work = Path(tmp)
        img, txt = _export_dual_encoder(model, spec, tok, staging, work, quantize, say)
        with torch.no_grad():
            dim = int(model.encode_text(tok(["x"])).shape[-1])
        manifest["embedding_dim"] = dim
        manifest["image"] = {
            "file": modelpack.IMAGE_ENCODER,
            **spec.to_manifest(),
            "precision": img["precision"],
        }
        manifest["text"] = {
            "dynamic_length": bool(txt.pop("dynamic_length", False)),
            "file": modelpack.TEXT_ENCODER,
            "context_length": context_length,
            "precision": txt["precision"],
        }
        manifest["tokenizer"] = write_tokenizer(tok, staging)
        manifest["parity"] = {"image_encoder": img, "text_encoder": txt}

        if reranker is not None:
            reranked = reranker if reranker != "self" else (model, source, spec, tok)
            _add_reranker(manifest, reranked, staging, work, quantize, say)
            if backward is not None:
                _add_backward(manifest, backward, staging, work, quantize, say)
        elif backward is not None:
            raise PackError("a backward scorer needs a reranker")
        say("writing the manifest")
        manifest = modelpack.finalize_manifest(staging, manifest)
    modelpack.verify(out, full=True)
    return manifest


def _add_reranker(
    manifest: dict[str, Any],
    reranker: Source | tuple[nn.Module, Source, modelpack.ImageSpec, Any],
    staging: Path,
    work: Path,
    quantize: str | None,
    say: Callable[[str], None],
) -> None:
    """Export the cross-attention reranker into ``staging`` and describe it in ``manifest``:
    another model (a Source), or the pack's own (model, source, spec, tokenizer)."""
    if isinstance(reranker, Source):
        weights = reranker.pretrained or "random weights"
        say(f"creating reranker {reranker.model} ({weights})")
        coca, rcfg = create_model(reranker)
        rsrc, rspec = reranker, image_spec(rcfg)
        rtok = open_clip.get_tokenizer(reranker.model)
    else:
        coca, rsrc, rspec, rtok = reranker
    if not isinstance(coca, CoCa):
        raise PackError(
            f"the reranker must be a CoCa model (a captioning decoder); "
            f"{rsrc.model} is a {type(coca).__name__}"
        )
    say("exporting the cross-attention reranker")
    rer = _export_reranker(coca, rspec, rtok, staging, work, quantize)
    rtok_dir = work / "reranker_tokenizer"
    rtok_dir.mkdir()
    rtok_cfg = write_tokenizer(rtok, rtok_dir)
    if (rtok_dir / rtok_cfg["file"]).read_bytes() == (
        staging / manifest["tokenizer"]["file"]
    ).read_bytes():
        rtok_cfg["file"] = manifest["tokenizer"]["file"]
    else:
        shutil.copy(rtok_dir / rtok_cfg["file"], staging / "reranker_tokenizer.json")
        rtok_cfg["file"] = "reranker_tokenizer.json"
    manifest["reranker"] = {
        "source": rsrc.describe(),
        "image_file": modelpack.RERANKER_IMAGE,
        "scorer_file": modelpack.RERANKER_SCORER,
        "image": rspec.to_manifest(),
        "tokenizer": rtok_cfg,
        "tokens": rer.pop("tokens"),
        "token_dim": rer.pop("token_dim"),
        "form": rer["form"],
        "image_precision": rer["image_precision"],
        "scorer_precision": rer["scorer_precision"],
    }
    manifest["parity"]["reranker"] = rer


def _add_backward(
    manifest: dict[str, Any],
    source: Source,
    staging: Path,
    work: Path,
    quantize: str | None,
    say: Callable[[str], None],
) -> None:
    """The backward scorer's graph into ``staging``, gated against torch on reversed texts; it
    must read the very image tokens the pack's reranker image graph makes."""
    say(f"creating the backward scorer {source.model}")
    coca, cfg = create_model(source)
    if not isinstance(coca, CoCa):
        raise PackError(f"the backward scorer must be a CoCa model, not {type(coca).__name__}")
    spec = image_spec(cfg)
    if spec.to_manifest() != manifest["reranker"]["image"]:
        raise PackError("the backward scorer preprocesses images unlike the reranker")
    tok = open_clip.get_tokenizer(source.model)
    ref = _reranker_reference(coca, spec, tok, backward=True)
    # Its image tower must be the reranker's: the image graph's tokens stand in for its own.
    (tokens,) = _cpu_session(staging / modelpack.RERANKER_IMAGE).run(
        ["image_tokens"], {"pixels": ref.pixels}
    )
    shared = float(np.abs(tokens - ref.tokens).max() / (np.abs(ref.tokens).max() + 1e-12))
    gate = 1e-3 if manifest["reranker"]["image_precision"] == "fp32" else 0.1
    if not shared <= gate:
        raise ParityError(
            f"the backward scorer's image tokens are not the reranker's (rel. error {shared:.2e})",
            file=modelpack.RERANKER_SCORER_BACKWARD,
        )
    say("exporting the backward scorer")
    fp32 = work / "reranker_scorer_bwd.fp32.onnx"
    export_scorer_graph(coca, ref, fp32)
    result: dict[str, Any] = {
        "loglik_max_rel_err": _gate_scorer(fp32, ref, ref.tokens, "fp32"),
        "scorer_precision": "fp32",
    }
    graph = fp32
    if quantize == "int8":
        int8 = work / "reranker_scorer_bwd.int8.onnx"
        quantize_int8(fp32, int8)
        tokens16 = ref.tokens.astype(np.float16).astype(np.float32)
        graph = _int8_if_gated(
            fp32, int8, lambda p: _gate_scorer(p, ref, tokens16, "int8"), "scorer", result
        )
    shutil.move(str(graph), staging / modelpack.RERANKER_SCORER_BACKWARD)
    manifest["reranker"]["backward"] = {
        "source": source.describe(),
        "scorer_file": modelpack.RERANKER_SCORER_BACKWARD,
        "scorer_precision": result["scorer_precision"],
        "reads": "reversed",
    }
    manifest["parity"]["reranker_backward"] = result


def _export_dual_encoder(
    model: nn.Module,
    spec: modelpack.ImageSpec,
    tok: Any,
    staging: Path,
    work: Path,
    quantize: str | None,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The image and text graphs, exported from the model's lean copy and gated against the
    model itself; their parity figures."""
    lean = lean_copy(model)
    say("exporting the image encoder")
    img = _export_embedding_graph(
        ImageEmbedding(lean).eval(),
        parity_pixels(spec),
        "pixels",
        staging / modelpack.IMAGE_ENCODER,
        quantize=quantize,
        work=work,
        truth=ImageEmbedding(model).eval(),
    )
    say("exporting the text encoder")
    ids = tok(PARITY_TEXTS).numpy()
    txt = _export_trimmed_text(
        model, ids, staging / modelpack.TEXT_ENCODER, quantize=quantize, work=work, lean=lean
    ) or _export_embedding_graph(
        TextEmbedding(lean).eval(),
        ids,
        "input_ids",
        staging / modelpack.TEXT_ENCODER,
        quantize=quantize,
        work=work,
        truth=TextEmbedding(model).eval(),
    )
    return img, txt
