"""Compact a synthetic model pack into a committable test fixture: every file under 5 MB, the
same behaviour on the synthetic world's texts.

Why the packs are big: the synthetic CoCa keeps open_clip's full CLIP vocabulary (49,408 tokens),
so the text tower carries a [49408, 64] token embedding (13 MB) and the scorer the decoder's
token embedding plus its [64, 49408] vocabulary projection (28 MB). The world's captions use
about 45 of those ids (its words, start, end, padding), and training completed every other
column of the projection with one constant column that gives the logit -50 for any input
(:func:`benchmarks.synthetic.train.complete_vocabulary`).

What this does, by graph surgery with the ``onnx`` package (the tokenizer, the manifest format
and photosearch's runtime stay as they are; token ids keep their CLIP values everywhere):

- a token embedding ``[V, D]`` read by ``Gather`` keeps the rows of the kept ids (sorted) plus
  one *unknown* row, the mean of the dropped rows; a lookup table ``[V]`` (int32, 200 KB) maps a
  CLIP id to its compact row (unknown ids to the unknown row) and is applied to the indices of
  that ``Gather`` only. Other readers of ``input_ids`` (the padding mask, the shapes) still see
  the CLIP ids;
- a vocabulary projection ``[D, V]`` read by ``MatMul`` keeps the kept columns plus one of the
  dropped columns, which must all be the same constant column: an unknown id keeps its logit of
  exactly -50. The ``LogSoftmax`` after it then runs over K + 1 classes instead of V; the
  dropped ones weighed (V - K - 1)·e^-50 in the normaliser, about 1e-17 relative. The
  ``GatherElements`` that picks each target's log-probability gets its indices remapped through
  the same table.

The compact pack is accepted only when photosearch's own runtime (``ImageEncoder``,
``TextEncoder``, ``CrossAttentionScorer``) gives the same answers on validation scenes and
captions as the original pack: identical image embeddings and image tokens, text embedding
cosine >= 0.9999, log-likelihood relative error <= 1e-3 and identical token counts. A text with
a word outside the world differs from the original: its tokens read the unknown row.

    python -m benchmarks.synthetic.fixture build/synthetic/full/packs/base \\
        tests/data/synthetic-pack [--overwrite]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import helper, numpy_helper

from benchmarks.synthetic import scenes
from photosearch import imaging, modelpack
from photosearch.encoders import ImageEncoder, TextEncoder
from photosearch.errors import PackError
from photosearch.rerank import CrossAttentionScorer
from photosearch.tokenizer import Tokenizer

MAX_FILE_BYTES = 5_000_000
MIN_TEXT_COSINE = 0.9999
MAX_LOGLIK_REL_ERR = 1e-3
# Dropped projection columns must be one column repeated; completed checkpoints write the very
# same float32 values into each, so anything beyond rounding means the pack was not completed.
CONSTANT_COLUMN_TOL = 1e-6
PARITY_FAMILIES = 4
TABLE = "photosearch_compact_vocabulary_rows"
MANIFEST_KEY = "compact_vocabulary"


@dataclass(frozen=True)
class VocabularyMap:
    """Which CLIP ids keep their own row (sorted) and where every id lands in the compact rows."""

    kept: NDArray[np.int64]  # [K], sorted CLIP ids
    vocab_size: int  # V

    @property
    def unknown(self) -> int:
        """The compact row of every id not kept (the last one)."""
        return len(self.kept)

    @property
    def dropped(self) -> NDArray[np.int64]:
        mask = np.ones(self.vocab_size, bool)
        mask[self.kept] = False
        return np.nonzero(mask)[0]

    def table(self) -> NDArray[np.int32]:
        """CLIP id -> compact row, [V] int32 (ONNX Gather and GatherElements take int32 indices,
        so no Cast is needed, and the table is half the size of an int64 one)."""
        rows = np.full(self.vocab_size, self.unknown, np.int32)
        rows[self.kept] = np.arange(len(self.kept), dtype=np.int32)
        return rows

    @classmethod
    def for_world(cls, tokenizer: Tokenizer) -> VocabularyMap:
        """The ids of every word the synthetic world's captions can contain, plus start, end and
        padding, as the pack's own tokenizer encodes them."""
        ids = {tokenizer.sot_id, tokenizer.eot_id, tokenizer.pad_id}
        for word_ids in tokenizer.encode_batch(scenes.vocabulary()):
            ids.update(word_ids)
        return cls(np.array(sorted(ids), np.int64), tokenizer.vocab_size)


# ---------------------------------------------------------------------------------------------
# Graph surgery


