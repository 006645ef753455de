"""Text → image retrieval on the synthetic test split, through exported packs and photosearch's
own runtime (``ImageEncoder``, ``TextEncoder``, ``CrossAttentionScorer`` on ONNX Runtime).

Rows, paper-style (Miech et al., "Thinking Fast and Slow", Table 3):

- **fast**: the dual encoder, dot product over the whole gallery;
- **slow**: the cross-attention scorer h̄(x, y) = log p(y | x) / tokens over the whole gallery;
- **fast + rerank K**: the scorer re-orders the fast top K by ``fast + β·h̄``, β chosen on the
  validation split (the β with the best R@1 averaged over the K values), reported on test;
- the same fast and rerank rows for every further pack (a distilled dual encoder, its control).

A query is found at k when *any* gallery scene that matches its description exactly
(:func:`scenes.matches`) is among the first k. Times are per query on this machine with the
gallery's embeddings and image tokens computed beforehand, as an index holds them; scoring a
candidate whose image tokens are not cached adds the per-image token time, reported beside.
Slow over the whole gallery is costly, so the main table uses the first ``--slow-queries``
queries for every row; a second table gives the fast and rerank rows on every test query.

    python -m benchmarks.synthetic.evaluate --pack base=build/synthetic/packs/base \\
        --out benchmarks/results/synthetic
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from benchmarks.synthetic import scenes
from photosearch import imaging, modelpack
from photosearch.encoders import ImageEncoder, TextEncoder
from photosearch.rerank import CrossAttentionScorer

log = logging.getLogger(__name__)

KS = (5, 10, 20, 50, 100)
RECALL_AT = (1, 5, 10)
BETAS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0)

Say = Callable[[str], None]


@dataclass
class EvalConfig:
    world: scenes.WorldConfig = field(default_factory=scenes.WorldConfig)
    test_families: int = 1250  # gallery = 4 × this
    validation_families: int = 250
    slow_queries: int = 200
    timing_queries: int = 50
    ks: tuple[int, ...] = KS
    betas: tuple[float, ...] = BETAS
    threads: int = 1
    scorer_batch: int = 32


# ---------------------------------------------------------------------------------------------
# Gallery


@dataclass
class Gallery:
    split: str
    scenes: list[scenes.Scene]
    pixels: np.ndarray  # [N, 3, H, W], preprocessed as the app preprocesses photos
    captions: list[str]  # one query per family: the base scene's caption
    query_scene: np.ndarray  # [Q] gallery index of each query's base scene
    relevant: list[np.ndarray]  # gallery indices matching each query's description
    distractors: dict[str, np.ndarray]  # kind -> [Q] gallery index

    @property
    def size(self) -> int:
        return len(self.scenes)


def build_gallery(
    world: scenes.World, split: str, n: int, spec: modelpack.ImageSpec, say: Say
) -> Gallery:
    g = describe_gallery(world, split, n, say)
    g.pixels = np.stack([imaging.preprocess(s.render(spec.size[0]), spec) for s in g.scenes])
    return g


def describe_gallery(world: scenes.World, split: str, n: int, say: Say) -> Gallery:
    """The families' scenes, queries and relevance, without pixels (``pixels`` is empty)."""
    say(f"{split}: laying out {n} families ({4 * n} scenes)")
    scns: list[scenes.Scene] = []
    captions, query_scene, descs = [], [], []
    distractors: dict[str, list[int]] = {k: [] for k in scenes.DISTRACTOR_KINDS}
    for fam in world.families(split, n):
        base = len(scns)
        for m in scenes.RELATIONAL_MEMBERS:
            if m != "base":
                distractors[m].append(len(scns))
            scns.append(fam.members[m])
        captions.append(fam.captions["base"])
        query_scene.append(base)
        descs.append(fam.base.description)
    by_content: dict[tuple, list[int]] = {}
    for i, s in enumerate(scns):
        by_content.setdefault(scenes.content_key(s), []).append(i)
    relevant = [
        np.array(
            [
                i
                for i in by_content.get(scenes.description_content_key(d), [])
                if scenes.matches(d, scns[i])
            ],
            dtype=np.int64,
        )
        for d in descs
    ]
    for q, r in enumerate(relevant):
        if query_scene[q] not in r:
            raise AssertionError(f"query {q} does not match its own scene")
    return Gallery(
        split,
        scns,
        np.zeros((0,), np.float32),
        captions,
        np.array(query_scene),
        relevant,
        {k: np.array(v) for k, v in distractors.items()},
    )


