"""Encoder speed on this machine: torch fp32 vs ONNX Runtime fp32 vs ONNX Runtime int8.

For each real architecture (random weights, ``exporter.Source(name, None)``) this measures the
image encoder (images/s), the text encoder (texts/s on a batch of typical queries, and the
latency of one query) three ways, in one run:

- torch fp32: the open_clip model in eval mode under ``torch.inference_mode()``, wrapped exactly
  as the exporter wraps it (L2-normalised output), ``torch.set_num_threads`` = ORT's threads;
- ONNX Runtime fp32: the pack's graphs through the app's own ``ImageEncoder``/``TextEncoder``
  (device "cpu");
- ONNX Runtime int8: the same classes on a derived pack whose two encoder graphs are
  ``exporter.quantize_int8`` of the fp32 graphs (manifest recomputed with
  ``modelpack.finalize_manifest``), measured even where the export gate would reject int8; its
  minimum cosine against torch fp32 is reported beside its speed.

Text timings include tokenisation on both sides (open_clip's tokenizer for torch, the pack's
tokenizer inside ``TextEncoder.encode`` for ORT); tokenisation alone is timed too. For CoCa the
cross-attention reranker is measured as well: image-token extraction (images/s) and scoring one
query against K candidate image-token sets (candidates/s), ``photosearch.rerank`` vs torch.

Backends are timed round-robin (one repetition of each in turn) after a warm-up, so drift on a
shared machine hits them alike; the median of the repetitions is reported, with how much CPU
other processes took meanwhile. Packs are exported once into a cache folder and reused while
``modelpack.load`` accepts them and the exporter's source is unchanged.

    python benchmarks/encoders.py [--quick] [--models NAME ...] [--out DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import open_clip
import torch

from photosearch import modelpack
from photosearch.encoders import ImageEncoder, TextEncoder, default_threads
from photosearch.errors import PackError
from photosearch.export_onnx import exporter
from photosearch.rerank import CrossAttentionScorer

MODELS = ("ViT-B-32-256", "MobileCLIP-S2", "coca_ViT-B-32")
IMAGE_BATCH = 16
RERANK_K = 50
QUERY = "a red car left of a white house"  # one search: text latency, reranker scoring
BASELINE = "torch fp32"
# Idle time before each timed call. A backend's idle threads keep spinning for a while after a
# call (ONNX Runtime's intra-op pool, torch's OpenMP) and would take cores from the next one:
# back to back on 2 cores, one-query latencies moved by up to 2x with the order of backends.
SETTLE_S = 0.2
INFO = ".benchmark.json"  # hidden, so pack verification ignores it
MB = 1e6

# Timed: queries as people type them (a dynamic-length text graph runs only up to the longest).
TEXTS = [
    f"{subject} {place}"
    for subject in ("a black cat", "children playing", "an old bicycle", "a bowl of ramen")
    for place in ("in the snow", "on a wooden table", "at the harbour", "under a tree", "at night")
] + [
    QUERY,
    "dog",
    "sunset",
    "my dog on the beach at sunset",
    "two people walking in the rain with umbrellas",
    "a blue square above a small green circle",
    "birthday party",
    "receipt",
    "grandma's kitchen at christmas, everyone laughing around the table",
    "a screenshot of a spreadsheet with a bar chart",
    "the view from the top of the mountain after the long hike, clouds below us",
    "IMG_2041.jpg",
]
TEXT_BATCH = len(TEXTS)  # 32
# Cosines also cover the export gate's texts (odd scripts, emoji, one past the context length).
COSINE_TEXTS = exporter.PARITY_TEXTS + TEXTS


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Timing


@dataclass
class Timing:
    """Wall-clock seconds of each timed repetition of one call that processes ``items`` items."""

    items: int
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return self.items / self.median

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "median_s": self.median,
            "per_s": self.rate,
            "seconds": self.seconds,
        }


def time_round_robin(
    calls: dict[str, Callable[[], object]], items: int, *, warmup: int, reps: int
) -> dict[str, Timing]:
    """Warm every call up, then time them in turn, ``reps`` rounds, each after a short idle."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(reps):
        for name, fn in calls.items():
            time.sleep(SETTLE_S)
            t0 = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - t0)
    return {name: Timing(items, s) for name, s in seconds.items()}


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return float((a * b).sum(-1).min())


