"""The docs' screenshot set, taken from the real app under a virtual X server.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Writes ``first-run.png`` (a new user's window, no model pack yet), ``results.png`` (the demo's
first example query, fast results), ``refined.png`` (the same query refined: also
``docs/screenshot.png``, the README's picture), ``no-good-match.png`` (a description of what the
demo does not hold), ``viewer.png`` (the photo viewer) and ``models.png`` (the model packs
dialog). The library is exactly ``photosearch demo``'s (its scenes, the trained pack of
``tests/data/synthetic-pack``, its example queries), made in a temporary folder.

Needs Xvfb (Debian/Ubuntu: ``apt-get install -y xvfb libxcb-cursor0 libxcb-icccm4
libxcb-keysyms1``) unless a display is already there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (1200, 800)


def wait_until(app, ok: Callable[[], bool], timeout: float = 120.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.02)


def settle(app, window, seconds: float = 1.0) -> None:  # noqa: ANN001
    window.thumbnails.wait(10_000)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def search(app, window, text: str, refine: int) -> object:  # noqa: ANN001
    shown: list = []
    window.results_shown.connect(shown.append)
    window.refine.setValue(refine)
    window.search_field.setText(text)
    window.search_now()
    wait_until(app, lambda: bool(shown) and shown[-1].query.text == text and not shown[-1].pending)
    window.results_shown.disconnect(shown.append)
    settle(app, window)
    return shown[-1]


def take(out: Path) -> list[Path]:
    from PySide6.QtWidgets import QApplication

    from photosearch import demo
    from photosearch.library import Library
    from photosearch.ui.app import application
    from photosearch.ui.window import MainWindow

    app = application()
    out.mkdir(parents=True, exist_ok=True)
    saved = []

    def grab(widget, name: str) -> None:  # noqa: ANN001
        QApplication.processEvents()
        path = out / name
        widget.grab().save(str(path))
        saved.append(path)

    with tempfile.TemporaryDirectory() as tmp:
        empty = MainWindow(Library(Path(tmp) / "new-user"), watch=False)
        empty.resize(*SIZE)
        empty.show()
        wait_until(app, lambda: empty.info is not None and empty.welcome.isVisible())
        settle(app, empty, 1.5)
        grab(empty, "first-run.png")
        empty.shutdown()
        empty.close()

        home = Path(tmp) / "demo"
        made = demo.prepare(home)
        window = MainWindow(Library(home), watch=False)
        window.set_examples(made.queries[:4])
        window.scores_action.setChecked(True)  # the relevance badges (View ▸ Show scores)
        window.grid.show_scores(True)
        window.resize(*SIZE)
        window.show()
        wait_until(app, lambda: window.info.pack is not None)
        window._start_searching()
        settle(app, window, 1.0)
        query = made.queries[0]
        search(app, window, query, 0)
        grab(window, "results.png")
        search(app, window, query, 20)  # the same words, refined this time
        grab(window, "refined.png")
        shutil.copyfile(out / "refined.png", ROOT / "docs" / "screenshot.png")
        window.open_viewer(0)
        viewer = window.dialogs.get("viewer")
        if viewer is not None:
            settle(app, window, 1.5)
            grab(viewer, "viewer.png")
            viewer.close()
        search(app, window, "a dog on the beach at sunset", 20)
        grab(window, "no-good-match.png")
        window.show_models()
        dialog = window.dialogs.get("models")
        if dialog is not None:
            settle(app, window, 1.5)
            grab(dialog, "models.png")
            dialog.close()
        window.shutdown()
        window.close()
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inner and not os.environ.get("DISPLAY"):
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            print(
                "screenshots: needs a display or xvfb-run (apt-get install xvfb)", file=sys.stderr
            )
            return 1
        cmd = [xvfb, "-a", "-s", "-screen 0 1280x900x24", sys.executable, __file__, "--inner"]
        return subprocess.call([*cmd, "--out", args.out])
    os.environ.pop("QT_QPA_PLATFORM", None)
    for path in take(Path(args.out)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
