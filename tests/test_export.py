"""Export parity: the pack's ONNX graphs compute what the open_clip model computes.

The tests re-check parity themselves on fresh inputs, through the runtime encoders, rather than
trusting the exporter's own figures. The real architectures are in the ``slow`` group.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from photosearch import modelpack  # noqa: E402
from photosearch.encoders import ImageEncoder, TextEncoder  # noqa: E402
from photosearch.export_onnx import exporter  # noqa: E402
from photosearch.rerank import CrossAttentionScorer  # noqa: E402

FRESH_TEXTS = [
    "a cat sleeping on a red sofa",
    "two green triangles below a yellow star",
    "Strand bei Sonnenuntergang",
    "",
    "a " * 100,
    "😀 party",
]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(-1)


def _fresh_pixels(spec: modelpack.ImageSpec, n: int = 5) -> np.ndarray:
    return exporter.parity_pixels(spec, n=n, seed=1234)


def _reference_model(name: str):
    model, _ = exporter.create_model(exporter.Source(name, None))  # same seed as the export
    return model


def _assert_dual_encoder_parity(pack_dir: Path, model_name: str) -> None:
    pack = modelpack.load(pack_dir)
    model = _reference_model(model_name)
    tok = open_clip.get_tokenizer(model_name)
    pixels = _fresh_pixels(pack.image)
    with torch.no_grad():
        ref_img = torch.nn.functional.normalize(
            model.encode_image(torch.from_numpy(pixels)), dim=-1
        )
        ref_txt = torch.nn.functional.normalize(model.encode_text(tok(FRESH_TEXTS)), dim=-1)

    img = ImageEncoder(pack, device="cpu").encode(pixels)
    txt = TextEncoder(pack, device="cpu").encode(FRESH_TEXTS)
    gate = {m: exporter.MIN_COSINE[pack.manifest[m]["precision"]] for m in ("image", "text")}
    assert _cos(img, ref_img.numpy()).min() >= gate["image"]
    assert _cos(txt, ref_txt.numpy()).min() >= gate["text"]
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-4)


def test_tiny_clip_parity(tiny_clip_pack: Path) -> None:
    _assert_dual_encoder_parity(tiny_clip_pack, "photosearch-tiny-clip")
    # A causal CLIP text tower runs only up to the end token: same embedding, less work.
    assert modelpack.load(tiny_clip_pack).manifest["text"]["dynamic_length"] is True


def test_tiny_coca_parity_and_reranker_loglik(tiny_coca_pack: Path) -> None:
    _assert_dual_encoder_parity(tiny_coca_pack, "photosearch-tiny-coca")
    pack = modelpack.load(tiny_coca_pack)
    # CoCa pools a class token appended after the padding, which its mask hides from it: the
    # graph runs cut after the end token (the legacy off-by-one mask needs one padding id more).
    assert pack.manifest["text"]["dynamic_length"] is True
    assert pack.reranker is not None
    coca = _reference_model("photosearch-tiny-coca")
    tok = open_clip.get_tokenizer("photosearch-tiny-coca")
    pixels = _fresh_pixels(pack.reranker.image, n=4)
    scorer = CrossAttentionScorer(pack, device="cpu")
    for text in FRESH_TEXTS[:3]:
        ids = tok([text]).repeat(len(pixels), 1)
        with torch.no_grad():
            out = coca(torch.from_numpy(pixels), ids)
            logp = out["logits"].log_softmax(-1)
            mask = out["labels"] != 0
            ref = (logp.gather(-1, out["labels"][..., None])[..., 0] * mask).sum(1).numpy()
        ll, count = scorer.score(text, scorer.image_tokens(pixels))
        np.testing.assert_allclose(ll, ref, rtol=exporter.MAX_LOGLIK_REL_ERR["fp32"])
        assert (count == mask.sum(1).numpy()).all()


def _backward_model(tmp_path: Path, *, same_image_tower: bool = True):
    """The tiny CoCa with its text tower and decoder changed (a backward captioner of its own),
    saved as a checkpoint; its image tower the reranker's unless told otherwise."""
    model = _reference_model("photosearch-tiny-coca")
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("text.", "text_decoder.")) or (
                not same_image_tower and name.startswith("visual.")
            ):
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    path = tmp_path / ("bwd.pt" if same_image_tower else "bwd-other-eyes.pt")
    torch.save(model.state_dict(), path)
    return model, path


