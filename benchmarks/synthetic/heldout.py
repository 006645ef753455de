"""Quality where nothing was tuned: a world of another seed, photos of several sizes and JPEG
files, read by the product's own loader and searched through :class:`photosearch.Library`.

For each photo condition (``64png``, ``128png``, ``256jpeg70``, …) the held-out world's test
families are written as files, then measured two ways:

- **files, in process**: every file read by :func:`photosearch.imaging.load_for_model` (the
  indexer's loader: JPEG draft decoding, the pack's resize and crop), then each pack's encoders
  and the base pack's scorer run by photosearch's runtime classes. This gives the rows a
  library cannot (slow over *every* photo for *every* query; the forward, backward and summed
  scorers apart; the distilled and control dual encoders) and the pairwise accuracies;
- **the product**: a :class:`~photosearch.Library` indexes the folder with the base pack and
  answers each query with ``search(rerank=0)`` and ``search(rerank=K)``, as a user's search runs.

β for each scorer is chosen on the *training* world's validation split (64 px PNG), never on
the held-out world. A query is found at k when any gallery scene that matches its description
exactly is among the first k results.

    python -m benchmarks.synthetic.heldout --pack base=build/synthetic/full/packs/base \\
        --pack distilled=build/synthetic/full/packs/distilled --out benchmarks/results/heldout
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.synthetic import evaluate, photos, scenes
from photosearch import modelpack

log = logging.getLogger(__name__)

CONDITIONS = ("64png", "128png", "256png", "128jpeg70", "256jpeg70")
KS = (10, 20, 50)
SCORERS = ("forward", "backward", "both")

Say = Callable[[str], None]


@dataclass
class HeldoutConfig:
    world_seed: int = 1
    families: int = 300  # gallery = 4 × this; one query per family
    conditions: tuple[str, ...] = CONDITIONS
    ks: tuple[int, ...] = KS
    product_k: int = 20
    product: bool = True
    # β: chosen on the training world's validation split.
    training_world: scenes.WorldConfig = field(default_factory=scenes.WorldConfig)
    validation_families: int = 250
    threads: int = 2
    scorer_batch: int = 256


# ---------------------------------------------------------------------------------------------
# Photos on disk


def write_photos(g: evaluate.Gallery, cond: photos.Condition, folder: Path) -> list[Path]:
    """The gallery's scenes as files of ``cond`` in ``folder`` (kept when already written)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in g.scenes:
        path = folder / f"{s.name}{cond.suffix}"
        if not path.exists():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(photos.photo_bytes(s, cond))
            tmp.replace(path)
        paths.append(path)
    return paths


def read_pixels(paths: Sequence[Path], spec: modelpack.ImageSpec) -> np.ndarray:
    """Every file through the product's loader: float32 [N, 3, H, W]."""
    return np.stack([photos.model_input(p.read_bytes(), spec, name=p.name) for p in paths])


# ---------------------------------------------------------------------------------------------
# Scores


@dataclass
class Scores:
    """One pack on one gallery: fast scores, and the base scorer's h̄ over every photo."""

    fast: np.ndarray  # [Q, N]
    hbar: dict[str, np.ndarray]  # scorer -> [Q, N]; empty for packs that reuse the base's


def fast_scores(rt: evaluate.Runtime, g: evaluate.Gallery, pixels: np.ndarray) -> np.ndarray:
    return rt.text.encode(g.captions) @ rt.image.encode(pixels).T


def slow_scores(
    rt: evaluate.Runtime, g: evaluate.Gallery, pixels: np.ndarray, say: Say
) -> tuple[dict[str, np.ndarray], float]:
    """h̄ of every query against every photo, per scorer; the median seconds per query."""
    tokens = rt.scorer.image_tokens(pixels).astype(np.float16).astype(np.float32)  # as cached
    out = {k: np.zeros((len(g.captions), g.size), np.float32) for k in SCORERS}
    times = []
    t_report = time.perf_counter()
    for q, text in enumerate(g.captions):
        t0 = time.perf_counter()
        each = rt.scorer.score_each(text, tokens)
        times.append(time.perf_counter() - t0)
        ll_f, n_f = each["forward"]
        out["forward"][q] = ll_f / n_f
        if "backward" in each:
            ll_b, n_b = each["backward"]
            out["backward"][q] = ll_b / n_b
            out["both"][q] = (ll_f + ll_b) / (n_f + n_b)
        if time.perf_counter() - t_report > 60:
            t_report = time.perf_counter()
            say(f"  slow over all: {q + 1}/{len(g.captions)} queries")
    if "backward" not in rt.scorer.directions:
        del out["backward"], out["both"]
    return out, statistics.median(times)


