"""The command line, as a user runs it, each test with its own home: most calls go through
``photosearch.cli.main`` in this process (tests/clirun.py); the ones about the real program —
``python -m photosearch``, the bytes a terminal receives — run it as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import run_cli

from photosearch import __version__


def spawn(home: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """``python -m photosearch ARGS``: a real process, with ``extra_env`` in its environment."""
    env = {**os.environ, "PHOTOSEARCH_HOME": str(home), **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "photosearch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def photosearch(capsys: pytest.CaptureFixture[str]):
    """``photosearch(home, *args)``: the command line run in this process."""

    def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(capsys, home, *args)

    return run


def test_version(isolated_home: Path) -> None:
    run = spawn(isolated_home, "--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"photosearch {__version__}"
    usage = spawn(isolated_home, "--help")
    assert usage.returncode == 0 and "usage: photosearch" in usage.stdout


@pytest.mark.parametrize("started_with", [signal.SIG_IGN, signal.default_int_handler])
def test_a_command_leaves_ctrl_c_as_it_found_it(isolated_home: Path, photosearch, started_with):
    """Started with SIGINT ignored (a background job of a script, as CI runs the suite), a
    command makes Ctrl-C work while it runs and puts the disposition back when it ends; the
    in-process harness checks that it is unchanged."""
    previous = signal.signal(signal.SIGINT, started_with)
    try:
        run = photosearch(isolated_home, "status", "--json")
        assert run.returncode == 0, run.stderr
        assert signal.getsignal(signal.SIGINT) is started_with
    finally:
        signal.signal(signal.SIGINT, previous)


def test_info_lists_packs_and_reports_broken_ones(
    isolated_home: Path, tiny_coca_pack: Path, photosearch
) -> None:
    models = isolated_home / "models"
    shutil.copytree(tiny_coca_pack, models / "good")
    shutil.copytree(tiny_coca_pack, models / "broken")
    (models / "broken" / "image_encoder.onnx").unlink()
    shutil.copytree(tiny_coca_pack, models / "fast-only")  # only its reranker is damaged
    (models / "fast-only" / "reranker_scorer.onnx").unlink()

    run = photosearch(isolated_home, "info", "--json")
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["home"]["models"] == str(models)
    assert "CPUExecutionProvider" in info["providers_available"]
    by_path = {Path(p["path"]).name: p for p in info["model_packs"]}
    assert by_path["good"]["model"] == "photosearch-tiny-coca"
    assert by_path["good"]["reranker"] == "photosearch-tiny-coca"
    assert "image_encoder.onnx: missing" in by_path["broken"]["error"]
    fast_only = by_path["fast-only"]
    assert "error" not in fast_only and fast_only["reranker"] is None
    assert "reranker_scorer.onnx: missing" in fast_only["reranker_problem"]

    text = photosearch(isolated_home)  # no command: the same overview, for people
    assert text.returncode == 0
    assert "✓ tiny-coca: photosearch-tiny-coca" in text.stdout
    assert "✗ " in text.stdout and "broken" in text.stdout
    assert "reranker: unusable (" in text.stdout and "fast search works" in text.stdout


def test_info_without_packs_says_how_to_get_one(isolated_home: Path, photosearch) -> None:
    run = photosearch(isolated_home, "info")
    assert run.returncode == 0
    for words in ("no model pack installed", "models download", "models available", "demo"):
        assert words in run.stdout, words
    assert str(isolated_home) in run.stdout


def test_models_verify(isolated_home: Path, pack_copy: Path, photosearch) -> None:
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


def test_library_workflow(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path, photosearch
) -> None:
    """The commands a script uses, end to end, on a real folder of photos."""
    from photos import bad_inputs, good_photos

    photos = tmp_path / "Pictures"
    good = good_photos(photos, 10)
    bad_inputs(photos / "junk")

    run = photosearch(isolated_home, "models", "import", str(tiny_clip_pack))
    assert run.returncode == 0 and "(active)" in run.stdout
    assert photosearch(isolated_home, "folders", "add", str(photos)).returncode == 0
    listed = json.loads(photosearch(isolated_home, "folders", "list", "--json").stdout)
    assert listed == [{"path": str(photos.resolve()), "state": "ok", "last_scan": None}]

    idx = photosearch(isolated_home, "index", "--json")
    assert idx.returncode == 0, idx.stderr
    summary = json.loads(idx.stdout)
    assert summary["indexed"] == 10 and summary["errors"] == 4 and summary["new"] == 14
    assert {Path(e["path"]).name for e in summary["error_list"]} == {
        "empty.jpg",
        "truncated.jpg",
        "notes.jpg",
        "bomb.png",
    }

    human = photosearch(isolated_home, "index")
    assert human.returncode == 0
    assert "indexed 0 photos" in human.stdout and "10 unchanged" in human.stdout

    out = json.loads(
        photosearch(isolated_home, "search", "a red circle", "-n", "3", "--json").stdout
    )
    hits = out["results"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert {"path", "score", "fast_score", "rerank_score", "matched"} <= set(hits[0])
    assert all(Path(h["path"]).exists() for h in hits)
    # The tiny CLIP pack has no reranker: fast results, and the reason.
    assert out["refined"] is False and "no reranker" in out["note"]
    assert all(h["rerank_score"] is None and h["score"] == h["fast_score"] for h in hits)
    assert {"encode_ms", "search_ms", "rerank_ms", "total_ms"} <= set(out["timing"])

    like = json.loads(photosearch(isolated_home, "similar", str(good[0]), "--json").stdout)
    paths = [h["path"] for h in like["results"]]
    assert len(paths) == 9 and str(good[0].resolve()) not in paths

    status = json.loads(photosearch(isolated_home, "status", "--json").stdout)
    assert (status["photos"], status["indexed"], status["pending"], status["errors"]) == (
        14,
        10,
        0,
        4,
    )
    assert status["device"] == "CPU" and status["model"]["name"] == "tiny-clip"
    human_status = photosearch(isolated_home, "status").stdout
    assert "notes.jpg: not an image file" in human_status

    assert photosearch(isolated_home, "doctor").returncode == 0
    (isolated_home / "data").joinpath(
        next(p.name for p in (isolated_home / "data").glob("vectors-*.faiss"))
    ).write_bytes(b"damaged")
    sick = photosearch(isolated_home, "doctor")
    assert sick.returncode == 1 and "vector index" in sick.stdout
    assert photosearch(isolated_home, "doctor", "--repair").returncode == 0
    assert photosearch(isolated_home, "doctor").returncode == 0

    removed = photosearch(isolated_home, "folders", "remove", str(photos))
    assert removed.returncode == 0 and "14 photos forgotten" in removed.stdout
    assert good[0].exists()


def test_exit_codes(isolated_home: Path, tmp_path: Path, photosearch) -> None:
    usage = photosearch(isolated_home, "search")
    assert usage.returncode == 2 and "usage:" in usage.stderr
    assert photosearch(isolated_home, "folders", "add").returncode == 2
    missing = photosearch(isolated_home, "folders", "add", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "no such folder" in missing.stderr
    no_model = photosearch(isolated_home, "search", "anything")
    assert no_model.returncode == 1
    assert "no model pack is installed" in no_model.stderr and "Traceback" not in no_model.stderr
    (tmp_path / "p").mkdir()
    photosearch(isolated_home, "folders", "add", str(tmp_path / "p"))
    nothing = photosearch(isolated_home, "index")
    assert nothing.returncode == 1 and "models import" in nothing.stderr


def test_non_utf8_file_names_survive_output(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path, photosearch
) -> None:
    from photos import non_utf8_name

    photos = tmp_path / "old camera"
    photos.mkdir()
    odd = non_utf8_name(photos)
    strict = {"PYTHONIOENCODING": "utf-8"}  # a plain UTF-8 terminal, no surrogateescape
    for args in (("models", "import", str(tiny_clip_pack)), ("folders", "add", str(photos))):
        assert photosearch(isolated_home, *args).returncode == 0
    assert spawn(isolated_home, "index", **strict).returncode == 0

    as_json = spawn(isolated_home, "search", "café", "--json", **strict)
    assert as_json.returncode == 0, as_json.stderr
    (hit,) = json.loads(as_json.stdout)["results"]
    assert os.fsencode(hit["path"]) == os.fsencode(odd.resolve())

    env = {**os.environ, "PHOTOSEARCH_HOME": str(isolated_home), **strict}
    human = subprocess.run(
        [sys.executable, "-m", "photosearch", "search", "café"], capture_output=True, env=env
    )
    assert human.returncode == 0, human.stderr
    assert b"/caf\xe9_" in human.stdout  # the name's own bytes, as `ls` would print them


def test_search_options_and_settings(
    isolated_home: Path, tiny_coca_pack: Path, tmp_path: Path, photosearch
) -> None:
    from photos import good_photos

    good_photos(tmp_path / "p" / "a", 4)
    good_photos(tmp_path / "p" / "b", 4, start_seed=50)
    (tmp_path / "p" / "IMG_9999.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    for args in (
        ("models", "import", str(tiny_coca_pack)),
        ("folders", "add", str(tmp_path / "p")),
    ):
        assert photosearch(isolated_home, *args).returncode == 0
    assert photosearch(isolated_home, "index", "-q").returncode == 0

    out = json.loads(
        photosearch(
            isolated_home, "search", "a red circle", "--rerank", "3", "--beta", "0.5", "--json"
        ).stdout
    )
    assert out["refined"] and out["rerank"] == 3 and out["beta"] == 0.5 and out["device"] == "CPU"
    top = out["results"][:3]
    assert all(r["rerank_score"] is not None for r in top)
    assert all(r["rerank_score"] is None for r in out["results"][3:])
    assert out["timing"]["rerank_ms"] > 0

    sub = json.loads(
        photosearch(
            isolated_home,
            "search",
            "a red circle",
            "--folder",
            str(tmp_path / "p" / "b"),
            "--rerank",
            "0",
            "--json",
        ).stdout
    )
    assert len(sub["results"]) == 4
    assert all("/p/b/" in r["path"] for r in sub["results"])
    like = photosearch(
        isolated_home, "search", "--like", str(tmp_path / "p" / "a" / "photo_000.jpg"), "--json"
    )
    assert like.returncode == 0 and len(json.loads(like.stdout)["results"]) == 7

    # Found by its name although it could not be read: no score, and still valid JSON.
    named = photosearch(isolated_home, "search", "IMG_9999", "--json")
    by_name = json.loads(named.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    first = by_name["results"][0]
    assert first["path"].endswith("IMG_9999.jpg") and first["matched"] == "name"
    assert first["score"] is None and first["fast_score"] is None

    human = photosearch(isolated_home, "search", "a red circle", "-n", "2", "--rerank", "2")
    assert human.returncode == 0 and len(human.stdout.splitlines()) == 2
    assert "refined the top 2 on CPU" in human.stderr

    bad_date = photosearch(isolated_home, "search", "x", "--after", "last week")
    assert bad_date.returncode == 1 and "not a date" in bad_date.stderr
    nothing = photosearch(isolated_home, "search")
    assert nothing.returncode == 2 and "--like" in nothing.stderr
    assert "usage: photosearch search" in nothing.stderr  # search's own usage, not the top's
    similar = photosearch(isolated_home, "similar", str(tmp_path / "p" / "a" / "photo_000.jpg"))
    assert similar.returncode == 0 and "refine" not in similar.stderr  # nobody asked
    assert "#1" in similar.stdout  # an example search shows ranks: the curves are for text
    long_text = " ".join(["a red circle left of a blue square"] * 20)
    cut = photosearch(isolated_home, "search", long_text, "--rerank", "0")
    assert "too long for the model" in cut.stderr and "first" in cut.stderr
    status = photosearch(isolated_home, "--home", str(isolated_home), "status")
    assert "in 1 folder\n" in status.stdout
    after = photosearch(isolated_home, "status", "--home", str(isolated_home))  # after it too
    assert after.returncode == 0 and after.stdout == status.stdout
    assert photosearch(isolated_home, "search", "x", "--rerank", "-1").returncode == 2

    # Settings: the defaults a power user changes once.
    listed = json.loads(photosearch(isolated_home, "settings", "--json").stdout)
    assert listed["rerank_depth"] == 20 and listed["rerank_beta"] is None
    assert photosearch(isolated_home, "settings", "rerank_depth", "0").returncode == 0
    fast = json.loads(photosearch(isolated_home, "search", "a red circle", "--json").stdout)
    assert not fast["refined"]
    bad = photosearch(isolated_home, "settings", "rerank_depth", "lots")
    assert bad.returncode == 2 and "rerank_depth" in bad.stderr
    assert photosearch(isolated_home, "settings", "colour", "red").returncode == 2
    assert photosearch(isolated_home, "settings", "rerank_depth", "--reset").returncode == 0
    again = json.loads(photosearch(isolated_home, "settings", "rerank_depth", "--json").stdout)
    assert again == {"rerank_depth": 20}