def test_backward_scorer_reads_the_query_reversed_and_adds_up(tmp_path: Path) -> None:
    bwd, ckpt = _backward_model(tmp_path)
    out = tmp_path / "two-way"
    m = exporter.export_pack(
        exporter.Source("photosearch-tiny-coca", None),
        out,
        reranker="self",
        backward=exporter.Source("photosearch-tiny-coca", None, checkpoint=ckpt),
    )
    assert m["reranker"]["backward"]["scorer_file"] == modelpack.RERANKER_SCORER_BACKWARD
    assert m["parity"]["reranker_backward"]["loglik_max_rel_err"] <= 1e-4
    pack = modelpack.load(out)
    assert pack.reranker is not None and pack.reranker.backward_file
    tok = open_clip.get_tokenizer("photosearch-tiny-coca")
    pixels = _fresh_pixels(pack.reranker.image, n=3)
    scorer = CrossAttentionScorer(pack, device="cpu")
    assert scorer.directions == ("forward", "backward")
    tokens = scorer.image_tokens(pixels)
    from photosearch.encoders import reverse_caption

    for text in ("a red car left of a white house", "dog"):
        ids = torch.from_numpy(reverse_caption(tok([text]).numpy(), 0)).repeat(len(pixels), 1)
        with torch.no_grad():
            o = bwd(torch.from_numpy(pixels), ids)
            logp = o["logits"].log_softmax(-1)
            mask = o["labels"] != 0
            ref = (logp.gather(-1, o["labels"][..., None])[..., 0] * mask).sum(1).numpy()
        each = scorer.score_each(text, tokens)
        np.testing.assert_allclose(each["backward"][0], ref, rtol=1e-4)
        ll, n = scorer.score(text, tokens)
        np.testing.assert_allclose(ll, each["forward"][0] + each["backward"][0], rtol=1e-6)
        assert (n == 2 * mask.sum(1).numpy()).all()
    forward_only = CrossAttentionScorer(pack, device="cpu", directions=("forward",))
    assert list(forward_only.score_each("dog", tokens)) == ["forward"]
    # A pack without a file its reranker names is refused by a strict check (import, `models
    # verify`); opened for use, it searches fast only and says which file.
    (out / modelpack.RERANKER_SCORER_BACKWARD).unlink()
    with pytest.raises(modelpack.PackError, match=modelpack.RERANKER_SCORER_BACKWARD):
        modelpack.verify(out, full=True)
    broken = modelpack.verify(out, full=True, lenient=True)
    assert broken.reranker is None
    assert modelpack.RERANKER_SCORER_BACKWARD in broken.reranker_problem


def test_backward_scorer_must_read_the_rerankers_image_tokens(tmp_path: Path) -> None:
    _, ckpt = _backward_model(tmp_path, same_image_tower=False)
    with pytest.raises(exporter.ParityError, match="not the reranker's"):
        exporter.export_pack(
            exporter.Source("photosearch-tiny-coca", None),
            tmp_path / "p",
            reranker="self",
            backward=exporter.Source("photosearch-tiny-coca", None, checkpoint=ckpt),
        )
    assert not (tmp_path / "p").exists()


def test_quantisation_is_kept_only_when_it_passes(tiny_clip_pack: Path) -> None:
    m = modelpack.load(tiny_clip_pack).manifest
    for part, key in (("image", "image_encoder"), ("text", "text_encoder")):
        figures = m["parity"][key]
        assert m[part]["precision"] == figures["precision"]
        if figures["precision"] == "int8":
            assert figures["int8"]["min_cosine"] >= exporter.MIN_COSINE["int8"]
        else:
            assert "parity gate failed" in figures["int8_rejected"]
        assert figures["fp32"]["min_cosine"] >= exporter.MIN_COSINE["fp32"]