def top10(scores: np.ndarray) -> np.ndarray:
    return np.stack([evaluate._fast_order(row, 10) for row in scores])


def encoded(fast: np.ndarray, hbar: np.ndarray, kmax: int) -> evaluate.Encoded:
    """What :func:`evaluate.rerank_top10` and :func:`evaluate.choose_beta` read."""
    top = np.stack([evaluate._fast_order(row, kmax) for row in fast])
    hb = np.take_along_axis(hbar, top, axis=1).astype(np.float64)
    empty = np.zeros((0,))
    return evaluate.Encoded(empty, empty, empty, fast, top, hb, 0.0, 0.0)


def pairwise(g: evaluate.Gallery, scores: np.ndarray) -> dict[str, float]:
    """How often the query's own scene out-scores its distractor of each kind (ties: half)."""
    out = {}
    q = np.arange(len(g.captions))
    for kind, idx in g.distractors.items():
        own, other = scores[q, g.query_scene], scores[q, idx]
        out[kind] = 100.0 * float(np.mean((own > other) + 0.5 * (own == other)))
    return out


# ---------------------------------------------------------------------------------------------
# The product's own path


def product_rows(
    pack: Path,
    folder: Path,
    paths: Sequence[Path],
    g: evaluate.Gallery,
    k: int,
    beta: float,
    home: Path,
    say: Say,
) -> list[dict[str, Any]]:
    """Index ``folder`` with a Library and run every query fast and refined."""
    from photosearch.library import Library

    index_of = {p.resolve(): i for i, p in enumerate(paths)}
    lib = Library(home)
    try:
        lib.import_pack(pack)
        lib.add_folder(folder)
        t0 = time.perf_counter()
        lib.index_photos()
        say(f"  product: indexed {len(paths)} files in {time.perf_counter() - t0:.1f} s")
        rows = []
        for depth in (0, k):
            ranks, times = [], []
            for text in g.captions:
                t1 = time.perf_counter()
                res = lib.search(text, n=10, rerank=depth, beta=beta, names=False)
                times.append(time.perf_counter() - t1)
                ranks.append([index_of.get(r.path.resolve(), -1) for r in res] + [-1] * 10)
            rk = np.array([r[:10] for r in ranks])
            rows.append(
                {
                    "method": "product search" if depth == 0 else "product search, refined",
                    "K": depth or None,
                    "beta": beta if depth else None,
                    **evaluate.recall(rk, g.relevant, np.arange(len(g.captions))),
                    "ms_per_query": 1e3 * statistics.median(times),
                }
            )
        return rows
    finally:
        lib.close()


# ---------------------------------------------------------------------------------------------
# β on the training world's validation split


def choose_betas(
    runtimes: list[evaluate.Runtime], cfg: HeldoutConfig, kmax: int, say: Say
) -> dict[str, dict[str, Any]]:
    """β per (pack, scorer), chosen on validation at 64 px PNG (the way the pack's β is)."""
    world = scenes.World(cfg.training_world)
    val = evaluate.describe_gallery(world, "validation", cfg.validation_families, say)
    cond = photos.Condition(64, "png")
    spec = runtimes[0].pack.image
    pixels = np.stack([photos.model_input(photos.photo_bytes(s, cond), spec) for s in val.scenes])
    slow, _ = slow_scores(runtimes[0], val, pixels, say)
    ecfg = evaluate.EvalConfig(ks=cfg.ks)
    out: dict[str, dict[str, Any]] = {}
    for rt in runtimes:
        fast = fast_scores(rt, val, pixels)
        for scorer, hbar in slow.items():
            out[f"{rt.label}/{scorer}"] = evaluate.choose_beta(encoded(fast, hbar, kmax), val, ecfg)
    return out


# ---------------------------------------------------------------------------------------------
# One condition


