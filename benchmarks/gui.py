"""Desktop window timings: cold start to an interactive window, keystroke to first results,
grid scrolling — and that torch is not imported before the first refinement.

A library of N photo rows is made as in ``benchmarks/search.py`` (real files shared by hard
links, random vectors). The window then runs in a fresh process (offscreen unless a display
is set), as a person starts it:

- *start*: process start → window shown → library ready (pack, index, text encoder loaded);
- *first results*: a query typed (one key event) → fast list shown, with and without the
  search-as-you-type delay;
- *scroll*: 100,000 rows in the grid, scrolled top to bottom in 40 steps, each repainted.

    python -m benchmarks.gui [--photos 100000] [--pack DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
t0 = float(sys.argv[2])  # wall clock just before the parent spawned this process
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
frames = []
for step in range(41):
    t = time.perf_counter()
    bar.setValue(bar.maximum() * step // 40)
    window.view.viewport().repaint()
    app.processEvents()
    frames.append((time.perf_counter() - t) * 1000)
frames.sort()
out["scroll_frame_ms_p50"] = frames[len(frames) // 2]
out["scroll_frame_ms_max"] = frames[-1]
window.close()
print(json.dumps(out))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=100_000)
    ap.add_argument("--pack", type=Path, help="model pack (default: tiny CoCa, exported here)")
    args = ap.parse_args()
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
        run = subprocess.run(
            [sys.executable, "-c", CHILD, str(home), str(time.time())],
            env=env,
            capture_output=True,
            text=True,
        )
        if run.returncode:
            print(run.stderr, file=sys.stderr)
            return 1
        report = json.loads(run.stdout.strip().splitlines()[-1])
        report["photos"] = args.photos
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