@dataclass
class _Graph:
    """Lookups over one graph, built once: edits only queue remap nodes (inserted in order by
    :meth:`commit`) and point a reader's ids input at them, which no later lookup asks about."""

    graph: onnx.GraphProto

    def __post_init__(self) -> None:
        self.inits = {i.name: i for i in self.graph.initializer}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        # A node's first output (unique in a graph) -> nodes to insert just before it.
        self.before: dict[str, list[onnx.NodeProto]] = {}

    def only_consumers(self, name: str, op: str, slot: int) -> list[onnx.NodeProto]:
        """The nodes reading ``name``; all must be ``op`` reading it as input ``slot``."""
        users = self.consumers.get(name, [])
        if not users or any(u.op_type != op or list(u.input).index(name) != slot for u in users):
            found = [(u.op_type, u.name) for u in users]
            raise PackError(f"{name!r} is read by {found}, expected only {op} (input {slot})")
        return users

    def remap(self, node: onnx.NodeProto, slot: int, table: str) -> None:
        """Route ``node``'s input ``slot`` (CLIP ids) through the lookup table first."""
        ids = node.input[slot]
        rows = f"{node.name or node.output[0]}/compact_rows"
        self.before.setdefault(node.output[0], []).append(
            helper.make_node("Gather", [table, ids], [rows], name=rows, axis=0)
        )
        node.input[slot] = rows

    def commit(self) -> None:
        """Write the graph's nodes back in topological order: each remap before its reader."""
        nodes: list[onnx.NodeProto] = []
        for node in self.graph.node:
            nodes += self.before.get(node.output[0], [])
            clone = onnx.NodeProto()
            clone.CopyFrom(node)
            nodes.append(clone)
        del self.graph.node[:]
        self.graph.node.extend(nodes)


def _axis(node: onnx.NodeProto, default: int) -> int:
    for a in node.attribute:
        if a.name == "axis":
            return int(a.i)
    return default


def _replace_initializer(g: _Graph, name: str, value: np.ndarray) -> None:
    g.inits[name].CopyFrom(numpy_helper.from_array(value, name))


def _compact_embedding(g: _Graph, name: str, vmap: VocabularyMap) -> str:
    weight = numpy_helper.to_array(g.inits[name])
    gathers = g.only_consumers(name, "Gather", 0)
    for node in gathers:
        if _axis(node, 0) != 0:
            raise PackError(f"{node.name}: token embedding gathered along axis {_axis(node, 0)}")
        g.remap(node, 1, TABLE)
    unknown = weight[vmap.dropped].mean(0, keepdims=True)
    _replace_initializer(g, name, np.concatenate([weight[vmap.kept], unknown]).astype(weight.dtype))
    return f"embedding {name} {list(weight.shape)} -> [{vmap.unknown + 1}, {weight.shape[1]}], " + (
        f"ids remapped before {', '.join(n.name for n in gathers)}"
    )


def _compact_projection(g: _Graph, name: str, vmap: VocabularyMap) -> tuple[str, list[str]]:
    """Slice a [D, V] projection to the kept columns plus the constant one; remap the targets
    that pick log-probabilities out of its LogSoftmax. Returns a description and the names of
    the tensors whose last dimension shrank (for value_info)."""
    weight = numpy_helper.to_array(g.inits[name])
    dropped = weight[:, vmap.dropped]
    constant = dropped[:, :1]
    spread = float(np.abs(dropped - constant).max()) if dropped.size else 0.0
    if spread > CONSTANT_COLUMN_TOL * max(1.0, float(np.abs(constant).max())):
        raise PackError(
            f"the unused columns of {name} are not one constant column (they differ by up to "
            f"{spread:.3g}): not a completed synthetic checkpoint, so dropping them would change "
            "the softmax"
        )
    (matmul,) = g.only_consumers(name, "MatMul", 1)
    (softmax,) = g.only_consumers(matmul.output[0], "LogSoftmax", 0)
    if _axis(softmax, -1) != -1:
        raise PackError(f"{softmax.name}: LogSoftmax over axis {_axis(softmax, -1)}, not -1")
    picks = g.only_consumers(softmax.output[0], "GatherElements", 0)
    for node in picks:
        if _axis(node, 0) != -1:
            raise PackError(f"{node.name}: GatherElements along axis {_axis(node, 0)}, not -1")
        g.remap(node, 1, TABLE)
    _replace_initializer(
        g, name, np.concatenate([weight[:, vmap.kept], constant], axis=1).astype(weight.dtype)
    )
    what = (
        f"projection {name} {list(weight.shape)} -> [{weight.shape[0]}, {vmap.unknown + 1}] "
        f"(unknown column: the constant one) in {matmul.name} -> {softmax.name}; targets "
        f"remapped before {', '.join(n.name for n in picks)}"
    )
    return what, [matmul.output[0], softmax.output[0]]


