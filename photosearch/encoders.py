"""ONNX Runtime sessions for a model pack's graphs, made by one factory, and batch encoders.

The factory filters execution providers by what really works: onnxruntime-gpu lists CUDA even
on a machine without a GPU and then silently runs on the CPU, so the providers a session
actually uses (``session.get_providers()``) are what gets reported.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from photosearch import config, fsio
from photosearch.errors import EncoderError, PackError
from photosearch.modelpack import IMAGE_ENCODER as IMAGE_FILE
from photosearch.modelpack import TEXT_ENCODER as TEXT_FILE
from photosearch.modelpack import ModelPack
from photosearch.tokenizer import HubTokenizer, load_tokenizer

log = logging.getLogger(__name__)

Vector = NDArray[np.float32]
Pixels = NDArray[np.float32]  # [N, 3, H, W], already resized and normalised

# Most capable first; CPU is always last and always present.
GPU_PROVIDERS = (
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
)
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cpu", "gpu")

_DEVICE_NAMES = {
    "CUDAExecutionProvider": "CUDA",
    "CoreMLExecutionProvider": "CoreML",
    "DmlExecutionProvider": "DirectML",
    "TensorrtExecutionProvider": "TensorRT",
    CPU: "CPU",
}


def default_threads() -> int:
    """Threads for one session: every core this process may use (a query wants them all; the
    indexer's encoder shares them with the decode threads by not spinning)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, n)


@functools.cache
def _cuda_driver_present() -> bool:
    """Whether an NVIDIA driver is installed at all.

    onnxruntime-gpu lists CUDA on every machine; asking for it where no driver exists only
    earns an error on stderr and a silent fall-back to the CPU, so do not ask.
    """
    names = {"win32": ["nvcuda.dll"], "darwin": []}.get(sys.platform, ["libcuda.so.1"])
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def candidate_providers(device: str = "auto") -> list[str]:
    """Providers to ask for, in order, given a device preference ('auto', 'cpu' or 'gpu')."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return [CPU]
    available = set(ort.get_available_providers())
    if not _cuda_driver_present():
        available.discard("CUDAExecutionProvider")
    gpus = [p for p in GPU_PROVIDERS if p in available]
    if device == "gpu" and not gpus:
        raise EncoderError(
            "a GPU was requested but none can be used: no GPU provider in this ONNX Runtime "
            "build, or no GPU driver on this machine "
            f"(providers: {', '.join(ort.get_available_providers())})"
        )
    return [*gpus, CPU]


def device_name(providers: Sequence[str]) -> str:
    """The device a session really runs on, in words ('CUDA', 'CPU', ...)."""
    first = providers[0] if providers else CPU
    return _DEVICE_NAMES.get(first, first.removesuffix("ExecutionProvider"))


def _options(
    threads: int | None, spin: bool, level: ort.GraphOptimizationLevel
) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = level
    opts.log_severity_level = 3  # a GPU provider that cannot load is reported by us, not by ORT
    if not spin:
        # Idle ORT threads otherwise spin for a while after each run, taking CPU from the
        # decode threads that feed the next batch.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


# -- saved optimised graphs ------------------------------------------------------------------
# Opening a graph is mostly reading its weights out of the protobuf file (the ViT-B-32 text
# encoder: ~0.3 s on 2 cores); ONNX Runtime's own optimised copy of it, saved once with the
# weights in a separate file (which it maps instead of reading), opens in ~0.05 s. The copy is
# written on a background thread the first time a graph opens (that session opens the pack's
# own file, as before), at the "extended" level, which holds no hardware-specific layout; later
# sessions open it at the full level.
SAVED_LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
_SAVED_MODEL, _SAVED_DATA, _SAVED_STAMP = "model.onnx", "model.onnx.data", "stamp.json"
_STALE_STAGING_S = 3600.0  # a staging folder this old was left by a process that was killed
_saving: dict[Path, threading.Thread] = {}
_saving_lock = threading.Lock()


def wait_for_saved_graphs(timeout: float | None = None) -> None:
    """Wait until the optimised copies being written now are written (tests, benchmarks)."""
    with _saving_lock:
        threads = list(_saving.values())
    for t in threads:
        t.join(timeout)


def _save_in_background(path: Path, saved: Path) -> None:
    with _saving_lock:
        if saved in _saving and _saving[saved].is_alive():
            return
        # Not a daemon: the interpreter must not exit while ONNX Runtime runs on it (it would
        # abort the process); the library also waits for it on close.
        t = threading.Thread(
            target=_save_optimised, args=(path, saved), name="photosearch-save-graph"
        )
        _saving[saved] = t
    t.start()


def saved_graph_dir(root: Path, pack: ModelPack, file: str) -> Path:
    """Where ``pack``'s graph ``file`` is kept optimised: a folder per installed pack, then
    one per graph, exact file (its sha256) and ONNX Runtime version, so a changed pack or a new
    runtime never reuses an old copy."""
    sha = str(pack.manifest["files"][file]["sha256"])[:16]
    return Path(root) / pack.path.name / f"{Path(file).stem}.{sha}.ort-{ort.__version__}"


def forget_saved_graphs(root: Path, pack_name: str) -> None:
    """Delete the saved graphs of the installed pack ``pack_name`` (it was removed)."""
    shutil.rmtree(Path(root) / pack_name, ignore_errors=True)


def _stamp(folder: Path) -> dict[str, Any]:
    """What the saved copy looked like when written (a tiny graph has no weights file)."""
    data = folder / _SAVED_DATA
    d = data.stat() if data.exists() else None
    return {
        "model_size": (folder / _SAVED_MODEL).stat().st_size,
        "data": [d.st_size, d.st_mtime_ns, d.st_ino] if d else None,
    }


def _is_whole(saved: Path) -> bool:
    """Whether the saved copy is complete and unchanged since it was written."""
    try:
        return bool(json.loads((saved / _SAVED_STAMP).read_text()) == _stamp(saved))
    except (OSError, ValueError):
        return False


def _open_saved(saved: Path, threads: int | None, spin: bool) -> ort.InferenceSession | None:
    """The saved copy, if it is complete and unchanged since it was written."""
    if not _is_whole(saved):
        return None
    opts = _options(threads, spin, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    try:
        return ort.InferenceSession(str(saved / _SAVED_MODEL), opts, providers=[CPU])
    except Exception as e:  # noqa: BLE001 - a damaged copy: open the pack's own file instead
        log.warning("saved optimised graph %s does not load (%s); making it again", saved, e)
        shutil.rmtree(saved, ignore_errors=True)
        return None


def _save_optimised(path: Path, saved: Path) -> None:
    """Write ``path``'s optimised copy (at :data:`SAVED_LEVEL`) to ``saved``; a failure (a
    full disk, say) is logged: the graph then opens from the pack as always."""
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
        for left in saved.parent.glob(".saving-*"):
            if time.time() - left.stat().st_mtime > _STALE_STAGING_S:
                shutil.rmtree(left, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=saved.parent))
    except OSError as e:
        log.warning("cannot save optimised graphs in %s: %s", saved.parent, e)
        return
    opts = _options(1, False, SAVED_LEVEL)
    opts.optimized_model_filepath = str(staging / _SAVED_MODEL)
    entry = "session.optimized_model_external_initializers"
    opts.add_session_config_entry(f"{entry}_file_name", _SAVED_DATA)
    opts.add_session_config_entry(f"{entry}_min_size_in_bytes", "1024")
    try:
        ort.InferenceSession(str(path), opts, providers=[CPU])
        fsio.atomic_write(staging / _SAVED_STAMP, json.dumps(_stamp(staging)))
        graph, runtime = saved.name.split(".", 1)[0], saved.name.rsplit(".ort-", 1)[-1]
        for old in saved.parent.glob(f"{graph}.*.ort-{runtime}"):  # for an older pack file
            if old != saved:
                shutil.rmtree(old, ignore_errors=True)
        if saved.exists():
            if _is_whole(saved):  # another process saved it meanwhile
                shutil.rmtree(staging, ignore_errors=True)
                return
            shutil.rmtree(saved, ignore_errors=True)  # damaged: this one replaces it
        os.replace(staging, saved)
    except Exception as e:  # noqa: BLE001 - ONNX Runtime raises its own untyped errors
        log.warning("could not save an optimised copy of %s: %s", path.name, e)
        shutil.rmtree(staging, ignore_errors=True)


def create_session(
    path: Path,
    *,
    device: str = "auto",
    threads: int | None = None,
    spin: bool = True,
    saved: Path | None = None,
) -> ort.InferenceSession:
    """Open one graph; raise :class:`PackError` naming the file if it is not a usable model.

    ``saved``: a folder (:func:`saved_graph_dir`) for the graph's optimised copy, used when the
    session runs on the CPU: opened from there when present, else written there in the
    background after this session opened the pack's own file."""
    providers = candidate_providers(device)
    session = None
    if saved is not None and providers[0] == CPU:
        session = _open_saved(saved, threads, spin)
    from_pack = session is None
    try:
        if session is None:
            opts = _options(threads, spin, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
            session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own untyped errors for bad graphs
        raise PackError(
            f"ONNX Runtime cannot load it: {str(e).strip().splitlines()[0][:300]}",
            pack=str(path.parent),
            file=path.name,
        ) from e
    if saved is not None and from_pack and providers[0] == CPU:
        _save_in_background(path, saved)  # the next open is quicker
    used = session.get_providers()
    if device == "gpu" and used and used[0] == CPU:
        raise EncoderError(
            f"a GPU was requested for {path.name} but ONNX Runtime could only start it on the CPU "
            "(no working GPU or GPU libraries)"
        )
    if providers[0] != used[0]:
        log.info("%s: %s unavailable, running on %s", path.name, providers[0], used[0])
    return session


def _check_io(
    session: ort.InferenceSession,
    path: Path,
    inputs: Sequence[str],
    outputs: Sequence[str],
) -> None:
    got_in = [i.name for i in session.get_inputs()]
    got_out = [o.name for o in session.get_outputs()]
    if got_in != list(inputs) or not set(outputs) <= set(got_out):
        raise PackError(
            f"unexpected graph signature: inputs {got_in}, outputs {got_out}; "
            f"expected inputs {list(inputs)} and outputs {list(outputs)}",
            pack=str(path.parent),
            file=path.name,
        )


def _check_dim(path: Path, what: str, got: object, want: int) -> None:
    if isinstance(got, int) and got != want:
        raise PackError(
            f"{what} is {got} but the manifest says {want}", pack=str(path.parent), file=path.name
        )


# What a graph's input may hold; a published graph may take float16 pixels or int32 ids.
_DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32}


