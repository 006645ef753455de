"""Ready models on this machine: how fast a published layout's graphs run through the app.

Immich exports its graphs for one input at a time (no dynamic batch), rclip's take a batch;
both are run here exactly as the app runs an installed ready pack. For each real architecture
(random weights: only the shapes matter for speed) this builds its repository in the
published layout (``tests/published.py``), serves it from the local hub (``tests/hubserver.py``),
installs it through ``acquire.install_ready`` (timed: conversion and checks included), and then
times, through the app's own ``ImageEncoder``/``TextEncoder`` on the CPU: the image encoder
(images/s over 16 images) and one query (ms). Medians of the repetitions after a warm-up.

    python benchmarks/ready.py [--reps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import open_clip  # noqa: E402
from hubserver import HubServer  # noqa: E402
from published import hf_clip_tokenizer, immich_repo, rclip_repo  # noqa: E402

from photosearch import acquire  # noqa: E402
from photosearch.encoders import ImageEncoder, TextEncoder, default_threads  # noqa: E402
from photosearch.library import Library  # noqa: E402

CASES = (  # (catalogue entry, open_clip architecture)
    ("immich-vit-b-32-openai", "ViT-B-32"),
    ("rclip-vit-b-32-256", "ViT-B-32-256"),
)
QUERY = "a red car left of a white house"


def _median_time(fn, reps: int) -> float:  # noqa: ANN001
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _repository(entry: acquire.Ready, arch: str) -> dict[str, bytes]:
    model = open_clip.create_model(arch, pretrained=None)
    model.eval()
    if entry.layout == "rclip":
        return rclip_repo(model, entry.folder)
    return immich_repo(
        model, open_clip.get_model_config(arch), hf_clip_tokenizer(), "<|endoftext|>"
    )


def bench(name: str, arch: str, reps: int) -> dict[str, object]:
    entry = acquire.ready_model(name)
    t = time.perf_counter()
    files = _repository(entry, arch)
    built = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as home, HubServer() as hub:
        os.environ["HF_ENDPOINT"] = hub.endpoint
        hub.publish(entry.repo, files)
        with Library(Path(home)) as lib:
            t = time.perf_counter()
            pack = acquire.install_ready(lib, entry)
            installed = time.perf_counter() - t
        image = ImageEncoder(pack, device="cpu")
        text = TextEncoder(pack, device="cpu")
        h, w = pack.image.size
        pixels = np.random.default_rng(0).standard_normal((16, 3, h, w)).astype(np.float32)
        per_batch = _median_time(lambda: image.encode(pixels), reps)
        query = _median_time(lambda: text.encode(QUERY), reps * 3)
    return {
        "name": name,
        "architecture": arch,
        "layout": entry.layout,
        "image_batch": image.batch_size,
        "image_input": f"{image.input} ({image.dtype.__name__})",
        "download_mb": round(sum(len(b) for b in files.values()) / 1e6, 1),
        "repository_built_s": round(built, 1),
        "install_s": round(installed, 1),
        "images_per_s": round(16 / per_batch, 2),
        "one_query_ms": round(query * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    rows = [bench(name, arch, args.reps) for name, arch in CASES]
    meta = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "threads": default_threads(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average": os.getloadavg(),
    }
    (args.out / "ready.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# Ready models: published layouts run through the app (random weights, real shapes)",
        "",
        f"`benchmarks/ready.py`, {meta['when']}, {meta['machine']}, {meta['threads']} ORT "
        f"threads, load average {tuple(round(x, 2) for x in meta['load_average'])} (shared "
        "machine). Images/s: 16 images through `ImageEncoder` (Immich's graphs take one image "
        "per run); one query: `TextEncoder.encode` of one text, tokenising included; install: "
        "`acquire.install_ready` from the local hub (download, conversion, tokenizer check, "
        "verification, one run of each graph). Medians after a warm-up.",
        "",
        "| model | architecture | layout | batch | image input | MB | install (s) | images/s "
        "| one query (ms) |",
        "|---|---|---|--:|---|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['architecture']} | {r['layout']} | {r['image_batch']} | "
            f"{r['image_input']} | {r['download_mb']} | {r['install_s']} | "
            f"{r['images_per_s']} | {r['one_query_ms']} |"
        )
    (args.out / "ready.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