# ---------------------------------------------------------------------------------------------
# Runtime and scores


class Runtime:
    """One pack, run the way the app runs it (CPU provider, explicit threads)."""

    def __init__(self, label: str, path: Path, threads: int, scorer_batch: int):
        self.label = label
        self.path = Path(path)
        self.pack = modelpack.load(self.path)
        self.image = ImageEncoder(self.pack, device="cpu", threads=threads, batch_size=64)
        self.text = TextEncoder(self.pack, device="cpu", threads=threads, batch_size=64)
        self.scorer = CrossAttentionScorer(
            self.pack, device="cpu", threads=threads, batch_size=scorer_batch
        )
        files = self.pack.manifest["files"]
        spec = self.pack.reranker
        assert spec is not None
        # Packs whose scorer graphs are byte-identical share cached scores.
        self.scorer_id = files[spec.scorer_file]["sha256"] + files[spec.image_file]["sha256"]


class HbarCache:
    """h̄(query, image) by scorer, so packs sharing a reranker never score a pair twice."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, int], dict[int, float]] = {}

    def get(
        self, rt: Runtime, split: str, q: int, caption: str, tokens: np.ndarray, idx: np.ndarray
    ) -> np.ndarray:
        row = self._rows.setdefault((rt.scorer_id, split, q), {})
        missing = np.array([i for i in idx.tolist() if i not in row], dtype=np.int64)
        if len(missing):
            ll, cnt = rt.scorer.score(caption, tokens[missing])
            row.update(zip(missing.tolist(), (ll / cnt).tolist(), strict=True))
        return np.array([row[i] for i in idx.tolist()], dtype=np.float64)

    def put_all(self, rt: Runtime, split: str, q: int, hbar: np.ndarray) -> None:
        self._rows.setdefault((rt.scorer_id, split, q), {}).update(enumerate(hbar.tolist()))


@dataclass
class Encoded:
    embeddings: np.ndarray  # [N, d]
    tokens: np.ndarray  # [N, T, D]
    queries: np.ndarray  # [Q, d]
    fast: np.ndarray  # [Q, N]
    top: np.ndarray  # [Q, kmax] fast order
    hbar_top: np.ndarray  # [Q, kmax]
    image_ms: float
    tokens_ms: float


def _fast_order(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]


def encode(rt: Runtime, g: Gallery, kmax: int, say: Say) -> Encoded:
    """The gallery as an index holds it (embeddings, image tokens) and the fast ranking."""
    say(f"{rt.label}: encoding the {g.split} gallery ({g.size} images)")
    t0 = time.perf_counter()
    emb = rt.image.encode(g.pixels)
    t1 = time.perf_counter()
    tokens = rt.scorer.image_tokens(g.pixels)
    t2 = time.perf_counter()
    q = rt.text.encode(g.captions)
    fast = q @ emb.T
    top = np.stack([_fast_order(row, kmax) for row in fast])
    return Encoded(
        emb,
        tokens,
        q,
        fast,
        top,
        np.zeros(top.shape),
        1e3 * (t1 - t0) / g.size,
        1e3 * (t2 - t1) / g.size,
    )


def score_top(rt: Runtime, enc: Encoded, g: Gallery, cache: HbarCache, say: Say) -> None:
    """h̄ of every query's fast top ``kmax`` (from the cache where already scored)."""
    say(
        f"{rt.label}: scoring the fast top {enc.top.shape[1]} "
        f"of {len(g.captions)} {g.split} queries"
    )
    enc.hbar_top = np.stack(
        [
            cache.get(rt, g.split, i, g.captions[i], enc.tokens, enc.top[i])
            for i in range(len(g.captions))
        ]
    )


# ---------------------------------------------------------------------------------------------
# Rankings and recall


def rerank_top10(enc: Encoded, queries: np.ndarray, k: int, beta: float) -> np.ndarray:
    """The first ten results after re-ordering each query's fast top ``k`` by fast + β·h̄."""
    out = []
    for q in queries:
        top = enc.top[q]
        kk = min(k, len(top))
        fused = enc.fast[q, top[:kk]] + beta * enc.hbar_top[q, :kk]
        order = np.lexsort((np.arange(kk), -fused))
        out.append(np.concatenate([top[:kk][order], top[kk:]])[:10])
    return np.stack(out)