def measure_condition(
    runtimes: list[evaluate.Runtime],
    g: evaluate.Gallery,
    cond: photos.Condition,
    folder: Path,
    betas: dict[str, dict[str, Any]],
    cfg: HeldoutConfig,
    say: Say,
) -> dict[str, Any]:
    say(f"{cond.label}: writing and reading {g.size} files")
    paths = write_photos(g, cond, folder)
    base = runtimes[0]
    pixels = read_pixels(paths, base.pack.image)
    if base.pack.reranker is None or base.pack.reranker.image != base.pack.image:
        raise ValueError("the base pack's reranker must read photos as its dual encoder does")
    qs = np.arange(len(g.captions))
    kmax = max(cfg.ks)
    say(f"{cond.label}: slow scorer over all {g.size} photos for {len(qs)} queries")
    slow, slow_s = slow_scores(base, g, pixels, say)
    rows: list[dict[str, Any]] = []
    for scorer, hbar in slow.items():
        rows.append(
            {
                "method": f"slow over all ({scorer})",
                "pack": base.label,
                "K": None,
                "beta": None,
                **evaluate.recall(top10(hbar), g.relevant, qs),
                "ms_per_query": 1e3 * slow_s * (1 if scorer != "both" else 1),
            }
        )
    pair = {f"slow ({s})": pairwise(g, h) for s, h in slow.items()}
    for rt in runtimes:
        fast = fast_scores(rt, g, pixels)
        pair[f"fast ({rt.label})"] = pairwise(g, fast)
        rows.append(
            {
                "method": "fast",
                "pack": rt.label,
                "K": None,
                "beta": None,
                **evaluate.recall(top10(fast), g.relevant, qs),
                "ms_per_query": None,
            }
        )
        for scorer, hbar in slow.items():
            enc = encoded(fast, hbar, kmax)
            b = betas[f"{rt.label}/{scorer}"]["chosen"]
            for k in cfg.ks:
                rows.append(
                    {
                        "method": f"fast + rerank ({scorer})",
                        "pack": rt.label,
                        "K": k,
                        "beta": b,
                        **evaluate.recall(evaluate.rerank_top10(enc, qs, k, b), g.relevant, qs),
                        "ms_per_query": None,
                    }
                )
    product: list[dict[str, Any]] = []
    if cfg.product:
        shipped = "both" if "both" in slow else "forward"
        beta = betas[f"{base.label}/{shipped}"]["chosen"]
        with tempfile.TemporaryDirectory(prefix="photosearch-heldout-") as home:
            product = product_rows(
                base.path, folder, paths, g, cfg.product_k, beta, Path(home), say
            )
        for r in product:
            r["pack"] = base.label
    return {"condition": cond.key, "label": cond.label, "rows": rows + product, "pairwise": pair}


# ---------------------------------------------------------------------------------------------
# The whole measurement


def _find(rows: list[dict], method: str, pack: str, k: int | None = None) -> dict | None:
    return next(
        (r for r in rows if r["method"] == method and r["pack"] == pack and r["K"] == k), None
    )


def goals(result: dict[str, Any], labels: list[str], product_k: int) -> list[dict[str, Any]]:
    """The quality issue's bars, per condition (on the held-out world)."""
    base = labels[0]
    rows = result["rows"]
    shipped = "both" if _find(rows, "slow over all (both)", base) else "forward"
    slow = _find(rows, f"slow over all ({shipped})", base)
    fast = _find(rows, "fast", base)
    out = []
    if slow and fast:
        out.append(("slow ≥ fast + 15 R@1", slow["R@1"] - fast["R@1"], 15.0))
    pf = _find(rows, "product search", base)
    pr = _find(rows, "product search, refined", base, product_k)
    if pf and pr:
        out.append((f"product: refined K={product_k} ≥ fast + 8", pr["R@1"] - pf["R@1"], 8.0))
        if slow:
            out.append(
                (f"product: refined K={product_k} within 2 of slow", pr["R@1"] - slow["R@1"], -2.0)
            )
    for label in labels[1:]:
        if "distil" in label:
            d = _find(rows, "fast", label)
            if d and fast:
                out.append((f"{label} fast ≥ fast + 3", d["R@1"] - fast["R@1"], 3.0))
    swap = result["pairwise"].get(f"slow ({shipped})", {}).get("swap")
    if swap is not None:
        out.append((f"swap pairwise of the slow scorer ({shipped}) ≥ 75 %", swap, 75.0))
    return [
        {"goal": name, "value": round(v, 1), "bar": bar, "met": bool(v >= bar)}
        for name, v, bar in out
    ]