def test_failed_parity_writes_no_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(exporter.MIN_COSINE, "fp32", 1.01)  # an impossible gate
    out = tmp_path / "never"
    with pytest.raises(exporter.ParityError, match="parity gate failed"):
        exporter.export_pack(exporter.Source("photosearch-tiny-clip", None), out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_reranker_must_be_a_captioner(tmp_path: Path) -> None:
    with pytest.raises(modelpack.PackError, match="must be a CoCa model"):
        exporter.export_pack(
            exporter.Source("photosearch-tiny-clip", None), tmp_path / "p", reranker="self"
        )
    assert not (tmp_path / "p").exists()


def test_checkpoint_weights_are_exported_and_recorded(tmp_path: Path) -> None:
    model = _reference_model("photosearch-tiny-clip")
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    ckpt = tmp_path / "weights.pt"
    torch.save(model.state_dict(), ckpt)
    out = tmp_path / "from-ckpt"
    m = exporter.export_pack(exporter.Source("photosearch-tiny-clip", None, checkpoint=ckpt), out)
    assert m["source"]["checkpoint_sha256"] == modelpack.sha256_file(ckpt)
    tok = open_clip.get_tokenizer("photosearch-tiny-clip")
    with torch.no_grad():
        ref = torch.nn.functional.normalize(model.encode_text(tok(FRESH_TEXTS)), dim=-1).numpy()
    got = TextEncoder(modelpack.load(out), device="cpu").encode(FRESH_TEXTS)
    assert _cos(got, ref).min() >= 0.9999


def export_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "photosearch.export_onnx", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def test_exporter_command_line(tmp_path: Path) -> None:
    out = tmp_path / "cli-pack"
    tiny = ("--model", "photosearch-tiny-clip", "--pretrained", "none", "--out", str(out), "-q")
    run = export_cli(*tiny)
    assert run.returncode == 0, run.stderr
    assert f"wrote {out}" in run.stdout
    assert modelpack.verify(out, full=True).manifest["source"]["model"] == "photosearch-tiny-clip"

    again = export_cli(*tiny)
    assert again.returncode == 1 and "already exists" in again.stderr

    bad = export_cli(
        "--model", "no-such-model", "--pretrained", "none", "--out", str(tmp_path / "x")
    )
    assert bad.returncode == 1 and "unknown open_clip model 'no-such-model'" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_unavailable_pretrained_weights_are_a_clear_error(tmp_path: Path) -> None:
    for tag in ("datacompdr", "no-such-tag"):
        out = tmp_path / tag
        run = export_cli(
            "--model", "MobileCLIP-S2", "--pretrained", tag, "--out", str(out), HF_HUB_OFFLINE="1"
        )
        assert run.returncode == 1, run.stderr
        assert f"could not load pretrained weights '{tag}' for MobileCLIP-S2" in run.stderr
        assert "Traceback" not in run.stderr
        assert not out.exists()


REAL = [
    ("ViT-B-32-256", "none"),
    ("MobileCLIP-S2", "none"),
    ("MobileCLIP2-S2", "none"),  # the default for `models prepare`
    ("coca_ViT-B-32", "self"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("model_name", "reranker"), REAL, ids=[r[0] for r in REAL])
def test_real_architecture_parity(
    model_name: str, reranker: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("real") / model_name
    m = exporter.export_pack(
        exporter.Source(model_name, None),
        out,
        reranker=exporter.parse_reranker(reranker),
        quantize="int8",
    )
    (tmp_path_factory.getbasetemp() / f"{model_name}.parity.json").write_text(
        json.dumps(m["parity"], indent=2)
    )
    _assert_dual_encoder_parity(out, model_name)
    if reranker == "self":
        assert m["parity"]["reranker"]["loglik_max_rel_err"] <= exporter.MAX_LOGLIK_REL_ERR["fp32"]


def test_correct_cls_mask_is_applied_and_recorded(tmp_path: Path) -> None:
    out = tmp_path / "coca-fixed-mask"
    source = exporter.Source("photosearch-tiny-coca", None, correct_cls_mask=True)
    m = exporter.export_pack(source, out)
    assert m["source"]["correct_cls_mask"] is True
    coca = _reference_model("photosearch-tiny-coca")
    coca.text.correct_cls_mask = True
    tok = open_clip.get_tokenizer("photosearch-tiny-coca")
    with torch.no_grad():
        ref = torch.nn.functional.normalize(coca.encode_text(tok(FRESH_TEXTS)), dim=-1).numpy()
    got = TextEncoder(modelpack.load(out), device="cpu").encode(FRESH_TEXTS)
    assert _cos(got, ref).min() >= 0.9999
    with pytest.raises(modelpack.PackError, match="applies to CoCa models"):
        exporter.export_pack(
            exporter.Source("photosearch-tiny-clip", None, correct_cls_mask=True), tmp_path / "x"
        )


@pytest.mark.parametrize("correct_cls_mask", [False, True])
def test_cut_coca_text_tower_is_the_full_one(correct_cls_mask: bool) -> None:
    """CoCa's class token, cut after the end token, gives the full-length embedding."""
    from photosearch.encoders import trim_padding, trim_text

    source = exporter.Source("photosearch-tiny-coca", None, correct_cls_mask=correct_cls_mask)
    model, _ = exporter.create_model(source)
    model.eval()
    cut = exporter.trimmed_text(model)
    assert cut is not None
    ids = open_clip.get_tokenizer("photosearch-tiny-coca")(FRESH_TEXTS + exporter.PARITY_TEXTS)
    with torch.no_grad():
        full = torch.nn.functional.normalize(model.encode_text(ids), dim=-1).numpy()
        batch = cut(torch.from_numpy(trim_text(ids.numpy(), 0))).numpy()
        alone = [cut(torch.from_numpy(trim_text(row[None], 0))).numpy() for row in ids.numpy()]
        without_spare = cut(torch.from_numpy(trim_padding(ids[:1].numpy(), 0))).numpy()
    np.testing.assert_allclose(batch, full, atol=1e-5)
    np.testing.assert_allclose(np.concatenate(alone), full, atol=1e-5)
    # The legacy (off-by-one) mask lets the class token see the first padding id: cut without
    # it, the embedding differs, which is why the runtime keeps one (encoders.trim_text).
    assert np.allclose(without_spare, full[:1], atol=1e-5) is correct_cls_mask


def test_bidirectional_text_tower_keeps_its_fixed_length() -> None:
    from open_clip.transformer import TextTransformer

    holder = torch.nn.Module()
    holder.text = TextTransformer(
        context_length=8, vocab_size=64, width=16, heads=2, layers=1, no_causal_mask=True
    )
    assert exporter.trimmed_text(holder) is None  # MobileCLIP-S*: its end token sees the padding
    holder.text = TextTransformer(context_length=8, vocab_size=64, width=16, heads=2, layers=1)
    assert exporter.trimmed_text(holder) is not None  # causal, pooling the end token


@pytest.mark.parametrize("name", ["photosearch-tiny-clip", "photosearch-tiny-coca"])
def test_lean_copy_computes_what_the_model_does(name: str) -> None:
    """The exported copy's rewritten attention and patch embedding are the same function."""
    from photosearch.export_onnx.lean import LeanAttention, PatchEmbedding, lean_copy

    model, cfg = exporter.create_model(exporter.Source(name, None))
    model.eval()
    lean = lean_copy(model)
    assert not any(isinstance(m, torch.nn.MultiheadAttention) for m in lean.modules())
    assert sum(isinstance(m, LeanAttention) for m in lean.modules()) >= 4
    assert isinstance(lean.visual.conv1, PatchEmbedding)
    assert any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules())  # untouched
    pixels = torch.from_numpy(exporter.parity_pixels(exporter.image_spec(cfg)))
    ids = open_clip.get_tokenizer(name)(FRESH_TEXTS + exporter.PARITY_TEXTS)
    with torch.no_grad():
        for a, b in (
            (model.encode_image(pixels), lean.encode_image(pixels)),
            (model.encode_text(ids), lean.encode_text(ids)),
        ):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)
        if name.endswith("coca"):  # the reranker's image tokens (attention pooling too)
            np.testing.assert_allclose(
                lean.visual(pixels)[1].numpy(), model.visual(pixels)[1].numpy(), atol=1e-5
            )
