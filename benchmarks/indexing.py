"""Indexing throughput: photosearch's pipeline against what simple tools do, on 12 MP JPEGs.

Both sides index the same corpus of 12-megapixel JPEGs with the ViT-B-32-256 architecture
(random weights: speed does not depend on the weights):

- baseline: one photo at a time, full-resolution decode, the fp32 image encoder, batch 1 — the
  loop a simple tool writes (it does not even write a database, which flatters it);
- pipeline: ``Library.index_photos`` — scan, JPEG draft-mode decode on a thread pool, the int8
  encoder in batches of 32, a SQLite commit and FAISS add per batch.

It also times the parts alone, to show where the time goes: decode (full vs draft, sequential vs
the pool) and encode (fp32 batch 1 vs int8 batch 32). Everything runs in one process, one after
the other, and is reported as ratios against the baseline measured in the same run.

    python benchmarks/indexing.py [--photos 48] [--cache DIR] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw, ImageFilter

from photosearch import imaging, modelpack
from photosearch.encoders import ImageEncoder
from photosearch.library import Library

MODEL = "ViT-B-32-256"
SIZE = (4000, 3000)


def say(msg: str) -> None:
    print(f"[indexing] {msg}", file=sys.stderr, flush=True)


def make_corpus(folder: Path, n: int) -> list[Path]:
    """12 MP JPEGs with photo-like statistics: smooth regions, edges, and sensor-like grain."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(0)
    for i in range(n):
        path = folder / f"IMG_{i:04d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        small = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).resize(
            SIZE, Image.BICUBIC
        )
        d = ImageDraw.Draw(small)
        for _ in range(12):
            x, y = rng.integers(0, SIZE[0]), rng.integers(0, SIZE[1])
            r = int(rng.integers(100, 900))
            d.ellipse(
                [x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in rng.integers(0, 255, 3))
            )
        img = small.filter(ImageFilter.GaussianBlur(3))
        grain = rng.normal(0, 6, (SIZE[1], SIZE[0], 1)).astype(np.float32)
        arr = np.clip(np.asarray(img, np.float32) + grain, 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(path, "JPEG", quality=90)
    return paths


def packs(cache: Path) -> tuple[Path, Path]:
    """The fp32 pack (baseline) and the int8 pack (pipeline), exported once and cached."""
    try:
        from benchmarks.encoders import _exporter_sha256
    except ImportError:  # run as a script from benchmarks/ (as peer_rclip.py is)
        from encoders import _exporter_sha256  # type: ignore[no-redef]
    from photosearch.export_onnx.exporter import Source, export_pack

    out = []
    exporter_now = _exporter_sha256()
    for name, quantize in ((f"{MODEL}-fp32", None), (f"{MODEL}-int8", "int8")):
        folder = cache / name
        stamp = cache / f"{name}.exporter-sha256"  # a pack from older exporter code is stale
        try:
            modelpack.load(folder)
            if stamp.read_text() != exporter_now:
                raise modelpack.PackError("exported by older code")
        except (modelpack.PackError, OSError):
            say(f"exporting {name}")
            shutil.rmtree(folder, ignore_errors=True)
            export_pack(Source(MODEL, None), folder, quantize=quantize)
            stamp.write_text(exporter_now)
        out.append(folder)
    return out[0], out[1]


def naive_decode(path: Path, spec: modelpack.ImageSpec) -> np.ndarray:
    with Image.open(path) as im:
        img = im.convert("RGB")  # the full 12 MP decode
    return imaging.preprocess(img, spec)


def timed(fn, repeats: int = 1) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(args: argparse.Namespace) -> dict[str, Any]:
    corpus = make_corpus(args.cache / "jpeg-12mp", args.photos)
    fp32_dir, int8_dir = packs(args.cache)
    fp32, int8 = modelpack.load(fp32_dir), modelpack.load(int8_dir)
    spec = fp32.image
    n = len(corpus)
    threads = len(os.sched_getaffinity(0))
    enc32 = ImageEncoder(fp32, device="cpu", batch_size=1)
    enc8 = ImageEncoder(int8, device="cpu", batch_size=32)
    say(f"{n} photos of {SIZE[0]}×{SIZE[1]}, {threads} cores; providers {enc8.providers}")

    # Warm up both encoders and the file cache (the baseline must not pay for a cold disk).
    for p in corpus:
        p.read_bytes()
    warm = np.zeros((2, 3, *spec.size), np.float32)
    enc32.encode(warm)
    enc8.encode(warm)

    say("baseline: sequential, full decode, fp32, batch 1")

    def baseline() -> None:
        for p in corpus:
            enc32.encode(naive_decode(p, spec)[None])

    t_base = timed(baseline)

    say("pipeline: Library.index_photos")
    t_pipe = []
    for _ in range(args.repeats):
        home = Path(tempfile.mkdtemp(prefix="ps-bench-home-"))
        try:
            with Library(home, device="cpu") as lib:
                lib.import_pack(int8_dir)
                lib.add_folder(corpus[0].parent)
                t0 = time.perf_counter()
                rep = lib.index_photos()
                t_pipe.append(time.perf_counter() - t0)
                assert rep.run.indexed == n, rep.run.errors
        finally:
            shutil.rmtree(home, ignore_errors=True)
    t_pipe_med = statistics.median(t_pipe)

    say("parts: decode and encode alone")
    t_dec_full = timed(lambda: [naive_decode(p, spec) for p in corpus])
    t_dec_draft = timed(lambda: [imaging.load_for_model(p, spec) for p in corpus])
    with ThreadPoolExecutor(threads) as pool:
        t_dec_pool = timed(
            lambda: list(pool.map(lambda p: imaging.load_for_model(p, spec), corpus))
        )
    pixels = np.stack([imaging.load_for_model(p, spec)[0] for p in corpus])
    t_enc32_b1 = timed(lambda: enc32.encode(pixels))
    t_enc8_b32 = timed(lambda: enc8.encode(pixels), repeats=3)
    enc32_b32 = ImageEncoder(fp32, device="cpu", batch_size=32)
    t_enc32_b32 = timed(lambda: enc32_b32.encode(pixels))

    def rate(t: float) -> float:
        return n / t

    return {
        "photos": n,
        "photo_size": list(SIZE),
        "corpus_mb": round(sum(p.stat().st_size for p in corpus) / 1e6, 1),
        "model": MODEL,
        "precision": {
            "baseline": fp32.manifest["image"]["precision"],
            "pipeline": int8.manifest["image"]["precision"],
        },
        "int8_parity": int8.manifest.get("parity", {}).get("image_encoder", {}).get("int8"),
        "providers": enc8.providers,
        "images_per_s": {
            "baseline": rate(t_base),
            "pipeline": rate(t_pipe_med),
            "pipeline_runs_s": t_pipe,
        },
        "speedup": rate(t_pipe_med) / rate(t_base),
        "parts_images_per_s": {
            "decode_full_sequential": rate(t_dec_full),
            "decode_draft_sequential": rate(t_dec_draft),
            "decode_draft_pool": rate(t_dec_pool),
            "encode_fp32_batch1": rate(t_enc32_b1),
            "encode_fp32_batch32": rate(t_enc32_b32),
            "encode_int8_batch32": rate(t_enc8_b32),
        },
        "baseline_time_split": {
            "decode_s": t_dec_full,
            "encode_s": t_enc32_b1,
        },
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "pillow": Image.__version__,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }


def markdown(r: dict[str, Any], m: dict[str, Any]) -> str:
    ips = r["images_per_s"]
    parts = r["parts_images_per_s"]
    lines = [
        "# Indexing throughput",
        "",
        f"{r['photos']} JPEGs of {r['photo_size'][0]}×{r['photo_size'][1]} "
        f"({r['corpus_mb']} MB), {r['model']} with random weights, "
        f"ONNX Runtime providers {', '.join(r['providers'])}. "
        "Produced by `python benchmarks/indexing.py`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
        f"Python {m['python']}, ONNX Runtime {m['onnxruntime']}, Pillow {m['pillow']}, "
        f"{m['date']}.",
        "",
        "| | images/s | vs baseline |",
        "|---|---:|---:|",
        f"| baseline: sequential, full decode, fp32, batch 1 | {ips['baseline']:.2f} | 1.0× |",
        f"| photosearch pipeline (`Library.index_photos`, int8) | {ips['pipeline']:.2f} | "
        f"**{r['speedup']:.1f}×** |",
        "",
        "Where the time goes (each part alone, images/s):",
        "",
        "| part | images/s |",
        "|---|---:|",
    ]
    names = {
        "decode_full_sequential": "decode: full 12 MP, sequential (baseline)",
        "decode_draft_sequential": "decode: JPEG draft mode + preprocess, sequential",
        "decode_draft_pool": "decode: draft mode, thread pool (pipeline)",
        "encode_fp32_batch1": "encode: fp32, batch 1 (baseline)",
        "encode_fp32_batch32": "encode: fp32, batch 32",
        "encode_int8_batch32": "encode: int8, batch 32 (pipeline)",
    }
    lines += [f"| {names[k]} | {v:.2f} |" for k, v in parts.items()]
    split = r["baseline_time_split"]
    total = split["decode_s"] + split["encode_s"]
    lines += [
        "",
        f"The baseline spends {100 * split['decode_s'] / total:.0f}% of its time decoding and "
        f"{100 * split['encode_s'] / total:.0f}% encoding. int8 parity of the pipeline's image "
        f"encoder against fp32 torch: {r['int8_parity']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/photosearch-bench-cache"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    result = run(args)
    m = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "indexing.json").write_text(json.dumps({"machine": m, **result}, indent=2) + "\n")
    (args.out / "indexing.md").write_text(markdown(result, m))
    print(markdown(result, m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
