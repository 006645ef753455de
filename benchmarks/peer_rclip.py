"""photosearch against rclip 3.3.0, as whole processes on the same 12 MP corpus, in one run.

What it measures, each tool as a user runs it (its own defaults, no refinement):

- indexing: ``photosearch index`` (int8 pack, as ``models prepare`` makes it, and the fp32 pack
  for a same-precision row) against ``rclip QUERY`` run in the corpus folder with an empty data
  directory (rclip always indexes its working directory before it searches; it has no
  index-only mode, so its row also pays for loading its text model and one query). Each run
  gets a fresh data directory. Images/s from the whole process's wall time, peak RSS and CPU
  seconds from the kernel's accounting of that child (``os.wait4``);
- the decode + encode bound: photosearch's own decode pool (hash, JPEG draft decode and
  preprocess on the indexer's thread count) and its int8 image encoder (batch 32), each alone
  on the same photos, in a child process of its own; indexing is quoted as a share of it;
- CLI query: ``photosearch search TEXT --rerank 0`` against ``rclip --no-indexing TEXT`` on the
  library each has indexed, as whole processes (start-up, model load, text encoding, search,
  printing); photosearch twice: alone (``PHOTOSEARCH_NO_SOCKET=1``: it loads the models
  itself) and answered by a ``photosearch serve`` started beforehand on the same library (as
  the window or ``index --watch`` would answer it).

The runs alternate (round robin, the order rotated each round) so drift in the machine's speed
falls on both tools alike; ratios are taken pair by pair and given as min / median / max.

rclip has no model hub to download from here, so it is given stand-in models: ViT-B-32-256 with
random weights (speed does not depend on the weights), exported as rclip's own conversion
publishes them and laid out where its loader (``rclip/model_download.py``) looks before it
downloads anything::

    $RCLIP_DATADIR/ViT-B-32-256-datacomp_s34b_b86k/visual.onnx   input "input" (N, 3, 256, 256)
    $RCLIP_DATADIR/ViT-B-32-256-datacomp_s34b_b86k/textual.onnx  input "input" (N, 77) int64
    $RCLIP_DATADIR/tokenizer/bpe_simple_vocab_16e6.txt.gz        the CLIP BPE vocabulary
    $RCLIP_DATADIR/db.sqlite3                                    its index (made by rclip)

fp32 graphs, opset 18, batch axis dynamic, one output each (unnormalised embeddings; rclip
normalises). rclip 3.3.0 is installed from PyPI into a virtual environment of its own.

    python benchmarks/peer_rclip.py [--photos 96] [--runs 3] [--queries 10]
        [--cache /tmp/photosearch-bench-cache] [--out benchmarks/results]

Needs the ``export`` extra (torch, open_clip) for the first run, which exports and caches the
packs and the stand-in models; later runs reuse them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from indexing import MODEL, SIZE, make_corpus, packs

RCLIP_VERSION = "3.3.0"
# Where rclip 3.3.0 looks for its model before downloading (rclip/model_download.py).
RCLIP_MODEL_SUBDIR = "ViT-B-32-256-datacomp_s34b_b86k"
RCLIP_GRAPHS = ("visual.onnx", "textual.onnx")
RCLIP_VOCAB = "tokenizer/bpe_simple_vocab_16e6.txt.gz"
RCLIP_OPSET = 18  # what rclip's published conversion uses
QUERY = "a dog running on a beach at sunset"
TOP = 10
QUIET = 0.25  # a run is quiet when the rest of the machine used less than this many cores


def say(msg: str) -> None:
    print(f"[peer_rclip] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Setting up both tools


def rclip_venv(cache: Path) -> Path:
    """rclip's own virtual environment, made on first use; returns its ``rclip`` command."""
    venv = cache / "rclip-venv"
    exe = venv / "bin" / "rclip"
    python = venv / "bin" / "python"
    if exe.exists():
        probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('rclip'))"]
        found = subprocess.run(probe, capture_output=True, text=True).stdout.strip()
        if found == RCLIP_VERSION:
            return exe
    say(f"installing rclip {RCLIP_VERSION} into {venv}")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", f"rclip=={RCLIP_VERSION}"]
    subprocess.run(pip, check=True)
    return exe


