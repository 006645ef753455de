"""Calibrate a model pack on photos with captions: β, the relevance curves and the cut-off.

    python benchmarks/calibrate.py --pack PACK --photos DIR --captions captions.json \\
        --out CALIBRATED_PACK [--absent absent.json] [--report benchmarks/results/calibration]

``--captions`` is COCO's caption file (``images`` with ``id``/``file_name``, ``annotations``
with ``image_id``/``caption``), the Karpathy split file of Flickr30k/COCO (``images`` with
``filename`` and ``sentences``), or a plain list of ``{"image": FILE, "captions": [...]}``;
files are relative to ``--photos``. A caption's match is its own photo. ``--absent`` (a JSON
list of texts, optional) are queries that describe nothing in the photos: they measure "no good
match". Without it, no query of that kind is measured.

What it does, all through the product (a :class:`photosearch.Library` in a temporary home
indexes the photos with the pack; every caption is searched as a user's search runs, refined
with depth ``--rerank``, file names ignored):

1. the queries are split in two halves by photo (seeded): **fit** and **test**;
2. on *fit*: β for ``fast + β·h̄`` (the grid below, best R@1 of the refined list); a logistic
   curve from the fast score to "this photo is the caption's" over the fast top ``-n``, and one
   from the fused score over the refined top K; the **threshold**: the highest cut-off that
   keeps the caption's photo above it for ``--keep`` (95 %) of the queries whose photo is listed;
3. on *test* (never fitted on): R@1/5/10 fast and refined, and the cut-off's figures — of the
   queries whose photo is listed, how many keep it above the cut-off; of the absent queries,
   how many get "no good match"; precision and recall of the matches;
4. ``--out``: a copy of the pack whose manifest carries ``calibration`` (and ``reranker.beta``);
   ``--report``: ``NAME.md`` and ``NAME.json``.

The displayed relevance is what :mod:`photosearch.relevance` shows in the window and the CLI,
computed by the same function, so the figures are the product's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from photosearch import modelpack  # noqa: E402
from photosearch.relevance import FIELD, Calibration, Logistic, displayed  # noqa: E402

BETAS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)
Say = Callable[[str], None]


class CaptionsError(ValueError):
    """A captions file in none of the known layouts, or naming photos that are not there."""


# ---------------------------------------------------------------------------------------------
# Captions


def read_captions(path: Path, photos: Path) -> list[tuple[Path, list[str]]]:
    """(photo file, its captions) from a COCO, Karpathy or plain captions file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CaptionsError(f"{path}: cannot read it as JSON ({e})") from None
    pairs: dict[str, list[str]] = {}
    if isinstance(data, dict) and "annotations" in data and "images" in data:  # COCO
        names = {im["id"]: im["file_name"] for im in data["images"]}
        for a in data["annotations"]:
            if a.get("image_id") not in names:
                raise CaptionsError(f"{path}: caption for unknown image id {a.get('image_id')!r}")
            pairs.setdefault(names[a["image_id"]], []).append(str(a["caption"]))
    elif isinstance(data, dict) and "images" in data:  # Karpathy's dataset_*.json
        for im in data["images"]:
            name = os.path.join(im.get("filepath", ""), im["filename"])
            pairs[name] = [str(s.get("raw") or " ".join(s["tokens"])) for s in im["sentences"]]
    elif isinstance(data, list):
        for item in data:
            if not isinstance(item, dict) or "image" not in item or "captions" not in item:
                raise CaptionsError(f"{path}: a list item is not {{'image', 'captions'}}")
            pairs[str(item["image"])] = [str(c) for c in item["captions"]]
    else:
        raise CaptionsError(
            f"{path}: not a COCO captions file, a Karpathy split file or a list of "
            "{'image', 'captions'}"
        )
    out = []
    missing = []
    for name, caps in sorted(pairs.items()):
        file = photos / name
        if not file.is_file():
            missing.append(name)
        elif caps:
            out.append((file, caps))
    if missing:
        raise CaptionsError(
            f"{len(missing)} photo(s) named in {path} are not in {photos}, e.g. {missing[0]!r}"
        )
    if not out:
        raise CaptionsError(f"{path}: no captions")
    return out


# ---------------------------------------------------------------------------------------------
# Searching through the product