def compact_model(model: onnx.ModelProto, vmap: VocabularyMap) -> list[str]:
    """Compact every vocabulary-sized initializer of ``model`` in place; returns what changed
    (empty for a graph without one, e.g. an image tower). Raises :class:`PackError` on a graph
    shaped in a way this surgery does not know."""
    g = _Graph(model.graph)
    v = vmap.vocab_size
    changes: list[str] = []
    shrunk: set[str] = set()
    for name, init in list(g.inits.items()):
        dims = list(init.dims)
        if v not in dims:
            continue
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise PackError(f"{name} is stored as external data; not supported")
        if len(dims) == 2 and dims[0] == v and dims[1] != v:
            changes.append(_compact_embedding(g, name, vmap))
        elif len(dims) == 2 and dims[1] == v and dims[0] != v:
            what, outputs = _compact_projection(g, name, vmap)
            changes.append(what)
            shrunk.update(outputs)
        else:
            raise PackError(f"initializer {name} {dims} has a vocabulary-sized dimension")
        shrunk.add(name)
    if not changes:
        return []
    g.graph.initializer.append(numpy_helper.from_array(vmap.table(), TABLE))
    g.commit()
    for vi in g.graph.value_info:
        dims = vi.type.tensor_type.shape.dim
        if vi.name in shrunk and dims and dims[-1].dim_value == v:
            dims[-1].dim_value = vmap.unknown + 1
        elif vi.name in shrunk and dims and dims[0].dim_value == v:
            dims[0].dim_value = vmap.unknown + 1
    for vi in [*g.graph.value_info, *g.graph.input, *g.graph.output]:
        if any(d.dim_value == v for d in vi.type.tensor_type.shape.dim):
            raise PackError(f"tensor {vi.name} still has a vocabulary-sized dimension")
    onnx.checker.check_model(model, full_check=True)
    return changes


# ---------------------------------------------------------------------------------------------
# Parity


