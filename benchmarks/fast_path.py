"""K = 0 for each model the catalogue can prepare: one query's text encoding plus FAISS at 100k.

The fast path of a search is the text encoder on one query and a top-k search of the vector
index. For every architecture in ``acquire.catalogue.CATALOGUE`` (and the CoCa used as a
reranker, whose text tower is a pack's fast stage when it is its own reranker), the pack is
exported as ``models prepare`` exports it (int8 where the gate holds, dynamic-length text graph
where the tower allows it; random weights: speed does not depend on them) and timed through the
app's own ``TextEncoder``; FAISS is the index the library builds for 100,000 photos of the
model's embedding size (random unit vectors), searched with the library's default ``nprobe``.
Queries are timed round robin over the models, one at a time as a search runs them.

    python -m benchmarks.fast_path [--photos 100000] [--queries 30] [--models NAME …]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.encoders import TEXTS, _exporter_sha256, machine, say
from photosearch import modelpack
from photosearch.acquire.catalogue import CATALOGUE
from photosearch.encoders import TextEncoder
from photosearch.vectors import VectorIndex

ROOT = Path(__file__).resolve().parent.parent
BOUND_MS = 25.0


def _models() -> list[str]:
    names = []
    for c in CATALOGUE:
        for w in (getattr(c, "encoder", None), getattr(c, "reranker", None)):
            model = getattr(w, "model", None)
            if model and model not in names:
                names.append(model)
    return names


def ensure_pack(name: str, cache: Path) -> modelpack.ModelPack:
    """``name`` exported as ``models prepare`` exports it (no reranker), cached per exporter."""
    from photosearch.export_onnx import exporter

    folder = cache / f"fast-{name}-int8"
    stamp = cache / f"fast-{name}-int8.exporter-sha256"
    try:
        pack = modelpack.load(folder)
        if stamp.read_text() == _exporter_sha256():
            return pack
    except (modelpack.PackError, OSError):
        pass
    say(f"{name}: exporting (int8)")
    exporter.export_pack(exporter.Source(name, None), folder, quantize="int8", overwrite=True)
    stamp.write_text(_exporter_sha256())
    return modelpack.load(folder)


def measure(names: list[str], photos: int, queries: int, cache: Path) -> list[dict[str, Any]]:
    packs = {n: ensure_pack(n, cache) for n in names}
    encoders = {n: TextEncoder(p, device="cpu") for n, p in packs.items()}
    rng = np.random.default_rng(0)
    indexes: dict[int, VectorIndex] = {}
    for dim in sorted({p.embedding_dim for p in packs.values()}):
        say(f"building the index of {photos:,} vectors of {dim}")
        v = rng.standard_normal((photos, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        indexes[dim] = VectorIndex.build(np.arange(photos), v)
    texts = [TEXTS[i % len(TEXTS)] for i in range(queries)]
    times: dict[str, dict[str, list[float]]] = {n: {"text": [], "faiss": []} for n in names}
    for n, enc in encoders.items():  # warm-up
        indexes[packs[n].embedding_dim].search(enc.encode(texts[:1]), 20)
    for text in texts:
        for n, enc in encoders.items():
            t0 = time.perf_counter()
            q = enc.encode([text])
            t1 = time.perf_counter()
            indexes[packs[n].embedding_dim].search(q, 20)
            t2 = time.perf_counter()
            times[n]["text"].append((t1 - t0) * 1000)
            times[n]["faiss"].append((t2 - t1) * 1000)
    rows = []
    for n in names:
        t, f = times[n]["text"], times[n]["faiss"]
        total = [a + b for a, b in zip(t, f, strict=True)]
        m = packs[n].manifest
        rows.append(
            {
                "model": n,
                "text_graph": "dynamic length" if m["text"].get("dynamic_length") else "fixed",
                "context": m["text"]["context_length"],
                "precision": m["text"]["precision"],
                "index": indexes[packs[n].embedding_dim].kind,
                "text_p50_ms": statistics.median(t),
                "faiss_p50_ms": statistics.median(f),
                "k0_p50_ms": statistics.median(total),
                "k0_p95_ms": float(np.percentile(total, 95)),
                "providers": encoders[n].providers,
            }
        )
    return rows


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# The fast path (K = 0) for each model the catalogue prepares",
        "",
        f"`{report['command']}`. One query's text encoding (the app's `TextEncoder`, the pack "
        "as `models prepare` exports it: int8 where its gate holds, random weights) plus a "
        f"FAISS top-20 over {report['photos']:,} photos (the index the library builds for "
        f"that many), {report['queries']} queries round robin over the models. Machine: "
        f"{m['cpu']}, {m['cores']} cores, ONNX Runtime {m['onnxruntime']}; {m['date']}; load "
        f"average at start {[round(x, 2) for x in m['load_average_start']]}, at end "
        f"{[round(x, 2) for x in report['load_average_end']]}.",
        "",
        "| model | text graph | precision | text p50 ms | FAISS p50 ms | K = 0 p50 ms | p95 | "
        f"≤ {BOUND_MS:g} ms |",
        "|---|---|---|--:|--:|--:|--:|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['model']} | {r['text_graph']} ({r['context']}) | {r['precision']} | "
            f"{r['text_p50_ms']:.1f} | {r['faiss_p50_ms']:.2f} ({r['index']}) | "
            f"**{r['k0_p50_ms']:.1f}** | {r['k0_p95_ms']:.1f} | "
            f"{'yes' if r['k0_p50_ms'] <= BOUND_MS else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fast_path", description=__doc__)
    ap.add_argument("--photos", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--models", nargs="+", default=None, metavar="NAME")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/photosearch-bench-cache"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    report: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.fast_path", *(argv or sys.argv[1:])]).strip(),
        "photos": args.photos,
        "queries": args.queries,
        "machine": machine(os.cpu_count() or 1),
    }
    report["rows"] = measure(args.models or _models(), args.photos, args.queries, args.cache)
    report["load_average_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fast_path.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "fast_path.md").write_text(render(report))
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