def rclip_models(cache: Path) -> Path:
    """A folder laid out as rclip's data directory expects, with random-weight stand-ins."""
    root = cache / "rclip-models"
    graphs = [root / RCLIP_MODEL_SUBDIR / name for name in RCLIP_GRAPHS]
    if all(p.is_file() for p in graphs) and (root / RCLIP_VOCAB).is_file():
        return root
    say("exporting rclip's stand-in models (fp32, random weights)")
    shutil.rmtree(root, ignore_errors=True)
    (root / RCLIP_MODEL_SUBDIR).mkdir(parents=True)
    _export_rclip_graphs(root / RCLIP_MODEL_SUBDIR)
    import open_clip

    # rclip downloads this same file, which open_clip ships.
    vocab = Path(open_clip.__file__).parent / Path(RCLIP_VOCAB).name
    (root / RCLIP_VOCAB).parent.mkdir(parents=True)
    shutil.copyfile(vocab, root / RCLIP_VOCAB)
    return root


def _export_rclip_graphs(folder: Path) -> None:
    import torch
    from torch import nn

    from photosearch.export_onnx.exporter import Source, create_model

    model, cfg = create_model(Source(MODEL, None))
    side = int(cfg["size"][0] if isinstance(cfg["size"], (list, tuple)) else cfg["size"])

    class Visual(nn.Module):  # the model held as a submodule: its weights export as weights
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model.visual(x)

    class Textual(Visual):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model.encode_text(x)

    examples = {
        "visual.onnx": (Visual(), torch.zeros(1, 3, side, side)),
        "textual.onnx": (Textual(), torch.zeros(1, 77, dtype=torch.long)),
    }
    # nn.MultiheadAttention's fused inference path has no ONNX symbol.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        for name, (module, example) in examples.items():
            with torch.no_grad():
                torch.onnx.export(
                    module.eval(),
                    (example,),
                    str(folder / name),
                    input_names=["input"],
                    output_names=["output"],
                    dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                    opset_version=RCLIP_OPSET,
                    dynamo=False,
                )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def rclip_datadir(models: Path, parent: Path) -> Path:
    """A fresh rclip data directory: links to the stand-in models, no database yet."""
    home = Path(tempfile.mkdtemp(prefix="rclip-data-", dir=parent))
    for rel in [f"{RCLIP_MODEL_SUBDIR}/{g}" for g in RCLIP_GRAPHS] + [RCLIP_VOCAB]:
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).symlink_to(models / rel)
    return home


def photosearch_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("photosearch")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "photosearch"]


def photosearch_home(pack: Path, corpus: Path, parent: Path) -> Path:
    """A fresh photosearch data directory with the pack installed and the corpus added."""
    home = Path(tempfile.mkdtemp(prefix="ps-home-", dir=parent))
    ps = [*photosearch_cmd(), "--home", str(home)]
    subprocess.run([*ps, "models", "import", str(pack)], check=True, capture_output=True)
    subprocess.run([*ps, "folders", "add", str(corpus)], check=True, capture_output=True)
    return home


# ---------------------------------------------------------------------------------------------
# Timing whole processes


@dataclass
class Run:
    wall_s: float
    cpu_s: float  # user + sys of the child
    peak_rss_mb: float
    others_cores: float  # CPU the rest of the machine used meanwhile, in cores
    load_1m: float
    stdout: str


def _busy_ticks() -> int:
    """CPU ticks the whole machine has spent busy (all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]) - fields[3] - fields[4]


# A small process in between: on Linux a child's peak RSS starts from the RSS of the process it
# was forked from (the kernel carries the old memory's high-water mark across exec), and this
# benchmark's own process holds torch after an export. The launcher is small, spawns the command,
# and reports the command's own accounting from wait4 and its wall time from spawn to exit.
_LAUNCHER = """
import json, os, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.posix_spawn(cmd[0], cmd, os.environ)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(report, "w") as f:
    json.dump({"wall": wall, "code": os.waitstatus_to_exitcode(status), "cpu": ru.ru_utime
               + ru.ru_stime, "maxrss_kib": ru.ru_maxrss}, f)
