"""The vector index: FAISS over the catalog's L2-normalised image vectors, scored by inner product.

It is derived data: the catalog (SQLite) holds every vector, so this index can always be rebuilt.

Kinds, chosen from ``benchmarks/vector_index.py`` (``benchmarks/results/vector_index.md``; 2-core
machine, 512-d embeddings-like data, text-like queries, one thread, p50 at k = 100):

- ``"flat"``: exact, ``IndexFlatIP`` in an ``IndexIDMap2``; 2,056 bytes a vector. A query scans
  everything: 1.9 ms at 10k, 7.3 ms at 20k, 25 ms at 100k, 289 ms at 1M (2 GB).
- ``"ivf-sq8"``: ``IndexIVFScalarQuantizer``, 8 bits a dimension on residuals to spherical k-means
  centroids; ``nlist`` ≈ √N (:func:`nlist_for`), ``nprobe`` = max(32, √nlist) (:func:`nprobe_for`);
  about 525 bytes a vector; removes ids natively. Recall@10 against exact 0.977–0.985 and
  recall@100 0.981–0.991 from 10k to 1M; 1.9 ms at 100k, 8.3 ms at 1M (522 MB); build 6 s at
  100k, 80 s at 1M. The large kind. Its ceiling is the 8-bit codes (≈ 0.985 whatever nprobe);
  nprobe 16 would already drop to 0.957 at 1M, so 32 keeps a margin above 0.95.
- ``"ivf-fp16"``: the same with float16 codes (lossless against the catalog's float16): recall@10
  0.994 at 1M, but 1,034 bytes a vector. Available; ``"auto"`` prefers half the memory.

Rejected: HNSW (M = 32) cannot remove ids, and on text-like queries (near the images, not on
them) reached only recall@10 0.91 at 100k even with efSearch 512 (0.99 for image queries);
IVF-PQ64 fits in 84 bytes a vector but reached recall@10 0.44 at 100k.

``"auto"`` picks ``flat`` below :data:`LARGE_THRESHOLD` (20,000) vectors and ``ivf-sq8`` from
there: flat costs ≈ 0.29 ms per 1,000 vectors, so it passes a 5 ms search budget (a fifth of
the 25 ms query goal) at 17k–20k vectors. The IVF kinds learn their lists from the vectors they
are built from (``build``, or the first ``add`` of an empty one); :meth:`VectorIndex.needs_rebuild`
says when a library has outgrown its kind or its training.

Threads: a single query runs on one thread. With two, OpenMP made flat 2.5–3.6× slower at 100k
and 1M on the busy 2-core machine and IVF no faster, and the text encoder wants those cores.
Builds, training and batches of :data:`PARALLEL_QUERIES` or more use :attr:`VectorIndex.threads`.
FAISS's count is an OpenMP setting of the calling thread, set for each call and restored after,
so nothing is grabbed for good and other threads are not affected.

A ``VectorIndex`` serialises its own calls with a lock; it is safe to share between threads.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from photosearch import indexfile
from photosearch.encoders import default_threads
from photosearch.indexfile import IndexFileError

log = logging.getLogger(__name__)

Ids = NDArray[np.int64]
Vectors = NDArray[np.float32]
Scores = NDArray[np.float32]

FLAT = "flat"
IVF_SQ8 = "ivf-sq8"
IVF_FP16 = "ivf-fp16"
KINDS = (FLAT, IVF_SQ8, IVF_FP16)
AUTO = "auto"
LARGE_KIND = IVF_SQ8
#: From this many vectors on, ``"auto"`` uses :data:`LARGE_KIND` (see the module docstring).
LARGE_THRESHOLD = 20_000

# k-means wants at least 39 points a centroid (FAISS warns on stderr below that); 64 is plenty for
# centroids that only route queries, and keeps training at 1M vectors under a minute on 2 cores.
MIN_POINTS_PER_LIST = 39
TRAIN_POINTS_PER_LIST = 64
KMEANS_ITERATIONS = 10
MAX_NLIST = 16_384
# An IVF index trained on N vectors is rebuilt once it holds this many times N.
RETRAIN_GROWTH = 4.0
# Queries per call from which a search uses ``threads`` rather than one thread.
PARALLEL_QUERIES = 16
# A filter passing fewer than this fraction of an IVF index's vectors searches every list.
SELECTIVE_FILTER = 0.2
# Rows converted to float32 and handed to FAISS at a time: bounds the extra memory of a build.
CHUNK = 65_536


def choose_kind(count: int, *, large_threshold: int = LARGE_THRESHOLD) -> str:
    """The kind ``"auto"`` picks for ``count`` vectors."""
    return LARGE_KIND if count >= large_threshold else FLAT


def nlist_for(count: int) -> int:
    """Inverted lists for an IVF index trained on ``count`` vectors: about √count, trainable."""
    return max(1, min(round(math.sqrt(count)), count // MIN_POINTS_PER_LIST, MAX_NLIST))


def nprobe_for(nlist: int) -> int:
    """Lists a query visits: enough for recall@10 ≥ 0.95 with a margin (see the benchmark)."""
    return min(nlist, max(32, round(math.sqrt(nlist))))


@contextlib.contextmanager
def _omp_threads(n: int) -> Iterator[None]:
    # omp_set_num_threads changes the calling thread's OpenMP ICV only; restore it afterwards.
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(1, n))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _as_ids(ids: Any) -> Ids:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, got {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError("ids must be non-negative (-1 marks a missing result)")
    return np.ascontiguousarray(arr)


def _check_vectors(vectors: Any, dim: int, what: str = "vectors") -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{what} must have shape (N, {dim}), got {arr.shape}")
    if arr.dtype not in (np.float32, np.float16, np.float64):
        raise ValueError(f"{what} must be float32 or float16, got {arr.dtype}")
    for start in range(0, len(arr), CHUNK):  # before anything changes
        if not np.isfinite(arr[start : start + CHUNK]).all():
            raise ValueError(f"{what} contain NaN or infinity")
    return arr


def _f32(block: np.ndarray) -> Vectors:
    return np.ascontiguousarray(block, dtype=np.float32)


def _sorted_ids(ids: Ids) -> Ids:
    out = np.sort(ids, kind="stable")
    if out.size > 1 and (dup := out[1:][out[1:] == out[:-1]]).size:
        raise ValueError(f"duplicate ids in one call: {_some(np.unique(dup))}")
    return out


def _some(ids: np.ndarray, n: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in ids[:n])
    return f"{shown}, … ({len(ids)} in all)" if len(ids) > n else shown


def _new_flat(dim: int) -> faiss.IndexIDMap2:
    return faiss.index_factory(dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)


def _new_ivf(dim: int, kind: str, nlist: int) -> faiss.IndexIVFScalarQuantizer:
    codes = "SQ8" if kind == IVF_SQ8 else "SQfp16"
    index = faiss.index_factory(dim, f"IVF{nlist},{codes}", faiss.METRIC_INNER_PRODUCT)
    index.cp.spherical = True  # centroids on the sphere, like the vectors they route
    index.cp.niter = KMEANS_ITERATIONS
    index.cp.seed = 1234
    index.nprobe = nprobe_for(nlist)
    return index


def _ivf_ids(index: faiss.IndexIVF) -> Ids:
    invlists = index.invlists
    parts = []
    for lst in range(index.nlist):
        size = invlists.list_size(lst)
        if size:
            ptr = invlists.get_ids(lst)
            parts.append(faiss.rev_swig_ptr(ptr, size).copy())
            invlists.release_ids(lst, ptr)
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


class VectorIndex:
    """Photo ids (the catalog's, int64) to unit vectors, searched by inner product.

    Make one with :meth:`create`, :meth:`build` or :meth:`load`. ``add`` refuses ids the index
    already holds unless ``replace=True``; ``remove`` ignores ids it does not hold.
    """

    def __init__(
        self,
        index: faiss.Index | None,
        *,
        dim: int,
        kind: str,
        auto: bool,
        trained_on: int = 0,
        threads: int | None = None,
    ):
        """Wrap a FAISS index; use :meth:`create`, :meth:`build` or :meth:`load` instead."""
        self._index = index
        self._dim = dim
        self._kind = kind
        self._auto = auto
        self._trained_on = trained_on
        self._lock = threading.RLock()
        self._ids: Ids = np.zeros(0, np.int64)
        #: The owner's version stamp, saved in the file: the library stores the catalog's
        #: vector generation here, so a file saved before a crash is recognised as stale.
        self.generation = 0
        #: Threads for builds, training, additions and batches of queries.
        self.threads = threads or default_threads()
        if index is not None and index.ntotal:
            self._ids = _sorted_ids(self._index_ids())

    # -- making one -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        dim: int,
        *,
        kind: str = AUTO,
        expected_size: int = 0,
        large_threshold: int = LARGE_THRESHOLD,
        threads: int | None = None,
    ) -> VectorIndex:
        """An empty index for ``dim``-dimensional vectors.

        ``"auto"`` picks the kind for ``expected_size`` vectors. An IVF index learns its lists
        from the first :meth:`add`; prefer :meth:`build` for it, which trains on everything.
        """
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        auto = kind == AUTO
        if auto:
            kind = choose_kind(expected_size, large_threshold=large_threshold)
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; expected one of {KINDS} or 'auto'")
        index = _new_flat(dim) if kind == FLAT else None
        return cls(index, dim=dim, kind=kind, auto=auto, threads=threads)

    @classmethod
    def build(
        cls,
        ids: Any,
        vectors: Any,
        *,
        kind: str = AUTO,
        large_threshold: int = LARGE_THRESHOLD,
        threads: int | None = None,
    ) -> VectorIndex:
        """An index of all these vectors at once (float32 or the catalog's float16).

        IVF kinds train on a sample of them (at most 64 a list). Rows are converted to float32
        a chunk at a time, so a float16 library costs little more than the index itself.
        """
        ids = _as_ids(ids)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must have shape (N, dim), got {vectors.shape}")
        vectors = _check_vectors(vectors, vectors.shape[1])
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        t0 = time.perf_counter()
        index = cls.create(
            vectors.shape[1],
            kind=kind,
            expected_size=len(ids),
            large_threshold=large_threshold,
            threads=threads,
        )
        index._add(ids, vectors, replace=False)
        log.info(
            "built a %s index of %d vectors in %.1f s",
            index.kind,
            len(index),
            time.perf_counter() - t0,
        )
        return index

    # -- what it holds ----------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def auto(self) -> bool:
        """Whether the kind was chosen by size (and so may change on a rebuild)."""
        return self._auto

    @property
    def trained_on(self) -> int:
        """How many vectors an IVF index learnt its lists from (0 for flat or untrained)."""
        return self._trained_on

    @property
    def nlist(self) -> int | None:
        return self._index.nlist if self._is_ivf and self._index is not None else None

    @property
    def nprobe(self) -> int | None:
        """Lists an IVF query visits (None for flat); settable, clipped to ``nlist``."""
        return self._index.nprobe if self._is_ivf and self._index is not None else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if not self._is_ivf or self._index is None:
            raise ValueError(f"a {self._kind} index has no nprobe")
        with self._lock:
            self._index.nprobe = max(1, min(int(value), self._index.nlist))

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        extra = f", nlist={self.nlist}, nprobe={self.nprobe}" if self._is_ivf else ""
        return f"VectorIndex(kind={self._kind!r}, dim={self._dim}, count={len(self)}{extra})"

    def ids(self) -> Ids:
        """The ids held, sorted."""
        with self._lock:
            return self._ids.copy()

    def matches(self, ids: Any) -> bool:
        """Whether this index holds exactly this id set (the catalog's, in any order)."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        with self._lock:
            return len(ids) == len(self._ids) and np.array_equal(np.sort(ids), self._ids)

    def needs_rebuild(self, *, large_threshold: int = LARGE_THRESHOLD) -> bool:
        """Whether a rebuild from the catalog would serve better than this index.

        True when an ``"auto"`` index has crossed the size threshold (up for flat; for IVF, down
        past half of it, so that a library at the threshold does not flap), or when an IVF index
        holds :data:`RETRAIN_GROWTH` times what it was trained on.
        """
        n = len(self)
        if self._is_ivf and n > RETRAIN_GROWTH * max(self._trained_on, 1):
            return True
        if not self._auto:
            return False
        if self._kind == FLAT:
            return n >= large_threshold
        return n < large_threshold // 2

    # -- changing it ------------------------------------------------------------------------

    def add(self, ids: Any, vectors: Any, *, replace: bool = False) -> None:
        """Add vectors under these ids.

        Ids already held raise ``ValueError`` unless ``replace=True``, which swaps their vectors.
        An untrained IVF index trains on this call's vectors.
        """
        ids = _as_ids(ids)
        vectors = _check_vectors(vectors, self._dim)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        self._add(ids, vectors, replace=replace)

    def _add(self, ids: Ids, vectors: np.ndarray, *, replace: bool) -> None:
        new = _sorted_ids(ids)
        with self._lock:
            held = self._held(new)
            if held.size:
                if not replace:
                    raise ValueError(
                        f"ids already in the index: {_some(held)}; "
                        "remove them first or add with replace=True"
                    )
                self._remove_held(held)
            if len(ids) == 0:
                return
            with _omp_threads(self.threads):
                if self._index is None:
                    self._train(vectors)
                for start in range(0, len(ids), CHUNK):
                    block = _f32(vectors[start : start + CHUNK])
                    self._index.add_with_ids(block, ids[start : start + CHUNK])
            self._ids = np.sort(np.concatenate([self._ids, new]), kind="stable")

    def _train(self, vectors: np.ndarray) -> None:
        n = len(vectors)
        nlist = nlist_for(n)
        index = _new_ivf(self._dim, self._kind, nlist)
        take = min(n, TRAIN_POINTS_PER_LIST * nlist)
        rows = np.sort(np.random.default_rng(0).choice(n, take, replace=False))
        t0 = time.perf_counter()
        index.train(_f32(vectors[rows]))
        log.info(
            "trained %s: %d lists on %d of %d vectors in %.1f s",
            self._kind,
            nlist,
            take,
            n,
            time.perf_counter() - t0,
        )
        self._index = index
        self._trained_on = n

    def remove(self, ids: Any) -> int:
        """Remove these ids; returns how many were held (others are ignored)."""
        ids = np.unique(_as_ids(ids))
        with self._lock:
            held = self._held(ids)
            if held.size:
                self._remove_held(held)
            return int(held.size)

    def _held(self, sorted_ids: Ids) -> Ids:
        pos = np.searchsorted(self._ids, sorted_ids)
        pos[pos == len(self._ids)] = 0
        return sorted_ids[self._ids[pos] == sorted_ids] if len(self._ids) else sorted_ids[:0]

    def _remove_held(self, held: Ids) -> None:
        with _omp_threads(self.threads):
            removed = self._index.remove_ids(np.ascontiguousarray(held))
        if removed != len(held):  # the id cache and FAISS disagree: trust FAISS
            log.warning("removed %d of %d ids believed held; re-reading ids", removed, len(held))
            self._ids = _sorted_ids(self._index_ids())
        else:
            self._ids = np.setdiff1d(self._ids, held, assume_unique=True)

    # -- searching --------------------------------------------------------------------------

    def search(self, queries: Any, k: int, *, allowed: Any = None) -> tuple[Scores, Ids]:
        """The ``k`` best ids for each query, best first, by inner product.

        ``queries`` is ``[Q, dim]`` (or one ``[dim]`` vector, answered as ``Q = 1``). Returns
        ``(scores [Q, k] float32, ids [Q, k] int64)``; slots beyond what the index can fill hold
        id -1 and score -inf. ``allowed`` (ids) restricts the search to those ids inside FAISS
        (a filter: the best ``k`` among them, not a filtered best ``k``).
        """
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        q = _f32(_check_vectors(q, self._dim, "queries"))
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        scores = np.full((len(q), k), -np.inf, np.float32)
        ids = np.full((len(q), k), -1, np.int64)
        with self._lock:
            n = len(self._ids)
            if n == 0 or len(q) == 0:
                return scores, ids
            kk = min(k, n)
            params = None
            if allowed is not None:
                sel = faiss.IDSelectorBatch(np.ascontiguousarray(_as_ids(allowed)))
                if self._is_ivf:
                    # A selective filter leaves too few of its photos in the usual lists:
                    # visit them all (a scan of the 8-bit codes, still cheaper than flat).
                    nprobe = self._index.nprobe
                    if len(allowed) < SELECTIVE_FILTER * n:
                        nprobe = self._index.nlist
                    params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
                else:
                    params = faiss.SearchParameters(sel=sel)
            threads = self.threads if len(q) >= PARALLEL_QUERIES else 1
            with _omp_threads(threads):
                d, i = self._index.search(q, kk, params=params)
        scores[:, :kk] = d
        ids[:, :kk] = i
        scores[ids < 0] = -np.inf
        return scores, ids

    # -- files --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically: a crash leaves the old file or the new one.

        The file is a small header (format version, kind, dimension, count, checksums) and the
        FAISS index. Raises :class:`IndexFileError` when it cannot be written.
        """
        path = Path(path)
        with self._lock:
            t0 = time.perf_counter()
            indexfile.write(path, self._header(), self._index)
        log.info("saved %r to %s in %.2f s", self, path, time.perf_counter() - t0)

    def _header(self) -> dict[str, Any]:
        return {
            "format": indexfile.FORMAT,
            "format_version": indexfile.FORMAT_VERSION,
            "kind": self._kind,
            "auto": self._auto,
            "dim": self._dim,
            "count": len(self),
            "trained_on": self._trained_on,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "generation": self.generation,
            "faiss_version": faiss.__version__,
        }

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, dim: int | None = None, threads: int | None = None
    ) -> VectorIndex:
        """Read an index written by :meth:`save`.

        Raises :class:`IndexFileError` (naming the file and the fault) for a missing, truncated,
        damaged or foreign file, or one whose vectors are not ``dim``-dimensional.
        """
        path = Path(path)
        t0 = time.perf_counter()
        header, index = indexfile.read(path, dim=dim, kinds=KINDS)
        self = cls._from_file(path, header, index, threads)
        log.info("loaded %r from %s in %.2f s", self, path, time.perf_counter() - t0)
        return self

    @classmethod
    def _from_file(
        cls, path: Path, header: dict[str, Any], index: faiss.Index | None, threads: int | None
    ) -> VectorIndex:
        kind, dim, count = header["kind"], header["dim"], header["count"]
        if kind == FLAT:
            ok = isinstance(index, faiss.IndexIDMap2)
        else:
            ok = index is None or (
                isinstance(index, faiss.IndexIVFScalarQuantizer)
                and index.metric_type == faiss.METRIC_INNER_PRODUCT
            )
        if not ok:
            raise IndexFileError(path, f"holds a {type(index).__name__}, not a {kind} index")
        if index is not None and (index.d != dim or index.ntotal != count):
            raise IndexFileError(
                path,
                f"header says {count} vectors of {dim} dimensions, "
                f"the index holds {index.ntotal} of {index.d}",
            )
        try:
            self = cls(
                index,
                dim=dim,
                kind=kind,
                auto=bool(header.get("auto", False)),
                trained_on=int(header.get("trained_on") or 0),
                threads=threads,
            )
        except ValueError as e:  # duplicate ids
            raise IndexFileError(path, f"is inconsistent: {e}") from e
        if self._is_ivf and index is not None and header.get("nprobe"):
            self.nprobe = int(header["nprobe"])
        self.generation = int(header.get("generation") or 0)
        return self

    # -- internals ----------------------------------------------------------------------------

    @property
    def _is_ivf(self) -> bool:
        return self._kind != FLAT

    def _index_ids(self) -> Ids:
        if self._kind == FLAT:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return _ivf_ids(self._index)