class _Encoder:
    """Shared plumbing: one session, the providers it really uses, batched runs.

    The graph's input and output names, its input type and whether its output still needs
    L2-normalising come from the manifest's section (``image`` or ``text``): our exports use
    the defaults, a pack made from a published model records what that model's graphs take.
    A graph exported for one batch size (Immich's are, for one input) is run at that size.
    """

    def __init__(
        self,
        path: Path,
        section: dict[str, object],
        defaults: tuple[str, str],
        *,
        device: str,
        threads: int | None,
        batch_size: int,
        spin: bool = True,
        saved: Path | None = None,
    ):
        self.path = path
        self.session = create_session(path, device=device, threads=threads, spin=spin, saved=saved)
        self.providers: list[str] = self.session.get_providers()
        self.input = str(section.get("input", defaults[0]))
        self.output = str(section.get("output", "embedding"))
        dtype = str(section.get("dtype", defaults[1]))
        if dtype not in _DTYPES:
            raise PackError(
                f"input type {dtype!r} is not one of {', '.join(_DTYPES)}",
                pack=str(path.parent),
                file=path.name,
            )
        self.dtype = _DTYPES[dtype]
        self.normalize = bool(section.get("normalize", False))
        _check_io(self.session, self.path, [self.input], [self.output])
        fixed = self.session.get_inputs()[0].shape[0]
        self.batch_size = fixed if isinstance(fixed, int) and fixed > 0 else batch_size

    @property
    def device(self) -> str:
        return device_name(self.providers)

    def _run_batches(self, x: np.ndarray) -> Vector:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        out = run_in_batches(
            self.session, self.path.name, self.output, self.input, x, self.batch_size
        )
        if out.shape != (len(x), self.dim):  # a graph with symbolic shapes shows it only now
            raise PackError(
                f"gives embeddings of shape {list(out.shape)}, but the manifest says "
                f"{self.dim} values per input",
                pack=str(self.path.parent),
                file=self.path.name,
            )
        out = out.astype(np.float32, copy=False)
        if self.normalize:
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def run_in_batches(
    session: ort.InferenceSession,
    label: str,
    output: str,
    input_name: str,
    x: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """Run one graph over ``x`` in slices of ``batch_size``; ``x`` must not be empty."""
    outs = []
    for start in range(0, len(x), batch_size):
        try:
            (out,) = session.run([output], {input_name: x[start : start + batch_size]})
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise EncoderError(f"{label} failed on a batch: {e}") from e
        outs.append(out)
    return np.concatenate(outs, axis=0)


class ImageEncoder(_Encoder):
    """Pixels (already preprocessed per ``pack.image``) to L2-normalised embeddings."""

    def __init__(
        self,
        pack: ModelPack,
        *,
        device: str = "auto",
        threads: int | None = None,
        batch_size: int = 32,
        saved_graphs: Path | None = None,
    ):
        saved = None if saved_graphs is None else saved_graph_dir(saved_graphs, pack, IMAGE_FILE)
        super().__init__(
            pack.image_encoder,
            pack.manifest["image"],
            ("pixels", "float32"),
            device=device,
            threads=threads,
            batch_size=batch_size,
            spin=False,
            saved=saved,
        )
        self.spec = pack.image
        self.dim = pack.embedding_dim
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 4:
            raise PackError(
                f"input {self.input!r} has rank {len(shape)}, expected 4 (N, 3, H, W)",
                pack=str(self.path.parent),
                file=self.path.name,
            )
        _check_dim(self.path, "input channel count", shape[1], 3)
        _check_dim(self.path, "input height", shape[2], self.spec.size[0])
        _check_dim(self.path, "input width", shape[3], self.spec.size[1])
        _check_dim(self.path, "embedding size", self.session.get_outputs()[0].shape[-1], self.dim)

    def encode(self, pixels: Pixels) -> Vector:
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        h, w = self.spec.size
        if pixels.ndim != 4 or pixels.shape[1:] != (3, h, w):
            raise ValueError(f"pixels must have shape (N, 3, {h}, {w}), got {pixels.shape}")
        if len(pixels) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._run_batches(pixels)


class TextEncoder(_Encoder):
    """Texts to L2-normalised embeddings; tokenising needs neither torch nor open_clip."""

    def __init__(
        self,
        pack: ModelPack,
        *,
        device: str = "auto",
        threads: int | None = None,
        batch_size: int = 64,
        saved_graphs: Path | None = None,
    ):
        # Opened once per query from a terminal: its optimised copy in ``saved_graphs``.
        saved = None if saved_graphs is None else saved_graph_dir(saved_graphs, pack, TEXT_FILE)
        super().__init__(
            pack.text_encoder,
            pack.manifest["text"],
            ("input_ids", "int64"),
            device=device,
            threads=threads,
            batch_size=batch_size,
            saved=saved,
        )
        self.tokenizer = load_tokenizer(pack.path, pack.tokenizer)
        self.dim = pack.embedding_dim
        self.context_length = pack.context_length
        # A causal text graph exported with a dynamic length: run only up to the end tokens.
        self.dynamic_length = bool(pack.manifest["text"].get("dynamic_length", False))
        self.pad_id = int(pack.tokenizer.get("pad_id", 0))
        _check_dim(
            self.path, "context length", self.session.get_inputs()[0].shape[1], self.context_length
        )
        _check_dim(self.path, "embedding size", self.session.get_outputs()[0].shape[-1], self.dim)

    def tokenize(self, texts: Sequence[str]) -> NDArray[np.int64]:
        if isinstance(self.tokenizer, HubTokenizer):  # it may want the query's language
            return self.tokenizer(list(texts), self.context_length, config.query_language())
        return self.tokenizer(list(texts), context_length=self.context_length)

    def encode(self, texts: str | Sequence[str]) -> Vector:
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.encode_tokens(self.tokenize(texts))

    def words_read(self, text: str) -> int | None:
        """How many of ``text``'s words the model reads when it is too long for the context
        (the tokenizer keeps the first ones), else None."""
        ids = self.tokenize([text])[0]
        if ids[-1] == self.pad_id:  # room to spare: nothing was cut
            return None
        total = len(text.split())
        kept = len(self.tokenizer.decode(ids).split())
        return kept if kept < total else None

    def encode_tokens(self, ids: NDArray[np.int64]) -> Vector:
        if self.dynamic_length:
            outs = [
                self._run_batches(trim_text(ids[i : i + self.batch_size], self.pad_id))
                for i in range(0, len(ids), self.batch_size)
            ]
            return np.concatenate(outs) if outs else np.zeros((0, self.dim), np.float32)
        return self._run_batches(ids)


def trim_padding(ids: NDArray[np.int64], pad_id: int, *, spare: int = 0) -> NDArray[np.int64]:
    """Drop the padding columns after the longest query of the batch (for graphs that take
    any length: causal text towers and the reranker's scorer), keeping ``spare`` of them."""
    used = np.nonzero((ids != pad_id).any(axis=0))[0]
    end = int(used[-1]) + 1 if len(used) else 1
    return np.ascontiguousarray(ids[:, : end + spare], dtype=np.int64)


def trim_text(ids: NDArray[np.int64], pad_id: int) -> NDArray[np.int64]:
    """How a dynamic-length text graph is fed: cut one id after the longest end token.

    The spare padding id costs one token and is what CoCa's legacy (off-by-one) padding mask
    lets its class token see; causal towers never look past their end token either way.
    """
    return trim_padding(ids, pad_id, spare=1)


def check_pack(pack: ModelPack) -> None:
    """Open the pack's dual-encoder graphs on the CPU and run each once.

    Checksums only say the files are the ones the manifest lists; this says they fit it: a
    graph that does not load, or whose inputs and outputs disagree with the manifest (image
    size, context length, embedding size), raises :class:`PackError` naming the file. Run by
    ``models import`` and ``models verify``, so a broken pack is refused before it is used.
    """
    image = ImageEncoder(pack, device="cpu", threads=1)
    h, w = pack.image.size
    image.encode(np.zeros((1, 3, h, w), np.float32))
    TextEncoder(pack, device="cpu", threads=1).encode(["a photo of a dog"])


def reverse_caption(ids: NDArray[np.int64], pad_id: int) -> NDArray[np.int64]:
    """Each row's words in reverse order, its start and end tokens kept in place.

    How a backward captioning scorer reads a query (Miech et al.'s h_bwd: every word predicted
    from the words after it): ``[SOT, w1 … wn, EOT, pad …]`` becomes ``[SOT, wn … w1, EOT, pad …]``.
    Padding must only trail (as the tokenizers here pad).
    """
    ids = np.asarray(ids, dtype=np.int64)
    out = ids.copy()
    lengths = (ids != pad_id).sum(axis=1)
    for row, n in enumerate(lengths.tolist()):
        if n > 3:
            out[row, 1 : n - 1] = ids[row, 1 : n - 1][::-1]
    return out