def run(
    packs: dict[str, Path], cfg: HeldoutConfig, work: Path, *, say: Say | None = None
) -> dict[str, Any]:
    say = say or (lambda m: log.info("%s", m))
    started = time.perf_counter()
    runtimes = [evaluate.Runtime(k, v, cfg.threads, cfg.scorer_batch) for k, v in packs.items()]
    betas = choose_betas(runtimes, cfg, max(cfg.ks), say)
    for key, b in betas.items():
        say(f"β {key}: {b['chosen']}")
    world = scenes.World(scenes.WorldConfig(seed=cfg.world_seed, test_families=cfg.families))
    g = evaluate.describe_gallery(world, "test", cfg.families, say)
    report: dict[str, Any] = {
        "machine": evaluate.machine(cfg.threads),
        "config": {
            **asdict(cfg),
            "training_world": cfg.training_world.to_json(),
        },
        "gallery": {
            "world_seed": cfg.world_seed,
            "scenes": g.size,
            "queries": len(g.captions),
            "mean_relevant_per_query": float(np.mean([len(r) for r in g.relevant])),
        },
        "packs": {
            rt.label: {
                "path": str(rt.path),
                "name": rt.pack.name,
                "source": rt.pack.manifest.get("source"),
            }
            for rt in runtimes
        },
        "beta": betas,
        "conditions": [],
    }
    for key in cfg.conditions:
        cond = photos.Condition.parse(key)
        res = measure_condition(
            runtimes, g, cond, work / f"seed{cfg.world_seed}" / cond.key, betas, cfg, say
        )
        res["goals"] = goals(res, list(packs), cfg.product_k)
        report["conditions"].append(res)
        for goal in res["goals"]:
            verdict = "met" if goal["met"] else "NOT met"
            say(f"{cond.label}: {verdict}: {goal['goal']} ({goal['value']})")
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


# ---------------------------------------------------------------------------------------------
# Markdown


