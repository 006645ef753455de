"""Vector index kinds on this machine: build time, memory, query latency and recall vs exact.

For N in 10k, 100k and 1M embeddings-like vectors (512-d, stored as float16 like the catalog),
this builds the exact index (``photosearch.vectors`` kind ``flat``) and the candidates for large
libraries: the module's ``ivf-sq8`` and ``ivf-fp16`` kinds, and, through FAISS directly, IVF-PQ
(64 bytes a vector) and HNSW (M = 32; it cannot remove vectors, so it would need tombstones and
rebuilds). PQ and HNSW are measured up to 100k only: their recall there already rules them out
and a 1M build would cost minutes of the run. For each it reports build time, index bytes (the
saved file) and the process's RSS growth, single-query latency p50/p95 at k = 10 and k = 100
(the reranker takes up to 100 candidates) with ``nprobe`` / ``efSearch`` swept, and recall@10 /
recall@100 against exact search. Single queries run on one FAISS thread (the module's policy);
``flat`` and the chosen kind are timed with all cores as well. Configurations are timed
round-robin, one query each in turn, so drift on this shared machine hits them alike.

The threshold between ``flat`` and the large kind comes from flat's latency at 10k, 20k, 50k and
100k (and 1M): the size where one exact query passes the search budget (5 ms, a fifth of the
issue's 25 ms goal for a whole query). The query path of the app — text encoding by the pack's
ONNX text encoder, then search — is measured in a fresh process (so its resident memory is the
app's, not this benchmark's) for the ``auto`` index at each size, and for ``flat`` at 100k.

Data. Isotropic random vectors are the easy, wrong test (every point is about equally far from
every other; IVF and HNSW behave differently on real embeddings), so the generator imitates what
is known of CLIP-style image embeddings: a narrow cone (a shared mean direction: unrelated
images have cosine ≈ 0.45), a power-law spectrum (eigenvalue j ∝ 1/j, so a few tens of
directions carry most of the variance: low intrinsic dimension), and a mixture of many clusters
(events of ~50 photos, Zipf-sized, grouped under 100 topics). Text queries land near, not on,
the images: half start from a photo and half from an event's centre, get substantial noise in
the semantic directions (the photo they started from is in its exact top 10 only about half the
time), less of the image cone, and a modality-gap offset; the gap is orthogonal to the image
vectors, so it lowers every score alike and only brings cosines to CLIP's ≈ 0.3 — it is the
noise that puts queries off the image manifold, which is what makes text-to-image search harder
for an index than image-to-image. "Find similar" queries (a photo plus a little noise) are
scored too. The report lists the generated data's statistics (cosines, spectrum) beside these
targets; no real embeddings are available offline to check them against, so ``--vectors
FILE.npy`` runs the same measurements on real ones (e.g. exported from a catalog), using held-out
rows (or ``--query-vectors FILE.npy``) as queries.

    python benchmarks/vector_index.py [--quick] [--sizes N ...] [--pack DIR | --no-pack]
                                      [--vectors FILE.npy [--query-vectors FILE.npy]] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from photosearch import vectors
from photosearch.vectors import VectorIndex

DIM = 512
MB = 1e6
SEARCH_BUDGET_MS = 5.0
DEFAULT_PACK = Path("/tmp/photosearch-bench-cache/ViT-B-32-256")
SWEEP_NPROBE = (8, 16, 32, 64, 128)
SWEEP_EF = (64, 128, 256, 512)
PQ_NPROBE = (16, 64)
SMALL_ONLY_MAX = 100_000  # PQ and HNSW are built up to this size
TEXTS = [
    f"{subject} {place}"
    for subject in (
        "my dog",
        "a red car left of a white house",
        "children playing",
        "an old bicycle",
        "two people hugging",
    )
    for place in ("on the beach at sunset", "in the snow", "at night", "under a tree")
]


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_mb() -> tuple[float, float]:
    """(resident, peak resident) of this process, MB; zeros where /proc is missing."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0, 0.0
    vals = {
        line.split(":")[0]: int(line.split()[1]) * 1024 / MB
        for line in status.splitlines()
        if line.startswith(("VmRSS", "VmHWM"))
    }
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p)) if values else float("nan")


# ---------------------------------------------------------------------------------------------
# Embeddings-like data


@dataclass
class Space:
    """A random rotation of a latent space with a power-law spectrum and a cone direction."""

    basis: np.ndarray  # [D, D] orthogonal: latent -> embedding
    scales: np.ndarray  # [D] standard deviation of each latent direction
    cone: float

    @classmethod
    def make(cls, dim: int, seed: int, *, alpha: float = 1.0, cone: float = 3.0) -> Space:
        rng = np.random.default_rng(seed)
        basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        scales = np.arange(1, dim + 1, dtype=np.float64) ** (-alpha / 2)
        scales[-2:] = 0.0  # the last two directions: the image cone and the modality gap
        return cls(basis.astype(np.float32), scales.astype(np.float32), cone)


