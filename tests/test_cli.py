"""The command line, run as a user runs it: a subprocess with its own home."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from photosearch import __version__


def photosearch(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PHOTOSEARCH_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "photosearch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_version(isolated_home: Path) -> None:
    run = photosearch(isolated_home, "--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"photosearch {__version__}"


def test_info_lists_packs_and_reports_broken_ones(
    isolated_home: Path, tiny_coca_pack: Path
) -> None:
    models = isolated_home / "models"
    shutil.copytree(tiny_coca_pack, models / "good")
    shutil.copytree(tiny_coca_pack, models / "broken")
    (models / "broken" / "reranker_scorer.onnx").unlink()

    run = photosearch(isolated_home, "info", "--json")
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["home"]["models"] == str(models)
    assert "CPUExecutionProvider" in info["providers_available"]
    by_path = {Path(p["path"]).name: p for p in info["model_packs"]}
    assert by_path["good"]["model"] == "photosearch-tiny-coca"
    assert by_path["good"]["reranker"] == "photosearch-tiny-coca"
    assert "reranker_scorer.onnx: missing" in by_path["broken"]["error"]

    text = photosearch(isolated_home)  # no command: the same overview, for people
    assert text.returncode == 0
    assert "✓ tiny-coca: photosearch-tiny-coca" in text.stdout
    assert "✗ " in text.stdout and "broken" in text.stdout


def test_info_without_packs_says_how_to_get_one(isolated_home: Path) -> None:
    run = photosearch(isolated_home, "info")
    assert run.returncode == 0
    assert "no model pack installed" in run.stdout
    assert str(isolated_home) in run.stdout


def test_models_verify(isolated_home: Path, pack_copy: Path) -> None:
    ok = photosearch(isolated_home, "models", "verify", str(pack_copy))
    assert ok.returncode == 0, ok.stderr
    assert "checksums match" in ok.stdout

    f = pack_copy / "image_encoder.onnx"
    data = bytearray(f.read_bytes())
    data[100] ^= 0xFF
    f.write_bytes(bytes(data))
    bad = photosearch(isolated_home, "models", "verify", str(pack_copy))
    assert bad.returncode == 1
    assert "image_encoder.onnx: damaged or foreign" in bad.stderr
    assert "Traceback" not in bad.stderr
