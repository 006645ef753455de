"""Runtime encoders: torch-free queries, honest provider reporting, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from photosearch import encoders, modelpack
from photosearch.encoders import EncoderError, ImageEncoder, TextEncoder
from photosearch.errors import PackError


def test_query_path_never_imports_torch(tiny_coca_pack: Path) -> None:
    """Loading a pack, tokenising, encoding and re-ranking a query: no torch, no open_clip."""
    code = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from photosearch import modelpack
        from photosearch.encoders import ImageEncoder, TextEncoder
        from photosearch.rerank import CrossAttentionScorer
        pack = modelpack.load({str(tiny_coca_pack)!r})
        text = TextEncoder(pack).encode(["a dog on the beach", "東京の夜景 🎉"])
        h, w = pack.image.size
        img = ImageEncoder(pack).encode(np.zeros((2, 3, h, w), np.float32))
        scorer = CrossAttentionScorer(pack)
        ll, n = scorer.score("a dog", scorer.image_tokens(np.zeros((2, 3, h, w), np.float32)))
        print(json.dumps({{
            "shapes": [list(text.shape), list(img.shape), list(ll.shape)],
            "scores": [float(x) for x in ll],
            "heavy": sorted(m for m in ("torch", "open_clip", "torchvision", "timm")
                            if m in sys.modules),
        }}))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert out["shapes"] == [[2, 32], [2, 32], [2]]
    assert all(np.isfinite(out["scores"])) and all(s < 0 for s in out["scores"])


def test_reported_providers_are_the_ones_in_use(tiny_clip_pack: Path) -> None:
    pack = modelpack.load(tiny_clip_pack)
    enc = TextEncoder(pack)
    assert enc.providers == enc.session.get_providers()
    assert enc.providers[-1] == "CPUExecutionProvider"
    cpu = ImageEncoder(pack, device="cpu")
    assert cpu.providers == ["CPUExecutionProvider"] and cpu.device == "CPU"


def test_gpu_request_without_a_working_gpu_says_so(tiny_clip_pack: Path) -> None:
    pack = modelpack.load(tiny_clip_pack)
    try:
        enc = ImageEncoder(pack, device="gpu")
    except EncoderError as e:
        assert "GPU was requested but" in str(e)
    else:  # a machine with a working GPU: then it must really be used
        assert enc.providers[0] != "CPUExecutionProvider"


def test_unknown_device_preference() -> None:
    with pytest.raises(ValueError, match="device must be one of"):
        encoders.candidate_providers("tpu")


def test_auto_tries_every_available_gpu_provider_then_cpu() -> None:
    tried = encoders.candidate_providers("auto")
    available = ort.get_available_providers()
    assert tried[-1] == "CPUExecutionProvider"
    assert all(p in available for p in tried)
    usable = [
        p
        for p in encoders.GPU_PROVIDERS
        if p in available and (p != "CUDAExecutionProvider" or encoders._cuda_driver_present())
    ]
    assert tried[:-1] == usable


def test_cuda_is_not_requested_without_a_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime-gpu lists CUDA everywhere; without a driver asking for it is pointless."""
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(encoders, "_cuda_driver_present", lambda: False)
    assert encoders.candidate_providers("auto") == ["CPUExecutionProvider"]
    with pytest.raises(EncoderError, match="no GPU driver"):
        encoders.candidate_providers("gpu")
    monkeypatch.setattr(encoders, "_cuda_driver_present", lambda: True)
    assert encoders.candidate_providers("auto")[0] == "CUDAExecutionProvider"


def test_encoders_batch_consistently(tiny_clip_pack: Path) -> None:
    pack = modelpack.load(tiny_clip_pack)
    h, w = pack.image.size
    rng = np.random.default_rng(0)
    pixels = rng.normal(size=(7, 3, h, w)).astype(np.float32)

    # int8 graphs quantise activations with one scale per batch, so a vector moves slightly
    # with its batch-mates; fp32 graphs give the same vector whatever the batching.
    def same(a: np.ndarray, b: np.ndarray, precision: str) -> None:
        if precision == "fp32":
            np.testing.assert_allclose(a, b, atol=1e-5)
        else:
            assert ((a * b).sum(1) >= 0.999).all()

    one_batch = ImageEncoder(pack, batch_size=64).encode(pixels)
    small_batches = ImageEncoder(pack, batch_size=3).encode(pixels)
    same(one_batch, small_batches, pack.manifest["image"]["precision"])
    texts = [f"photo number {i}" for i in range(9)]
    enc = TextEncoder(pack, batch_size=4)
    same(enc.encode(texts), TextEncoder(pack).encode(texts), pack.manifest["text"]["precision"])
    assert enc.encode([]).shape == (0, 32)
    assert enc.encode("one string").shape == (1, 32)