@dataclass
class Library:
    x16: np.ndarray  # [N, D] float16, unit rows: what the catalog stores
    centres: np.ndarray  # [C, D] latent event centres
    space: Space
    rng: np.random.Generator


def make_library(n: int, seed: int, *, dim: int = DIM, per_event: int = 50) -> Library:
    space = Space.make(dim, seed)
    rng = np.random.default_rng(seed + 1)
    s = space.scales
    n_topics = 100
    n_events = max(1, n // per_event)
    topics = rng.standard_normal((n_topics, dim), dtype=np.float32) * s
    centres = topics[rng.integers(0, n_topics, n_events)]
    centres += rng.standard_normal((n_events, dim), dtype=np.float32) * s * 0.6
    centres[:, -1] = space.cone
    weights = 1.0 / np.arange(1, n_events + 1) ** 0.8
    labels = np.repeat(np.arange(n_events), rng.multinomial(n, weights / weights.sum()))
    rng.shuffle(labels)
    x16 = np.empty((n, dim), np.float16)
    for start in range(0, n, 65_536):
        lab = labels[start : start + 65_536]
        z = centres[lab] + rng.standard_normal((len(lab), dim), dtype=np.float32) * (
            s * 0.45 + 0.02
        )
        z[:, -2:] = centres[lab][:, -2:]
        x = z @ space.basis.T
        x16[start : start + 65_536] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return Library(x16, centres, space, rng)


def text_queries(lib: Library, nq: int, *, noise: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Text-like queries; also the source row of each one that started from a photo (else -1)."""
    s, basis, rng = lib.space.scales, lib.space.basis, lib.rng
    half = nq // 2
    src = rng.integers(0, len(lib.x16), half)
    base = np.vstack(
        [
            lib.x16[src].astype(np.float32) @ basis,
            lib.centres[rng.integers(0, len(lib.centres), nq - half)],
        ]
    )
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    z = base + rng.standard_normal(base.shape, dtype=np.float32) * (
        s * noise / np.linalg.norm(s) + 0.03 / math.sqrt(len(s))
    )
    z[:, -1] *= 0.5  # the text cone shares only part of the image cone's direction
    z[:, -2] = 1.75 * np.linalg.norm(z, axis=1)  # the modality gap
    q = z @ basis.T
    sources = np.concatenate([src, np.full(nq - half, -1)])
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32), sources


def similar_queries(x16: np.ndarray, nq: int, rng: np.random.Generator) -> np.ndarray:
    """Image-as-query ("find similar"): a photo with a little noise."""
    q = x16[rng.integers(0, len(x16), nq)].astype(np.float32)
    q += rng.standard_normal(q.shape, dtype=np.float32) * (0.15 / math.sqrt(q.shape[1]))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def describe(x16: np.ndarray, q: np.ndarray, gt: Truth, sources: np.ndarray | None) -> dict:
    """Statistics to compare with real embeddings (see the module docstring for targets).

    ``sources`` holds, for each query that started from a photo, that photo's id in ``gt``.
    """
    rng = np.random.default_rng(7)
    sample = x16[rng.choice(len(x16), min(len(x16), 10_000), replace=False)].astype(np.float32)
    pair = sample[:2000] @ sample[:2000].T
    off = pair[np.triu_indices(len(pair), 1)]
    nn1 = exact(x16, sample[:200], 2).scores[:, 1]  # [:, 0] is the photo itself
    sv = np.linalg.svd(sample - sample.mean(0), compute_uv=False)
    ev = sv**2 / (sv**2).sum()
    cum = np.cumsum(ev)
    ranks = np.arange(2, 101)
    slope = np.polyfit(np.log(ranks), np.log(ev[1:100]), 1)[0]
    out = {
        "image_image_mean_cosine": float(off.mean()),
        "image_nearest_neighbour_cosine_mean": float(nn1.mean()),
        "variance_in_top_pcs": {str(k): float(cum[k - 1]) for k in (10, 50, 100)},
        "participation_ratio": float(1.0 / (ev**2).sum()),
        "eigenvalue_power_law_exponent": float(-slope),
        "query_top1_cosine_mean": float(gt.scores[:, 0].mean()),
        "query_top10_cosine_mean": float(gt.scores[:, 9].mean()),
        "query_top100_cosine_mean": float(gt.scores[:, min(99, gt.scores.shape[1] - 1)].mean()),
        "query_random_image_cosine_mean": float((q[:200] @ sample[:5000].T).mean()),
    }
    if sources is not None and (sources >= 0).any():
        rows = np.flatnonzero(sources >= 0)
        hits = [sources[r] in gt.ids[r, :10] for r in rows]
        out["query_source_photo_in_exact_top10"] = float(np.mean(hits))
    return out


# ---------------------------------------------------------------------------------------------
# Exact answers and recall


@dataclass
class Truth:
    scores: np.ndarray
    ids: np.ndarray


def exact(x16: np.ndarray, q: np.ndarray, k: int = 100) -> Truth:
    """Exact top-k by inner product over the float16 vectors (what ``flat`` holds), in blocks."""
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_i = np.full((len(q), k), -1, np.int64)
    for start in range(0, len(x16), 65_536):
        s = q @ x16[start : start + 65_536].astype(np.float32).T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        cand_i = np.concatenate([best_i, part + start], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cand_s, order, 1)
        best_i = np.take_along_axis(cand_i, order, 1)
    return Truth(best_s, best_i)


def recall(found: np.ndarray, truth: Truth, k: int) -> float:
    hits = [len(np.intersect1d(found[r, :k], truth.ids[r, :k])) for r in range(len(found))]
    return float(np.mean(hits) / k)


# ---------------------------------------------------------------------------------------------
# Candidates


@dataclass
class Config:
    """One searchable setting of one built index."""

    index: str
    setting: str
    search: Callable[[np.ndarray, int], np.ndarray]  # (queries, k) -> ids
    lat_queries: int
    threads: int = 1
    lat: dict[int, list[float]] = field(default_factory=lambda: {10: [], 100: []})
    recall: dict[str, float] = field(default_factory=dict)
    default: bool = False


@dataclass
class Built:
    name: str
    build_s: float
    index_bytes: int
    rss_delta_mb: float
    detail: dict[str, Any]
    configs: list[Config]
    keep: Any = None


def _faiss_search(index: Any, threads: int) -> Callable[[np.ndarray, int], np.ndarray]:
    def search(q: np.ndarray, k: int) -> np.ndarray:
        with vectors._omp_threads(threads):
            return index.search(np.ascontiguousarray(q, dtype=np.float32), k)[1]

    return search


def _mapped(
    search: Callable[[np.ndarray, int], np.ndarray], ids: np.ndarray
) -> Callable[[np.ndarray, int], np.ndarray]:
    def mapped(q: np.ndarray, k: int) -> np.ndarray:
        rows = search(q, k)
        return np.where(rows >= 0, ids[rows], -1)

    return mapped


def _all_cores(vi: VectorIndex, threads: int) -> Callable[[np.ndarray, int], np.ndarray]:
    """The module's index at its default setting, searched with every core (the policy: one)."""
    default = vi.nprobe

    def search(q: np.ndarray, k: int) -> np.ndarray:
        if default is not None:
            vi.nprobe = default
        return _faiss_search(vi._index, threads)(q, k)

    return search


def _file_size(obj: Any, folder: Path) -> tuple[int, float]:
    """Bytes of the saved index, and seconds the save took (with fsync for the module's)."""
    path = folder / "size.idx"
    t0 = time.perf_counter()
    if isinstance(obj, VectorIndex):
        obj.save(path)
    else:
        faiss.write_index(obj, str(path))
    save_s = time.perf_counter() - t0
    size = path.stat().st_size
    path.unlink()
    return size, save_s


def build_module_kind(
    kind: str, ids: np.ndarray, x16: np.ndarray, folder: Path, *, lat_q: int, threads: int
) -> Built:
    gc.collect()
    before = rss_mb()[0]
    t0 = time.perf_counter()
    vi = VectorIndex.build(ids, x16, kind=kind, threads=threads)
    build_s = time.perf_counter() - t0
    delta = rss_mb()[0] - before
    configs = []
    if kind == vectors.FLAT:
        configs.append(Config(kind, "exact", lambda q, k: vi.search(q, k)[1], lat_q, default=True))
    else:
        default = vi.nprobe
        settings = sorted({p for p in SWEEP_NPROBE if p <= vi.nlist} | {default})
        for p in settings:

            def search(q: np.ndarray, k: int, p: int = p) -> np.ndarray:
                vi.nprobe = p
                return vi.search(q, k)[1]

            configs.append(Config(kind, f"nprobe={p}", search, lat_q, default=p == default))
    size, save_s = _file_size(vi, folder)
    detail = {
        "nlist": vi.nlist,
        "default_nprobe": vi.nprobe,
        "trained_on": vi.trained_on,
        "save_s": save_s,
    }
    return Built(kind, build_s, size, delta, detail, configs, keep=vi)


def build_faiss(
    name: str, factory: str, x16: np.ndarray, folder: Path, *, lat_q: int, threads: int
) -> Built:
    gc.collect()
    before = rss_mb()[0]
    index = faiss.index_factory(x16.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    with vectors._omp_threads(threads):
        if not index.is_trained:
            if "IVF" in factory:
                ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
                ivf.cp.spherical = True
                ivf.cp.niter = vectors.KMEANS_ITERATIONS
                ivf.pq.cp.niter = vectors.KMEANS_ITERATIONS
            rows = np.random.default_rng(0).choice(len(x16), min(len(x16), 20_000), replace=False)
            index.train(x16[np.sort(rows)].astype(np.float32))
        for start in range(0, len(x16), 65_536):
            index.add(x16[start : start + 65_536].astype(np.float32))
    build_s = time.perf_counter() - t0
    delta = rss_mb()[0] - before
    configs = []
    if name.startswith("hnsw"):
        for ef in SWEEP_EF:

            def search(q: np.ndarray, k: int, ef: int = ef) -> np.ndarray:
                index.hnsw.efSearch = max(ef, k)
                return _faiss_search(index, 1)(q, k)

            configs.append(Config(name, f"efSearch={ef}", search, lat_q, default=ef == 256))
    else:
        ivf = faiss.extract_index_ivf(index)
        for p in PQ_NPROBE:

            def search(q: np.ndarray, k: int, p: int = p) -> np.ndarray:
                ivf.nprobe = p
                return _faiss_search(index, 1)(q, k)

            configs.append(Config(name, f"nprobe={p}", search, lat_q, default=p == PQ_NPROBE[-1]))
    size, _ = _file_size(index, folder)
    return Built(name, build_s, size, delta, {"factory": factory}, configs, keep=index)


def time_round_robin(configs: list[Config], q: np.ndarray) -> None:
    """One single-query search per config in turn, k = 10 and k = 100, until each has enough.

    The order of the configs and of the two k is shuffled each round, so that no setting always
    follows the same neighbour (caches, OpenMP workers still spinning from a parallel search).
    """
    rounds = max(c.lat_queries for c in configs)
    order_rng = np.random.default_rng(0)
    for c in configs:  # warm-up
        c.search(q[:1], 10)
    for i in range(rounds):
        qi = q[i % len(q) : i % len(q) + 1]
        for j in order_rng.permutation(len(configs)):
            c = configs[j]
            if i >= c.lat_queries:
                continue
            for k in (10, 100) if order_rng.random() < 0.5 else (100, 10):
                t0 = time.perf_counter()
                c.search(qi, k)
                c.lat[k].append((time.perf_counter() - t0) * 1e3)


# ---------------------------------------------------------------------------------------------
# One size


def run_size(
    n: int,
    args: argparse.Namespace,
    folder: Path,
    *,
    candidates: bool,
    real: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> dict[str, Any]:
    threads = vectors.default_threads()
    t_size = time.perf_counter()
    if real is None:
        say(f"N={n:,}: generating")
        lib = make_library(n, seed=n)
        x16, rng = lib.x16, lib.rng
        q_text, sources = text_queries(lib, args.queries)
    else:
        x16, q_real = real
        rng = np.random.default_rng(0)
        if q_real is None:
            q_text, x16 = x16[: args.queries].astype(np.float32), x16[args.queries :]
        else:
            q_text = q_real
        sources = None
        n = len(x16)
    q_sim = similar_queries(x16, min(args.queries, 200), rng)
    ids = np.arange(1, n + 1, dtype=np.int64) * 3  # catalog-like, not 0..N-1
    t0 = time.perf_counter()
    gt_text, gt_sim = exact(x16, q_text), exact(x16, q_sim, 10)
    gt_text.ids, gt_sim.ids = ids[gt_text.ids], ids[gt_sim.ids]
    say(f"N={n:,}: exact answers in {time.perf_counter() - t0:.1f} s")
    if sources is not None:
        sources = np.where(sources >= 0, ids[sources], -1)
    stats = describe(x16, q_text, gt_text, sources) if candidates else None

    big = n >= 500_000
    lat_q = args.latency_queries
    builds: list[Built] = []
    kinds = [vectors.FLAT, vectors.IVF_SQ8, vectors.IVF_FP16] if candidates else [vectors.FLAT]
    if not candidates and n >= vectors.nlist_for(n) * vectors.MIN_POINTS_PER_LIST:
        kinds.append(vectors.LARGE_KIND)
    for kind in kinds:
        say(f"N={n:,}: building {kind}")
        slow = big and kind == vectors.FLAT
        b = build_module_kind(
            kind, ids, x16, folder, lat_q=max(10, lat_q // 10) if slow else lat_q, threads=threads
        )
        builds.append(b)
    if candidates and n <= SMALL_ONLY_MAX:
        nlist = vectors.nlist_for(n)
        # "np": no polysemous training (minutes of simulated annealing, useless here)
        for name, factory in (("ivf-pq64", f"IVF{nlist},PQ64np"), ("hnsw32", "HNSW32")):
            say(f"N={n:,}: building {name}")
            b = build_faiss(name, factory, x16, folder, lat_q=lat_q, threads=threads)
            for c in b.configs:  # FAISS ids are row numbers here: map them to the catalog's
                c.search = _mapped(c.search, ids)
            builds.append(b)
    configs = [c for b in builds for c in b.configs]
    # the module's policy (one thread for single queries) against all cores, for flat and the
    # large kind at its default setting
    if candidates:
        for b in builds:
            if b.name in (vectors.FLAT, vectors.LARGE_KIND):
                base = next(c for c in b.configs if c.default)
                setting = base.setting + f", {threads} threads"
                search = _all_cores(b.keep, threads)
                c = Config(b.name, setting, search, base.lat_queries, threads=threads)
                configs.append(c)
                b.configs.append(c)
    say(f"N={n:,}: recall of {len(configs)} settings")
    for c in configs:
        found = c.search(q_text, 100)
        c.recall["text@10"] = recall(found, gt_text, 10)
        c.recall["text@100"] = recall(found, gt_text, 100)
        c.recall["similar@10"] = recall(c.search(q_sim, 10), gt_sim, 10)
    say(f"N={n:,}: timing {len(configs)} settings round-robin")
    time_round_robin(configs, q_text)

    probes = []
    auto_kind = vectors.choose_kind(n)
    for b in builds:
        if args.pack is None or not candidates:
            continue
        packs = []
        if b.name == auto_kind or (b.name == vectors.FLAT and n == 100_000):
            packs.append(args.pack)
        int8 = args.pack.with_name(args.pack.name + "-int8")
        if b.name == auto_kind and n == 100_000 and (int8 / "manifest.json").exists():
            packs.append(int8)
        for pack in packs:
            say(f"N={n:,}: app query path ({b.name}, {pack.name}) in a fresh process")
            probes.append(probe(b.keep, q_text, folder, args, pack))
    result = {
        "n": n,
        "data": stats,
        "indexes": [
            {
                "index": b.name,
                "build_s": b.build_s,
                "index_bytes": b.index_bytes,
                "bytes_per_vector": b.index_bytes / n,
                "rss_delta_mb": b.rss_delta_mb,
                **b.detail,
                "settings": [
                    {
                        "setting": c.setting,
                        "default": c.default,
                        "threads": c.threads,
                        "recall": c.recall,
                        "latency_ms": {
                            f"k{k}": {"p50": pct(v, 50), "p95": pct(v, 95), "n": len(v)}
                            for k, v in c.lat.items()
                        },
                    }
                    for c in b.configs
                ],
            }
            for b in builds
        ],
        "app_query_path": probes,
        "seconds": time.perf_counter() - t_size,
    }
    for b in builds:
        b.keep = None
        b.configs.clear()
    gc.collect()
    return result


# ---------------------------------------------------------------------------------------------
# The app's query path, in a fresh process


def probe(
    vi: VectorIndex, q: np.ndarray, folder: Path, args: argparse.Namespace, pack: Path
) -> dict:
    path = folder / "probe.idx"
    qpath = folder / "probe-queries.npy"
    vi.save(path)
    np.save(qpath, q[: args.probe_queries])
    cmd = [sys.executable, __file__, "--probe", str(path), str(qpath), "--pack", str(pack)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    path.unlink(missing_ok=True)
    qpath.unlink(missing_ok=True)
    if run.returncode != 0:
        say(f"probe failed:\n{run.stderr[-3000:]}")
        return {"index": vi.kind, "error": run.stderr[-1000:]}
    return json.loads(run.stdout)


def probe_main(index_path: Path, queries_path: Path, pack_dir: Path) -> None:
    """Runs in the child: what the app's process holds and how long one query takes."""
    from photosearch import modelpack
    from photosearch.encoders import TextEncoder, default_threads

    q = np.load(queries_path)
    base = rss_mb()[0]
    t0 = time.perf_counter()
    vi = VectorIndex.load(index_path, dim=q.shape[1])
    load_s = time.perf_counter() - t0
    with_index = rss_mb()[0]
    pack = modelpack.load(pack_dir)
    enc = TextEncoder(pack, device="cpu", threads=default_threads(), batch_size=1)
    with_encoder = rss_mb()[0]
    for text in TEXTS[:3]:  # warm-up
        enc.encode(text)
        vi.search(q[:1], 10)
    times: dict[str, list[float]] = {"encode": [], "search_k10": [], "search_k100": []}
    totals: dict[str, list[float]] = {"k10": [], "k100": []}
    for i in range(len(q)):
        for k in (10, 100):
            t0 = time.perf_counter()
            enc.encode(TEXTS[(2 * i + k // 100) % len(TEXTS)])
            t1 = time.perf_counter()
            vi.search(q[i : i + 1], k)
            t2 = time.perf_counter()
            times["encode"].append((t1 - t0) * 1e3)
            times[f"search_k{k}"].append((t2 - t1) * 1e3)
            totals[f"k{k}"].append((t2 - t0) * 1e3)
    rss, peak = rss_mb()
    out = {
        "index": vi.kind,
        "n": len(vi),
        "pack": pack.name,
        "text_precision": pack.manifest["text"].get("precision"),
        "encoder_threads": default_threads(),
        "queries": len(q),
        "index_load_s": load_s,
        "rss_mb": {
            "imports": base,
            "with_index": with_index,
            "with_index_and_encoder": with_encoder,
            "after_queries": rss,
            "peak": peak,
            "index": with_index - base,
        },
        "query_ms": {
            **{f"total_{k}": {"p50": pct(v, 50), "p95": pct(v, 95)} for k, v in totals.items()},
            **{name: {"p50": pct(v, 50), "p95": pct(v, 95)} for name, v in times.items()},
        },
    }
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------
# Threshold


def threshold_from(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """Where flat's single-query p50 (one thread) reaches the search budget.

    Flat's cost is linear in N, so each measured point (k = 10 and k = 100, N ≤ 100k) gives a
    cost per vector; their median is robust to the odd point a busy machine spoils.
    """
    pts: dict[str, dict[str, float]] = {}
    per_vector = []
    for s in sizes:
        for ix in s["indexes"]:
            if ix["index"] != vectors.FLAT:
                continue
            lat = next(x for x in ix["settings"] if x["setting"] == "exact")["latency_ms"]
            pts[str(s["n"])] = {k: lat[k]["p50"] for k in ("k10", "k100")}
            if s["n"] <= 100_000:
                per_vector += [lat[k]["p50"] / s["n"] for k in ("k10", "k100")]
    per_1k = float(np.median(per_vector) * 1000) if per_vector else float("nan")
    return {
        "flat_p50_ms": pts,
        "ms_per_1000_vectors": per_1k,
        "budget_ms": SEARCH_BUDGET_MS,
        "crossing_n": SEARCH_BUDGET_MS / per_1k * 1000,
        "module_threshold": vectors.LARGE_THRESHOLD,
    }


# ---------------------------------------------------------------------------------------------
# Report


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    first = cpuinfo.split("\n\n", 1)[0]
    fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in first.splitlines())}
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = next((int(ln.split()[1]) for ln in meminfo.splitlines() if "MemTotal" in ln), 0)
    flags = set(fields.get("flags", "").split())
    return {
        "cpu": fields.get("model name", platform.processor()),
        "simd_flags": [f for f in ("avx2", "fma", "avx512f") if f in flags],
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "faiss_compile": faiss.get_compile_options(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": os.getloadavg(),
    }


def fmt(v: float, digits: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    out = [
        "# Vector index: build, memory, latency and recall",
        "",
        "Measured by `benchmarks/vector_index.py`"
        + (" **with `--quick` (smoke test)**" if report["quick"] else "")
        + f" on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB, "
        f"{', '.join(m['simd_flags'])}), faiss {m['faiss']} ({m['faiss_compile'].strip()}), "
        f"numpy {m['numpy']}, Python {m['python']}, {m['date']}; load average at start / end "
        f"{m['load_average_start'][0]:.2f} / {report['load_average_end'][0]:.2f} (a shared "
        f"machine: compare rows of one run, not runs). Total {report['seconds'] / 60:.1f} min.",
        "",
        f"Data: {report['data_source']}. {report['queries']} queries for recall, "
        f"{report['latency_queries']} single queries per setting for latency (flat at 1M: a "
        "tenth), timed round-robin. Recall is against exact inner-product search over the same "
        "float16 vectors; `text` queries land near the images (see the script's docstring), "
        "`similar` queries are photos plus a little noise. Latency is one query at a time on one "
        "FAISS thread unless the setting says otherwise. Bytes are the saved index file "
        "(vectors, ids, centroids); RSS Δ is the benchmark process's growth during the build "
        "(allocator-dependent). MB = 10⁶ bytes.",
        "",
    ]
    for s in report["sizes"]:
        out += [f"## N = {s['n']:,}", ""]
        out += [
            "| index | setting | build s | MB | B/vector | RSS Δ MB | recall@10 | recall@100 "
            "| similar r@10 | p50 k=10 ms | p95 k=10 | p50 k=100 | p95 k=100 |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for ix in s["indexes"]:
            first = True
            for st in ix["settings"]:
                lat = st["latency_ms"]
                name = ix["index"] + (f" (nlist {ix['nlist']})" if ix.get("nlist") else "")
                out.append(
                    "| "
                    + " | ".join(
                        [
                            name if first else "",
                            ("**" + st["setting"] + "**") if st["default"] else st["setting"],
                            fmt(ix["build_s"], 1) if first else "",
                            fmt(ix["index_bytes"] / MB, 1) if first else "",
                            f"{ix['bytes_per_vector']:.0f}" if first else "",
                            fmt(ix["rss_delta_mb"], 0) if first else "",
                            fmt(st["recall"]["text@10"], 3),
                            fmt(st["recall"]["text@100"], 3),
                            fmt(st["recall"]["similar@10"], 3),
                            fmt(lat["k10"]["p50"]),
                            fmt(lat["k10"]["p95"]),
                            fmt(lat["k100"]["p50"]),
                            fmt(lat["k100"]["p95"]),
                        ]
                    )
                    + " |"
                )
                first = False
        out.append("")
        if s["app_query_path"]:
            out += [
                f"App query path, in a fresh process holding the index and the pack's text encoder "
                f"(ONNX Runtime, CPU): {report['probe_queries']} queries, each encoded then "
                "searched, k = 10 and k = 100 alternating:",
                "",
                "| index | pack (text) | encode p50 ms | search p50 k=100 | total p50 k=10 "
                "| total p95 k=10 | total p50 k=100 | total p95 k=100 | RSS index MB "
                "| RSS process MB | peak MB |",
                "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
            ]
            for p in s["app_query_path"]:
                if "error" in p:
                    out.append(f"| {p['index']} | failed: see JSON |" + " |" * 9)
                    continue
                qm, r = p["query_ms"], p["rss_mb"]
                out.append(
                    f"| {p['index']} | {p['pack']} ({p['text_precision']}) "
                    f"| {fmt(qm['encode']['p50'], 1)} | {fmt(qm['search_k100']['p50'])} "
                    f"| {fmt(qm['total_k10']['p50'], 1)} | {fmt(qm['total_k10']['p95'], 1)} "
                    f"| {fmt(qm['total_k100']['p50'], 1)} | {fmt(qm['total_k100']['p95'], 1)} "
                    f"| {fmt(r['index'], 0)} | {fmt(r['after_queries'], 0)} | {fmt(r['peak'], 0)} |"
                )
            out.append("")
        if s.get("data"):
            d = s["data"]
            out += [
                "Data at this size: image–image mean cosine "
                f"{d['image_image_mean_cosine']:.2f} (CLIP-like target ≈ 0.45), nearest other "
                f"image {d['image_nearest_neighbour_cosine_mean']:.2f}; variance in the top "
                f"10 / 50 / 100 principal components {d['variance_in_top_pcs']['10']:.2f} / "
                f"{d['variance_in_top_pcs']['50']:.2f} / {d['variance_in_top_pcs']['100']:.2f}, "
                f"participation ratio {d['participation_ratio']:.0f} (of 512), eigenvalue decay "
                f"∝ rank^-{d['eigenvalue_power_law_exponent']:.2f}; text query → top-1 / 10 / 100 "
                f"image cosine {d['query_top1_cosine_mean']:.2f} / "
                f"{d['query_top10_cosine_mean']:.2f} / {d['query_top100_cosine_mean']:.2f} "
                f"(CLIP-like target for a match ≈ 0.3), → a random image "
                f"{d['query_random_image_cosine_mean']:.2f}"
                + (
                    f"; a query's source photo is in its exact top 10 "
                    f"{d['query_source_photo_in_exact_top10']:.0%} of the time."
                    if "query_source_photo_in_exact_top10" in d
                    else "."
                ),
                "",
            ]
    t = report["threshold"]
    out += [
        "## Threshold: flat's single-query latency against N",
        "",
        "| N | " + " | ".join(f"{int(n):,}" for n in t["flat_p50_ms"]) + " |",
        "|---|" + "--:|" * len(t["flat_p50_ms"]),
        *(
            f"| flat p50 ms (k={k[1:]}, 1 thread) | "
            + " | ".join(fmt(v[k]) for v in t["flat_p50_ms"].values())
            + " |"
            for k in ("k10", "k100")
        ),
        "",
        f"Median cost per vector over the points with N ≤ 100k: {t['ms_per_1000_vectors']:.3f} ms "
        f"per 1,000 vectors, so one exact query passes the {t['budget_ms']:.0f} ms search budget "
        f"at about {t['crossing_n']:,.0f} vectors. The module's `LARGE_THRESHOLD` is "
        f"{t['module_threshold']:,}.",
        "",
    ]
    if report.get("decisions"):
        out += ["## What the numbers decide", "", *report["decisions"], ""]
    return "\n".join(out)


def decisions(report: dict[str, Any]) -> list[str]:
    """The module's choices, checked against this run's numbers."""

    def setting(ix: dict[str, Any], pred: Callable[[dict[str, Any]], bool]) -> dict | None:
        return next((st for st in ix["settings"] if pred(st)), None)

    lines = []
    t = report["threshold"]
    lines.append(
        f"- **Threshold.** Exact search costs {t['ms_per_1000_vectors']:.3f} ms per 1,000 vectors "
        f"a query here and passes the {t['budget_ms']:.0f} ms budget near "
        f"{t['crossing_n']:,.0f} vectors; `LARGE_THRESHOLD` = {t['module_threshold']:,}."
    )
    large = vectors.LARGE_KIND
    rows, ok = [], True
    for s in report["sizes"]:
        for ix in s["indexes"]:
            if ix["index"] != large:
                continue
            st = setting(ix, lambda st: st["default"])
            r10, r100 = st["recall"]["text@10"], st["recall"]["text@100"]
            ok &= r10 >= 0.95
            rows.append(
                f"{s['n']:,}: nlist {ix['nlist']}, nprobe {ix['default_nprobe']} → recall@10 "
                f"{r10:.3f}, @100 {r100:.3f}, p50 {st['latency_ms']['k100']['p50']:.2f} ms, "
                f"{ix['bytes_per_vector']:.0f} B/vector, build {ix['build_s']:.1f} s"
            )
    if rows:
        lines.append(
            f"- **Large kind `{large}` at its default nprobe** (recall@10 ≥ 0.95 everywhere: "
            f"{'yes' if ok else '**NO**'}): " + "; ".join(rows) + "."
        )
    for s in report["sizes"]:
        by_name = {ix["index"]: ix for ix in s["indexes"]}
        if vectors.IVF_FP16 in by_name and large in by_name:
            a, b = by_name[large], by_name[vectors.IVF_FP16]
            ra = setting(a, lambda st: st["default"])["recall"]["text@10"]
            rb = setting(b, lambda st: st["default"])["recall"]["text@10"]
            lines.append(
                f"- **{large} vs {vectors.IVF_FP16} at {s['n']:,}**: recall@10 {ra:.3f} vs "
                f"{rb:.3f} at the same nprobe, for {a['index_bytes'] / MB:.0f} vs "
                f"{b['index_bytes'] / MB:.0f} MB."
            )
        for p in s["app_query_path"]:
            if "error" in p:
                continue
            qm = p["query_ms"]
            lines.append(
                f"- **App query at {s['n']:,} ({p['index']}, {p['pack']} {p['text_precision']})**"
                f": p50 {qm['total_k100']['p50']:.0f} ms, of which text encoding "
                f"{qm['encode']['p50']:.0f} ms and search {qm['search_k100']['p50']:.1f} ms; "
                f"process RSS {p['rss_mb']['after_queries']:.0f} MB, of which the index "
                f"{p['rss_mb']['index']:.0f} MB."
            )
        for ix in s["indexes"]:
            if ix["index"] in ("hnsw32", "ivf-pq64"):
                best = max(ix["settings"], key=lambda st: st["recall"]["text@10"])
                lines.append(
                    f"- **{ix['index']} at {s['n']:,}**: best text recall@10 "
                    f"{best['recall']['text@10']:.3f} ({best['setting']}, p50 "
                    f"{best['latency_ms']['k100']['p50']:.2f} ms), similar-image recall@10 "
                    f"{best['recall']['similar@10']:.3f}; build {ix['build_s']:.1f} s."
                )
        for ix in s["indexes"]:
            if ix["index"] not in (vectors.FLAT, large):
                continue
            one = setting(ix, lambda st: st["default"])
            many = setting(ix, lambda st: st["threads"] > 1)
            if one and many:
                a, b = one["latency_ms"]["k100"]["p50"], many["latency_ms"]["k100"]["p50"]
                lines.append(
                    f"- **Threads, {ix['index']} at {s['n']:,}**: single-query p50 {a:.2f} ms on "
                    f"one thread, {b:.2f} ms on {many['threads']} ({b / a:.2f}×)."
                )
    return lines


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few queries (< 2 min)")
    ap.add_argument("--sizes", type=int, nargs="+", help="library sizes (default 10k 100k 1M)")
    ap.add_argument("--queries", type=int, default=500, help="queries for recall")
    ap.add_argument("--latency-queries", type=int, default=200, help="single queries timed")
    ap.add_argument("--probe-queries", type=int, default=50, help="queries encoded + searched")
    ap.add_argument("--pack", type=Path, default=DEFAULT_PACK, help="model pack for encoding")
    ap.add_argument("--no-pack", action="store_true", help="skip the app query path")
    ap.add_argument("--vectors", type=Path, help="real embeddings [N, D] (.npy) instead")
    ap.add_argument("--query-vectors", type=Path, help="real query embeddings (.npy)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--probe", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        probe_main(args.probe[0], args.probe[1], args.pack)
        return 0
    t_all = time.perf_counter()
    if args.quick:
        args.queries, args.latency_queries, args.probe_queries = 100, 40, 15
    if args.no_pack or not (args.pack / "manifest.json").exists():
        if not args.no_pack:
            say(f"no model pack at {args.pack}: skipping the app query path")
        args.pack = None
    folder = Path(tempfile.mkdtemp(prefix="photosearch-vector-bench-"))
    report: dict[str, Any] = {
        "machine": machine(),
        "quick": args.quick,
        "queries": args.queries,
        "latency_queries": args.latency_queries,
        "probe_queries": args.probe_queries,
        "module": {
            "large_threshold": vectors.LARGE_THRESHOLD,
            "large_kind": vectors.LARGE_KIND,
            "nlist_rule": "round(sqrt(N)), at least 39 training vectors a list",
            "nprobe_rule": "min(nlist, max(32, round(sqrt(nlist))))",
        },
        "sizes": [],
    }
    try:
        if args.vectors is not None:
            x = np.load(args.vectors).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            qv = None
            if args.query_vectors is not None:
                qv = np.load(args.query_vectors).astype(np.float32)
                qv /= np.linalg.norm(qv, axis=1, keepdims=True)
            report["data_source"] = f"real embeddings from {args.vectors.name}, {x.shape}"
            report["sizes"].append(
                run_size(len(x), args, folder, candidates=True, real=(x.astype(np.float16), qv))
            )
        else:
            report["data_source"] = "embeddings-like synthetic vectors (512-d, float16)"
            sizes = args.sizes or ([10_000] if args.quick else [10_000, 100_000, 1_000_000])
            extra = [20_000] if args.quick else [20_000, 50_000]
            for n in sorted(set(sizes) | set(extra)):
                report["sizes"].append(run_size(n, args, folder, candidates=n in sizes))
                say(f"N={n:,}: done in {report['sizes'][-1]['seconds']:.0f} s")
        report["threshold"] = threshold_from(report["sizes"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = time.perf_counter() - t_all
    report["decisions"] = decisions(report)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "vector_index" + ("_quick" if args.quick else "")
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report))
    say(f"wrote {args.out / stem}.json and .md in {report['seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