@dataclass
class Row:
    """One result of one query: its scores, and whether it is the caption's photo."""

    fast: float
    h: float | None  # h̄ when refined
    right: bool


@dataclass
class Asked:
    text: str
    present: bool  # its photo is in the library
    rows: list[Row]  # in the refined list's order (refined top K, then the fast rest)
    photo: int | None = None  # which photo it describes (the fit/test split keeps photos whole)


def search_all(
    pack: Path,
    items: Sequence[tuple[Path, list[str]]],
    absent: Sequence[str],
    *,
    k: int,
    n: int,
    per_photo: int,
    home: Path,
    say: Say,
) -> tuple[list[Asked], list[Asked], dict[str, Any]]:
    """Index the photos with ``pack`` and run every caption (and absent text) through
    ``Library.search`` with depth ``k`` and β = 1 (β only reorders the refined rows, which
    all carry their fast score and h̄, so any β is re-applied afterwards)."""
    from photosearch.library import Library
    from photosearch.search import Query

    folder = home / "photos"
    folder.mkdir(parents=True)
    where: dict[Path, int] = {}
    for i, (file, _) in enumerate(items):
        target = folder / f"{i:06d}{file.suffix.lower()}"
        try:
            os.link(file, target)
        except OSError:
            shutil.copyfile(file, target)
        where[target.resolve()] = i
    lib = Library(home / "home")
    try:
        lib.import_pack(pack)
        lib.add_folder(folder)
        t0 = time.perf_counter()
        report = lib.index_photos()
        say(f"indexed {len(items)} photos in {time.perf_counter() - t0:.0f} s")
        device = None

        def ask(text: str, want: int | None) -> Asked:
            nonlocal device
            res = lib.searcher.search(Query(text, n=n, rerank=k, beta=1.0, names=False))
            device = res.device or device
            rows = [
                Row(r.fast_score, r.rerank_score, where.get(r.path.resolve()) == want) for r in res
            ]
            return Asked(text, want is not None, rows, want)

        t0 = time.perf_counter()
        present = [ask(text, i) for i, (_, caps) in enumerate(items) for text in caps[:per_photo]]
        gone = [ask(text, None) for text in absent]
        seconds = time.perf_counter() - t0
        say(f"searched {len(present) + len(gone)} queries in {seconds:.0f} s")
        info = {
            "photos": len(items),
            "unreadable": len(report.problems),
            "device": device,
            "ms_per_query": round(1e3 * seconds / max(1, len(present) + len(gone)), 1),
        }
        return present, gone, info
    finally:
        lib.close()


# ---------------------------------------------------------------------------------------------
# Fitting


def fused_order(a: Asked, beta: float) -> list[Row]:
    """The list as the product orders it with ``beta``: refined rows by fast + β·h̄ (the rows
    the reranker could not read after them), then the fast rest."""
    head = [r for r in a.rows if r.h is not None]
    head.sort(key=lambda r: -(r.fast + beta * r.h))  # type: ignore[operator]
    return head + [r for r in a.rows if r.h is None]


def recall_at(asked: Sequence[Asked], ks: Sequence[int], order: Callable[[Asked], list[Row]]):
    out = {}
    for k in ks:
        hits = [any(r.right for r in order(a)[:k]) for a in asked]
        out[f"R@{k}"] = 100.0 * float(np.mean(hits)) if hits else float("nan")
    return out


def fast_order(a: Asked) -> list[Row]:
    return sorted(a.rows, key=lambda r: -r.fast)


def choose_beta(fit: Sequence[Asked], betas: Sequence[float] = BETAS) -> tuple[float, dict]:
    scores = {b: recall_at(fit, (1,), lambda a, b=b: fused_order(a, b))["R@1"] for b in betas}
    best = max(betas, key=lambda b: (scores[b], -abs(math.log10(b + 1e-3))))  # ties: near 1
    return best, {f"{b:g}": round(v, 2) for b, v in scores.items()}


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3) -> Logistic:
    """Maximum-likelihood logistic regression on one feature (Newton's method, a little L2 on
    the slope), standardised for the fit and returned on the raw scale."""
    if len(x) < 2 or y.min() == y.max():
        raise ValueError("need both matching and non-matching results to fit a curve")
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    z = (x - mu) / sd
    w = np.zeros(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(w[0] * z + w[1])))
        g = np.array([np.sum((p - y) * z) + l2 * w[0], np.sum(p - y)])
        s = p * (1 - p)
        h = np.array([[np.sum(s * z * z) + l2, np.sum(s * z)], [np.sum(s * z), np.sum(s) + 1e-9]])
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    a = max(w[0] / sd, 1e-6)  # a higher score is never less likely to match
    return Logistic(float(a), float(w[1] - w[0] * mu / sd))


