"""The indexing pipeline: read and decode on a thread pool, encode in batches, commit in batches.

Memory stays flat whatever the library size: at most ``max_batches_ahead`` batches are being
decoded while one is encoded. Each batch is committed to the catalog in one transaction and
only then added to the vector index, so a kill at any instant loses at most the batch in
flight. A file that cannot be read is recorded with its reason and the run goes on.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from photosearch.catalog import Catalog, Encoded, Failed, PhotoRecord
from photosearch.encoders import ImageEncoder
from photosearch.imaging import ImageError, ImageInfo, load_for_model
from photosearch.modelpack import ImageSpec
from photosearch.scanner import content_hash, file_hash
from photosearch.vectors import VectorIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """One progress event: ``done`` of ``total`` photos, with rate (photos/s) and ETA (s)."""

    done: int
    total: int
    failed: int
    reused: int
    rate: float
    eta: float | None
    paused: bool = False


@dataclass
class IndexReport:
    indexed: int = 0
    failed: int = 0
    reused: int = 0  # identical content already encoded elsewhere: vector copied, not computed
    cancelled: bool = False
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)
    # Library folders that disappeared during the run (renamed, unplugged): marked offline,
    # their photos kept and left for when the folder is back.
    offline: list[Path] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return (self.indexed + self.failed) / self.seconds if self.seconds > 0 else 0.0


class IndexControl:
    """Pause, resume and cancel a running indexer from any thread."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._cancelled = threading.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()  # wake a paused run so it can stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def cancel_event(self) -> threading.Event:
        """Set once cancelled: for work that polls an event (the reranker's precompute)."""
        return self._cancelled

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        return self._running.wait(timeout)


@dataclass(frozen=True)
class _Read:
    photo: PhotoRecord
    digest: str
    info: ImageInfo
    pixels: np.ndarray | None  # None when an identical photo's vector is reused
    vector: np.ndarray | None


# Reasons that say nothing about the file's content: the next run tries again.
_TRANSIENT = ("permission denied", "cannot read file", "file not found", "not enough memory")

Reuse = Callable[[str], tuple[np.ndarray, ImageInfo] | None]


# Files up to this size are read into memory once, for the hash and the decoder both (a 12 MP
# JPEG is ~4 MB); larger ones (panoramas, TIFF scans) are hashed in chunks and decoded from
# the file, so a decode thread never holds hundreds of MB.
READ_ONCE_BYTES = 64 << 20


def _hashed(path: Path, size: int) -> tuple[bytes | None, str]:
    """The file's content hash, and its bytes when it is small enough to decode from them."""
    if size <= READ_ONCE_BYTES:
        data = path.read_bytes()
        return data, content_hash(data)
    return None, file_hash(path)


def _read(photo: PhotoRecord, spec: ImageSpec, reuse: Reuse) -> _Read | Failed:
    """Hash the file, then decode it unless identical content was already encoded."""

    def failed(reason: str) -> Failed:
        return Failed(photo.id, photo.size, photo.mtime_ns, reason, reason.startswith(_TRANSIENT))

    try:
        st = os.stat(photo.path)
        if not stat.S_ISREG(st.st_mode):
            return failed("not a regular file")
        data, digest = _hashed(photo.path, st.st_size)
    except FileNotFoundError:
        return failed("file not found (deleted since the scan)")
    except PermissionError:
        return failed("permission denied")
    except OSError as e:
        return failed(f"cannot read file: {e.strerror or e}")
    try:
        if (known := reuse(digest)) is not None:
            return _Read(photo, digest, known[1], None, known[0])
        source = data if data is not None else photo.path
        pixels, info = load_for_model(source, spec, name=str(photo.path))
    except ImageError as e:
        return failed(e.reason)
    except MemoryError:
        return failed("not enough memory to decode this image")
    except Exception as e:  # a decoder bug must not stop the run; keep the reason
        log.exception("unexpected error decoding %s", photo.path)
        return failed(f"unexpected decoding error: {type(e).__name__}: {e}")
    return _Read(photo, digest, info, pixels, None)


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's cycle collector, quieter during a run (~1-2 % of its CPU time here): what was
    loaded before it (modules, models) is frozen out of the collector's scans, and young
    objects are collected a tenth as often; cycles made meanwhile are still collected."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(old[0] * 10, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