def _cell(v: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if v is None else fmt.format(v)


def spread(report: dict[str, Any], method: str, pack: str, k: int | None = None) -> str:
    """R@1 of one row over every condition: min–max (mean)."""
    vals = [
        r["R@1"]
        for c in report["conditions"]
        for r in c["rows"]
        if r["method"] == method and r["pack"] == pack and r["K"] == k
    ]
    if not vals:
        return "–"
    return f"{min(vals):.1f}–{max(vals):.1f} (mean {statistics.mean(vals):.1f})"


TITLE = "Held-out quality: another world, other sizes, JPEG, through the product"


def render_markdown(report: dict[str, Any], command: str = "", title: str = TITLE) -> str:
    m, g = report["machine"], report["gallery"]
    labels = list(report["packs"])
    conds = report["conditions"]
    lines = [
        f"# {title}",
        "",
        f"World seed {g['world_seed']} (training used seed "
        f"{report['config']['training_world']['seed']}): {g['scenes']} scenes, "
        f"{g['queries']} queries (one per family: its scene and three hard distractors), "
        f"{g['mean_relevant_per_query']:.2f} matching scenes per query on average. Every photo "
        "is a file read by the product's loader; the product rows index the folder with a "
        "Library and run `search`. β chosen on the training world's validation split.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; ONNX Runtime "
        f"{m['onnxruntime']}, {m['ort_threads']} threads; load average "
        f"{m['load_average_at_start']} → {m.get('load_average_at_end')}; {m['date']}.",
        "",
    ]
    if command:
        lines += [f"Made by `{command}` ({report['seconds']:.0f} s).", ""]
    lines += ["## R@1 per condition", ""]
    head = "| method | pack | K | " + " | ".join(c["label"] for c in conds) + " | spread |"
    lines += [head, "|---|---|---:|" + "---:|" * len(conds) + "---|"]
    keys = []
    for r in conds[0]["rows"]:
        key = (r["method"], r["pack"], r["K"])
        if key not in keys:
            keys.append(key)
    for method, pack, k in keys:
        cells = []
        for c in conds:
            row = _find(c["rows"], method, pack, k)
            cells.append(_cell(row["R@1"] if row else None))
        lines.append(
            f"| {method} | {pack} | {k if k is not None else '–'} | "
            + " | ".join(cells)
            + f" | {spread(report, method, pack, k)} |"
        )
    lines += ["", "## R@5 / R@10 of the main rows", ""]
    lines += ["| method | pack | K | " + " | ".join(c["label"] for c in conds) + " |"]
    lines += ["|---|---|---:|" + "---:|" * len(conds)]
    main = [k for k in keys if k[1] == labels[0] and (k[2] in (None, 20))]
    for method, pack, k in main:
        cells = []
        for c in conds:
            row = _find(c["rows"], method, pack, k)
            cells.append(f"{row['R@5']:.1f} / {row['R@10']:.1f}" if row else "–")
        lines.append(
            f"| {method} | {pack} | {k if k is not None else '–'} | " + " | ".join(cells) + " |"
        )
    lines += ["", "## Pairwise accuracy per distractor kind (%): swap / colour / relation", ""]
    scorers = list(conds[0]["pairwise"])
    lines += ["| scorer | " + " | ".join(c["label"] for c in conds) + " |"]
    lines += ["|---|" + "---:|" * len(conds)]
    for s in scorers:
        cells = [
            " / ".join(f"{c['pairwise'][s][k]:.1f}" for k in scenes.DISTRACTOR_KINDS) for c in conds
        ]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "## Times (median ms per query)", ""]
    lines += ["| what | " + " | ".join(c["label"] for c in conds) + " |"]
    lines += ["|---|" + "---:|" * len(conds)]
    for method in ("slow over all (forward)", "product search", "product search, refined"):
        cells = []
        for c in conds:
            row = next((r for r in c["rows"] if r["method"] == method), None)
            cells.append(_cell(row["ms_per_query"] if row else None, "{:,.1f}"))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "## Goals", "", "| condition | goal | value | met |", "|---|---|---:|---|"]
    for c in conds:
        for goal in c["goals"]:
            lines.append(
                f"| {c['label']} | {goal['goal']} | {goal['value']:+.1f} | "
                f"{'yes' if goal['met'] else 'no'} |"
            )
    lines += ["", "## β (chosen on the training world's validation split)", ""]
    for key, b in report["beta"].items():
        grid = ", ".join(f"{r['beta']:g}: {r['mean_R@1']:.1f}" for r in b["grid"])
        lines.append(f"- {key}: **{b['chosen']:g}** (mean R@1 over K: {grid})")
    if report.get("training"):
        lines += ["", "## Training", ""]
        lines += [f"- {label}: {t}" for label, t in report["training"].items()]
    lines.append("")
    return "\n".join(lines)


def write(
    report: dict[str, Any], out: Path, command: str = "", *, title: str = TITLE
) -> tuple[Path, Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    md, js = out.with_suffix(".md"), out.with_suffix(".json")
    js.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md.write_text(render_markdown(report, command, title))
    return md, js


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.synthetic.heldout",
        description="Quality on a held-out world, photo sizes and JPEG, through the product.",
    )
    p.add_argument("--pack", action="append", required=True, metavar="LABEL=DIR")
    p.add_argument("--out", type=Path, required=True, help="output path without suffix")
    p.add_argument("--work", type=Path, default=Path("build/synthetic/heldout"))
    p.add_argument("--world-seed", type=int, default=HeldoutConfig.world_seed)
    p.add_argument("--families", type=int, default=HeldoutConfig.families)
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    p.add_argument("--validation-families", type=int, default=HeldoutConfig.validation_families)
    p.add_argument("--threads", type=int, default=HeldoutConfig.threads)
    p.add_argument("--no-product", action="store_true", help="skip the Library rows")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    cfg = HeldoutConfig(
        world_seed=args.world_seed,
        families=args.families,
        conditions=tuple(args.conditions),
        validation_families=args.validation_families,
        threads=args.threads,
        product=not args.no_product,
    )
    packs = {k: Path(v) for k, v in (p.split("=", 1) for p in args.pack)}
    report = run(packs, cfg, args.work)
    command = "python -m benchmarks.synthetic.heldout " + " ".join(
        a if " " not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    md, js = write(report, args.out, command)
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