def _cpu_counters() -> tuple[float, float, float, float] | None:
    """Wall time, machine-wide busy and stolen CPU seconds, and this process's CPU seconds."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) / os.sysconf("SC_CLK_TCK") for v in stat.read_text().split()[1:9]
    )
    own = os.times()
    return (
        time.perf_counter(),
        user + nice + system + irq + softirq,
        steal,
        own.user + own.system,
    )


class CpuWatch:
    """Cores that other processes used (and the hypervisor stole) on average during a block.

    The machine is shared: this says how much of it the measurement really had.
    """

    def __enter__(self) -> CpuWatch:
        self._start = _cpu_counters()
        return self

    def __exit__(self, *exc: object) -> None:
        self._end = _cpu_counters()

    def to_json(self) -> dict[str, float]:
        if self._start is None or self._end is None:
            return {}
        wall, busy, steal, own = (b - a for a, b in zip(self._start, self._end, strict=True))
        return {
            "other_processes_cores": max(0.0, busy - own) / wall,
            "steal_cores": steal / wall,
        }


# ---------------------------------------------------------------------------------------------
# Packs: exported once, then reused while they verify


def _read_info(path: Path) -> dict[str, Any]:
    return json.loads((path / INFO).read_text())


def _write_info(path: Path, info: dict[str, Any]) -> None:
    (path / INFO).write_text(json.dumps(info, indent=2) + "\n")


def _graph_sizes(pack: modelpack.ModelPack, names: Sequence[str]) -> dict[str, float]:
    return {name: pack.manifest["files"][name]["size"] / MB for name in names}


def _exporter_sha256() -> str:
    """Packs and int8 graphs in the cache are stale once the exporter's code changes."""
    code = Path(exporter.__file__).parent
    return hashlib.sha256(
        b"".join(modelpack.sha256_file(f).encode() for f in sorted(code.glob("*.py")))
    ).hexdigest()


