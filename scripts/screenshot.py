"""Start the real app under a virtual X server, run a search, save a screenshot.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png] [--home DIR]

Needs Xvfb (Debian/Ubuntu: ``apt-get install -y xvfb libxcb-cursor0 libxcb-icccm4
libxcb-keysyms1``) unless a display is already there. The library is made in ``--home``
(a temporary folder by default): the demo's library (``photosearch demo``: its scenes, the
trained pack of ``tests/data/synthetic-pack``, its first example query) when the pack is there,
else coloured shapes with the tiny CoCa pack
(exported on the spot: needs the ``export`` extra, which ``make test`` installs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC_PACK = ROOT / "tests" / "data" / "synthetic-pack"


def prepare(home: Path) -> str:
    """A library with photos indexed; returns the query to type."""
    from photosearch.library import Library

    photos = home / "Pictures"
    if (SYNTHETIC_PACK / "manifest.json").exists():
        # Exactly what `photosearch demo` shows: its scenes, its pack, its first example query.
        from photosearch import demo

        return demo.prepare(home).queries[0]
    sys.path.insert(0, str(ROOT / "tests"))
    from photos import good_photos

    from photosearch.export_onnx.exporter import Source, export_pack

    good_photos(photos, 48)
    pack = home / "tiny-coca"
    if not (pack / "manifest.json").exists():
        export_pack(Source("photosearch-tiny-coca", None), pack, reranker="self")
    query = "a red circle on a blue background"
    with Library(home) as lib:
        if not lib.installed_packs():
            lib.import_pack(pack)
        lib.add_folder(photos)
        lib.index_photos()
    return query


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--home", help="library folder (default: a temporary one)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inner and not os.environ.get("DISPLAY"):
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            print("screenshot: needs a display or xvfb-run (apt-get install xvfb)", file=sys.stderr)
            return 1
        cmd = [xvfb, "-a", "-s", "-screen 0 1280x860x24", sys.executable, __file__, "--inner"]
        cmd += ["--out", args.out] + (["--home", args.home] if args.home else [])
        return subprocess.call(cmd)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(args.home) if args.home else Path(tmp)
        query = prepare(home)
        os.environ.pop("QT_QPA_PLATFORM", None)
        from photosearch.ui.app import run

        code = run(str(home), "cpu", screenshot=Path(args.out), query=query)
    if not Path(args.out).exists():
        print("screenshot: no picture was saved", file=sys.stderr)
        return 1
    print(args.out)
    return code


if __name__ == "__main__":
    sys.exit(main())
