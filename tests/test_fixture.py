"""Compact synthetic packs (``benchmarks.synthetic.fixture``): the vocabulary surgery keeps what
the graphs compute for the kept token ids, and a whole exported pack shrinks below the fixture
size limit while photosearch's runtime gives the same answers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks` is a folder of the repository, not a package
    sys.path.insert(0, str(ROOT))

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from benchmarks.synthetic import fixture  # noqa: E402
from photosearch import modelpack  # noqa: E402
from photosearch.errors import PackError  # noqa: E402

V, D, L = 300, 8, 6
KEPT = fixture.VocabularyMap(np.array([0, 5, 17, 298, 299]), V)


def _toy_scorer(constant: bool = True) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """The scorer's shape in miniature: embedding Gather -> MatMul projection -> LogSoftmax ->
    GatherElements of the targets, plus a padding mask that must keep reading the CLIP ids.
    Like a completed checkpoint, every embedding has a constant 1 in its first dimension and
    every dropped column reads only it, so all dropped tokens get the logit -50."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(V, D)).astype(np.float32)
    emb[:, 0] = 1.0
    proj = rng.normal(size=(D, V)).astype(np.float32)
    proj[:, KEPT.dropped] = 0.0
    proj[0, KEPT.dropped] = -50.0
    if not constant:
        proj[1, KEPT.dropped[3]] = 0.5
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["emb"], name="embed"),
        helper.make_node("MatMul", ["emb", "P"], ["logits"], name="project"),
        helper.make_node("LogSoftmax", ["logits"], ["logp"], name="lsm", axis=-1),
        helper.make_node("Unsqueeze", ["input_ids", "minus_one"], ["targets"], name="unsq"),
        helper.make_node("GatherElements", ["logp", "targets"], ["picked"], name="pick", axis=-1),
        helper.make_node("Equal", ["input_ids", "zero"], ["is_pad"], name="pad"),
    ]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, L])],
        [
            helper.make_tensor_value_info("emb", TensorProto.FLOAT, [1, L, D]),
            helper.make_tensor_value_info("picked", TensorProto.FLOAT, [1, L, 1]),
            helper.make_tensor_value_info("is_pad", TensorProto.BOOL, [1, L]),
        ],
        [
            numpy_helper.from_array(emb, "E"),
            numpy_helper.from_array(proj, "P"),
            numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
        ],
        value_info=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, L, V])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, emb, proj


def _run(model: onnx.ModelProto, ids: np.ndarray) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"input_ids": ids})


def test_surgery_keeps_the_kept_ids_and_maps_the_rest_to_the_unknown_row() -> None:
    model, emb, _ = _toy_scorer()
    ids = np.array([[299, 5, 17, 298, 0, 0]])
    before = _run(model, ids)
    changes = fixture.compact_model(model, KEPT)
    assert len(changes) == 2, changes
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert inits["E"].shape == (len(KEPT.kept) + 1, D)
    assert inits["P"].shape == (D, len(KEPT.kept) + 1)
    after = _run(model, ids)
    assert np.array_equal(after[0], before[0])  # the same embedding rows
    # The dropped tokens weighed (V - K - 1)·e^-50 in the softmax: nothing at float32.
    np.testing.assert_allclose(after[1], before[1], rtol=1e-6)
    assert np.array_equal(after[2], before[2])  # the mask still reads the CLIP ids

    unknown = np.array([[7, 5, 123, 17, 0, 0]])
    emb_out, picked, is_pad = _run(model, unknown)
    np.testing.assert_allclose(emb_out[0, 0], emb[KEPT.dropped].mean(0), rtol=1e-5)
    assert np.array_equal(emb_out[0, 1], emb[5])
    assert picked[0, 0, 0] < -40 and picked[0, 2, 0] < -40  # unknown targets stay improbable
    assert is_pad.tolist() == [[False, False, False, False, True, True]]


def test_surgery_refuses_a_projection_whose_unused_columns_differ() -> None:
    model, _, _ = _toy_scorer(constant=False)
    with pytest.raises(PackError, match="not one constant column"):
        fixture.compact_model(model, KEPT)


def test_graphs_without_a_vocabulary_are_left_alone() -> None:
    model, _, _ = _toy_scorer()
    small = fixture.VocabularyMap(np.array([0, 1]), V + 1)  # no initializer has V + 1 rows
    before = model.SerializeToString()
    assert fixture.compact_model(model, small) == []
    assert model.SerializeToString() == before


@pytest.mark.slow
def test_compact_synthetic_pack_fits_and_keeps_the_answers(tmp_path: Path) -> None:
    """An untrained synthetic CoCa, completed as training saves it, exported, then compacted."""
    torch = pytest.importorskip("torch")
    open_clip = pytest.importorskip("open_clip")
    from benchmarks.synthetic import packs, train

    torch.manual_seed(0)
    model = train.create_model(seed=0)
    tok = open_clip.get_tokenizer(train.MODEL)
    vocab = train.WorldVocabulary.build(tok, model.text_decoder.text_projection.shape[1])
    checkpoint = tmp_path / "model.pt"
    train.save_checkpoint(model, train.head_from_model(model, vocab), vocab, checkpoint)
    src, out = tmp_path / "pack", tmp_path / "compact"
    packs.export(checkpoint, src, name="synthetic-untrained")

    report = fixture.compact_pack(src, out, families=2)

    compact = modelpack.verify(out, full=True)
    original = modelpack.load(src)
    for name, entry in compact.manifest["files"].items():
        assert entry["size"] < fixture.MAX_FILE_BYTES, name
    assert original.manifest["files"]["text_encoder.onnx"]["size"] > fixture.MAX_FILE_BYTES
    assert set(report["changes"]) == {"text_encoder.onnx", "reranker_scorer.onnx"}
    assert compact.id == original.id  # the image tower is copied byte for byte
    info = compact.manifest[fixture.MANIFEST_KEY]
    assert info["kept_ids"] == len(info["token_ids"]) == report["kept_ids"]
    assert set(info["token_ids"]) == set(vocab.ids.tolist()) | {tok.sot_token_id, 0}
    parity = info["parity"]
    assert parity["image_max_abs_diff"] == 0.0 and parity["image_tokens_max_abs_diff"] == 0.0
    assert parity["text_min_cosine"] >= fixture.MIN_TEXT_COSINE
    assert parity["loglik_max_rel_err"] <= fixture.MAX_LOGLIK_REL_ERR
    with pytest.raises(PackError, match="already exists"):
        fixture.compact_pack(src, out)