def ensure_fp32_pack(name: str, cache: Path) -> tuple[modelpack.ModelPack, dict[str, Any]]:
    """The fp32 pack of ``name`` (with its own reranker if it is a CoCa), exported if needed."""
    path = cache / name
    wants_reranker = name.startswith("coca")
    try:
        pack = modelpack.load(path)
        info = _read_info(path)
        src = pack.manifest["source"]
        if (
            info["exporter_sha256"] == _exporter_sha256()
            and src["model"] == name
            and src["pretrained"] == "none"
            and src["library_version"] == open_clip.__version__
            and (pack.reranker is not None) == wants_reranker
        ):
            say(f"{name}: reusing the pack in {path}")
            return pack, {**info, "reused": True}
    except (PackError, OSError, ValueError, KeyError):
        pass
    say(f"{name}: exporting the fp32 pack to {path}")
    t0 = time.perf_counter()
    exporter.export_pack(
        exporter.Source(name, None),
        path,
        reranker="self" if wants_reranker else None,
        overwrite=True,
        progress=lambda msg: say(f"{name}: {msg}"),
    )
    info = {
        "exporter_sha256": _exporter_sha256(),
        "export_s": time.perf_counter() - t0,
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    _write_info(path, info)
    return modelpack.load(path), {**info, "reused": False}


def ensure_int8_pack(
    fp32: modelpack.ModelPack, cache: Path
) -> tuple[modelpack.ModelPack, dict[str, Any]]:
    """A dual-encoder pack whose two graphs are the dynamic-int8 versions of ``fp32``'s."""
    path = cache / f"{fp32.path.name}-int8"
    graphs = (modelpack.IMAGE_ENCODER, modelpack.TEXT_ENCODER)
    origin = {g: fp32.manifest["files"][g]["sha256"] for g in graphs}
    try:
        pack = modelpack.load(path)
        info = _read_info(path)
        if info["int8_of"] == origin and info["exporter_sha256"] == _exporter_sha256():
            say(f"{fp32.name}: reusing the int8 pack in {path}")
            return pack, {**info, "reused": True}
    except (PackError, OSError, ValueError, KeyError):
        pass
    say(f"{fp32.name}: quantising its encoders to int8 in {path}")
    manifest = {k: v for k, v in fp32.manifest.items() if k not in ("files", "parity", "reranker")}
    manifest["name"] = path.name
    manifest["image"] = {**manifest["image"], "precision": "int8"}
    manifest["text"] = {**manifest["text"], "precision": "int8"}
    t0 = time.perf_counter()
    with modelpack.staged_pack(path, overwrite=True) as staging:
        tok_file = fp32.tokenizer["file"]
        shutil.copy2(fp32.path / tok_file, staging / tok_file)
        for g in graphs:
            exporter.quantize_int8(fp32.path / g, staging / g)
        modelpack.finalize_manifest(staging, manifest)
    info = {
        "exporter_sha256": _exporter_sha256(),
        "quantize_s": time.perf_counter() - t0,
        "int8_of": origin,
    }
    _write_info(path, info)
    return modelpack.load(path), {**info, "reused": False}


# ---------------------------------------------------------------------------------------------
# Measurements


def bench_encoders(
    name: str,
    model: torch.nn.Module,
    packs: dict[str, modelpack.ModelPack],
    *,
    threads: int,
    warmup: int,
    reps: int,
) -> dict[str, Any]:
    """Image and text encoders: torch fp32 against the app's ORT encoders on each pack."""
    spec = packs["ORT fp32"].image
    # Includes the export gate's images (noise, gradient, flat colour, checkerboard).
    pixels = exporter.parity_pixels(spec, n=IMAGE_BATCH)
    image_torch = exporter.ImageEmbedding(model).eval()
    text_torch = exporter.TextEmbedding(model).eval()
    oc_tokenizer = open_clip.get_tokenizer(name)

    def torch_image() -> np.ndarray:
        with torch.inference_mode():
            return image_torch(torch.from_numpy(pixels)).numpy()

    def torch_text(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return text_torch(oc_tokenizer(texts)).numpy()

    encode_image: dict[str, Callable[[], np.ndarray]] = {BASELINE: torch_image}
    encode_text: dict[str, Callable[[list[str]], np.ndarray]] = {BASELINE: torch_text}
    providers: dict[str, list[str]] = {BASELINE: ["torch CPU"]}
    text_encoders: dict[str, TextEncoder] = {}
    for backend, pack in packs.items():
        img = ImageEncoder(pack, device="cpu", threads=threads, batch_size=IMAGE_BATCH)
        txt = TextEncoder(pack, device="cpu", threads=threads, batch_size=TEXT_BATCH)
        encode_image[backend] = lambda img=img: img.encode(pixels)
        encode_text[backend] = txt.encode
        providers[backend] = sorted(set(img.providers) | set(txt.providers))
        text_encoders[backend] = txt

    ref_image, ref_text = torch_image(), torch_text(COSINE_TEXTS)
    cosines = {
        backend: {
            "image": min_cosine(encode_image[backend](), ref_image),
            "text": min_cosine(encode_text[backend](COSINE_TEXTS), ref_text),
        }
        for backend in packs
    }
    with CpuWatch() as watch:
        say(f"{name}: timing image encoders ({IMAGE_BATCH} images per call)")
        images = time_round_robin(encode_image, IMAGE_BATCH, warmup=warmup, reps=reps)
        say(f"{name}: timing text encoders ({TEXT_BATCH} texts per call, and one query)")
        texts = time_round_robin(
            {b: lambda f=f: f(TEXTS) for b, f in encode_text.items()},
            TEXT_BATCH,
            warmup=warmup,
            reps=reps,
        )
        query = time_round_robin(
            {b: lambda f=f: f([QUERY]) for b, f in encode_text.items()},
            1,
            warmup=warmup,
            reps=reps,
        )
        tokenisers = time_round_robin(
            {
                "open_clip": lambda: oc_tokenizer(TEXTS),
                "pack": lambda: text_encoders["ORT fp32"].tokenize(TEXTS),
            },
            TEXT_BATCH,
            warmup=warmup,
            reps=reps,
        )
    return {
        "contention": watch.to_json(),
        "backends": {
            backend: {
                "providers": providers[backend],
                "image": images[backend].to_json(),
                "text": texts[backend].to_json(),
                "query": query[backend].to_json(),
                "image_x_torch": images[backend].rate / images[BASELINE].rate,
                "text_x_torch": texts[backend].rate / texts[BASELINE].rate,
                "query_x_torch": query[backend].rate / query[BASELINE].rate,
                **({"min_cosine_vs_torch": cosines[backend]} if backend in cosines else {}),
            }
            for backend in encode_image
        },
        "tokenisation_only": {k: t.to_json() for k, t in tokenisers.items()},
    }


def bench_reranker(
    name: str,
    coca: torch.nn.Module,
    pack: modelpack.ModelPack,
    *,
    threads: int,
    warmup: int,
    reps: int,
) -> dict[str, Any]:
    """CoCa's cross-attention reranker: the pack's graphs via ``CrossAttentionScorer`` vs torch."""
    spec = pack.reranker
    assert spec is not None
    scorer = CrossAttentionScorer(pack, device="cpu", threads=threads)
    image_torch = exporter.RerankerImage(coca).eval()
    scorer_torch = exporter.RerankerScorer(coca).eval()
    oc_tokenizer = open_clip.get_tokenizer(name)
    pixels = exporter.parity_pixels(spec.image, n=IMAGE_BATCH)
    with torch.inference_mode():
        candidates = image_torch(
            torch.from_numpy(exporter.parity_pixels(spec.image, n=RERANK_K, seed=1))
        ).numpy()

    def torch_tokens() -> np.ndarray:
        with torch.inference_mode():
            return image_torch(torch.from_numpy(pixels)).numpy()

    def torch_score() -> np.ndarray:
        """The runtime's computation: trimmed query ids, candidates in the scorer's batches."""
        ids = oc_tokenizer([QUERY])
        ids = ids[:, : int(torch.nonzero(ids[0] != scorer.pad_id)[-1]) + 1]
        tokens = torch.from_numpy(candidates)
        with torch.inference_mode():
            return torch.cat(
                [
                    scorer_torch(tokens[i : i + scorer.batch_size], ids)[0]
                    for i in range(0, RERANK_K, scorer.batch_size)
                ]
            ).numpy()

    def ort_score() -> np.ndarray:
        return scorer.score(QUERY, candidates)[0]

    ll_torch, ll_ort = torch_score(), ort_score()
    rel_err = float((np.abs(ll_ort - ll_torch) / np.abs(ll_torch)).max())
    with CpuWatch() as watch:
        say(f"{name}: timing reranker image tokens ({IMAGE_BATCH} images per call)")
        tokens = time_round_robin(
            {BASELINE: torch_tokens, "ORT fp32": lambda: scorer.image_tokens(pixels)},
            IMAGE_BATCH,
            warmup=warmup,
            reps=reps,
        )
        say(f"{name}: timing reranker scoring (1 query x {RERANK_K} candidates per call)")
        scoring = time_round_robin(
            {BASELINE: torch_score, "ORT fp32": ort_score}, RERANK_K, warmup=warmup, reps=reps
        )
    return {
        "contention": watch.to_json(),
        "providers": {
            "image": scorer.image_session.get_providers(),
            "scorer": scorer.scorer_session.get_providers(),
        },
        "query": QUERY,
        "k": RERANK_K,
        "batch_size": scorer.batch_size,
        "tokens": spec.tokens,
        "token_dim": spec.token_dim,
        "loglik_max_rel_err_vs_torch": rel_err,
        "image_tokens": {k: t.to_json() for k, t in tokens.items()},
        "image_tokens_ort_x_torch": tokens["ORT fp32"].rate / tokens[BASELINE].rate,
        "scoring": {k: t.to_json() for k, t in scoring.items()},
        "scoring_ort_x_torch": scoring["ORT fp32"].rate / scoring[BASELINE].rate,
    }


def bench_architecture(
    name: str, cache: Path, *, threads: int, warmup: int, reps: int
) -> dict[str, Any]:
    fp32, export_info = ensure_fp32_pack(name, cache)
    int8, int8_info = ensure_int8_pack(fp32, cache)
    model, _ = exporter.create_model(exporter.Source(name, None))  # the weights the pack holds
    graphs = (modelpack.IMAGE_ENCODER, modelpack.TEXT_ENCODER)
    result: dict[str, Any] = {
        "pack": {
            "path": str(fp32.path),
            "reused": export_info["reused"],
            "export_s": export_info["export_s"],
            "exported_at": export_info["exported_at"],
            "quantize_int8_s": int8_info["quantize_s"],
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "image_size": list(fp32.image.size),
            "context_length": fp32.context_length,
            "text_dynamic_length": bool(fp32.manifest["text"].get("dynamic_length", False)),
            "fp32_mb": _graph_sizes(fp32, graphs),
            "int8_mb": _graph_sizes(int8, graphs),
        },
        **bench_encoders(
            name,
            model,
            {"ORT fp32": fp32, "ORT int8": int8},
            threads=threads,
            warmup=warmup,
            reps=reps,
        ),
    }
    if fp32.reranker is not None:
        r = fp32.reranker
        result["pack"]["reranker_mb"] = _graph_sizes(fp32, (r.image_file, r.scorer_file))
        result["reranker"] = bench_reranker(
            name, model, fp32, threads=threads, warmup=warmup, reps=reps
        )
    return result


# ---------------------------------------------------------------------------------------------
# Machine description and reports


def machine(threads: int) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    first_cpu = cpuinfo.split("\n\n", 1)[0]
    fields = {
        k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first_cpu.splitlines())
    }
    flags = set(fields.get("flags", "").split())
    simd = [
        f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags
    ]
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if "MemTotal" in line), 0)
    os_release = Path("/etc/os-release")
    pretty = next(
        (
            line.split("=", 1)[1].strip('"')
            for line in (os_release.read_text().splitlines() if os_release.exists() else [])
            if line.startswith("PRETTY_NAME=")
        ),
        platform.system(),
    )
    return {
        "cpu": fields.get("model name", platform.processor()),
        "cpu_family_model": f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}",
        "simd_flags": simd,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": f"{pretty} ({platform.platform()})",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "open_clip": open_clip.__version__,
        "numpy": np.__version__,
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": os.getloadavg(),
    }


