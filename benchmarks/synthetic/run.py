"""The whole synthetic benchmark in one command: train → export packs → evaluate → results.

    python -m benchmarks.synthetic.run --preset full    # the committed table; ~2 h on 2 cores
    python -m benchmarks.synthetic.run --preset smoke   # minutes: proves the pipeline end to end

Steps (each skipped when its output exists and was made by the same recipe, so an interrupted
run continues where it stopped; ``--fresh`` starts over):

1. ``base``: CoCa from scratch, contrastive + captioning (:mod:`.train`, stage 1);
2. ``distilled``: the base dual encoder continued with the distillation loss (stage 2), and
   ``control``: the same continuation without it (unless ``--no-distill``);
3. packs with :mod:`photosearch.export_onnx` — base with its own scorer; distilled and control
   with the base model's scorer (the teacher);
4. :mod:`.evaluate` on the test split → ``RESULTS.md`` and ``RESULTS.json``.

Work files (checkpoints, logs, packs) go under ``--work`` (default ``build/synthetic/PRESET``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from benchmarks.synthetic import heldout, packs, scenes, train
from photosearch import modelpack

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
WORLD = scenes.WorldConfig(seed=0, image_size=64, validation_families=250, test_families=1250)

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        "base": {
            "steps": 6000,
            "batch_size": 64,
            "lr": 1e-3,
            "warmup": 300,
            "caption_weight": 2.0,
            "rank_weight": 1.0,
            "rank_samples": 32,
            "twin_weight": 1.0,
            "backward": True,
            "augment": True,
            "train_families": 60000,
            "monitor_every": 250,
            "checkpoint_every": 500,
            "workers": 1,
        },
        "stage2": {
            "steps": 600,
            "batch_size": 64,
            "lr": 2e-4,
            "warmup": 50,
            "distill_groups": 8,
            "distill_candidates": 8,
            "distill_pool_families": 2048,
            "distill_refresh": 200,
            "augment": True,
            "monitor_every": 100,
            "checkpoint_every": 10**9,
            "workers": 1,
        },
        "distill_weight": 1.0,
        "eval": {
            "families": 300,
            "validation_families": 250,
            "conditions": ("64png", "128png", "256png", "128jpeg70", "256jpeg70"),
        },
        "threads": 2,
        "results": ROOT / "benchmarks" / "results" / "synthetic",
    },
    "smoke": {
        "base": {
            "steps": 16,
            "batch_size": 16,
            "warmup": 4,
            "rank_weight": 1.0,
            "rank_samples": 4,
            "twin_weight": 1.0,
            "backward": True,
            "augment": True,
            "train_families": 400,
            "monitor_every": 8,
            "monitor_families": 8,
            "checkpoint_every": 8,
            "workers": 0,
        },
        "stage2": {
            "steps": 6,
            "batch_size": 16,
            "lr": 2e-4,
            "warmup": 2,
            "train_families": 400,
            "distill_groups": 2,
            "distill_candidates": 4,
            "distill_pool_families": 8,
            "distill_refresh": 3,
            "monitor_every": 3,
            "monitor_families": 8,
            "checkpoint_every": 10**9,
            "workers": 0,
        },
        "distill_weight": 1.0,
        "eval": {
            "families": 8,
            "validation_families": 8,
            "conditions": ("64png", "96jpeg70"),
        },
        "threads": 1,
        "results": None,  # under the work folder: the committed results stay untouched
    },
}


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _done(out: Path, recipe: train.Recipe) -> bool:
    """Whether ``out`` holds a finished run of exactly ``recipe``."""
    path = out / train.RECIPE_FILE
    if not (out / train.MODEL_FILE).exists() or not path.exists():
        return False
    return json.loads(path.read_text()).get("recipe") == recipe.to_json()


def _train(name: str, recipe: train.Recipe, work: Path) -> dict[str, Any]:
    out = work / name
    if _done(out, recipe):
        _say(f"{name}: already trained ({out / train.MODEL_FILE})")
    else:
        _say(f"{name}: training, stage {recipe.stage}, {recipe.steps} steps")
        train.train(recipe, out, resume=True, say=lambda m: _say(f"{name}: {m}"))
    return json.loads((out / train.RECIPE_FILE).read_text())


def _summary(s: dict[str, Any]) -> str:
    r = s["recipe"]
    last = s["history"][-1] if s.get("history") else {}
    monitor = ", ".join(
        f"{k.removeprefix('fast_pairwise_').removeprefix('slow_pairwise_')}"
        f"{' (fast)' if k.startswith('fast') else ' (slow)'} {v:.2f}"
        for k, v in last.items()
        if "pairwise" in k
    )
    extra = f", distill weight {r['distill_weight']}" if r["stage"] == 2 else ""
    return (
        f"stage {r['stage']}, {s['steps_run']} steps of {r['batch_size']} "
        f"(lr {r['lr']}, caption weight {r['caption_weight']}{extra}), {s['seconds']:.0f} s "
        f"({s['seconds_per_step']:.2f} s/step, {r['threads']} threads), {s['parameters']:,} "
        f"parameters; validation pairwise at the end: {monitor}"
    )


def run(
    preset: str,
    work: Path,
    *,
    distill: bool = True,
    fresh: bool = False,
    families: int | None = None,
    base_steps: int | None = None,
    stage2_steps: int | None = None,
    train_only: bool = False,
) -> dict[str, Any]:
    p = PRESETS[preset]
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    threads = p["threads"]
    torch.set_num_threads(threads)  # training sets it too; exporting and checking need it
    base_cfg = dict(p["base"])
    if base_steps is not None:  # e.g. to train on from the saved state when order is not learnt
        base_cfg["steps"] = base_steps
    base = train.Recipe(world=WORLD, threads=threads, seed=0, **base_cfg)
    summaries = {"base": _train("base", base, work)}
    base_ckpt = work / "base" / train.MODEL_FILE
    bwd_ckpt = work / "base" / train.BACKWARD_FILE
    backward = bwd_ckpt if bwd_ckpt.exists() else None
    runs = {"base": (base_ckpt, None)}
    if distill:
        for name, weight in (("distilled", p["distill_weight"]), ("control", 0.0)):
            r = train.Recipe(
                world=WORLD,
                threads=threads,
                seed=1,
                init=str(base_ckpt),
                init_sha256=modelpack.sha256_file(base_ckpt),
                distill_weight=weight,
                caption_weight=0.0,
                **(p["stage2"] | ({"steps": stage2_steps} if stage2_steps else {})),
            )
            summaries[name] = _train(name, r, work)
            runs[name] = (work / name / train.MODEL_FILE, base_ckpt)
    if train_only:
        return {"training": summaries, "goals": []}

    pack_dirs = {}
    for name, (ckpt, reranker) in runs.items():
        out = work / "packs" / name
        stamp = out / ".source.json"
        want = {
            "checkpoint": modelpack.sha256_file(ckpt),
            "reranker": str(reranker),
            "backward": None if backward is None else modelpack.sha256_file(backward),
        }
        if stamp.exists() and json.loads(stamp.read_text()) == want:
            _say(f"{name}: pack up to date ({out})")
        else:
            _say(f"{name}: exporting the pack")
            packs.export(
                ckpt,
                out,
                reranker_checkpoint=reranker,
                backward_checkpoint=backward,
                name=f"synthetic-{name}",
            )
            stamp.write_text(json.dumps(want))
        pack_dirs[name] = out

    cfg = heldout.HeldoutConfig(
        training_world=WORLD, threads=threads, **p["eval"] | _families(families)
    )
    report = heldout.run(pack_dirs, cfg, work / "heldout", say=_say)
    report["training"] = {k: _summary(v) for k, v in summaries.items()}
    report["training_runs"] = {
        k: {key: v[key] for key in v if key != "history"} | {"history": v.get("history", [])}
        for k, v in summaries.items()
    }
    report["goals"] = [
        {**g, "goal": f"{c['label']}: {g['goal']}"}
        for c in report["conditions"]
        for g in c["goals"]
    ]
    extra = "".join(
        f" --{flag} {value}"
        for flag, value in (
            ("families", families),
            ("base-steps", base_steps),
            ("stage2-steps", stage2_steps),
        )
        if value is not None
    )
    command = f"python -m benchmarks.synthetic.run --preset {preset}{extra}"
    report["command"] = command
    results = Path(p["results"] or work / "results" / f"synthetic-{preset}")
    title = "Synthetic compositional retrieval" + ("" if preset == "full" else f" ({preset} run)")
    md, js = heldout.write(report, results, command, title=title)
    _say(f"wrote {md} and {js}")
    return report


def _families(families: int | None) -> dict[str, int]:
    return {} if families is None else {"families": families}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.synthetic.run",
        description="Train, export and evaluate the synthetic benchmark (see the module doc).",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="full")
    p.add_argument("--work", type=Path, help="work folder (default build/synthetic/PRESET)")
    p.add_argument("--no-distill", action="store_true", help="skip the distilled and control runs")
    p.add_argument("--fresh", action="store_true", help="delete the work folder first")
    p.add_argument(
        "--families",
        type=int,
        help="held-out test families (full: 300; one query and four photos each)",
    )
    p.add_argument(
        "--base-steps",
        type=int,
        help="stage-1 steps (full: 5000); more than a finished run's continue from its last "
        "saved state (every 1,000 steps)",
    )
    p.add_argument(
        "--stage2-steps", type=int, help="steps of the distilled and control runs (full: 600)"
    )
    p.add_argument(
        "--train-only", action="store_true", help="train (and resume) the models, then stop"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    warnings.filterwarnings("ignore")  # torch's exporter and open_clip are chatty
    work = args.work or ROOT / "build" / "synthetic" / args.preset
    report = run(
        args.preset,
        work,
        distill=not args.no_distill,
        fresh=args.fresh,
        families=args.families,
        base_steps=args.base_steps,
        stage2_steps=args.stage2_steps,
        train_only=args.train_only,
    )
    for goal in report["goals"]:
        print(f"{'met' if goal['met'] else 'NOT met'}: {goal['goal']} ({goal['value']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