def recall(rankings: np.ndarray, relevant: Sequence[np.ndarray], queries: np.ndarray) -> dict:
    found = {k: [] for k in RECALL_AT}
    for row, q in zip(rankings, queries, strict=True):
        hit = np.nonzero(np.isin(row, relevant[q]))[0]
        first = int(hit[0]) if len(hit) else 10**9
        for k in RECALL_AT:
            found[k].append(first < k)
    out = {f"R@{k}": 100.0 * float(np.mean(v)) for k, v in found.items()}
    out["mean"] = float(np.mean([out[f"R@{k}"] for k in RECALL_AT]))
    return out


def choose_beta(enc: Encoded, g: Gallery, cfg: EvalConfig) -> dict[str, Any]:
    """The β whose R@1, averaged over the K values, is best on validation (ties: the smaller)."""
    qs = np.arange(len(g.captions))
    grid = []
    for beta in cfg.betas:
        r1 = {k: recall(rerank_top10(enc, qs, k, beta), g.relevant, qs)["R@1"] for k in cfg.ks}
        grid.append({"beta": beta, "R@1_by_K": r1, "mean_R@1": float(np.mean(list(r1.values())))})
    best = max(grid, key=lambda r: (r["mean_R@1"], -r["beta"]))
    return {"chosen": best["beta"], "grid": grid}


def pairwise(rt: Runtime, enc: Encoded, g: Gallery, cache: HbarCache) -> dict[str, dict]:
    """How often each scorer prefers the query's own scene to each kind of hard distractor."""
    out = {}
    for kind, idx in g.distractors.items():
        fast_win, slow_win = [], []
        for q, (b, d) in enumerate(zip(g.query_scene, idx, strict=True)):
            fb, fd = enc.fast[q, b], enc.fast[q, d]
            hb, hd = cache.get(rt, g.split, q, g.captions[q], enc.tokens, np.array([b, d]))
            fast_win.append(1.0 if fb > fd else 0.5 if fb == fd else 0.0)
            slow_win.append(1.0 if hb > hd else 0.5 if hb == hd else 0.0)
        out[kind] = {
            "fast": 100.0 * float(np.mean(fast_win)),
            "slow": 100.0 * float(np.mean(slow_win)),
            "pairs": len(idx),
        }
    return out


# ---------------------------------------------------------------------------------------------
# Timing (per query, end to end from the query text)


def _search_fast(
    rt: Runtime, emb: np.ndarray, caption: str, kmax: int
) -> tuple[np.ndarray, np.ndarray]:
    scores = emb @ rt.text.encode([caption])[0]
    top = _fast_order(scores, kmax)
    return top, scores[top]


def time_fast(rt: Runtime, enc: Encoded, captions: list[str]) -> list[float]:
    out = []
    for c in captions:
        t0 = time.perf_counter()
        _search_fast(rt, enc.embeddings, c, 10)
        out.append(time.perf_counter() - t0)
    return out


def time_rerank(rt: Runtime, enc: Encoded, captions: list[str], k: int, beta: float) -> list[float]:
    out = []
    for c in captions:
        t0 = time.perf_counter()
        top, fast = _search_fast(rt, enc.embeddings, c, k)
        ll, cnt = rt.scorer.score(c, enc.tokens[top])
        order = np.argsort(-(fast + beta * ll / cnt), kind="stable")
        top[order][:10]
        out.append(time.perf_counter() - t0)
    return out


def slow_over_all(
    rt: Runtime, enc: Encoded, g: Gallery, queries: np.ndarray, cache: HbarCache, say: Say
) -> tuple[np.ndarray, list[float]]:
    say(f"{rt.label}: slow scorer over all {g.size} scenes for {len(queries)} queries")
    rankings, times = [], []
    t_report = time.perf_counter()
    for n, q in enumerate(queries):
        t0 = time.perf_counter()
        ll, cnt = rt.scorer.score(g.captions[q], enc.tokens)
        hbar = ll / cnt
        ranking = np.lexsort((np.arange(len(hbar)), -hbar))[:10]
        times.append(time.perf_counter() - t0)
        rankings.append(ranking)
        cache.put_all(rt, g.split, int(q), hbar.astype(np.float64))
        if time.perf_counter() - t_report > 60:
            t_report = time.perf_counter()
            say(f"  {n + 1}/{len(queries)} queries, {statistics.median(times):.2f} s each")
    return np.stack(rankings), times