def _fmt_rate(timing: dict[str, Any]) -> str:
    rate = timing["per_s"]
    return f"{rate:.1f}" if rate < 100 else f"{rate:.0f}"


def _spread(timings: Sequence[dict[str, Any]]) -> str:
    """The largest slowest/fastest - 1 among the repetitions of these timings, in percent."""
    worst = max(max(t["seconds"]) / min(t["seconds"]) - 1 for t in timings)
    return f"{worst * 100:.0f} %"


def _fmt_contention(c: dict[str, float]) -> str:
    if not c:
        return ""
    return (
        f" While timing, other processes used {c['other_processes_cores']:.2f} cores on average "
        f"and the hypervisor stole {c['steal_cores']:.2f}."
    )


def _fmt_cos(cos: float) -> str:
    """Marked when below the int8 export gate, i.e. the exporter would keep fp32."""
    return f"{cos:.5f}" + (" ✗" if cos < exporter.MIN_COSINE["int8"] else "")


def render_markdown(results: dict[str, Any]) -> str:
    m, s = results["machine"], results["settings"]
    providers = sorted(
        {
            p
            for a in results["architectures"].values()
            for p in a["backends"]["ORT fp32"]["providers"]
        }
    )
    lines = [
        "# Encoder speed: torch vs ONNX Runtime (fp32, int8)",
        "",
        "Throughput of each real architecture's image and text encoder, random weights "
        "(`exporter.Source(name, None)`), measured in one run of `benchmarks/encoders.py`"
        + (" **with `--quick` (smoke test, few repetitions)**" if s["quick"] else "")
        + ". The baseline is torch fp32 (the open_clip model, eval mode, "
        "`torch.inference_mode()`); ONNX Runtime runs through the app's own "
        "`ImageEncoder`/`TextEncoder` (device `cpu`). int8 is `exporter.quantize_int8` "
        "(dynamic, per-channel, 7-bit weights) of the fp32 graphs, packed as a derived pack "
        "with a recomputed manifest; it is measured even where the export's parity gate "
        f"(min cosine ≥ {exporter.MIN_COSINE['int8']}) would reject it.",
        "",
        f"Batches: {s['image_batch']} images, {s['text_batch']} typical queries per call; "
        f"“one query” is the latency of encoding “{s['query']}” alone, as a search does. Text "
        "timings include tokenisation (open_clip's tokenizer for torch, the pack's for ORT). "
        "torch runs open_clip's fixed context (77 ids); where the pack's text graph has a "
        "dynamic length, `TextEncoder` runs it only up to the longest query of the call. "
        f"Each figure is the median of {s['reps']} repetitions after {s['warmup']} warm-up "
        "call(s); backends are timed round-robin, each call after "
        f"{s['settle_s']} s idle (so no backend's spinning threads slow the next). "
        "`× torch` is throughput relative to torch fp32 in the same run. Min cosine is "
        "against torch fp32 on the benchmark's images and texts plus the export gate's texts; "
        "✗ marks a value below the int8 gate. "
        "MB = 10⁶ bytes. On this shared machine absolute rates can drift (up to ~2× for a "
        "minute or more, seen while developing this script); the ratios, taken round-robin "
        "within one table, are the robust figures. `encoders.json` holds every repetition.",
        "",
        f"Machine: {m['cpu']} (family/model {m['cpu_family_model']}, "
        f"{', '.join(m['simd_flags'])}), {m['cores']} cores, {m['memory_gib']} GiB, "
        f"{m['os']}; Python {m['python']}, torch {m['torch']}, onnxruntime {m['onnxruntime']}, "
        f"open_clip {m['open_clip']}; ORT providers used: {', '.join(providers)}; "
        f"{m['threads']} threads (ORT intra-op and torch); {m['date']}; "
        f"load average at start / end: {m['load_average_start'][0]:.2f} / "
        f"{m['load_average_end'][0]:.2f} (shared machine).",
    ]
    for name, a in results["architectures"].items():
        p = a["pack"]
        export = (
            f"exported in {p['export_s']:.0f} s"
            + (f" (cached pack, exported {p['exported_at']})" if p["reused"] else "")
            + f", int8 quantisation {p['quantize_int8_s']:.0f} s"
        )
        lines += [
            "",
            f"## {name}",
            "",
            f"{p['params_m']:.1f} M parameters, image {p['image_size'][0]}×{p['image_size'][1]}, "
            f"context {p['context_length']}, text graph "
            + ("with a dynamic length" if p["text_dynamic_length"] else "of fixed length")
            + f"; {export}.",
            "",
            "| backend | image encoder (images/s) | × torch | text encoder (texts/s) | × torch "
            "| one query (ms) | × torch | min cosine vs torch (image / text) "
            "| graphs on disk (image + text, MB) |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        disk = {"ORT fp32": p["fp32_mb"], "ORT int8": p["int8_mb"]}
        for backend, b in a["backends"].items():
            cos = b.get("min_cosine_vs_torch")
            mb = disk.get(backend)
            cells = [
                backend,
                _fmt_rate(b["image"]),
                f"{b['image_x_torch']:.2f}×",
                _fmt_rate(b["text"]),
                f"{b['text_x_torch']:.2f}×",
                f"{b['query']['median_s'] * 1e3:.0f}",
                f"{b['query_x_torch']:.2f}×",
                f"{_fmt_cos(cos['image'])} / {_fmt_cos(cos['text'])}" if cos else "–",
                f"{mb[modelpack.IMAGE_ENCODER]:.1f} + {mb[modelpack.TEXT_ENCODER]:.1f}"
                if mb
                else "–",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        tok = a["tokenisation_only"]
        timings = [b[k] for b in a["backends"].values() for k in ("image", "text", "query")]
        lines += [
            "",
            f"Tokenisation alone ({s['text_batch']} texts): open_clip "
            f"{_fmt_rate(tok['open_clip'])} texts/s, pack tokenizer {_fmt_rate(tok['pack'])} "
            f"texts/s. Largest spread of the repetitions (slowest/fastest − 1): "
            f"{_spread(timings)}." + _fmt_contention(a["contention"]),
        ]
    for name, a in results["architectures"].items():
        r = a.get("reranker")
        if r is None:
            continue
        sizes = a["pack"]["reranker_mb"]
        tok, sc = r["image_tokens"], r["scoring"]
        lines += [
            "",
            f"## {name}: cross-attention reranker",
            "",
            f"One query (“{r['query']}”) scored against K = {r['k']} candidate image-token sets "
            f"([{r['tokens']}, {r['token_dim']}] each), in batches of {r['batch_size']} as "
            "`CrossAttentionScorer.score` sends them; torch runs `exporter.RerankerScorer` on "
            "the same batches and trimmed ids (tokenisation included on both sides). Image "
            f"tokens: {s['image_batch']} images per call. Largest relative difference of the "
            f"log-likelihoods, ORT vs torch: {r['loglik_max_rel_err_vs_torch']:.1e}. Graphs: "
            + " + ".join(f"{k} {v:.1f} MB" for k, v in sizes.items())
            + ".",
            "",
            "| stage | torch fp32 | ORT fp32 | ORT × torch |",
            "|---|--:|--:|--:|",
            f"| image tokens (images/s) | {_fmt_rate(tok[BASELINE])} | "
            f"{_fmt_rate(tok['ORT fp32'])} | {r['image_tokens_ort_x_torch']:.2f}× |",
            f"| scoring (candidates/s) | {_fmt_rate(sc[BASELINE])} | "
            f"{_fmt_rate(sc['ORT fp32'])} | {r['scoring_ort_x_torch']:.2f}× |",
            f"| scoring, one query × K = {r['k']} (ms) | {sc[BASELINE]['median_s'] * 1e3:.0f} | "
            f"{sc['ORT fp32']['median_s'] * 1e3:.0f} | |",
            "",
            "Largest spread of the repetitions (slowest/fastest − 1): "
            f"{_spread([*tok.values(), *sc.values()])}." + _fmt_contention(r["contention"]),
        ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="few repetitions: a smoke test")
    ap.add_argument("--models", nargs="+", default=list(MODELS), metavar="NAME")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/photosearch-bench-cache"))
    ap.add_argument("--threads", type=int, default=default_threads(), help="ORT and torch threads")
    args = ap.parse_args(argv)

    warmup, reps = (1, 3) if args.quick else (2, 10)
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "machine": machine(args.threads),
        "settings": {
            "quick": args.quick,
            "warmup": warmup,
            "reps": reps,
            "image_batch": IMAGE_BATCH,
            "text_batch": TEXT_BATCH,
            "settle_s": SETTLE_S,
            "rerank_k": RERANK_K,
            "query": QUERY,
            "texts": TEXTS,
        },
        "architectures": {},
    }
    for name in args.models:
        results["architectures"][name] = bench_architecture(
            name, args.cache, threads=args.threads, warmup=warmup, reps=reps
        )
        gc.collect()  # the torch model and the sessions went out of scope with the call
    results["machine"]["load_average_end"] = os.getloadavg()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "encoders.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "encoders.md").write_text(render_markdown(results))
    say(f"wrote {args.out / 'encoders.json'} and {args.out / 'encoders.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