def test_wrong_pixel_shape_is_a_clear_error(tiny_clip_pack: Path) -> None:
    enc = ImageEncoder(modelpack.load(tiny_clip_pack))
    with pytest.raises(ValueError, match=r"pixels must have shape \(N, 3, 32, 32\)"):
        enc.encode(np.zeros((1, 3, 64, 64), np.float32))


def test_manifest_disagreeing_with_graph_names_the_file(pack_copy: Path) -> None:
    mf = pack_copy / "manifest.json"
    m = json.loads(mf.read_text())
    m["embedding_dim"] = 64
    mf.write_text(json.dumps(m))
    pack = modelpack.load(pack_copy)
    with pytest.raises(
        PackError, match=r"image_encoder\.onnx: embedding size is 32 but the manifest says 64"
    ):
        ImageEncoder(pack)


def test_graph_that_is_not_onnx_names_the_file(pack_copy: Path) -> None:
    # Rewrite a graph and its manifest entry consistently: checksums pass, ONNX Runtime refuses.
    junk = b"this is not an onnx graph"
    (pack_copy / "text_encoder.onnx").write_bytes(junk)
    mf = pack_copy / "manifest.json"
    m = json.loads(mf.read_text())
    m["files"]["text_encoder.onnx"] = {
        "size": len(junk),
        "sha256": modelpack.sha256_file(pack_copy / "text_encoder.onnx"),
    }
    mf.write_text(json.dumps(m))
    with pytest.raises(PackError, match=r"text_encoder\.onnx: ONNX Runtime cannot load it"):
        TextEncoder(modelpack.load(pack_copy))


TEXTS = ["a red car left of a white house", "", "Strand bei Sonnenuntergang", "a " * 90]


def test_saved_optimised_text_graph_gives_the_same_embeddings(
    tiny_coca_pack: Path, tmp_path: Path
) -> None:
    """A terminal's query opens the text graph's saved optimised copy: same numbers, and a
    copy that is damaged or from another file is made again, never used."""
    pack = modelpack.load(tiny_coca_pack)
    want = TextEncoder(pack, device="cpu").encode(TEXTS)
    root = tmp_path / "onnx"
    first = TextEncoder(pack, device="cpu", saved_graphs=root)  # opens the pack's file
    assert Path(first.session._model_path) == pack.text_encoder
    encoders.wait_for_saved_graphs()  # the copy is written in the background
    saved = encoders.saved_graph_dir(root, pack, modelpack.TEXT_ENCODER)
    assert sorted(p.name for p in saved.iterdir()) == [
        "model.onnx",
        "model.onnx.data",
        "stamp.json",
    ]
    again = TextEncoder(pack, device="cpu", saved_graphs=root)
    assert Path(again.session._model_path) == saved / "model.onnx"
    for enc in (first, again):
        np.testing.assert_allclose(enc.encode(TEXTS), want, atol=1e-6)
    # Damaged after it was saved (same size, other bytes): not used, made again.
    data = saved / "model.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[: len(raw) // 2] = bytes(len(raw) // 2)
    data.write_bytes(bytes(raw))
    fixed = TextEncoder(pack, device="cpu", saved_graphs=root)
    np.testing.assert_allclose(fixed.encode(TEXTS), want, atol=1e-6)
    encoders.wait_for_saved_graphs()
    assert data.read_bytes() != bytes(raw)  # saved again, whole
    assert Path(TextEncoder(pack, device="cpu", saved_graphs=root).session._model_path) == (
        saved / "model.onnx"
    )
    # Nowhere to save (the cache path is a file): the pack's own graph opens as always.
    blocked = tmp_path / "file"
    blocked.write_text("x")
    np.testing.assert_allclose(
        TextEncoder(pack, device="cpu", saved_graphs=blocked).encode(TEXTS), want, atol=1e-6
    )
    encoders.wait_for_saved_graphs()
    # The image encoder keeps one too, with the same numbers.
    pixels = np.random.default_rng(0).random((3, 3, *pack.image.size), np.float32)
    plain = ImageEncoder(pack, device="cpu").encode(pixels)
    ImageEncoder(pack, device="cpu", saved_graphs=root)
    encoders.wait_for_saved_graphs()
    again_image = ImageEncoder(pack, device="cpu", saved_graphs=root)
    assert Path(again_image.session._model_path).parent.parent == root / pack.path.name
    np.testing.assert_allclose(again_image.encode(pixels), plain, atol=1e-5)
    encoders.forget_saved_graphs(root, pack.path.name)
    assert not (root / pack.path.name).exists()