def shown(cal: Calibration, a: Asked, beta: float) -> list[tuple[float, bool]]:
    """(displayed relevance, right) down the product's list, as :mod:`relevance` shows it."""
    rows = fused_order(a, beta)
    raw = [cal.probability(r.fast, r.h) for r in rows]
    return list(zip(displayed(raw, 0), [r.right for r in rows], strict=True))


def cutoff_figures(
    cal: Calibration, present: Sequence[Asked], absent: Sequence[Asked], beta: float, t: float
) -> dict[str, Any]:
    listed = kept = matched = right_matches = 0
    for a in present:
        rows = shown(cal, a, beta)
        if any(r for _, r in rows):
            listed += 1
            kept += any(r and p >= t for p, r in rows)
        matched += sum(p >= t for p, _ in rows)
        right_matches += sum(r and p >= t for p, r in rows)
    no_match = sum(all(p < t for p, _ in shown(cal, a, beta)) for a in absent)
    top_right = [shown(cal, a, beta)[0] for a in present if a.rows]
    return {
        "queries_with_photo": len(present),
        "photo_listed": listed,
        "kept_above_cutoff_pct": 100.0 * kept / listed if listed else None,
        "absent_queries": len(absent),
        "no_good_match_pct": 100.0 * no_match / len(absent) if absent else None,
        "match_precision_pct": 100.0 * right_matches / matched if matched else None,
        "match_recall_pct": 100.0 * right_matches / len(present) if present else None,
        "top_is_match_and_right_pct": 100.0 * float(np.mean([p >= t and r for p, r in top_right]))
        if top_right
        else None,
    }


def choose_threshold(
    cal: Calibration, fit: Sequence[Asked], beta: float, keep: float
) -> tuple[float, float]:
    """The highest cut-off that keeps the caption's photo at or above it for ``keep`` of the
    fit queries whose photo is listed; (threshold, the share kept)."""
    best = []
    for a in fit:
        mine = [p for p, r in shown(cal, a, beta) if r]
        if mine:
            best.append(max(mine))
    if not best:
        raise ValueError("no fit query lists its own photo: nothing to set a cut-off by")
    ranked = np.sort(np.array(best))[::-1]
    i = min(len(ranked) - 1, max(0, math.ceil(keep * len(ranked)) - 1))
    t = float(ranked[i])
    return t, float(np.mean(np.array(best) >= t))


def calibrate(
    present: Sequence[Asked],
    absent: Sequence[Asked],
    *,
    keep: float,
    seed: int,
    info: dict[str, Any],
) -> tuple[Calibration, dict[str, Any]]:
    """Fit on one half of the queries (by photo), report on the other."""
    rng = np.random.default_rng(seed)
    photos = sorted({a.photo for a in present}, key=lambda p: -1 if p is None else p)
    in_fit = {p: i % 2 == 0 for p, i in zip(photos, rng.permutation(len(photos)), strict=True)}
    fit = [a for a in present if in_fit[a.photo]]
    test = [a for a in present if not in_fit[a.photo]]
    gone = rng.permutation(len(absent)) % 2 == 0
    fit_absent = [a for a, h in zip(absent, gone, strict=True) if h]
    test_absent = [a for a, h in zip(absent, gone, strict=True) if not h]
    refined = any(r.h is not None for a in present for r in a.rows)
    beta, beta_r1 = choose_beta(fit) if refined else (None, {})
    rows = [r for a in fit + fit_absent for r in a.rows]
    fast = fit_logistic(np.array([r.fast for r in rows]), np.array([r.right for r in rows], float))
    curve = None
    if refined:
        head = [r for r in rows if r.h is not None]
        curve = fit_logistic(
            np.array([r.fast + beta * r.h for r in head]),  # type: ignore[operator]
            np.array([r.right for r in head], float),
        )
    draft = Calibration(fast, curve, beta, 0.5, {})
    threshold, kept = choose_threshold(draft, fit, beta or 0.0, keep)
    cal = Calibration(
        fast,
        curve,
        beta,
        threshold,
        {
            "fitted": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "queries": len(fit),
            "absent_queries": len(fit_absent),
            "keep": keep,
            "kept_on_fit_pct": round(100 * kept, 1),
            **{k: v for k, v in info.items() if k in ("photos", "rerank", "data")},
        },
    )
    b = beta or 0.0
    report = {
        "beta": beta,
        "beta_R@1_on_fit": beta_r1,
        "threshold": threshold,
        "calibration": cal.to_manifest(),
        "test": {
            "queries": len(test),
            "fast": recall_at(test, (1, 5, 10), fast_order),
            "refined": recall_at(test, (1, 5, 10), lambda a: fused_order(a, b)),
            "cutoff": cutoff_figures(cal, test, test_absent, b, threshold),
        },
        "fit": {"cutoff": cutoff_figures(cal, fit, fit_absent, b, threshold)},
    }
    return cal, report


