"""Shared fixtures: an isolated home per test, and tiny model packs exported once per run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

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


@pytest.fixture
def pack_copy(tmp_path: Path, tiny_clip_pack: Path) -> Path:
    """A private copy of the tiny CLIP pack that a test may damage."""
    import shutil

    dst = tmp_path / "pack"
    shutil.copytree(tiny_clip_pack, dst)
    return dst
