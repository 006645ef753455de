"""Desktop window timings: cold start to an interactive window, keystroke to first results,
grid scrolling — and that torch is not imported before the first refinement.

A library of N photo rows is made as in ``benchmarks/search.py`` (real files shared by hard
links, random vectors). The window then runs in a fresh process (offscreen unless a display
is set), as a person starts it:

- *start*: process start → window shown → library ready (pack, index, text encoder loaded);
- *first results*: a query typed (one key event) → fast list shown, with and without the
  search-as-you-type delay;
- *scroll*: 100,000 rows in the grid, scrolled top to bottom in 40 steps, each repainted.

    python -m benchmarks.gui [--photos 100000] [--repeat 3] [--pack DIR]

Results: ``benchmarks/results/gui.{md,json}``, with a bare Qt window started the same way
as the baseline of the start-up time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The baseline, in the same run: the cheapest Qt program that shows a window.
BARE = r"""
import sys, time
t0 = float(sys.argv[1])
from PySide6.QtWidgets import QApplication, QLineEdit
app = QApplication([])
w = QLineEdit()
w.show()
app.processEvents()
print(time.time() - t0)
"""

CHILD = r"""
import json, sys, time
t0 = float(sys.argv[-1])  # wall clock just before the parent spawned this process
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication
from photosearch.ui.app import application
from photosearch.library import Library
from photosearch.ui.window import MainWindow, SEARCH_DELAY_MS
app = application()
window = MainWindow(Library(sys.argv[1]), watch=False)
window.show()
app.processEvents()
out = {"window_shown_s": time.time() - t0}
def wait(signal, done):  # one event loop, not a busy processEvents() loop
    loop = QEventLoop()
    signal.connect(lambda *a: done() and loop.quit())
    QTimer.singleShot(120_000, loop.quit)
    if not done():
        loop.exec()