def check(cal: Calibration, present: Sequence[Asked], absent: Sequence[Asked]) -> dict[str, Any]:
    """A calibration already made, measured on every query of another set (nothing fitted)."""
    b = cal.beta or 0.0
    return {
        "beta": cal.beta,
        "beta_R@1_on_fit": None,
        "threshold": cal.threshold,
        "calibration": cal.to_manifest(),
        "test": {
            "queries": len(present),
            "fast": recall_at(present, (1, 5, 10), fast_order),
            "refined": recall_at(present, (1, 5, 10), lambda a: fused_order(a, b)),
            "cutoff": cutoff_figures(cal, present, absent, b, cal.threshold),
        },
    }


def write_pack(pack: Path, out: Path, cal: Calibration) -> None:
    """A copy of ``pack`` whose manifest carries the calibration (and its β), verified."""
    if out.exists():
        raise FileExistsError(f"{out} exists: give a new folder for the calibrated pack")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(pack, tmp, ignore=shutil.ignore_patterns(".*"))
    manifest = modelpack.read_manifest(tmp)
    manifest[FIELD] = cal.to_manifest()
    if cal.beta is not None and manifest.get("reranker"):
        manifest["reranker"]["beta"] = cal.beta
    (tmp / modelpack.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    modelpack.verify(tmp, full=True)
    tmp.rename(out)


# ---------------------------------------------------------------------------------------------
# Report


def _pct(v: float | None) -> str:
    return "–" if v is None or v != v else f"{v:.1f}"


def render(report: dict[str, Any], command: str) -> str:
    t = report["test"]
    c = t["cutoff"]
    m = report["machine"]
    lines = [
        "# Relevance calibration",
        "",
        f"`{command}`",
        "",
        f"Pack `{report['pack']}`, {report['photos']} photos, {report['queries']} captions "
        f"(+ {report['absent']} absent queries), rerank depth {report['rerank']}, "
        f"{report['ms_per_query']} ms per query on {report['device']}; {m}. "
        + (
            "The pack's own calibration, measured on every query of this set (nothing fitted "
            "on it)."
            if report.get("checked_only")
            else "Fitted on half of the queries (by photo); every figure below is on the other "
            "half."
        ),
        "",
        f"β = {report['beta']}"
        + (
            f" (R@1 on the fit half by β: {report['beta_R@1_on_fit']})"
            if report["beta_R@1_on_fit"]
            else ""
        )
        + "; "
        f"cut-off {report['threshold']:.3f} (relevance shown as "
        f"{round(100 * report['threshold'])} %).",
        "",
        "| list | R@1 | R@5 | R@10 |",
        "|---|---|---|---|",
        f"| fast | {_pct(t['fast']['R@1'])} | {_pct(t['fast']['R@5'])} | "
        f"{_pct(t['fast']['R@10'])} |",
        f"| fast + rerank@{report['rerank']} | {_pct(t['refined']['R@1'])} | "
        f"{_pct(t['refined']['R@5'])} | {_pct(t['refined']['R@10'])} |",
        "",
        f"| cut-off ({'every query' if report.get('checked_only') else 'test half'}) | value |",
        "|---|---|",
        f"| queries whose photo is listed: photo kept above the cut-off | "
        f"{_pct(c['kept_above_cutoff_pct'])} % of {c['photo_listed']} |",
        f'| absent queries: "no good match" | {_pct(c["no_good_match_pct"])} % of '
        f"{c['absent_queries']} |",
        f"| matches that are the caption's photo (precision) | "
        f"{_pct(c['match_precision_pct'])} % |",
        f"| captions whose photo is a match (recall) | {_pct(c['match_recall_pct'])} % |",
        f"| first result a match and the caption's photo | "
        f"{_pct(c['top_is_match_and_right_pct'])} % |",
        "",
        "Precision counts only the caption's own photo as right: another photo that fits the "
        "words as well counts against it.",
        "",
    ]
    return "\n".join(lines)


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def run(
    pack: Path,
    photos: Path,
    captions: Path,
    out: Path | None,
    *,
    absent: Path | None = None,
    k: int = 20,
    n: int = 50,
    per_photo: int = 1,
    keep: float = 0.95,
    seed: int = 0,
    report_to: Path | None = None,
    command: str = "",
    say: Say = print,
    check_only: bool = False,
) -> dict[str, Any]:
    verified = modelpack.verify(pack, full=True)
    existing = Calibration.from_manifest(verified.manifest) if check_only else None
    if check_only and existing is None:
        raise ValueError(f"{pack} has no calibration to check")
    items = read_captions(captions, photos)
    texts: list[str] = []
    if absent is not None:
        texts = [str(t) for t in json.loads(absent.read_text(encoding="utf-8"))]
    with tempfile.TemporaryDirectory(prefix="photosearch-calibrate-") as tmp:
        present, gone, info = search_all(
            pack, items, texts, k=k, n=n, per_photo=per_photo, home=Path(tmp), say=say
        )
    info |= {"rerank": k, "data": captions.name}
    if existing is not None:
        cal, report = existing, check(existing, present, gone)
    else:
        cal, report = calibrate(present, gone, keep=keep, seed=seed, info=info)
    report |= {
        "pack": modelpack.read_manifest(pack)["name"],
        "photos": len(items),
        "queries": len(present),
        "absent": len(gone),
        "rerank": k,
        "n": n,
        "device": info["device"],
        "ms_per_query": info["ms_per_query"],
        "machine": _machine(),
        "command": command,
        "checked_only": existing is not None,
    }
    if out is not None and existing is None:
        write_pack(pack, out, cal)
        say(f"wrote the calibrated pack {out}")
    if report_to is not None:
        report_to.parent.mkdir(parents=True, exist_ok=True)
        report_to.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        report_to.with_suffix(".md").write_text(render(report, command))
        say(f"wrote {report_to.with_suffix('.md')} and .json")
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python benchmarks/calibrate.py",
        description="Fit a model pack's relevance calibration (β, curves, cut-off) on photos "
        "with captions, through the product; write a calibrated copy of the pack and a report.",
    )
    p.add_argument("--pack", type=Path, required=True, help="the model pack folder")
    p.add_argument("--photos", type=Path, required=True, help="folder the captions' files are in")
    p.add_argument("--captions", type=Path, required=True, help="COCO, Karpathy or plain JSON")
    p.add_argument("--absent", type=Path, help="JSON list of texts that match no photo")
    p.add_argument("--out", type=Path, help="where to write the calibrated copy of the pack")
    p.add_argument("--report", type=Path, help="report path without suffix (.md and .json)")
    p.add_argument("--rerank", type=int, default=20, help="refinement depth K (default 20)")
    p.add_argument("-n", type=int, default=50, help="results per query (default 50)")
    p.add_argument("--per-photo", type=int, default=1, help="captions used per photo")
    p.add_argument("--keep", type=float, default=0.95, help="share of listed photos to keep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--check",
        action="store_true",
        help="measure the pack's own calibration on these captions (fit nothing, write no pack)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python benchmarks/calibrate.py " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        run(
            args.pack,
            args.photos,
            args.captions,
            args.out,
            absent=args.absent,
            k=args.rerank,
            n=args.n,
            per_photo=args.per_photo,
            keep=args.keep,
            seed=args.seed,
            report_to=args.report,
            command=command,
            check_only=args.check,
        )
    except (CaptionsError, FileExistsError, ValueError, modelpack.PackError) as e:
        print(f"calibrate: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