"""


def timed(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run one command to its end: its wall time, and the kernel's account of it alone."""
    exe = shutil.which(cmd[0])
    assert exe is not None, f"{cmd[0]} not found"
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        busy0 = _busy_ticks()
        with out.open("wb") as o, err.open("wb") as e:
            launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), exe, *cmd[1:]]
            subprocess.run(launcher, stdout=o, stderr=e, env=env, cwd=cwd, check=False)
        busy1 = _busy_ticks()
        stdout = out.read_text(errors="replace")
        stderr = err.read_text(errors="replace")
        if not report.exists():
            raise RuntimeError(f"launcher failed for {cmd}:\n{stderr[-3000:]}")
        rep = json.loads(report.read_text())
    if rep["code"] != 0:
        raise RuntimeError(f"{cmd} exited {rep['code']}:\n{stderr[-3000:]}")
    machine_cpu = (busy1 - busy0) / os.sysconf("SC_CLK_TCK")
    return Run(
        wall_s=rep["wall"],
        cpu_s=rep["cpu"],
        peak_rss_mb=rep["maxrss_kib"] / 1024,
        # The launcher's own start-up falls in this window too; it is small and idle after.
        others_cores=max(0.0, (machine_cpu - rep["cpu"]) / rep["wall"]),
        load_1m=os.getloadavg()[0],
        stdout=stdout,
    )


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def round_robin(jobs: dict[str, Any], rounds: int) -> dict[str, list[Any]]:
    """Each job once per round, the order rotated every round."""
    names = list(jobs)
    results: dict[str, list[Any]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            results[name].append(jobs[name]())
            say(f"round {r + 1}/{rounds} {name}: {_brief(results[name][-1])}")
    return results


def _brief(x: Any) -> str:
    if isinstance(x, Run):
        return f"{x.wall_s:.2f} s, {x.peak_rss_mb:.0f} MB, others {x.others_cores:.2f} cores"
    return str(x)


# ---------------------------------------------------------------------------------------------
# The decode + encode bound, in a child of its own


def bound_child(pack: Path, corpus: Path) -> int:
    """Print the seconds photosearch's decode pool and int8 encoder take alone on the corpus."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from photosearch import modelpack
    from photosearch.encoders import ImageEncoder
    from photosearch.imaging import load_for_model
    from photosearch.indexer import Indexer
    from photosearch.scanner import file_hash

    loaded = modelpack.load(pack)
    paths = sorted(corpus.glob("*.jpg"))
    encoder = ImageEncoder(loaded, device="cpu", batch_size=32)
    # The indexer's own default thread count (its constructor only stores what it is given).
    workers = Indexer(None, None, encoder, loaded.id).decode_workers  # type: ignore[arg-type]

    def read(p: Path) -> np.ndarray:
        file_hash(p)
        return load_for_model(p, loaded.image)[0]

    encoder.encode(np.stack([read(paths[0])] * 2))  # warm: session ready, first run done
    # Wall and CPU time of each stage (process_time counts every thread, ONNX Runtime's too).
    with ThreadPoolExecutor(workers) as pool:
        t0, c0 = time.perf_counter(), time.process_time()
        pixels = np.stack(list(pool.map(read, paths)))
        decode, decode_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    encoder.encode(pixels)
    encode, encode_cpu = time.perf_counter() - t0, time.process_time() - c0
    timings = {
        "photos": len(paths),
        "workers": workers,
        "cores": len(os.sched_getaffinity(0)),
        "decode_s": decode,
        "encode_s": encode,
        "decode_cpu_s": decode_cpu,
        "encode_cpu_s": encode_cpu,
    }
    print(json.dumps(timings))
    return 0


# ---------------------------------------------------------------------------------------------
# The run


def run(args: argparse.Namespace) -> dict[str, Any]:
    cache: Path = args.cache
    corpus_dir = cache / f"peer-jpeg-12mp-{args.photos}"
    # make_corpus is deterministic: the first N photos of the shared corpus, in a folder of
    # exactly N so both tools see the same set.
    shared = make_corpus(cache / "jpeg-12mp", args.photos)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for p in shared:
        if not (corpus_dir / p.name).exists():
            os.link(p, corpus_dir / p.name)
    corpus = sorted(corpus_dir.glob("*.jpg"))
    assert len(corpus) == args.photos, f"{corpus_dir} holds {len(corpus)} photos"
    for p in corpus:
        p.read_bytes()  # both tools start from a warm file cache
    fp32_pack, int8_pack = packs(cache)
    rclip = rclip_venv(cache)
    models = rclip_models(cache)
    scratch = Path(tempfile.mkdtemp(prefix="peer-rclip-", dir=cache))
    ps = photosearch_cmd()
    # rclip must never reach for the hub: its files are in place, and offline it would fail fast.
    rclip_env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    n = len(corpus)

    def index_photosearch(pack: Path) -> Any:
        def job() -> Run:
            home = photosearch_home(pack, corpus_dir, scratch)
            try:
                r = timed([*ps, "--home", str(home), "index", "-q", "--json"])
                got = json.loads(r.stdout)["indexed"]
                assert got == n, f"photosearch indexed {got} of {n}"
                return r
            finally:
                shutil.rmtree(home, ignore_errors=True)

        return job

    def index_rclip() -> Run:
        home = rclip_datadir(models, scratch)
        try:
            env = {**rclip_env, "RCLIP_DATADIR": str(home)}
            r = timed([str(rclip), "--top", str(TOP), QUERY], env=env, cwd=corpus_dir)
            with sqlite3.connect(home / "db.sqlite3") as db:
                got = db.execute("SELECT COUNT(*) FROM images WHERE deleted IS NULL").fetchone()[0]
            assert got == n, f"rclip indexed {got} of {n}"
            return r
        finally:
            shutil.rmtree(home, ignore_errors=True)

    def bound() -> dict[str, float]:
        cmd = [sys.executable, __file__, "--bound-child", str(int8_pack), str(corpus_dir)]
        return json.loads(timed(cmd).stdout)

    say(f"{n} photos of {SIZE[0]}×{SIZE[1]} in {corpus_dir}; indexing, {args.runs} rounds")
    load_before = os.getloadavg()
    t_start = time.time()
    indexing = round_robin(
        {
            "photosearch_int8": index_photosearch(int8_pack),
            "photosearch_fp32": index_photosearch(fp32_pack),
            "rclip": index_rclip,
            "bound_int8": bound,
        },
        args.runs,
    )

    say(f"query: one indexed library each, {args.queries} whole-process queries of each")
    homes = {
        "photosearch_int8": photosearch_home(int8_pack, corpus_dir, scratch),
        "photosearch_fp32": photosearch_home(fp32_pack, corpus_dir, scratch),
    }
    for home in homes.values():
        timed([*ps, "--home", str(home), "index", "-q"])
    rclip_home = rclip_datadir(models, scratch)
    rclip_query_env = {**rclip_env, "RCLIP_DATADIR": str(rclip_home)}
    timed([str(rclip), QUERY], env=rclip_query_env, cwd=corpus_dir)  # indexes

    def query_photosearch(home: Path, *, served: bool = False) -> Any:
        cmd = [*ps, "--home", str(home), "search", QUERY, "-n", str(TOP), "--rerank", "0"]
        # The command alone loads the models itself; "served" asks `photosearch serve`.
        env = {**os.environ} if served else {**os.environ, "PHOTOSEARCH_NO_SOCKET": "1"}
        return lambda: timed(cmd, env=env)

    def query_rclip() -> Run:
        cmd = [str(rclip), "--no-indexing", "--top", str(TOP), QUERY]
        return timed(cmd, env=rclip_query_env, cwd=corpus_dir)

    query_jobs = {
        "photosearch_int8": query_photosearch(homes["photosearch_int8"]),
        "photosearch_fp32": query_photosearch(homes["photosearch_fp32"]),
        "photosearch_int8_served": query_photosearch(homes["photosearch_int8"], served=True),
        "rclip": query_rclip,
    }
    with serving(ps, homes["photosearch_int8"]):
        # One warm-up each (file cache, compiled bytecode), then the counted rounds.
        samples = {name: job().stdout for name, job in query_jobs.items()}
        queries = round_robin(query_jobs, args.queries)
    load_after = os.getloadavg()
    elapsed = time.time() - t_start
    shutil.rmtree(scratch, ignore_errors=True)

    return summarise(
        n,
        indexing,
        queries,
        samples,
        {
            "load_before": load_before,
            "load_after": load_after,
            "elapsed_s": elapsed,
            "corpus": str(corpus_dir),
            "corpus_mb": round(sum(p.stat().st_size for p in corpus) / 1e6, 1),
        },
    )


@contextlib.contextmanager
def serving(ps: list[str], home: Path) -> Iterator[None]:
    """``photosearch serve`` on ``home`` while the block runs (it holds the models loaded and
    answers the "served" queries over its socket)."""
    server = subprocess.Popen(
        [*ps, "--home", str(home), "serve"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        assert "answering searches" in line, f"photosearch serve did not start: {line}"
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def _quiet(a_runs: list[Run], b_runs: list[Run], ratio) -> dict[str, Any]:
    """The ratio over the pairs in which the rest of the machine stayed nearly idle."""
    pairs = [
        ratio(a, b)
        for a, b in zip(a_runs, b_runs, strict=True)
        if a.others_cores < QUIET and b.others_cores < QUIET
    ]
    return {"pairs": len(pairs), **(spread(pairs) if pairs else {})}


def summarise(
    n: int,
    indexing: dict[str, list[Any]],
    queries: dict[str, list[Run]],
    samples: dict[str, str],
    meta: dict[str, Any],
) -> dict[str, Any]:
    rates = {k: [n / r.wall_s for r in v] for k, v in indexing.items() if k != "bound_int8"}
    bounds = indexing["bound_int8"]
    # The bound: no pipeline on these cores is faster than the slower stage alone, nor than the
    # two stages' CPU time spread perfectly over every core.
    bound_rate = [
        n / max(b["decode_s"], b["encode_s"], (b["decode_cpu_s"] + b["encode_cpu_s"]) / b["cores"])
        for b in bounds
    ]
    sequential_rate = [n / (b["decode_s"] + b["encode_s"]) for b in bounds]
    ps_tools = ("photosearch_int8", "photosearch_fp32")
    index_rows = {
        k: {
            "images_per_s": spread(rates[k]),
            "wall_s": spread([r.wall_s for r in indexing[k]]),
            "cpu_s": spread([r.cpu_s for r in indexing[k]]),
            "peak_rss_mb": spread([r.peak_rss_mb for r in indexing[k]]),
            "others_cores": spread([r.others_cores for r in indexing[k]]),
        }
        for k in rates
    }
    index_ratios = {
        f"{k}_vs_rclip": spread([a / b for a, b in zip(rates[k], rates["rclip"], strict=True)])
        for k in ps_tools
    }
    # CPU seconds per photo hardly move with the machine's other load, wall time does.
    index_cpu_ratios = {
        f"{k}_vs_rclip": spread(
            [b.cpu_s / a.cpu_s for a, b in zip(indexing[k], indexing["rclip"], strict=True)]
        )
        for k in ps_tools
    }
    quiet_ratios = {
        f"{k}_vs_rclip": _quiet(indexing[k], indexing["rclip"], lambda a, b: b.wall_s / a.wall_s)
        for k in ps_tools
    }
    rss_ratios = {
        f"{k}_vs_rclip": spread(
            [
                a.peak_rss_mb / b.peak_rss_mb
                for a, b in zip(indexing[k], indexing["rclip"], strict=True)
            ]
        )
        for k in ps_tools
    }
    share_of_bound = {
        k: spread([a / b for a, b in zip(rates[k], bound_rate, strict=True)]) for k in ps_tools
    }
    query_rows = {
        k: {
            "wall_s": spread([r.wall_s for r in v]),
            "cpu_s": spread([r.cpu_s for r in v]),
            "peak_rss_mb": spread([r.peak_rss_mb for r in v]),
            "others_cores": spread([r.others_cores for r in v]),
        }
        for k, v in queries.items()
    }
    query_tools = (*ps_tools, "photosearch_int8_served")
    query_ratios = {
        f"{k}_vs_rclip": spread(
            [a.wall_s / b.wall_s for a, b in zip(queries[k], queries["rclip"], strict=True)]
        )
        for k in query_tools
    }
    query_quiet_ratios = {
        f"{k}_vs_rclip": _quiet(queries[k], queries["rclip"], lambda a, b: a.wall_s / b.wall_s)
        for k in query_tools
    }
    return {
        "photos": n,
        "photo_size": list(SIZE),
        "model": MODEL,
        "query": QUERY,
        "top": TOP,
        "runs": len(bounds),
        "queries": len(queries["rclip"]),
        "indexing": index_rows,
        "indexing_ratio": index_ratios,
        "indexing_cpu_ratio": index_cpu_ratios,
        "indexing_ratio_quiet_pairs": quiet_ratios,
        "indexing_peak_rss_ratio": rss_ratios,
        "bound_int8": {
            "images_per_s": spread(bound_rate),
            "sequential_images_per_s": spread(sequential_rate),
            "decode_pool_images_per_s": spread([n / b["decode_s"] for b in bounds]),
            "encode_int8_images_per_s": spread([n / b["encode_s"] for b in bounds]),
            "decode_workers": bounds[0]["workers"],
        },
        "indexing_share_of_bound": share_of_bound,
        "query_whole_process": query_rows,
        "query_ratio": query_ratios,
        "query_ratio_quiet_pairs": query_quiet_ratios,
        "quiet_below_cores": QUIET,
        "query_output_lines": {k: len(v.strip().splitlines()) for k, v in samples.items()},
        "raw": {
            "indexing": {
                k: [asdict(r) | {"stdout": None} if isinstance(r, Run) else r for r in v]
                for k, v in indexing.items()
            },
            "query": {k: [asdict(r) | {"stdout": None} for r in v] for k, v in queries.items()},
        },
        **meta,
    }


def machine(rclip: Path) -> dict[str, Any]:
    import onnxruntime as ort
    from PIL import Image

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    probe = (
        "import onnxruntime as o, PIL as p, numpy as n; "
        "print(o.__version__, p.__version__, n.__version__)"
    )
    r_ort, r_pil, r_np = subprocess.run(
        [str(rclip.with_name("python")), "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    import numpy as np

    import photosearch

    source = Path(photosearch.__file__).parent.parent
    commit = subprocess.run(
        ["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    )

    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "photosearch": photosearch.__version__,
        "photosearch_source": str(source),
        "photosearch_commit": (commit.stdout.strip() or "unknown")
        + (" (with uncommitted changes)" if dirty.stdout.strip() else ""),
        "photosearch_onnxruntime": ort.__version__,
        "photosearch_pillow": Image.__version__,
        "photosearch_numpy": np.__version__,
        "rclip": RCLIP_VERSION,
        "rclip_onnxruntime": r_ort,
        "rclip_pillow": r_pil,
        "rclip_numpy": r_np,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }


def _s(d: dict[str, float], fmt: str = ".2f") -> str:
    return f"{d['median']:{fmt}} ({d['min']:{fmt}}–{d['max']:{fmt}})"


def setup_notes(m: dict[str, Any]) -> list[str]:
    """How each side is run: what both were given, and what each chooses by itself."""
    return [
        "## How each tool runs",
        "",
        "Both run as installed, with their own defaults; neither is told a thread count, and on "
        f"this {m['cores']}-core machine both choose the same: {m['cores']} decode threads and "
        f"{m['cores']} ONNX Runtime intra-op threads.",
        "",
        "- photosearch: decode pool `min(4, cores)` threads (hash, JPEG draft-mode decode, "
        "preprocess), image encoder with intra-op threads = the cores this process may use, "
        "inter-op 1, spinning off, batches of 32, two batches read ahead; SQLite commit and FAISS "
        "add per batch. The text encoder has a dynamic length (a query runs only its own tokens).",
        "- rclip 3.3.0: loader pool `min(16, cores)` threads (hash of the first 1 MB and last "
        "1 KB, full decode, bicubic resize from full size), ONNX Runtime intra-op threads = the "
        "cores this process may use, spinning on (the default), batches of 8 "
        "(`--indexing-batch-size` default), three batches read ahead; vectors as BLOBs in "
        "SQLite, searched by a NumPy product over all rows. The text graph is fixed at 77 tokens.",
        "- rclip's models: random-weight stand-ins in the layout its loader "
        "(`rclip/model_download.py`) checks before it downloads: `$RCLIP_DATADIR/"
        f"{RCLIP_MODEL_SUBDIR}/visual.onnx` and `textual.onnx` (input `input`, batch axis "
        f"dynamic, fp32, opset {RCLIP_OPSET}), `$RCLIP_DATADIR/{RCLIP_VOCAB}`; its index is "
        "`$RCLIP_DATADIR/db.sqlite3`. `HF_HUB_OFFLINE=1` is set so any attempt to reach the hub "
        "would fail at once (none is made).",
        "",
    ]


def _q(d: dict[str, Any]) -> str:
    return f"{_s(d)} ({d['pairs']} pairs)" if d["pairs"] else "no quiet pair"


def markdown(r: dict[str, Any], m: dict[str, Any]) -> str:
    ix, q = r["indexing"], r["query_whole_process"]
    ir, qr, rr = r["indexing_ratio"], r["query_ratio"], r["indexing_peak_rss_ratio"]
    share, b = r["indexing_share_of_bound"], r["bound_int8"]
    ic, iq = r["indexing_cpu_ratio"], r["indexing_ratio_quiet_pairs"]
    qq = r["query_ratio_quiet_pairs"]
    lines = [
        "# photosearch against rclip 3.3.0, whole processes",
        "",
        f"{r['photos']} JPEGs of {r['photo_size'][0]}×{r['photo_size'][1]} "
        f"({r['corpus_mb']} MB), {r['model']} with random weights on both sides; "
        f"{r['runs']} indexing rounds and {r['queries']} query rounds, round robin "
        "(order rotated each round). Each figure is median (min–max); each ratio is taken "
        "pair by pair within a round. Produced by `python benchmarks/peer_rclip.py "
        f"--photos {r['photos']} --runs {r['runs']} --queries {r['queries']}`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
        f"Python {m['python']}; {m['date']}. photosearch {m['photosearch']} at "
        f"{m['photosearch_commit']} (ONNX Runtime "
        f"{m['photosearch_onnxruntime']}, Pillow {m['photosearch_pillow']}, NumPy "
        f"{m['photosearch_numpy']}); rclip {m['rclip']} from PyPI in its own venv (ONNX "
        f"Runtime {m['rclip_onnxruntime']}, Pillow {m['rclip_pillow']}, NumPy "
        f"{m['rclip_numpy']}). Load average (1, 5, 15 min) before: "
        f"{', '.join(f'{x:.2f}' for x in r['load_before'])}; after: "
        f"{', '.join(f'{x:.2f}' for x in r['load_after'])}. The machine is shared: the "
        "'others' column is the CPU the rest of the machine used during each run, in cores "
        "(from /proc/stat, less the child's own CPU); a pair is quiet when both runs saw less "
        f"than {r['quiet_below_cores']} cores of it.",
        "",
        *setup_notes(m),
        "## Indexing (fresh data directory each run)",
        "",
        "| | images/s | wall s | CPU s | peak RSS MB | others, cores |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {
        "photosearch_int8": "`photosearch index`, int8 pack",
        "photosearch_fp32": "`photosearch index`, fp32 pack",
        "rclip": "`rclip QUERY` (indexes, then one query), fp32",
    }
    for k, label in names.items():
        row = ix[k]
        lines.append(
            f"| {label} | {_s(row['images_per_s'])} | {_s(row['wall_s'])} | "
            f"{_s(row['cpu_s'])} | {_s(row['peak_rss_mb'], '.0f')} | "
            f"{_s(row['others_cores'])} |"
        )
    lines += [
        "",
        "| ratio (pair by pair) | median (min–max) |",
        "|---|---:|",
        f"| images/s, photosearch int8 ÷ rclip | **{_s(ir['photosearch_int8_vs_rclip'])}×** |",
        f"| images/s, photosearch fp32 ÷ rclip | {_s(ir['photosearch_fp32_vs_rclip'])}× |",
        f"| images/s, quiet pairs only, int8 ÷ rclip | {_q(iq['photosearch_int8_vs_rclip'])} |",
        f"| images/s, quiet pairs only, fp32 ÷ rclip | {_q(iq['photosearch_fp32_vs_rclip'])} |",
        f"| CPU seconds, rclip ÷ photosearch int8 | {_s(ic['photosearch_int8_vs_rclip'])}× |",
        f"| CPU seconds, rclip ÷ photosearch fp32 | {_s(ic['photosearch_fp32_vs_rclip'])}× |",
        f"| peak RSS, photosearch int8 ÷ rclip | {_s(rr['photosearch_int8_vs_rclip'])} |",
        f"| peak RSS, photosearch fp32 ÷ rclip | {_s(rr['photosearch_fp32_vs_rclip'])} |",
        "",
        "## The decode + encode bound (photosearch's parts alone, same photos, same run)",
        "",
        f"Decode pool ({b['decode_workers']} threads: hash, draft decode, preprocess): "
        f"{_s(b['decode_pool_images_per_s'])} images/s; int8 image encoder, batch 32: "
        f"{_s(b['encode_int8_images_per_s'])} images/s; the two one after the other: "
        f"{_s(b['sequential_images_per_s'])} images/s. The bound is what these cores allow "
        "when the stages overlap perfectly: the slower stage alone, or both stages' CPU "
        "seconds spread over every core, whichever is longer: "
        f"**{_s(b['images_per_s'])} images/s**.",
        "",
        f"Whole-process indexing with the int8 pack reaches {_s(share['photosearch_int8'])} "
        "of the bound measured in the same round (start-up, model load, scan and commits "
        "included).",
        "",
        "## CLI query (whole process, text, no refinement)",
        "",
        f'`photosearch search "{r["query"]}" -n {r["top"]} --rerank 0` against '
        f'`rclip --no-indexing --top {r["top"]} "{r["query"]}"` in the corpus folder, each '
        "on the library it indexed; one warm-up each first.",
        "",
        "| | wall s | CPU s | peak RSS MB | others, cores |",
        "|---|---:|---:|---:|---:|",
    ]
    qnames = {
        "photosearch_int8": "photosearch, int8 pack",
        "photosearch_fp32": "photosearch, fp32 pack",
        "photosearch_int8_served": "photosearch, int8 pack, answered by `photosearch serve`",
        "rclip": "rclip",
    }
    for k, label in qnames.items():
        row = q[k]
        lines.append(
            f"| {label} | {_s(row['wall_s'], '.3f')} | {_s(row['cpu_s'], '.3f')} | "
            f"{_s(row['peak_rss_mb'], '.0f')} | {_s(row['others_cores'])} |"
        )
    lines += [
        "",
        "| ratio (pair by pair) | median (min–max) |",
        "|---|---:|",
        "| wall time, photosearch int8 answered by `serve` ÷ rclip | "
        f"**{_s(qr['photosearch_int8_served_vs_rclip'])}** |",
        "| wall time, photosearch int8 alone ÷ rclip | "
        f"**{_s(qr['photosearch_int8_vs_rclip'])}** |",
        f"| wall time, photosearch fp32 ÷ rclip | {_s(qr['photosearch_fp32_vs_rclip'])} |",
        f"| wall time, quiet pairs only, int8 ÷ rclip | {_q(qq['photosearch_int8_vs_rclip'])} |",
        f"| wall time, quiet pairs only, fp32 ÷ rclip | {_q(qq['photosearch_fp32_vs_rclip'])} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=96)
    ap.add_argument("--runs", type=int, default=3, help="indexing rounds")
    ap.add_argument("--queries", type=int, default=10, help="query rounds")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/photosearch-bench-cache"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--bound-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bound_child:
        return bound_child(*args.bound_child)
    result = run(args)
    m = machine(rclip_venv(args.cache))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peer_rclip.json").write_text(json.dumps({"machine": m, **result}, indent=2) + "\n")
    (args.out / "peer_rclip.md").write_text(markdown(result, m))
    print(markdown(result, m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