wait(window.library_refreshed, lambda: window.info.pack is not None)
out["ready_s"] = time.time() - t0
out["torch_before_search"] = "torch" in sys.modules
shown = []
window.results_shown.connect(lambda r: shown.append((time.perf_counter(), r)))
window.refine.setValue(20)
t = time.perf_counter()
window.search_field.setText("a red circle")
window._typed("a red circle")
wait(window.results_shown, lambda: bool(shown))
out["keystroke_to_first_results_ms"] = (shown[0][0] - t) * 1000
out["search_delay_ms"] = SEARCH_DELAY_MS
out["first_results_count"] = len(shown[0][1])
out["torch_before_refinement"] = "torch" in sys.modules
wait(window.results_shown, lambda: shown[-1][1].refined or shown[-1][1].note is not None)
out["keystroke_to_refined_ms"] = (shown[-1][0] - t) * 1000
import dataclasses
rows = [dataclasses.replace(r, rank=i + 1) for i, r in
        enumerate(list(shown[-1][1].results) * (100_000 // len(shown[-1][1]) + 1))][:100_000]
t = time.perf_counter()
window.model.set_results(rows)
app.processEvents()
out["set_100k_rows_ms"] = (time.perf_counter() - t) * 1000
bar = window.view.verticalScrollBar()
def scroll():
    frames = []
    for step in range(41):
        t = time.perf_counter()
        bar.setValue(bar.maximum() * step // 40)
        window.view.viewport().repaint()
        app.processEvents()
        frames.append((time.perf_counter() - t) * 1000)
    return sorted(frames)
frames = scroll()  # thumbnails made as pages appear (decoding beside the painting)
out["scroll_frame_ms_p50"] = frames[len(frames) // 2]
out["scroll_frame_ms_max"] = frames[-1]
window.thumbnails.wait(60_000)
app.processEvents()
frames = scroll()  # the same pages again, thumbnails in memory: painting alone
out["scroll_warm_frame_ms_p50"] = frames[len(frames) // 2]
out["scroll_warm_frame_ms_max"] = frames[-1]
window.close()
print(json.dumps(out))
"""


def run_child(code: str, *args: str, env: dict[str, str]) -> str:
    run = subprocess.run(
        [sys.executable, "-c", code, *args, str(time.time())],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if run.returncode:
        raise RuntimeError(run.stderr[-3000:])
    return run.stdout.strip().splitlines()[-1]


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def render(r: dict) -> str:
    m = r["machine"]
    runs = r["runs"]
    lines = [
        "# Desktop window timings",
        "",
        f"{r['photos']:,} photo rows (random vectors), pack `{r['pack']}`, "
        f"Qt platform `{r['platform']}`, median of {len(runs)} fresh processes. "
        "Produced by `python -m benchmarks.gui`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
        f"Python {m['python']}, ONNX Runtime {m['onnxruntime']}; load average "
        f"{r['load_before']:.1f} before, {r['load_after']:.1f} after (a shared machine: "
        "compare within the table).",
        "",
        "| measure | median | runs |",
        "|---|---:|---|",
    ]
    rows = [
        ("bare Qt window shown (baseline), s", "bare_window_s"),
        ("photosearch window shown, s", "window_shown_s"),
        ("library ready (pack, index, text encoder), s", "ready_s"),
        (
            "keystroke → first results, ms (with the typing delay)",
            "keystroke_to_first_results_ms",
        ),
        ("keystroke → refined results (top 20), ms", "keystroke_to_refined_ms"),
        ("100,000 rows into the grid, ms", "set_100k_rows_ms"),
        ("grid scroll, new thumbnails: page repainted, p50 ms", "scroll_frame_ms_p50"),
        ("grid scroll: worst page, ms", "scroll_frame_ms_max"),
        ("grid scroll again, thumbnails in memory: page p50, ms", "scroll_warm_frame_ms_p50"),
        ("grid scroll again: worst page, ms", "scroll_warm_frame_ms_max"),
    ]
    for label, key in rows:
        values = [run[key] for run in runs]
        lines.append(
            f"| {label} | {median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |"
        )
    shown = median([x["window_shown_s"] for x in runs])
    bare = median([x["bare_window_s"] for x in runs])
    lines += [
        "",
        f"- Window shown in {shown / bare:.1f}× the time of a bare Qt window started the same way.",
        f"- Typing delay (search as you type): {runs[0]['search_delay_ms']} ms of the first "
        "results' time; Enter searches at once.",
        "- torch imported before the first refinement: "
        + ("**yes**" if any(x["torch_before_refinement"] for x in runs) else "no")
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per measure")
    ap.add_argument("--pack", type=Path, help="model pack (default: tiny CoCa, exported here)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    from benchmarks.indexing import machine
    from benchmarks.search import make_library

    with tempfile.TemporaryDirectory() as tmp:
        pack = args.pack
        if pack is None:
            from photosearch.export_onnx.exporter import Source, export_pack

            pack = Path(tmp) / "tiny-coca"
            export_pack(Source("photosearch-tiny-coca", None), pack, reranker="self")
        home = Path(tmp) / "home"
        t = time.perf_counter()
        make_library(home, pack, args.photos).close()
        print(f"library of {args.photos} photos made in {time.perf_counter() - t:.0f} s")
        env = dict(os.environ)
        if not env.get("DISPLAY"):
            env["QT_QPA_PLATFORM"] = "offscreen"
        load_before = os.getloadavg()[0]
        runs = []
        from photosearch import config

        paths = config.paths(str(home))
        for i in range(args.repeat):  # baseline and app in turn: the same noise for both
            # every run as the first: no restored query (it would search before the
            # keystroke) and no thumbnails on disk yet
            (paths.data / "gui.ini").unlink(missing_ok=True)
            shutil.rmtree(paths.cache / "thumbnails", ignore_errors=True)
            bare = float(run_child(BARE, env=env))
            report = json.loads(run_child(CHILD, str(home), env=env))
            report["bare_window_s"] = bare
            runs.append(report)
            print(f"run {i + 1}: {json.dumps(report)}")
        result = {
            "photos": args.photos,
            "pack": pack.name,
            "platform": env.get("QT_QPA_PLATFORM", "xcb"),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            "machine": machine(),
            "runs": runs,
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gui.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "gui.md").write_text(render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