class Indexer:
    """Encodes pending photos of one library with one pack's image encoder."""

    def __init__(
        self,
        catalog: Catalog,
        index: VectorIndex,
        encoder: ImageEncoder | Callable[[], ImageEncoder],
        pack: str,
        *,
        spec: ImageSpec | None = None,
        batch_size: int = 32,
        decode_workers: int | None = None,
        max_batches_ahead: int = 2,
        on_commit: Callable[[], None] | None = None,
    ):
        self.catalog = catalog
        self.index = index
        # A callable opens the encoder once there is something to encode, while the decode
        # threads read the first batch (opening a graph takes a few hundred ms); it then
        # needs ``spec``, the pack's image preprocessing.
        self._encoder_or_opener = encoder
        self.spec = spec if spec is not None else getattr(encoder, "spec", None)
        if self.spec is None:
            raise ValueError("an encoder opened on first use needs the pack's image spec")
        self.pack = pack
        self.batch_size = batch_size
        self.decode_workers = decode_workers or max(1, min(4, os.cpu_count() or 1))
        self.max_batches_ahead = max_batches_ahead
        self.on_commit = on_commit

    @property
    def encoder(self) -> ImageEncoder:
        if not isinstance(self._encoder_or_opener, ImageEncoder):
            self._encoder_or_opener = self._encoder_or_opener()
        return self._encoder_or_opener

    def _reusable(self, digest: str) -> tuple[np.ndarray, ImageInfo] | None:
        found = self.catalog.encoded_copy(self.pack, digest)
        if found is None:
            return None
        vector, width, height, fmt, taken = found
        return vector.astype(np.float32), ImageInfo(width, height, fmt, taken)

    def run(
        self,
        photos: Sequence[PhotoRecord],
        *,
        progress: Callable[[Progress], None] | None = None,
        control: IndexControl | None = None,
    ) -> IndexReport:
        with _fewer_collections():
            return self._run(photos, progress, control or IndexControl())

    def _run(
        self,
        photos: Sequence[PhotoRecord],
        progress: Callable[[Progress], None] | None,
        control: IndexControl,
    ) -> IndexReport:
        report = IndexReport()
        start = time.monotonic()
        batches = [photos[i : i + self.batch_size] for i in range(0, len(photos), self.batch_size)]
        spec = self.spec
        paths = {p.id: p.path for p in photos}
        self._folder_of = {p.id: p.folder_id for p in photos}
        self._roots = {f.id: f.path for f in self.catalog.folders()}
        self._gone: set[int] = set()
        emit = _progress_events(progress, report, len(photos), start)
        emit()
        with ThreadPoolExecutor(self.decode_workers, thread_name_prefix="decode") as pool:

            def submit(p: PhotoRecord) -> Future | None:
                # Photos of a folder that went offline mid-run are not even tried.
                if p.folder_id in self._gone:
                    return None
                return pool.submit(_read, p, spec, self._reusable)

            ahead = _ReadAhead(batches, self.max_batches_ahead, submit)
            try:
                if ahead:
                    _ = self.encoder  # opened while the decode threads read the first batch
                while ahead:
                    if not _go_on(control, emit):
                        report.cancelled = True
                        break
                    futures = ahead.take()
                    self._encode_and_commit([f.result() for f in futures], paths, report)
                    emit()
            finally:
                ahead.cancel()
        report.seconds = time.monotonic() - start
        return report

    def _encode_and_commit(
        self, results: list[_Read | Failed], paths: dict[int, Path], report: IndexReport
    ) -> None:
        results = self._without_gone_folders(results, report)
        to_encode = [r for r in results if isinstance(r, _Read) and r.pixels is not None]
        vectors: dict[int, np.ndarray] = {}
        if to_encode:
            pixels = np.stack([r.pixels for r in to_encode])  # type: ignore[misc]
            # An EncoderError (the model itself is broken) stops the run; the batch stays pending.
            encoded = self.encoder.encode(pixels)
            vectors = {r.photo.id: v for r, v in zip(to_encode, encoded, strict=True)}
        out: list[Encoded | Failed] = [
            r
            if isinstance(r, Failed)
            else Encoded(
                photo_id=r.photo.id,
                size=r.photo.size,
                mtime_ns=r.photo.mtime_ns,
                content_hash=r.digest,
                width=r.info.width,
                height=r.info.height,
                format=r.info.format,
                taken=r.info.taken,
                vector=vectors[r.photo.id] if r.vector is None else r.vector,
            )
            for r in results
        ]
        written = set(self.catalog.commit_batch(self.pack, out))
        ok = [e for e in out if isinstance(e, Encoded) and e.photo_id in written]
        if ok:
            ids = np.array([e.photo_id for e in ok], np.int64)
            # The index holds what the catalog holds: the float16 values, not the fp32 ones.
            vecs = np.stack([np.asarray(e.vector, np.float16) for e in ok]).astype(np.float32)
            self.index.add(ids, vecs, replace=True)  # a re-encoded photo replaces its vector
        report.indexed += len(ok)
        report.reused += sum(
            1
            for r in results
            if isinstance(r, _Read) and r.vector is not None and r.photo.id in written
        )
        failed = [r for r in out if isinstance(r, Failed)]
        report.failed += len(failed)
        report.errors += [(str(paths[f.photo_id]), f.reason) for f in failed]
        if self.on_commit is not None:
            self.on_commit()

    def _without_gone_folders(
        self, results: list[_Read | Failed], report: IndexReport
    ) -> list[_Read | Failed]:
        """Drop the "file not found" of photos whose library folder itself is gone: the
        folder was renamed or unplugged mid-run, its photos are not unreadable. The folder is
        marked offline (as a scan would), and its other photos are not tried this run."""
        for r in results:
            if not (isinstance(r, Failed) and r.reason.startswith("file not found")):
                continue
            folder = self._folder_of.get(r.photo_id)
            if folder is None or folder in self._gone or folder not in self._roots:
                continue
            if not os.path.isdir(self._roots[folder]):
                self._gone.add(folder)
                self.catalog.set_folder_state(folder, "offline")
                report.offline.append(self._roots[folder])
                log.info("%s disappeared while indexing: offline", self._roots[folder])
        return [
            r
            for r in results
            if not (
                isinstance(r, Failed)
                and self._folder_of.get(r.photo_id) in self._gone
                and r.reason.startswith("file not found")
            )
        ]


