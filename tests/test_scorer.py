"""The absorbed scoring graph computes what open_clip's CoCa decoder computes.

The absorbed form moves each cross-attention layer's key/value projections (and its LayerNorm's
scale and shift) from the image tokens to the query; these tests give every one of those
weights values a fresh model never has (LayerNorm γ ≠ 1, β ≠ 0, biases, LayerScale), so that a
weight folded into the wrong side or left out shows.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from photosearch.encoders import trim_padding  # noqa: E402
from photosearch.export_onnx import exporter  # noqa: E402
from photosearch.export_onnx.scorer import AbsorbedScorer, RerankerScorer  # noqa: E402

MODEL = "photosearch-tiny-coca"


def _coca(layer_scale: bool = False):
    model, _ = exporter.create_model(exporter.Source(MODEL, None), seed=3)
    if layer_scale:
        cfg = open_clip.get_model_config(MODEL)
        cfg["multimodal_cfg"]["ls_init_value"] = 0.5
        torch.manual_seed(3)
        model = open_clip.CoCa(**{k: v for k, v in cfg.items() if k != "custom_text"})
        torch.nn.init.normal_(model.text_decoder.text_projection, std=0.2)
        model.eval()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.text_decoder.named_parameters():
            if name.endswith(("ln_1_kv.weight", "ln_1.weight", "ln_2.weight")):
                p.copy_(1 + 0.5 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias") or "ls_" in name:
                p.add_(0.3 * torch.randn(p.shape, generator=g))
    return model


def _case(model, texts: list[str], n: int):
    tok = open_clip.get_tokenizer(MODEL)
    spec = exporter.image_spec(open_clip.get_model_preprocess_cfg(model))
    pixels = torch.from_numpy(exporter.parity_pixels(spec, n=n, seed=5))
    with torch.no_grad():
        tokens = exporter.RerankerImage(model).eval()(pixels)
    return tokens, [torch.from_numpy(trim_padding(tok([t]).numpy(), 0)) for t in texts]


@pytest.mark.parametrize("layer_scale", [False, True])
def test_absorbed_scorer_equals_the_decoder(layer_scale: bool) -> None:
    model = _coca(layer_scale)
    texts = ["", "dog", "a red car left of a white house", "the quick brown fox " * 8]
    for n in (1, 5):
        tokens, queries = _case(model, texts, n)
        ref, fast = RerankerScorer(model).eval(), AbsorbedScorer(model).eval()
        for ids in queries:
            with torch.no_grad():
                ll_ref, cnt_ref = ref(tokens, ids)
                ll, cnt = fast(tokens, ids)
            assert torch.equal(cnt, cnt_ref)
            np.testing.assert_allclose(ll.numpy(), ll_ref.numpy(), rtol=1e-5, atol=1e-4)


def test_absorbed_scorer_tells_photos_apart() -> None:
    """Not a constant: different photos get different scores, in the decoder's order."""
    model = _coca()
    tokens, (ids,) = _case(model, ["a photo of a dog on the beach"], 6)
    with torch.no_grad():
        ll_ref, _ = RerankerScorer(model).eval()(tokens, ids)
        ll, _ = AbsorbedScorer(model).eval()(tokens, ids)
    assert len(set(np.round(ll.numpy(), 3))) == 6
    assert list(np.argsort(ll.numpy())) == list(np.argsort(ll_ref.numpy()))


def test_int8_reranker_is_kept_only_within_its_gate(tmp_path) -> None:
    """An int8 export: each reranker graph is int8 only where its scores stay within the int8
    gate of torch's, and the runtime's scores (fresh texts, fresh images) agree with it."""
    from photosearch import modelpack
    from photosearch.rerank import CrossAttentionScorer

    out = tmp_path / "tiny-coca-int8"
    exporter.export_pack(exporter.Source(MODEL, None), out, reranker="self", quantize="int8")
    pack = modelpack.load(out)
    m, parity = pack.manifest["reranker"], pack.manifest["parity"]["reranker"]
    assert m["form"] == parity["form"] == "absorbed"
    gate = exporter.MAX_LOGLIK_REL_ERR["int8"]
    for what in ("image", "scorer"):
        assert m[f"{what}_precision"] == parity[f"{what}_precision"]
        if m[f"{what}_precision"] == "int8":
            assert parity[f"int8_{what}_loglik_max_rel_err"] <= gate
        else:
            assert parity[f"int8_{what}_rejected"]
    model, _ = exporter.create_model(exporter.Source(MODEL, None))
    tokens, queries = _case(model, ["two cats asleep on a sofa", "a bicycle at night"], 4)
    scorer = CrossAttentionScorer(pack, device="cpu")
    pixels = exporter.parity_pixels(pack.reranker.image, n=4, seed=5)
    for text, ids in zip(["two cats asleep on a sofa", "a bicycle at night"], queries, strict=True):
        with torch.no_grad():
            ref, _ = RerankerScorer(model).eval()(tokens, ids)
        ll, _ = scorer.score(text, scorer.image_tokens(pixels))
        np.testing.assert_allclose(ll, ref.numpy(), rtol=2 * gate)


def test_an_int8_graph_that_fails_its_gate_is_not_kept(tmp_path) -> None:
    fp32, int8 = tmp_path / "a.fp32.onnx", tmp_path / "a.int8.onnx"

    def gate(path):
        raise exporter.ParityError("log-likelihood differs from torch (int8): 5e-02")

    result: dict = {}
    assert exporter._int8_if_gated(fp32, int8, gate, "scorer", result) == fp32
    assert "5e-02" in result["int8_scorer_rejected"]
    assert "scorer_precision" not in result