# ---------------------------------------------------------------------------------------------
# The whole evaluation


def machine(threads: int) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    first = cpuinfo.read_text().split("\n\n", 1)[0] if cpuinfo.exists() else ""
    fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in first.splitlines())}
    meminfo = Path("/proc/meminfo")
    mem_kb = next(
        (
            int(ln.split()[1])
            for ln in (meminfo.read_text().splitlines() if meminfo.exists() else [])
            if ln.startswith("MemTotal")
        ),
        0,
    )
    flags = set(fields.get("flags", "").split())
    return {
        "cpu": fields.get("model name", platform.processor() or platform.machine()),
        "simd_flags": [f for f in ("avx2", "fma", "avx512f", "avx512_vnni") if f in flags],
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "ort_threads": threads,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _ms(times: Sequence[float]) -> float:
    return 1e3 * statistics.median(times)


def evaluate(
    packs: dict[str, Path],
    cfg: EvalConfig,
    *,
    training: dict[str, Any] | None = None,
    say: Say | None = None,
) -> dict[str, Any]:
    """Measure every pack; the first one's scorer gives the slow rows. Returns the JSON report."""
    say = say or (lambda m: log.info("%s", m))
    started = time.perf_counter()
    for split, n, held in (
        ("test", cfg.test_families, cfg.world.test_families),
        ("validation", cfg.validation_families, cfg.world.validation_families),
    ):
        if n > held:
            raise ValueError(
                f"{n} {split} families asked for, but only the first {held} were held out of "
                "training (the world configuration of the training recipe)"
            )
    runtimes = [Runtime(k, v, cfg.threads, cfg.scorer_batch) for k, v in packs.items()]
    spec = runtimes[0].pack.image
    world = scenes.World(cfg.world)
    val = build_gallery(world, "validation", cfg.validation_families, spec, say)
    test = build_gallery(world, "test", cfg.test_families, spec, say)
    kmax = max(cfg.ks)
    cache = HbarCache()
    n_slow = min(cfg.slow_queries, len(test.captions))
    sub = np.arange(n_slow)
    all_q = np.arange(len(test.captions))
    timing_caps = [test.captions[q] for q in sub[: cfg.timing_queries]]

    report: dict[str, Any] = {
        "machine": machine(cfg.threads),
        "config": {**asdict(cfg), "world": cfg.world.to_json()},
        "gallery": {
            "test_scenes": test.size,
            "test_queries": len(test.captions),
            "slow_queries": n_slow,
            "validation_scenes": val.size,
            "validation_queries": len(val.captions),
            "mean_relevant_per_query": float(np.mean([len(r) for r in test.relevant])),
        },
        "training": training or {},
        "packs": {},
        "beta": {},
        "index_cost_ms_per_image": {},
        "rows": [],
        "rows_all_queries": [],
        "pairwise": {},
    }
    base = runtimes[0]
    slow_ms = None
    for rt in runtimes:
        report["packs"][rt.label] = {
            "path": str(rt.path),
            "name": rt.pack.name,
            "source": rt.pack.manifest.get("source"),
            "reranker_source": (rt.pack.manifest.get("reranker") or {}).get("source"),
        }
        enc_val = encode(rt, val, kmax, say)
        score_top(rt, enc_val, val, cache, say)
        beta = choose_beta(enc_val, val, cfg)
        report["beta"][rt.label] = beta
        b = beta["chosen"]
        say(f"{rt.label}: β = {b} (validation)")
        enc = encode(rt, test, kmax, say)
        report["index_cost_ms_per_image"][rt.label] = {
            "image_embedding": enc.image_ms,
            "image_tokens": enc.tokens_ms,
        }
        if rt is base:  # first: its scores fill the cache for everything after
            rankings, times = slow_over_all(rt, enc, test, sub, cache, say)
            slow_ms = _ms(times)
            report["rows"].append(
                {
                    "method": "slow (scorer over all)",
                    "pack": rt.label,
                    "K": None,
                    "beta": None,
                    **recall(rankings, test.relevant, sub),
                    "ms_per_query": slow_ms,
                    "speedup_vs_slow": 1.0,
                    "queries": n_slow,
                }
            )
        score_top(rt, enc, test, cache, say)
        pairs = pairwise(rt, enc, test, cache)
        if rt is base:
            report["pairwise"]["slow"] = {k: v["slow"] for k, v in pairs.items()}
        report["pairwise"][f"fast ({rt.label})"] = {k: v["fast"] for k, v in pairs.items()}
        say(f"{rt.label}: timing {len(timing_caps)} queries per row")
        fast_rank = enc.top[:, :10]
        t_fast = _ms(time_fast(rt, enc, timing_caps))
        rows = [("fast", None, fast_rank, t_fast)]
        for k in cfg.ks:
            t = _ms(time_rerank(rt, enc, timing_caps, k, b))
            rows.append(("fast + rerank", k, None, t))
        for method, k, ranking, t in rows:
            for target, qs in (("rows", sub), ("rows_all_queries", all_q)):
                rk = ranking[qs] if ranking is not None else rerank_top10(enc, qs, k, b)
                report[target].append(
                    {
                        "method": method,
                        "pack": rt.label,
                        "K": k,
                        "beta": None if k is None else b,
                        **recall(rk, test.relevant, qs),
                        "ms_per_query": t,
                        "speedup_vs_slow": (slow_ms / t) if slow_ms else None,
                        "queries": len(qs),
                    }
                )
    report["goals"] = goals(report)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def _row(rows: list[dict], method: str, pack: str, k: int | None = None) -> dict | None:
    return next(
        (r for r in rows if r["method"].startswith(method) and r["pack"] == pack and r["K"] == k),
        None,
    )


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = report["rows"]
    labels = list(report["packs"])
    base = labels[0]
    slow = _row(rows, "slow", base)
    fast = _row(rows, "fast", base)
    out = []
    if slow and fast:
        gap = slow["R@1"] - fast["R@1"]
        out.append(
            {"goal": "slow R@1 ≥ fast R@1 + 15", "value": f"{gap:+.1f} points", "met": gap >= 15}
        )
        r20 = _row(rows, "fast + rerank", base, 20)
        if r20:
            diff = slow["R@1"] - r20["R@1"]
            ok = diff <= 2 and (r20["speedup_vs_slow"] or 0) >= 20
            out.append(
                {
                    "goal": "fast + rerank K=20 within 2 points of slow R@1, ≥ 20× faster",
                    "value": f"{-diff:+.1f} points, {r20['speedup_vs_slow']:.0f}×",
                    "met": ok,
                }
            )
    for label in labels[1:]:
        if "distil" not in label:
            continue
        for target in ("rows", "rows_all_queries"):
            d = _row(report[target], "fast", label)
            f = _row(report[target], "fast", base)
            if d and f:
                out.append(
                    {
                        "goal": f"{label} fast R@1 > fast R@1 ({d['queries']} queries)",
                        "value": f"{d['R@1'] - f['R@1']:+.1f} points",
                        "met": d["R@1"] > f["R@1"],
                    }
                )
    return out


# ---------------------------------------------------------------------------------------------
# Markdown


def _fmt_ms(ms: float) -> str:
    return f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"


def _table(rows: list[dict]) -> list[str]:
    lines = [
        "| method | pack | K | β | R@1 | R@5 | R@10 | mean | ms / query | speed-up vs slow |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        sp = r["speedup_vs_slow"]
        lines.append(
            f"| {r['method']} | {r['pack']} | {r['K'] if r['K'] is not None else '–'} | "
            f"{r['beta'] if r['beta'] is not None else '–'} | {r['R@1']:.1f} | {r['R@5']:.1f} | "
            f"{r['R@10']:.1f} | {r['mean']:.1f} | {_fmt_ms(r['ms_per_query'])} | "
            f"{'–' if sp is None else f'{sp:,.0f}×'} |"
        )
    return lines


def render_markdown(
    report: dict[str, Any], title: str = "Synthetic compositional retrieval"
) -> str:
    m, g, cfg = report["machine"], report["gallery"], report["config"]
    lines = [
        f"# {title}",
        "",
        "Text → image retrieval on the synthetic test split (`benchmarks/synthetic`), through the "
        "exported packs and photosearch's runtime (ONNX Runtime, CPU). A query counts as found "
        "at k when any gallery scene matching its description exactly is in the top k. Times are "
        "the median per query from the query text, with the gallery's embeddings and image tokens "
        "computed beforehand (index cost below).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['simd_flags']) or 'no AVX'}), "
        f"{m['memory_gib']} GiB, {m['os']}; Python {m['python']}, ONNX Runtime {m['onnxruntime']}, "
        f"{m['ort_threads']} thread(s) per session; load average {m['load_average_at_start']} at "
        f"the start, {m.get('load_average_at_end')} at the end; {m['date']}.",
        "",
        f"Gallery: {g['test_scenes']} test scenes ({g['test_queries']} families: each query's "
        f"scene and its three hard distractors), on average {g['mean_relevant_per_query']:.2f} "
        f"matching scenes per query. β chosen on {g['validation_queries']} validation queries "
        f"over {g['validation_scenes']} scenes.",
        "",
        f"## All rows on the first {g['slow_queries']} test queries",
        "",
        *_table(report["rows"]),
        "",
        f"## Fast and rerank rows on all {g['test_queries']} test queries",
        "",
        *_table(report["rows_all_queries"]),
        "",
        "## Pairwise accuracy per hard-distractor kind (%)",
        "",
        "How often a scorer ranks the query's own scene above its distractor of each kind, over "
        "all test queries (ties count half).",
        "",
        "| scorer | " + " | ".join(scenes.DISTRACTOR_KINDS) + " |",
        "|---|" + "---:|" * len(scenes.DISTRACTOR_KINDS),
    ]
    for name, accs in report["pairwise"].items():
        lines.append(
            f"| {name} | " + " | ".join(f"{accs[k]:.1f}" for k in scenes.DISTRACTOR_KINDS) + " |"
        )
    lines += ["", "## Goals", "", "| goal | result | met |", "|---|---|---|"]
    for goal in report["goals"]:
        lines.append(f"| {goal['goal']} | {goal['value']} | {'yes' if goal['met'] else 'no'} |")
    lines += [
        "",
        "## Index cost (ms per image)",
        "",
        "| pack | image embedding | image tokens |",
        "|---|---:|---:|",
    ]
    for label, c in report["index_cost_ms_per_image"].items():
        lines.append(f"| {label} | {c['image_embedding']:.2f} | {c['image_tokens']:.2f} |")
    lines += ["", "## β on validation (R@1 averaged over K)", ""]
    for label, b in report["beta"].items():
        grid = ", ".join(f"{r['beta']:g}: {r['mean_R@1']:.1f}" for r in b["grid"])
        lines.append(f"- {label}: chosen β = {b['chosen']:g} ({grid})")
    if report.get("training"):
        lines += ["", "## Training", ""]
        for label, t in report["training"].items():
            lines.append(f"- {label}: {t}")
    lines += [
        "",
        f"Evaluation took {report['seconds']:.0f} s. Configuration: `{json.dumps(cfg)}`",
        "",
    ]
    return "\n".join(lines)


def write(report: dict[str, Any], out: Path, title: str | None = None) -> tuple[Path, Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    md, js = out.with_suffix(".md"), out.with_suffix(".json")
    js.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md.write_text(render_markdown(report, *([title] if title else [])))
    return md, js


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.synthetic.evaluate",
        description="Fast / slow / fast+rerank retrieval on the synthetic test split, via packs.",
    )
    p.add_argument(
        "--pack",
        action="append",
        required=True,
        metavar="LABEL=DIR",
        help="a pack to measure; the first one's scorer gives the slow rows",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="output path without suffix (.md, .json)"
    )
    p.add_argument(
        "--recipe",
        type=Path,
        help="a training run's recipe.json: its world (seed, held-out families) is used",
    )
    p.add_argument("--test-families", type=int, default=EvalConfig.test_families)
    p.add_argument("--validation-families", type=int, default=EvalConfig.validation_families)
    p.add_argument("--slow-queries", type=int, default=EvalConfig.slow_queries)
    p.add_argument("--timing-queries", type=int, default=EvalConfig.timing_queries)
    p.add_argument("--threads", type=int, default=EvalConfig.threads)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    packs = dict(p.split("=", 1) for p in args.pack)
    world = scenes.WorldConfig()
    if args.recipe:
        world = scenes.WorldConfig(**json.loads(args.recipe.read_text())["recipe"]["world"])
    cfg = EvalConfig(
        world=world,
        test_families=args.test_families,
        validation_families=args.validation_families,
        slow_queries=args.slow_queries,
        timing_queries=args.timing_queries,
        threads=args.threads,
    )
    report = evaluate({k: Path(v) for k, v in packs.items()}, cfg)
    md, js = write(report, args.out)
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
