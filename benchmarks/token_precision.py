"""Does the reranker's storage and arithmetic change what a user sees? Top-10 agreement.

The token cache keeps each photo's image tokens in float16 (half the disk of float32), and
``models prepare`` keeps int8 reranker graphs where their log-likelihood gate holds. Neither
is exact; the question the issue asks is whether the refined top 10 stays the same. Measured
on the synthetic instrument through the product's own path: a world of another seed than the
training one, rendered to PNG files, indexed by ``Library`` with the committed synthetic pack,
each family's caption searched (fast top K), and the K candidates refined four ways:

- reference: float32 tokens, the pack's float32 graphs;
- float16 tokens (what the cache stores), float32 graphs: the runtime today;
- float16 tokens, int8 graphs (image and scorer, ``exporter.quantize_int8``);
- float32 tokens, int8 graphs.

For each, the share of queries whose refined top 10 equals the reference's (same photos in the
same order, and as a set), and R@1 (the caption's own scene first). The fused score is the
product's: fast cosine + β·h̄ with the pack's β.

    python -m benchmarks.token_precision [--families 200] [--seed 7] [--k 20] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.encoders import machine, say
from benchmarks.synthetic import scenes
from photosearch import imaging, modelpack
from photosearch.library import Library
from photosearch.rerank import CrossAttentionScorer

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "tests" / "data" / "synthetic-pack"


def _int8_pack(dest: Path) -> Path:
    """A copy of the synthetic pack with both reranker graphs quantised to int8."""
    from photosearch.export_onnx.exporter import quantize_int8

    shutil.copytree(PACK, dest)
    m = json.loads((dest / modelpack.MANIFEST).read_text())
    for key in ("image_file", "scorer_file"):
        name = m["reranker"][key]
        quantize_int8(PACK / name, dest / name)
        m["files"][name] = {
            "size": (dest / name).stat().st_size,
            "sha256": modelpack.sha256_file(dest / name),
        }
    (dest / modelpack.MANIFEST).write_text(json.dumps(m, indent=2))
    return dest


def _library(home: Path, families: int, seed: int, size: int) -> tuple[Library, list[tuple]]:
    world = scenes.World(scenes.WorldConfig(seed=seed))
    folder = home / "Pictures"
    folder.mkdir(parents=True)
    queries = []
    for fam in world.families("test", families):
        paths = {}
        for member, scene in fam.members.items():
            paths[member] = folder / f"f{fam.index:04d}_{member}.png"
            scene.render(size).save(paths[member])
        queries.append((fam.captions["base"], paths["base"].resolve()))
    lib = Library(home)
    lib.import_pack(PACK)
    lib.add_folder(folder)
    lib.index_photos()
    return lib, queries


def _refine(
    scorer: CrossAttentionScorer, text: str, tokens: np.ndarray, fast: np.ndarray, beta: float
) -> np.ndarray:
    ll, count = scorer.score(text, tokens)
    fused = fast + beta * ll / np.maximum(count, 1)
    return np.argsort(-fused, kind="stable")[:10]


def measure(families: int, seed: int, k: int, size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ps-token-precision-") as tmp:
        home = Path(tmp) / "home"
        say(f"{families} families of seed {seed} at {size} px: indexing")
        lib, queries = _library(home, families, seed, size)
        try:
            pack = modelpack.load(PACK)
            beta = lib.rerank_defaults()[1]
            scorers = {
                "fp32": CrossAttentionScorer(pack, device="cpu"),
                "int8": CrossAttentionScorer(
                    modelpack.load(_int8_pack(Path(tmp) / "i8")), device="cpu"
                ),
            }
            spec = pack.reranker.image if pack.reranker else None
            assert spec is not None
            orders: dict[str, list[np.ndarray]] = {v: [] for v in VARIANTS}
            hits: dict[str, int] = {v: 0 for v in VARIANTS}
            for qi, (text, relevant) in enumerate(queries):
                res = lib.search(text, n=k, rerank=0)
                paths = [r.path for r in res.results]
                fast = np.array([r.fast_score for r in res.results], np.float32)
                pixels = np.stack([imaging.load_for_model(p, spec)[0] for p in paths])
                for variant in VARIANTS:
                    graphs, tokens = variant.split("/")
                    t = scorers[graphs].image_tokens(pixels)
                    if tokens == "fp16":
                        t = t.astype(np.float16).astype(np.float32)
                    top = _refine(scorers[graphs], text, t, fast, beta)
                    orders[variant].append(top)
                    hits[variant] += Path(paths[int(top[0])]).resolve() == relevant
                if qi % 50 == 0:
                    say(f"query {qi}/{len(queries)}")
        finally:
            lib.close()
    ref = orders["fp32/fp32"]
    out = {}
    for variant in VARIANTS:
        same = [np.array_equal(a, b) for a, b in zip(orders[variant], ref, strict=True)]
        same_set = [set(a) == set(b) for a, b in zip(orders[variant], ref, strict=True)]
        out[variant] = {
            "same_top10_order": float(np.mean(same)),
            "same_top10_set": float(np.mean(same_set)),
            "r_at_1": hits[variant] / len(queries),
        }
    return {"queries": len(queries), "beta": beta, "variants": out}


VARIANTS = ("fp32/fp32", "fp32/fp16", "int8/fp16", "int8/fp32")
LABELS = {
    "fp32/fp32": "reference: float32 tokens, float32 graphs",
    "fp32/fp16": "float16 tokens (the cache), float32 graphs",
    "int8/fp16": "float16 tokens, int8 graphs",
    "int8/fp32": "float32 tokens, int8 graphs",
}


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Reranker precision: does the refined top 10 change?",
        "",
        f"`{r['command']}`: {r['queries']} queries (each family's caption) over "
        f"{r['queries'] * 4} photos of the synthetic world, seed {r['seed']} (training used "
        f"seed 0), rendered at {r['size']} px to PNG and indexed by `Library` with "
        f"`tests/data/synthetic-pack`; the fast top {r['k']} refined with β = {r['beta']:g}. "
        f"Machine: {m['cpu']}, {m['cores']} cores; {m['date']}.",
        "",
        "| refined with | same top 10 (order) | same top 10 (set) | R@1 |",
        "|---|--:|--:|--:|",
    ]
    for v in VARIANTS:
        x = r["variants"][v]
        lines.append(
            f"| {LABELS[v]} | {x['same_top10_order']:.1%} | {x['same_top10_set']:.1%} | "
            f"{x['r_at_1']:.1%} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.token_precision", description=__doc__)
    ap.add_argument("--families", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    report = measure(args.families, args.seed, args.k, args.size)
    report.update(
        command=" ".join(["python -m benchmarks.token_precision", *(argv or sys.argv[1:])]),
        seed=args.seed,
        k=args.k,
        size=args.size,
        machine=machine(1),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "token_precision.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "token_precision.md").write_text(render(report))
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
