"""Defects a tester found by trying the program as a user would (issue 14), each as that user
meets it: through the command line, with no traceback, and nothing lost."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from clirun import run_cli
from photos import good_photos
from PIL import Image

from photosearch import cli, modelpack
from photosearch.library import Library
from photosearch.vectors import VectorIndex


def spawn(home: Path, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    """``python -m photosearch --home HOME ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "photosearch", "--home", str(home), *args],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=300,
    )


@pytest.fixture
def photosearch(capsys: pytest.CaptureFixture[str]):
    """``photosearch(home, *args)``: ``photosearch --home HOME ARGS`` run in this process."""

    def run(home: Path, *args: str | bytes) -> subprocess.CompletedProcess[str]:
        return run_cli(capsys, home, "--home", str(home), *args)

    return run


def strict_json(text: str):
    """JSON as other programs read it: no NaN or Infinity."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def library_with(home: Path, pack: Path, photos: Path, n: int = 6) -> None:
    good_photos(photos, n)
    with Library(home) as lib:
        lib.import_pack(pack)
        lib.add_folder(photos)
        lib.index_photos()


def installed(home: Path) -> Path:
    with Library(home, writer=False) as lib:
        return lib.pack.path


def rewrite_manifest(pack: Path, change) -> None:  # noqa: ANN001
    manifest = json.loads((pack / modelpack.MANIFEST).read_text())
    change(manifest)
    (pack / modelpack.MANIFEST).write_text(json.dumps(manifest))


# 1 -------------------------------------------------------------------------------------------


def test_a_query_that_is_not_utf8_is_searched(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path, photosearch
) -> None:
    library_with(isolated_home, tiny_clip_pack, tmp_path / "p")
    for extra in ([], ["--no-names"]):
        run = photosearch(isolated_home, "search", b"dog\xff\xfe", "--json", *extra)
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        out = strict_json(run.stdout)
        assert len(out["results"]) == 6
    from photosearch.search import Query

    assert Query(text=os.fsdecode(b"dog\xff\xfe")).text == "dog\ufffd\ufffd"


# 2 -------------------------------------------------------------------------------------------


def test_beta_is_bounded_and_scores_stay_numbers(
    isolated_home: Path, tiny_coca_pack: Path, tmp_path: Path, photosearch
) -> None:
    library_with(isolated_home, tiny_coca_pack, tmp_path / "p")
    huge = photosearch(isolated_home, "search", "cat", "--beta", "1e308", "--json")
    assert huge.returncode == 2 and "from 0 to 1000" in huge.stderr, huge.stderr
    setting = photosearch(isolated_home, "settings", "rerank_beta", "1e308")
    assert setting.returncode == 2 and "from 0 to 1000" in setting.stderr
    negative = photosearch(isolated_home, "settings", "rerank_beta", "-1")
    assert negative.returncode == 2
    strongest = photosearch(isolated_home, "search", "cat", "--beta", "1000", "--json")
    assert strongest.returncode == 0, strongest.stderr
    out = strict_json(strongest.stdout)
    assert out["refined"]
    scores = [r["score"] for r in out["results"]]
    refined = [r for r in out["results"] if r["rerank_score"] is not None]
    assert all(np.isfinite(scores)) and len({r["score"] for r in refined}) > 1


# 3 -------------------------------------------------------------------------------------------


def test_status_reports_an_encoder_that_does_not_load(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path, photosearch
) -> None:
    library_with(isolated_home, tiny_clip_pack, tmp_path / "p")
    pack = installed(isolated_home)
    good = (pack / modelpack.MANIFEST).read_text()

    def doubled(m: dict) -> None:
        m["embedding_dim"] *= 2

    rewrite_manifest(pack, doubled)
    status = photosearch(isolated_home, "status", "--json")
    assert status.returncode == 0, status.stderr
    s = strict_json(status.stdout)
    assert s["model"] is None and "embedding" in s["model_problem"]
    assert s["photos"] == 6

    # A random text encoder whose size and sha256 the manifest carries.
    (pack / modelpack.MANIFEST).write_text(good)
    noise = np.random.default_rng(3).bytes(4096)
    (pack / modelpack.TEXT_ENCODER).write_bytes(noise)

    def vouched(m: dict) -> None:
        entry = m["files"][modelpack.TEXT_ENCODER]
        entry["size"] = len(noise)
        entry["sha256"] = modelpack.sha256_file(pack / modelpack.TEXT_ENCODER)

    rewrite_manifest(pack, vouched)
    status = photosearch(isolated_home, "status", "--json")
    assert status.returncode == 0, status.stderr
    s = strict_json(status.stdout)
    assert s["model"] is None and modelpack.TEXT_ENCODER in s["model_problem"]
    human = photosearch(isolated_home, "status")
    assert human.returncode == 0 and "model: none" in human.stdout


# 4 -------------------------------------------------------------------------------------------


def test_a_wrong_embedding_size_is_refused_by_import_and_verify(
    isolated_home: Path, pack_copy: Path, photosearch
) -> None:
    def doubled(m: dict) -> None:
        m["embedding_dim"] *= 2

    rewrite_manifest(pack_copy, doubled)
    verify = photosearch(isolated_home, "models", "verify", str(pack_copy))
    assert verify.returncode == 1 and "embedding size" in verify.stderr, verify.stderr
    imported = photosearch(isolated_home, "models", "import", str(pack_copy))
    assert imported.returncode == 1 and "embedding size" in imported.stderr
    assert "Traceback" not in imported.stderr
    assert not any((isolated_home / "models").glob("*/manifest.json"))


# 5 -------------------------------------------------------------------------------------------


def test_a_byte_flipped_in_an_installed_encoder_is_found_with_its_mtime_put_back(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path, photosearch
) -> None:
    library_with(isolated_home, tiny_clip_pack, tmp_path / "p")
    assert photosearch(isolated_home, "search", "a red circle").returncode == 0  # stamped
    f = installed(isolated_home) / modelpack.TEXT_ENCODER
    st = f.stat()
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_mtime_ns == st.st_mtime_ns and f.stat().st_size == st.st_size
    search = photosearch(isolated_home, "search", "a red circle")
    assert search.returncode == 1
    assert "text_encoder.onnx: damaged or foreign" in search.stderr
    status = strict_json(photosearch(isolated_home, "status", "--json").stdout)
    assert status["model"] is None and "damaged or foreign" in status["model_problem"]


# 6 -------------------------------------------------------------------------------------------


def test_import_never_writes_into_its_source(
    isolated_home: Path, pack_copy: Path, photosearch
) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in pack_copy.iterdir()}
    for args in (["models", "verify", str(pack_copy)], ["models", "import", str(pack_copy)]):
        run = photosearch(isolated_home, *args)
        assert run.returncode == 0, run.stderr
    assert {p.name: p.stat().st_mtime_ns for p in pack_copy.iterdir()} == before


# 7 -------------------------------------------------------------------------------------------


def test_a_full_disk_does_not_stop_search(
    isolated_home: Path,
    tiny_clip_pack: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    library_with(isolated_home, tiny_clip_pack, tmp_path / "p")
    for f in (isolated_home / "data").glob("vectors-*.faiss"):
        f.unlink()  # so opening has to rebuild the index, and would save it

    def disk_full(self, path) -> None:  # noqa: ANN001
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(VectorIndex, "save", disk_full)
    assert cli.main(["--home", str(isolated_home), "search", "a red circle", "--json"]) == 0
    assert len(strict_json(capsys.readouterr().out)["results"]) == 6
    # The window (a writer) too: it serves from memory, and closing does not fail.
    with Library(isolated_home) as lib:
        assert len(lib.search("a red circle", n=50)) == 6
        assert lib.status()["indexed"] == 6
    monkeypatch.undo()
    with Library(isolated_home) as lib:  # space again: the index is written
        assert len(lib.search("a red circle", n=50)) == 6
    assert list((isolated_home / "data").glob("vectors-*.faiss"))


# 9 -------------------------------------------------------------------------------------------


def odd_and_damaged(folder: Path) -> None:
    """A TIFF whose tag points past the end of the file (Pillow warns "Truncated File Read"), a
    PNG with a bad header checksum, a GIF of width 0."""
    folder.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    buf = io.BytesIO()
    img.save(buf, "TIFF")
    tiff = bytearray(buf.getvalue())
    ifd = int.from_bytes(tiff[4:8], "little")
    for i in range(int.from_bytes(tiff[ifd : ifd + 2], "little")):
        entry = ifd + 2 + 12 * i
        if int.from_bytes(tiff[entry : entry + 2], "little") == 258:  # BitsPerSample
            tiff[entry + 8 : entry + 12] = (10**6).to_bytes(4, "little")
    for i in range(30):
        (folder / f"odd{i:02}.tif").write_bytes(tiff)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    png = bytearray(buf.getvalue())
    png[29] ^= 0xFF  # inside the IHDR checksum
    (folder / "bad-crc.png").write_bytes(png)
    buf = io.BytesIO()
    img.save(buf, "GIF")
    gif = bytearray(buf.getvalue())
    gif[6:8] = b"\0\0"
    at = gif.find(b"\x2c\0\0\0\0")  # the image descriptor
    gif[at + 5 : at + 7] = b"\0\0"
    (folder / "zero-width.gif").write_bytes(gif)


def test_damaged_files_say_what_is_damaged_and_decoder_warnings_stay_off_the_terminal(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path, photosearch
) -> None:
    odd_and_damaged(tmp_path / "p")
    good_photos(tmp_path / "p", 2)
    with Library(isolated_home) as lib:
        lib.import_pack(tiny_clip_pack)
        lib.add_folder(tmp_path / "p")
    run = spawn(isolated_home, "index")  # a process: pytest would catch warnings in this one
    assert run.returncode == 0, run.stderr
    assert "Warning" not in run.stderr and "warnings.warn" not in run.stderr, run.stderr
    reasons = {
        Path(e["path"]).name: e["reason"]
        for e in strict_json(photosearch(isolated_home, "status", "--json").stdout)["error_list"]
    }
    assert reasons["bad-crc.png"].startswith("damaged PNG: ")
    assert "checksum" in reasons["bad-crc.png"]
    assert reasons["zero-width.gif"].startswith("damaged GIF: ")
    assert reasons["odd00.tif"].startswith("damaged TIFF: ")
    assert len(reasons) == 32