def _progress_events(
    progress: Callable[[Progress], None] | None, report: IndexReport, total: int, start: float
) -> Callable[..., None]:
    """What reports the run's progress (count, rate since ``start``, time left) as it goes."""

    def emit(paused: bool = False) -> None:
        if progress is None:
            return
        done = report.indexed + report.failed
        elapsed = time.monotonic() - start
        rate = done / elapsed if elapsed > 0 and done else 0.0
        eta = (total - done) / rate if rate > 0 else None
        progress(Progress(done, total, report.failed, report.reused, rate, eta, paused))

    return emit


def _go_on(control: IndexControl, emit: Callable[..., None]) -> bool:
    """Wait out a pause (reported once, as paused), then say whether to go on: not once
    cancelled. Checked between batches, so a pause or cancel waits for the batch in hand."""
    if control.paused:
        emit(paused=True)
        while not control.wait_while_paused(0.2):
            pass
    return not control.cancelled


class _ReadAhead:
    """Batches being read and decoded on the pool, at most ``ahead`` of them at a time while
    one is encoded: what keeps memory flat whatever the library size."""

    def __init__(
        self,
        batches: list[Sequence[PhotoRecord]],
        ahead: int,
        submit: Callable[[PhotoRecord], Future | None],
    ):
        self._batches = batches
        self._ahead = ahead
        self._submit = submit
        self._next = 0
        self._queue: deque[list[Future]] = deque()
        self._fill()

    def __bool__(self) -> bool:
        return bool(self._queue)

    def _fill(self) -> None:
        while len(self._queue) < self._ahead and self._next < len(self._batches):
            submitted = (self._submit(p) for p in self._batches[self._next])
            self._queue.append([f for f in submitted if f is not None])
            self._next += 1

    def take(self) -> list[Future]:
        """The oldest batch's reads; the next batch starts reading in its place."""
        futures = self._queue.popleft()
        self._fill()
        return futures

    def cancel(self) -> None:
        """Drop the reads not started yet (a cancelled or failed run)."""
        for futures in self._queue:
            for f in futures:
                f.cancel()