def _rel_err(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    return float((np.abs(a - b) / np.maximum(np.abs(b), 1e-12)).max())


def check_parity(
    original: modelpack.ModelPack,
    compact: modelpack.ModelPack,
    vmap: VocabularyMap,
    *,
    families: int = PARITY_FAMILIES,
) -> dict[str, float]:
    """Run photosearch's runtime on both packs over validation scenes and captions of the
    synthetic world; raise :class:`PackError` unless they agree within the gates."""
    world = scenes.World(scenes.WorldConfig())
    fams = list(world.families("validation", families))
    scns = [s for f in fams for s in f.members.values()]
    texts = [f.captions[m] for f in fams for m in f.members]
    tok = Tokenizer.from_config(compact.path, compact.tokenizer)
    stray = set(np.unique(tok(texts)).tolist()) - set(vmap.kept.tolist())
    if stray:
        raise PackError(f"validation captions use token ids outside the kept ones: {stray}")

    def pixels(spec: modelpack.ImageSpec) -> NDArray[np.float32]:
        return np.stack([imaging.preprocess(s.render(spec.size[0]), spec) for s in scns])

    fig: dict[str, float] = {"scenes": len(scns), "captions": len(texts)}
    x = pixels(original.image)
    img = [ImageEncoder(p, device="cpu", threads=1).encode(x) for p in (original, compact)]
    fig["image_max_abs_diff"] = float(np.abs(img[0] - img[1]).max())
    txt = [TextEncoder(p, device="cpu", threads=1).encode(texts) for p in (original, compact)]
    fig["text_min_cosine"] = float((txt[0] * txt[1]).sum(-1).min())
    problems = []
    if fig["image_max_abs_diff"] != 0.0:
        problems.append("image embeddings differ")
    if not fig["text_min_cosine"] >= MIN_TEXT_COSINE:
        problems.append(f"text cosine below {MIN_TEXT_COSINE}")

    if original.reranker is not None:
        if compact.reranker is None:
            raise PackError("the compact pack lost its reranker", pack=str(compact.path))
        x = pixels(original.reranker.image)
        scorers = [CrossAttentionScorer(p, device="cpu", threads=1) for p in (original, compact)]
        tokens = [s.image_tokens(x) for s in scorers]
        fig["image_tokens_max_abs_diff"] = float(np.abs(tokens[0] - tokens[1]).max())
        worst, counts_equal = 0.0, True
        for text in texts:
            (ll_ref, n_ref), (ll, n) = (
                s.score(text, t) for s, t in zip(scorers, tokens, strict=True)
            )
            worst = max(worst, _rel_err(ll, ll_ref))
            counts_equal &= bool(np.array_equal(n, n_ref))
        fig["loglik_max_rel_err"] = worst
        if fig["image_tokens_max_abs_diff"] != 0.0:
            problems.append("reranker image tokens differ")
        if not worst <= MAX_LOGLIK_REL_ERR:
            problems.append(f"log-likelihood relative error above {MAX_LOGLIK_REL_ERR}")
        if not counts_equal:
            problems.append("token counts differ")
    if problems:
        raise PackError(
            f"compact pack differs from the original: {'; '.join(problems)} ({fig})",
            pack=str(compact.path),
        )
    return fig


# ---------------------------------------------------------------------------------------------
# Packs


def compact_pack(
    src: Path,
    out: Path,
    *,
    overwrite: bool = False,
    families: int = PARITY_FAMILIES,
    max_file_bytes: int = MAX_FILE_BYTES,
    beta: float | None = None,
) -> dict[str, Any]:
    """Write the compact form of the pack at ``src`` to ``out`` (atomically: nothing is left at
    ``out`` unless every file is small enough and the parity check passes). Returns a report:
    ``files`` (name -> [original bytes, compact bytes]), ``changes``, ``kept_ids``, ``parity``."""
    original = modelpack.load(src)
    tok = Tokenizer.from_config(original.path, original.tokenizer)
    vmap = VocabularyMap.for_world(tok)
    files: dict[str, list[int]] = {}
    changes: dict[str, list[str]] = {}
    with modelpack.staged_pack(Path(out), overwrite=overwrite) as staging:
        for name in original.manifest["files"]:
            source = original.path / name
            done: list[str] = []
            if name.endswith(".onnx"):
                model = onnx.load(str(source), load_external_data=False)
                done = compact_model(model, vmap)
                if done:
                    onnx.save(model, str(staging / name))
                    changes[name] = done
            if not done:  # unchanged files are copied byte for byte (same sha256, same pack id)
                shutil.copyfile(source, staging / name)
            files[name] = [source.stat().st_size, (staging / name).stat().st_size]
        if not changes:
            raise PackError("no vocabulary-sized initializer in any graph", pack=str(src))
        big = {n: s for n, (_, s) in files.items() if s >= max_file_bytes}
        if big:
            raise PackError(f"files still {max_file_bytes} bytes or more: {big}", pack=str(src))

        manifest = {k: v for k, v in original.manifest.items() if k != "files"}
        if beta is not None:  # the fusion weight search uses by default with this pack
            manifest["reranker"] = {**manifest["reranker"], "beta": float(beta)}
        manifest[MANIFEST_KEY] = {
            "note": (
                "token embeddings and the vocabulary projection keep only the synthetic world's "
                "token ids; other ids share one unknown row (mean of the dropped rows) and the "
                "constant logit column; made by benchmarks.synthetic.fixture"
            ),
            "vocab_size": vmap.vocab_size,
            "kept_ids": len(vmap.kept),
            "token_ids": vmap.kept.tolist(),
            "original_files": {
                n: e["sha256"] for n, e in original.manifest["files"].items() if n in changes
            },
            "changes": changes,
        }
        modelpack.finalize_manifest(staging, manifest)
        parity = check_parity(
            original, modelpack.verify(staging, full=True), vmap, families=families
        )
        manifest[MANIFEST_KEY]["parity"] = parity
        modelpack.finalize_manifest(staging, manifest)
        (staging / modelpack.VERIFIED_STAMP).unlink(missing_ok=True)
    modelpack.verify(out, full=True)
    # The stamp records this checkout's mtimes: worthless in a committed fixture.
    (Path(out) / modelpack.VERIFIED_STAMP).unlink(missing_ok=True)
    return {"files": files, "changes": changes, "kept_ids": len(vmap.kept), "parity": parity}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.synthetic.fixture",
        description="Compact a synthetic model pack's vocabulary into a small test fixture.",
    )
    parser.add_argument("src", type=Path, help="an exported synthetic pack")
    parser.add_argument("out", type=Path, help="folder for the compact pack")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument(
        "--families",
        type=int,
        default=PARITY_FAMILIES,
        help=f"validation families for the parity check (default {PARITY_FAMILIES})",
    )
    parser.add_argument(
        "--beta",
        type=float,
        help="record this fusion weight as the pack's reranker.beta (the one chosen on "
        "validation by benchmarks.synthetic.evaluate)",
    )
    args = parser.parse_args(argv)
    try:
        report = compact_pack(
            args.src, args.out, overwrite=args.overwrite, families=args.families, beta=args.beta
        )
    except PackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.src} -> {args.out} ({report['kept_ids']} token ids kept)")
    for name, (before, after) in report["files"].items():
        print(f"  {name:24s} {before:>12,d} -> {after:>10,d} bytes")
    for name, what in report["changes"].items():
        for line in what:
            print(f"  {name}: {line}")
    print("parity: " + ", ".join(f"{k}={v:.6g}" for k, v in report["parity"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
