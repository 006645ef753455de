"""Packaging: the resources helper, ``--self-test`` from the sources, the spec's exclusions,
the desktop metadata; and (marker ``packaging``, opt-in) the Linux packages tested as installed.

The installed-package test builds the bundle (minutes, a few hundred MB of downloads the first
time), so it runs only with ``PHOTOSEARCH_TEST_PACKAGING=1`` (``make smoke-bundle``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photosearch import resources

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "tests" / "data" / "synthetic-pack"
PACKAGING = ROOT / "packaging"
APP_ID = "io.github.photosearch.Photosearch"

needs_trained_pack = pytest.mark.skipif(
    not (PACK / "manifest.json").exists(), reason="tests/data/synthetic-pack missing"
)


# -- resources --------------------------------------------------------------------------------


def test_resources_found_from_the_sources() -> None:
    assert resources.root() in {ROOT / "resources", Path(resources.__file__).parent / "_resources"}
    assert resources.resource_path("icons", "photosearch.svg").is_file()
    assert resources.resource_path("samples", "samples.json").is_file()
    assert not resources.frozen()
    assert resources.bundled_packs() == []  # packs go into bundles only


def test_missing_resource_is_a_typed_error() -> None:
    with pytest.raises(resources.ResourceError, match="missing resource"):
        resources.resource_path("no-such-file")
    with pytest.raises(FileNotFoundError):  # what the interface catches
        resources.resource_path("no-such-file")


def test_resources_found_in_a_frozen_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """PyInstaller: sys.frozen and sys._MEIPASS; the bundle's copy wins, packs are listed."""
    bundle = tmp_path / "_internal"
    (bundle / "resources" / "icons").mkdir(parents=True)
    shutil.copy(ROOT / "resources" / "icons" / "photosearch.svg", bundle / "resources" / "icons")
    pack = bundle / "resources" / "packs" / "synthetic-base"
    pack.mkdir(parents=True)
    (pack / "manifest.json").write_text("{}")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert resources.frozen()
    assert resources.root() == bundle / "resources"
    assert resources.bundled_packs() == [pack]


def test_sample_manifest_matches_the_photos() -> None:
    samples = ROOT / "resources" / "samples"
    manifest = json.loads((samples / "samples.json").read_text())
    photos = sorted(p.name for p in (samples / "photos").iterdir())
    assert photos == manifest["photos"]
    assert {q["expected"] for q in manifest["queries"]} <= set(photos)
    assert {Path(p).suffix for p in photos} == {".png", ".jpg"}  # both decoders
    assert sum((samples / "photos" / p).stat().st_size for p in photos) < 100_000


# -- --self-test from the sources ---------------------------------------------------------


def _self_test(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "photosearch", "--self-test", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
    )


@needs_trained_pack
def test_self_test_passes_from_the_sources() -> None:
    run = _self_test("--device", "cpu", "--pack", str(PACK))
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "self-test passed" in out
    assert "encoders run on CPUExecutionProvider" in out
    queries = json.loads((ROOT / "resources/samples/samples.json").read_text())["queries"]
    for q in queries:
        assert f"{q['expected']} first" in out
    assert "✗" not in out


def test_self_test_without_a_pack_fails_clearly() -> None:
    run = _self_test()
    assert run.returncode == 1
    assert "✗ model pack: none built into this app; pass --pack DIR" in run.stdout
    assert "self-test FAILED" in run.stdout


@needs_trained_pack
def test_self_test_fails_on_a_damaged_pack(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack, ignore=shutil.ignore_patterns(".verified.json"))
    with (pack / "text_encoder.onnx").open("r+b") as f:
        f.seek(100)
        f.write(b"\0\0\0\0")
    run = _self_test("--pack", str(pack))
    assert run.returncode == 1
    assert "text_encoder.onnx" in run.stdout
    assert "self-test FAILED" in run.stdout


def test_pack_option_needs_self_test() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "photosearch", "--pack", str(PACK), "info"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "--pack goes with --self-test" in run.stderr


# -- the recipes ------------------------------------------------------------------------------


def _build_module():
    sys.path.insert(0, str(PACKAGING))
    try:
        import build as build_module
    finally:
        sys.path.remove(str(PACKAGING))
    return build_module


def test_spec_excludes_torch_and_the_exporter() -> None:
    spec = (PACKAGING / "photosearch.spec").read_text()
    excludes = spec[spec.index("EXCLUDES = [") : spec.index("]", spec.index("EXCLUDES = ["))]
    for name in (
        "torch",
        "torchvision",
        "open_clip",
        "timm",
        "onnx",
        "photosearch.export_onnx",
        "onnxruntime.transformers",
        "onnxruntime.tools",
        "onnxruntime.quantization",
    ):
        assert f'"{name}"' in excludes, name


def test_each_flavour_gets_exactly_one_onnx_runtime() -> None:
    """onnxruntime and onnxruntime-gpu share a folder: never both in one environment."""
    build = _build_module()
    for flavour, wanted, other in (
        ("cpu", "onnxruntime>=", "onnxruntime-gpu"),
        ("gpu", "onnxruntime-gpu>=", "onnxruntime>="),
    ):
        reqs = build.requirements(flavour)
        assert sum(r.startswith("onnxruntime") for r in reqs) == 1, reqs
        assert any(r.startswith(wanted) for r in reqs)
        assert not any(r.startswith(other) for r in reqs)
        assert not any(r.split("=")[0].split(">")[0] in ("torch", "open_clip_torch") for r in reqs)


def test_desktop_entry_and_metainfo() -> None:
    linux = ROOT / "resources" / "linux"
    desktop = (linux / f"{APP_ID}.desktop").read_text()
    for line in ("Type=Application", "Exec=photosearch", f"Icon={APP_ID}", "Categories="):
        assert line in desktop
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(
            ["desktop-file-validate", str(linux / f"{APP_ID}.desktop")],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout + check.stderr
    if not shutil.which("appstreamcli"):
        pytest.skip("appstreamcli not installed (apt-get install appstream)")
    check = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(linux / f"{APP_ID}.metainfo.xml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


# -- the Linux packages, as installed (opt-in) ------------------------------------------------


@pytest.mark.packaging
@pytest.mark.skipif(
    os.environ.get("PHOTOSEARCH_TEST_PACKAGING") != "1",
    reason="builds the bundle (minutes): set PHOTOSEARCH_TEST_PACKAGING=1 (make smoke-bundle)",
)
@pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="needs dpkg-deb")
@needs_trained_pack
def test_linux_packages_work_as_installed(tmp_path: Path) -> None:
    """Build, dpkg -x, --self-test from the installed tree, window and screenshot under Xvfb."""
    report = tmp_path / "smoke.json"
    run = subprocess.run(
        [sys.executable, str(PACKAGING / "smoke_test.py"), "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    results = json.loads(report.read_text())
    assert results["provider"] == "CPUExecutionProvider"
    if shutil.which("Xvfb"):
        assert Path(results["screenshot"]).is_file()
