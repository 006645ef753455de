"""Shared fixtures: an isolated home per test, tiny model packs exported once per run, a library
with a pack installed, the thread-leak check, and ``consistent`` (import it from here)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from photosearch.library import Library

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the benchmark's scene generator (benchmarks.synthetic)
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own PHOTOSEARCH_HOME: nothing touches a real user's data."""
    home = tmp_path / "home"
    monkeypatch.setenv("PHOTOSEARCH_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_clip_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CLIP-style dual encoder (open_clip's own classes, tiny config), int8 requested."""
    from photosearch.export_onnx.exporter import Source, export_pack

    out = tmp_path_factory.mktemp("packs") / "tiny-clip"
    export_pack(Source("photosearch-tiny-clip", None), out, quantize="int8")
    return out


@pytest.fixture(scope="session")
def tiny_coca_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CoCa: dual encoder and cross-attention reranker from one model."""
    from photosearch.export_onnx.exporter import Source, export_pack

    out = tmp_path_factory.mktemp("packs") / "tiny-coca"
    export_pack(Source("photosearch-tiny-coca", None), out, reranker="self")
    return out


@pytest.fixture(scope="session")
def calibrated_synthetic(tmp_path_factory: pytest.TempPathFactory):
    """The synthetic world (another seed) exported as a COCO caption set (``set/``), and the
    committed pack calibrated on it by benchmarks/calibrate.py through a Library, as a user
    searches (``pack/``, the report in ``report.md``/``.json``)."""
    pack = ROOT / "tests" / "data" / "synthetic-pack"
    if not (pack / "manifest.json").exists():
        pytest.skip("tests/data/synthetic-pack missing")
    from benchmarks import calibrate
    from benchmarks.synthetic import captions

    root = tmp_path_factory.mktemp("calibration")
    counts = captions.write(root / "set", seed=1, families=24, condition="96png", absent=30)
    assert counts["captions"] > 80 and counts["absent"] >= 40
    report = calibrate.run(
        pack,
        root / "set" / "photos",
        root / "set" / "captions.json",
        root / "pack",
        absent=root / "set" / "absent.json",
        k=10,
        n=30,
        report_to=root / "report",
        say=lambda _msg: None,
    )
    return root, report


@pytest.fixture
def pack_copy(tmp_path: Path, tiny_clip_pack: Path) -> Path:
    """A private copy of the tiny CLIP pack that a test may damage."""
    import shutil

    dst = tmp_path / "pack"
    shutil.copytree(tiny_clip_pack, dst)
    return dst


@pytest.fixture
def lib(isolated_home: Path, tiny_clip_pack: Path) -> Iterator[Library]:
    """The test's library with the tiny CLIP pack installed (no folders yet); closed after."""
    from photosearch.library import Library

    library = Library(isolated_home)
    library.import_pack(tiny_clip_pack)
    yield library
    library.close()


@pytest.fixture
def coca_lib(isolated_home: Path, tiny_coca_pack: Path) -> Library:
    """The test's library with the tiny CoCa pack (it can refine); the taker closes it (in the
    GUI tests, the window does)."""
    from photosearch.library import Library

    library = Library(isolated_home)
    library.import_pack(tiny_coca_pack)
    return library


def consistent(library: Library) -> None:
    """What a user relies on: index == catalog, no duplicate rows, no catalog damage."""
    pack = library.pack
    want = library.catalog.vector_ids(pack.id)
    assert library.index.matches(want)
    assert len(np.unique(want)) == len(want)
    assert library.catalog.integrity_check() == []
    assert library.doctor() == []


THREADS_FINISH_S = 15  # how long a test's threads may take to end after it


def _let_qt_deliver() -> None:
    """Queued signals a finishing thread may wait on (when the test ran a Qt application)."""
    widgets = sys.modules.get("PySide6.QtWidgets")
    if widgets is not None and widgets.QApplication.instance() is not None:
        widgets.QApplication.processEvents()


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Fails the test if a thread it started is still running once it is over (after waiting
    up to THREADS_FINISH_S for those that are finishing)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREADS_FINISH_S
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        _let_qt_deliver()
        time.sleep(0.05)
    assert not left, f"threads left running: {[t.name for t in left]}"
