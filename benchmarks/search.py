"""End-to-end query latency of ``photosearch.search``: fast only and re-ranked, cold and warm.

A library of N photos is made in a temporary home with the ``coca_ViT-B-32`` pack (random
weights, fp32; its decoder is the reranker, as a real CoCa's would be). Only the re-ranked
candidates are ever read from disk, so the N photo rows share a few hundred real JPEG files
(640×480 generated scenes, hard links), each row with its own content hash so that no two
rows share cached image tokens; their vectors are random unit vectors (the ranking does not
matter for time). The vector index is what the library builds for N (flat below 20k, IVF-SQ8
above).

Each query goes through :meth:`Library.search` exactly as the CLI calls it and is timed from
call to return (encode, FAISS, names, reranking: decode, image tokens, scoring):

- K = 0: fast only;
- K > 0 *cold*: the image-token cache is emptied before each query (every candidate decoded
  and encoded by the reranker's image graph);
- K > 0 *warm*: the query's candidates are already in the cache (a repeated or refined
  query), only the decoder runs.

Queries of one setting are timed in turn with the others' (round robin), so a noisy machine
hits them alike; p50/p95 are over the queries.

    python -m benchmarks.search [--sizes 10000 100000] [--ks 0 20 50 100] [--queries 12]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.encoders import TEXTS, ensure_fp32_pack, machine, say
from photosearch import modelpack
from photosearch.catalog import fs_bytes
from photosearch.library import Library

ROOT = Path(__file__).resolve().parent.parent
FILES = 300


def _photo(path: Path, seed: int) -> None:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (640, 480), tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = rng.integers(0, 560), rng.integers(0, 400)
        w, h = rng.integers(30, 200, 2)
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(
            [int(x), int(y), int(x + w), int(y + h)], fill=colour
        )
    img.save(path, "JPEG", quality=90)


def make_library(home: Path, pack_dir: Path, n: int) -> Library:
    """A library of ``n`` photo rows over ``FILES`` real files, with random vectors."""
    models = home / "models"
    models.mkdir(parents=True)
    dest = models / pack_dir.name
    dest.mkdir()
    for f in pack_dir.iterdir():
        if f.is_file():
            os.link(f, dest / f.name)  # no copy of a 1 GB pack
    base = home / "files"
    base.mkdir()
    for i in range(FILES):
        _photo(base / f"base_{i:03d}.jpg", i)
    photos = home / "photos"
    photos.mkdir()
    for i in range(n):
        os.link(base / f"base_{i % FILES:03d}.jpg", photos / f"IMG_{i:06d}.jpg")
    lib = Library(home)
    pack = lib.pack
    folder = lib.add_folder(photos)
    st = (photos / "IMG_000000.jpg").stat()
    rng = np.random.default_rng(0)
    now = time.time()
    cat = lib.catalog
    with cat._write() as c:
        for start in range(0, n, 10_000):
            rows = range(start, min(n, start + 10_000))
            c.executemany(
                "INSERT INTO photos(id, folder_id, path, size, mtime_ns, content_hash, width, "
                "height, format, state, added, updated) VALUES (?, ?, ?, ?, ?, ?, 640, 480, "
                "'JPEG', 'indexed', ?, ?)",
                [
                    (
                        i + 1,
                        folder.id,
                        fs_bytes(photos / f"IMG_{i:06d}.jpg"),
                        st.st_size,
                        st.st_mtime_ns,
                        f"bench-{i}",
                        now,
                        now,
                    )
                    for i in rows
                ],
            )
            vecs = rng.standard_normal((len(rows), pack.embedding_dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            c.executemany(
                "INSERT INTO vectors(photo_id, pack, vector) VALUES (?, ?, ?)",
                [
                    (i + 1, pack.id, v.astype(np.float16).tobytes())
                    for i, v in zip(rows, vecs, strict=True)
                ],
            )
        cat._bump(c)
    lib.rebuild_index()
    return lib


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench(lib: Library, ks: Sequence[int], queries: Sequence[str]) -> list[dict[str, Any]]:
    reranker, why = lib.reranker_or_reason()
    if reranker is None:
        raise SystemExit(f"no reranker: {why}")
    cache = reranker.cache
    assert cache is not None
    settings = [(0, "–")] + [(k, mode) for k in ks if k > 0 for mode in ("cold", "warm")]
    times: dict[tuple[int, str], list[dict[str, float]]] = {s: [] for s in settings}
    for text in [queries[0], *queries]:  # the first round warms sessions and is dropped
        for k, mode in settings:
            if mode == "cold":
                cache.clear()
            elif mode == "warm":
                lib.search(text, n=max(k, 20), rerank=k)  # its candidates now cached
            t0 = time.perf_counter()
            res = lib.search(text, n=max(k, 20), rerank=k)
            wall = (time.perf_counter() - t0) * 1000
            if k and not res.refined:
                raise SystemExit(f"query was not refined: {res.note}")
            times[(k, mode)].append({"wall_ms": wall, **res.timing.to_json()})
    rows = []
    for (k, mode), ts in times.items():
        ts = ts[1:]
        wall = [t["wall_ms"] for t in ts]
        rows.append(
            {
                "k": k,
                "cache": mode,
                "queries": len(ts),
                "p50_ms": _pct(wall, 50),
                "p95_ms": _pct(wall, 95),
                "encode_ms": statistics.median(t["encode_ms"] for t in ts),
                "search_ms": statistics.median(t["search_ms"] + t["names_ms"] for t in ts),
                "rerank_ms": statistics.median(t["rerank_ms"] for t in ts),
            }
        )
    return rows


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    out = [
        "# Search latency: fast, and re-ranked by the cross-attention decoder",
        "",
        f"`python -m benchmarks.search` ({report['command']}). Pack: `{report['pack']}` "
        f"(random weights, {report['precision']}: text graph "
        f"{'dynamic-length' if report['manifest']['text'].get('dynamic_length') else 'fixed'}, "
        f"{report['manifest']['text']['precision']}; reranker "
        f"{report['manifest'].get('reranker', {}).get('form', 'decoder')} scorer "
        f"{report['manifest'].get('reranker', {}).get('scorer_precision', 'fp32')}, image graph "
        f"{report['manifest'].get('reranker', {}).get('image_precision', 'fp32')}; device "
        f"{report['device']}, providers "
        f"{report['providers']}). Machine: {m['cpu']}, {m['cores']} cores "
        f"({', '.join(m['simd_flags'])}), {m['memory_gib']} GiB, {m['os']}; Python "
        f"{m['python']}, ONNX Runtime {m['onnxruntime']}; {m['date']}; load average at start "
        f"{[round(x, 2) for x in m['load_average_start']]}, at end "
        f"{[round(x, 2) for x in report['load_average_end']]}.",
        "",
        "Wall time of `Library.search` per query (text → results), over "
        f"{report['queries']} queries, n = max(K, 20) results. *cold*: no image tokens cached "
        "(each candidate decoded from a 640×480 JPEG and encoded); *warm*: the candidates' "
        "tokens cached (a repeated or refined query). Medians of the stages beside.",
        "",
    ]
    for size in report["sizes"]:
        out += [
            f"## {size['photos']:,} photos ({size['index']})",
            "",
            "| K | cache | p50 ms | p95 ms | encode | search | rerank |",
            "|--:|---|--:|--:|--:|--:|--:|",
        ]
        for r in size["rows"]:
            out.append(
                f"| {r['k']} | {r['cache']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
                f"{r['encode_ms']:.1f} | {r['search_ms']:.1f} | {r['rerank_ms']:.0f} |"
            )
        out.append("")
    out += ["## Goals", ""]
    for g in report["goals"]:
        out.append(f"- {'met' if g['met'] else '**not met**'}: {g['goal']} — {g['value']}")
    out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.search", description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--ks", type=int, nargs="+", default=[0, 20, 50, 100])
    ap.add_argument("--queries", type=int, default=12)
    ap.add_argument("--model", default="coca_ViT-B-32")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/photosearch-bench-cache"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--precision",
        choices=["int8", "fp32"],
        default="int8",
        help="int8: the pack as `models prepare` makes it (coca_ViT-B-32 only); fp32: all fp32",
    )
    args = ap.parse_args(argv)
    if args.precision == "int8":
        if args.model != "coca_ViT-B-32":
            raise SystemExit("--precision int8 is made for coca_ViT-B-32 only")
        from benchmarks.reranker import ensure_packs

        pack = modelpack.load(ensure_packs(args.cache)["pack"])
    else:
        pack, _ = ensure_fp32_pack(args.model, args.cache)
    queries = TEXTS[: args.queries]
    report: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.search", *(argv or sys.argv[1:])]).strip(),
        "pack": args.model,
        "precision": args.precision,
        "manifest": {
            k: pack.manifest[k] for k in ("image", "text", "reranker") if k in pack.manifest
        },
        "queries": len(queries),
        "machine": machine(args.threads or os.cpu_count() or 1),
        "sizes": [],
    }
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="ps-bench-search-") as tmp:
            say(f"{n:,} photos: building the library")
            lib = make_library(Path(tmp), pack.path, n)
            try:
                reranker, _ = lib.reranker_or_reason()
                report["device"] = reranker.device if reranker else None
                report["providers"] = reranker.providers if reranker else None
                say(f"{n:,} photos: timing")
                rows = bench(lib, args.ks, queries)
                report["sizes"].append({"photos": n, "index": lib.index.kind, "rows": rows})
            finally:
                lib.close()
    report["load_average_end"] = os.getloadavg()

    def row(n: int, k: int, cache: str) -> dict[str, Any] | None:
        for s in report["sizes"]:
            if s["photos"] == n:
                return next((r for r in s["rows"] if r["k"] == k and r["cache"] == cache), None)
        return None

    goals = []
    big = max(args.sizes)
    for k, cache, bound in (
        (0, "–", 25),
        (20, "warm", 200),
        (20, "cold", 1000),
        (100, "warm", 1000),
    ):
        if (r := row(big, k, cache)) is not None:
            what = "fast only" if k == 0 else f"K = {k} {cache}"
            goals.append(
                {
                    "goal": f"{what}: p50 ≤ {bound} ms at {big:,} photos",
                    "met": r["p50_ms"] <= bound,
                    "value": f"{r['p50_ms']:.1f} ms",
                }
            )
    report["goals"] = goals
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "search.md").write_text(render(report))
    say(f"wrote {args.out / 'search.md'}")
    for g in goals:
        print(f"{'met' if g['met'] else 'NOT met'}: {g['goal']} ({g['value']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
