"""Trained synthetic checkpoints to photosearch model packs, checked against the training model.

The exporter's own gate compares each ONNX graph with the torch model *it* built. This module
adds the check that matters for a trained model: the pack, run by photosearch's runtime, agrees
with the model as it was trained (same embeddings, same log-likelihoods).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from benchmarks.synthetic import scenes, train
from photosearch import imaging, modelpack
from photosearch.encoders import ImageEncoder, TextEncoder
from photosearch.errors import PackError
from photosearch.export_onnx import exporter
from photosearch.rerank import CrossAttentionScorer

MIN_COSINE = 0.9999
MAX_LOGLIK_REL_ERR = 1e-3


def export(
    checkpoint: Path,
    out: Path,
    *,
    reranker_checkpoint: Path | None = None,
    backward_checkpoint: Path | None = None,
    name: str | None = None,
    model: str = train.MODEL,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Export ``checkpoint`` (dual encoder) with a reranker from ``reranker_checkpoint`` (default:
    the same model's own decoder); then check the pack against the training models."""
    # Our training sets the corrected padding mask; the pack must embed texts the same way.
    source = exporter.Source(model, None, checkpoint=Path(checkpoint), correct_cls_mask=True)
    same = (
        reranker_checkpoint is None
        or Path(reranker_checkpoint).resolve() == Path(checkpoint).resolve()
    )
    reranker: exporter.Source | str = (
        "self"
        if same
        else exporter.Source(
            model, None, checkpoint=Path(reranker_checkpoint), correct_cls_mask=True
        )
    )
    backward = None
    if backward_checkpoint is not None:
        backward = exporter.Source(
            model, None, checkpoint=Path(backward_checkpoint), correct_cls_mask=True
        )
    manifest = exporter.export_pack(
        source,
        out,
        reranker=reranker,
        backward=backward,
        name=name,
        overwrite=True,
        progress=progress,
    )
    check_against_training(
        out,
        checkpoint,
        reranker_checkpoint or checkpoint,
        model=model,
        backward_checkpoint=backward_checkpoint,
    )
    return manifest


@torch.no_grad()
def check_against_training(
    pack_dir: Path,
    checkpoint: Path,
    reranker_checkpoint: Path,
    *,
    model: str = train.MODEL,
    backward_checkpoint: Path | None = None,
) -> dict[str, float]:
    """Compare the pack (ONNX Runtime, photosearch's classes) with the trained torch models on
    validation scenes and captions; raise :class:`PackError` beyond the gates."""
    pack = modelpack.load(pack_dir)
    world = scenes.World(scenes.WorldConfig())
    fams = list(world.families("validation", 3))
    scns = [s for f in fams for s in f.members.values()]
    texts = [f.captions[m] for f in fams for m in f.members]
    pixels = np.stack([imaging.preprocess(s.render(pack.image.size[0]), pack.image) for s in scns])

    dual = train.load_model(Path(checkpoint), model).eval()
    img_ref = F.normalize(dual.encode_image(torch.from_numpy(pixels)), dim=-1).numpy()
    tok = open_clip.get_tokenizer(model)
    txt_ref = F.normalize(dual.encode_text(tok(texts)), dim=-1).numpy()
    img = ImageEncoder(pack, device="cpu", threads=1).encode(pixels)
    txt = TextEncoder(pack, device="cpu", threads=1).encode(texts)
    figures = {
        "image_min_cosine": float((img * img_ref).sum(-1).min()),
        "text_min_cosine": float((txt * txt_ref).sum(-1).min()),
    }

    slow = train.load_model(Path(reranker_checkpoint), model).eval()
    vocab = train.WorldVocabulary.build(tok, slow.text_decoder.text_projection.shape[1])
    head = train.head_from_model(slow, vocab)
    scorer = CrossAttentionScorer(pack, device="cpu", threads=1)
    tokens = scorer.image_tokens(pixels)
    _, tokens_ref = slow._encode_image(torch.from_numpy(pixels))
    scorers = {"forward": (slow, head, False)}
    if backward_checkpoint is not None:
        if "backward" not in scorer.directions:
            raise PackError("the pack lost its backward scorer", pack=str(pack_dir))
        bwd = train.load_model(Path(backward_checkpoint), model).eval()
        scorers["backward"] = (bwd, train.head_from_model(bwd, vocab), True)
    worst = 0.0
    for text in texts[:4]:
        each = scorer.score_each(text, tokens)
        for direction, (m, h, backward) in scorers.items():
            ids = tok([text]).repeat(len(scns), 1)
            if backward:
                ids = train.reversed_ids(ids)
            _, embs = m._encode_text(ids)
            ll_ref, _ = train.caption_loglik(m, h, vocab, tokens_ref, embs, ids)
            ll = each[direction][0]
            rel = np.abs(ll - ll_ref.numpy()) / np.abs(ll_ref.numpy())
            worst = max(worst, float(rel.max()))
    figures["loglik_max_rel_err"] = worst
    if min(figures["image_min_cosine"], figures["text_min_cosine"]) < MIN_COSINE:
        raise PackError(
            f"pack embeddings differ from the trained model: {figures}", pack=str(pack_dir)
        )
    if not worst <= MAX_LOGLIK_REL_ERR:
        raise PackError(
            f"pack log-likelihoods differ from the trained model: {figures}", pack=str(pack_dir)
        )
    return figures
