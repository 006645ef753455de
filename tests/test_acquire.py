"""Getting model packs onto a machine, against a Hugging Face-protocol server on 127.0.0.1:
downloads that resume, files that arrive damaged, servers that fail, a full disk, an
incompatible pack, zip files, removal, preparing from weights, and switching packs while the
old vectors keep serving. No test reaches beyond 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from hubserver import Hub, HubServer
from photos import good_photos

from photosearch import acquire, modelpack
from photosearch.acquire import disk, preparing
from photosearch.errors import (
    DiskSpaceError,
    DownloadCancelled,
    DownloadError,
    MissingExtraError,
    PackError,
)
from photosearch.library import Library

ROOT = Path(__file__).resolve().parent.parent
REPO = "photosearch/tiny-clip"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Hub:
    import huggingface_hub.constants

    # Small chunks, so a transfer cut or stopped part-way leaves bytes to resume from (the
    # library's own 10 MB chunks would swallow these tiny files whole).
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    with HubServer() as h:
        monkeypatch.setenv("HF_ENDPOINT", h.endpoint)
        yield h


@pytest.fixture
def served(hub: Hub, tiny_clip_pack: Path) -> Hub:
    hub.publish_folder(REPO, tiny_clip_pack)
    return hub


@pytest.fixture
def lib(isolated_home: Path):
    library = Library(isolated_home)
    yield library
    library.close()


def nothing_installed(lib: Library) -> None:
    """No pack in the models folder, none half-there under a hidden name, none active."""
    assert lib.installed_packs() == []
    assert [p.name for p in lib.paths.models.iterdir()] == [] if lib.paths.models.exists() else True
    assert lib.catalog.get_setting("active_pack") is None


def parts(lib: Library) -> list[Path]:
    return sorted((lib.paths.cache / acquire.DOWNLOADS).rglob("*.part"))


# -- downloading a ready pack ------------------------------------------------------------------


def test_download_from_the_hub_installs_a_verified_active_pack(served: Hub, lib: Library) -> None:
    events: list[acquire.Progress] = []
    pack = acquire.download_pack(lib, REPO, progress=events.append)

    assert pack.path == lib.paths.models / "tiny-clip"
    assert lib.pack.name == "tiny-clip"  # the first pack becomes active
    modelpack.verify(pack.path, full=True)
    # every file of the pack came from one commit, the large ones from the CDN
    commit = served.commits[REPO]
    heads = [p for m, p, _, _ in served.log if m == "HEAD"]
    assert all(f"/resolve/{commit}/" in p for p in heads[1:])
    assert served.gets("image_encoder.onnx") and served.gets("text_encoder.onnx")
    # progress went up to the pack's size and ended installing
    total = sum(e["size"] for e in pack.manifest["files"].values())
    downloads = [e for e in events if e.stage == "download" and e.total]
    assert downloads[-1].total == total and downloads[-1].done == total
    assert events[-1].stage == "install"
    assert not (lib.paths.cache / acquire.DOWNLOADS).exists() or not any(
        (lib.paths.cache / acquire.DOWNLOADS).iterdir()
    )


def test_a_transfer_cut_off_midway_resumes_with_a_range_request(served: Hub, lib: Library) -> None:
    served.cut["text_encoder.onnx"] = 100_000  # the connection drops after 100 kB, once

    pack = acquire.download_pack(lib, REPO)

    ranges = served.gets("text_encoder.onnx")
    assert ranges[0] is None and ranges[1] is not None
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 100_000
    modelpack.verify(pack.path, full=True)  # and the file is whole and right


def test_a_cancelled_download_keeps_its_bytes_and_the_next_try_resumes(
    served: Hub, lib: Library
) -> None:
    release = threading.Event()
    served.stall["text_encoder.onnx"] = (200_000, release)
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def download() -> None:
        try:
            acquire.download_pack(lib, REPO, cancel=cancel)
        except BaseException as e:
            outcome.append(e)

    worker = threading.Thread(target=download)
    worker.start()
    assert served.stalled.wait(30)
    for _ in range(300):  # the first 200 kB are in: the transfer is under way
        if any(p.stat().st_size >= 100_000 for p in parts(lib)):
            break
        time.sleep(0.01)
    cancel.set()  # the person presses Cancel while bytes are still coming
    release.set()
    worker.join(30)
    assert isinstance(outcome[0], DownloadCancelled)
    assert "resume" in str(outcome[0])
    nothing_installed(lib)
    (part,) = parts(lib)
    kept = part.stat().st_size
    assert 0 < kept <= 200_000

    pack = acquire.download_pack(lib, REPO)

    assert served.gets("text_encoder.onnx")[-1] == f"bytes={kept}-"
    assert lib.pack.name == "tiny-clip"
    modelpack.verify(pack.path, full=True)
    assert parts(lib) == []


def test_a_file_damaged_in_transfer_is_rejected_and_nothing_is_installed(
    served: Hub, lib: Library
) -> None:
    served.corrupt.add("image_encoder.onnx")  # one byte flipped on the wire

    with pytest.raises(DownloadError, match="image_encoder.onnx was damaged in transfer"):
        acquire.download_pack(lib, REPO)

    nothing_installed(lib)
    assert parts(lib) == []  # the damaged bytes are gone, not resumed from
    served.corrupt.clear()
    acquire.download_pack(lib, REPO)  # trying again fetches it anew
    modelpack.verify(lib.pack.path, full=True)


def test_a_file_that_does_not_match_the_manifest_is_rejected(
    hub: Hub, lib: Library, tiny_clip_pack: Path
) -> None:
    files = {f.name: f.read_bytes() for f in tiny_clip_pack.iterdir() if f.name[0] != "."}
    tampered = bytearray(files["text_encoder.onnx"])
    tampered[-1] ^= 0xFF  # the hub serves it faithfully: only the manifest knows better
    files["text_encoder.onnx"] = bytes(tampered)
    hub.publish(REPO, files)

    with pytest.raises(PackError) as e:
        acquire.download_pack(lib, REPO)

    assert e.value.file == "text_encoder.onnx"
    assert "sha256 does not match" in str(e.value)
    nothing_installed(lib)


def test_a_server_error_is_reported_and_the_next_try_keeps_what_arrived(
    served: Hub, lib: Library
) -> None:
    served.fail["tokenizer.json"] = 500  # after both graphs have arrived

    with pytest.raises(DownloadError, match=r"failed \(HTTP 500\).*try again later"):
        acquire.download_pack(lib, REPO)
    nothing_installed(lib)

    served.fail.clear()
    before = len(served.gets("text_encoder.onnx"))
    acquire.download_pack(lib, REPO)
    assert len(served.gets("text_encoder.onnx")) == before  # not downloaded twice
    assert lib.pack.name == "tiny-clip"


def test_offline_says_so_and_installs_nothing(
    lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")

    with pytest.raises(DownloadError, match="offline"):
        acquire.download_pack(lib, REPO)
    nothing_installed(lib)


def test_an_unknown_repository_is_named(served: Hub, lib: Library) -> None:
    with pytest.raises(DownloadError, match="photosearch/nope was not found"):
        acquire.download_pack(lib, "photosearch/nope")
    with pytest.raises(DownloadError, match="neither a web address"):
        acquire.download_pack(lib, "just-a-word")


def test_a_full_disk_is_found_before_downloading(
    served: Hub, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.disk_usage

    def nearly_full(path: object):  # noqa: ANN202
        u = real(path)
        return type(u)(u.total, u.total - 1_000_000, 1_000_000)

    monkeypatch.setattr(disk.shutil, "disk_usage", nearly_full)

    with pytest.raises(DiskSpaceError, match="not enough disk space") as e:
        acquire.download_pack(lib, REPO)

    assert e.value.free == 1_000_000 and e.value.needed > 8_000_000
    assert served.gets("text_encoder.onnx") == []  # only the manifest was read
    nothing_installed(lib)


def test_an_incompatible_pack_version_is_refused_before_its_files(
    hub: Hub, lib: Library, tiny_clip_pack: Path
) -> None:
    files = {f.name: f.read_bytes() for f in tiny_clip_pack.iterdir() if f.name[0] != "."}
    manifest = json.loads(files["manifest.json"])
    manifest["format_version"] = 99
    files["manifest.json"] = json.dumps(manifest).encode()
    hub.publish(REPO, files)

    with pytest.raises(PackError, match="format version 99 is not supported.*update photosearch"):
        acquire.download_pack(lib, REPO)

    assert hub.gets("image_encoder.onnx") == []
    nothing_installed(lib)
    assert not any((lib.paths.cache / acquire.DOWNLOADS).iterdir())


def test_an_installed_pack_of_that_name_is_not_replaced_unasked(served: Hub, lib: Library) -> None:
    acquire.download_pack(lib, REPO)
    served.log.clear()
    with pytest.raises(PackError, match="already installed; pass --replace"):
        acquire.download_pack(lib, REPO)
    assert served.gets("image_encoder.onnx") == []
    acquire.download_pack(lib, REPO, replace=True)
    assert served.gets("image_encoder.onnx")


def zip_pack(pack: Path, dest: Path, folder: str = "tiny-clip", extra: dict | None = None) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(pack.iterdir()):
            z.write(f, f"{folder}/{f.name}" if folder else f.name)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return dest


def test_download_a_zip_from_a_plain_web_server(
    hub: Hub, lib: Library, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    hub.plain["packs/tiny-clip.zip"] = zip_pack(tiny_clip_pack, tmp_path / "p.zip").read_bytes()
    hub.cut["packs/tiny-clip.zip"] = 50_000

    pack = acquire.download_pack(lib, f"{hub.endpoint}/files/packs/tiny-clip.zip")

    assert lib.pack.path == pack.path
    assert hub.gets("packs/tiny-clip.zip")[1] is not None  # resumed
    modelpack.verify(pack.path, full=True)


def test_download_a_pack_folder_from_a_plain_web_server(
    hub: Hub, lib: Library, tiny_clip_pack: Path
) -> None:
    for f in tiny_clip_pack.iterdir():
        hub.plain[f"packs/tiny-clip/{f.name}"] = f.read_bytes()
    pack = acquire.download_pack(lib, f"{hub.endpoint}/files/packs/tiny-clip/")
    modelpack.verify(pack.path, full=True)


# -- zip files, removal ------------------------------------------------------------------------


def test_import_a_zip_file_with_the_pack_in_a_folder_or_at_the_top(
    lib: Library, tiny_clip_pack: Path, tiny_coca_pack: Path, tmp_path: Path
) -> None:
    pack = acquire.install(lib, zip_pack(tiny_clip_pack, tmp_path / "a.zip"))
    assert pack.name == "tiny-clip" and lib.pack.name == "tiny-clip"
    other = acquire.install(lib, zip_pack(tiny_coca_pack, tmp_path / "b.zip", folder=""))
    assert other.name == "tiny-coca"
    modelpack.verify(other.path, full=True)
    assert lib.pack.name == "tiny-clip"  # importing does not switch unasked


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"../escape.txt": b"x"}, "outside the pack's folder"),
        ({"/etc/escape.txt": b"x"}, "outside the pack's folder"),
        ({"tiny-clip/notes.txt": b"x"}, "foreign file"),
    ],
)
def test_a_zip_that_writes_outside_its_folder_or_adds_files_is_refused(
    lib: Library, tiny_clip_pack: Path, tmp_path: Path, extra: dict, why: str
) -> None:
    bad = zip_pack(tiny_clip_pack, tmp_path / "bad.zip", extra=extra)
    with pytest.raises(PackError, match=why):
        acquire.install(lib, bad)
    nothing_installed(lib)
    assert not (tmp_path / "escape.txt").exists()
    assert not any((lib.paths.cache / acquire.DOWNLOADS).glob(".import-*"))


def test_a_zip_that_is_not_one_is_refused(lib: Library, tmp_path: Path) -> None:
    junk = tmp_path / "pack.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(PackError, match="not a readable zip file"):
        acquire.install(lib, junk)


def test_a_zip_damaged_inside_is_refused_with_the_file_named(
    lib: Library, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    good = zip_pack(tiny_clip_pack, tmp_path / "good.zip")
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("tiny-clip/image_encoder.onnx")
    data = bytearray(good.read_bytes())
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle] ^= 0xFF  # one flipped byte in the compressed data
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(PackError, match="damaged in the zip file") as e:
        acquire.install(lib, bad)
    assert "image_encoder.onnx" in str(e.value)
    nothing_installed(lib)


def test_remove_refuses_the_active_pack_and_forgets_a_removed_packs_vectors(
    lib: Library, tiny_clip_pack: Path, tiny_coca_pack: Path, tmp_path: Path
) -> None:
    lib.import_pack(tiny_clip_pack)
    lib.import_pack(tiny_coca_pack)
    good_photos(tmp_path / "Pictures", 4)
    lib.add_folder(tmp_path / "Pictures")
    lib.use_pack("tiny-coca")  # nothing encoded yet: switches at once
    lib.index_photos()
    coca_id = lib.pack.id

    with pytest.raises(
        PackError, match="'tiny-coca' is the active model pack.*models use tiny-clip"
    ):
        lib.remove_pack("tiny-coca")
    assert (lib.paths.models / "tiny-coca").is_dir()

    lib.remove_pack("tiny-clip")
    assert [p.name for p in lib.installed_packs()] == ["tiny-coca"]
    assert not [p for p in lib.paths.models.iterdir() if p.name.startswith(".")]

    lib.remove_pack("tiny-coca", force=True)
    assert lib.installed_packs() == []
    assert lib.catalog.counts(coca_id)["indexed"] == 0  # its vectors went with it
    with pytest.raises(PackError, match="no installed model pack is named 'tiny-coca'"):
        lib.remove_pack("tiny-coca")


# -- preparing a pack from open_clip weights --------------------------------------------------


def test_prepare_downloads_weights_exports_and_installs(
    hub: Hub, lib: Library, tmp_path: Path
) -> None:
    import open_clip
    from safetensors.torch import save_file

    model = open_clip.create_model("photosearch-tiny-clip")
    weights = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    hub.publish("test/tiny-clip-weights", {"open_clip_model.safetensors": weights.read_bytes()})
    hub.cut["open_clip_model.safetensors"] = 30_000
    choice = acquire.Choice(
        "tiny-prepared",
        "tiny",
        acquire.Weights("photosearch-tiny-clip", "test", "test/tiny-clip-weights"),
        None,
        pack_mb=1,
        speed="",
        quality="",
    )
    stages: list[str] = []

    pack = acquire.prepare(lib, choice, progress=lambda p: stages.append(p.stage))

    assert lib.pack.path == pack.path == lib.paths.models / "tiny-prepared"
    source = pack.manifest["source"]
    assert (source["model"], source["pretrained"]) == ("photosearch-tiny-clip", "test")
    assert source["checkpoint_sha256"] == modelpack.sha256_file(weights)
    assert pack.manifest["parity"]["image_encoder"]["fp32"]["min_cosine"] > 0.9999
    assert hub.gets("open_clip_model.safetensors")[1] is not None  # resumed after the cut
    assert {"download", "export", "install"} <= set(stages)
    assert not any((lib.paths.cache / acquire.WEIGHTS).iterdir())  # weights deleted after


def test_prepare_without_the_export_extra_says_how_to_get_it(
    lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = preparing.importlib.util.find_spec
    monkeypatch.setattr(
        preparing.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else real(name, *a),
    )
    with pytest.raises(MissingExtraError, match=r"pip install 'photosearch\[export\]'") as e:
        acquire.prepare(lib)
    assert "missing: torch" in str(e.value) and "models download" in str(e.value)


def test_the_catalogue_matches_open_clip() -> None:
    """Every curated choice names weights open_clip knows, in the repository it downloads."""
    import open_clip

    assert acquire.choice().name == acquire.DEFAULT == "mobileclip2-s2"
    assert acquire.choice().encoder.tag == "dfndr2b"
    for c in acquire.CATALOGUE:
        for w in (c.encoder, c.reranker):
            if w is None:
                continue
            cfg = open_clip.get_pretrained_cfg(w.model, w.tag)
            assert cfg.get("hf_hub", "").rstrip("/") == w.repo, (c.name, w.model)
    with pytest.raises(PackError, match="choose from: mobileclip2-s2, mobileclip-s2"):
        acquire.choice("nope")


# -- switching packs: the old vectors serve until the new ones are all there -------------------


def test_switching_packs_reencodes_while_the_old_pack_keeps_serving(
    lib: Library, tiny_clip_pack: Path, tiny_coca_pack: Path, tmp_path: Path
) -> None:
    lib.import_pack(tiny_clip_pack)
    good_photos(tmp_path / "Pictures", 12)
    lib.add_folder(tmp_path / "Pictures")
    lib.index_photos()
    lib.import_pack(tiny_coca_pack)
    old = lib.pack

    assert lib.use_pack("tiny-coca") is False  # photos are encoded: the switch waits
    assert lib.pending_pack == "tiny-coca"
    assert lib.pack.name == "tiny-clip"
    assert lib.status()["switching_to"] == {"name": "tiny-coca", "encoded": 0, "pending": 12}

    # Stopped half-way: still the old pack, answering every query from its vectors.
    from photosearch.indexer import IndexControl

    control = IndexControl()
    during: list[int] = []

    def progress(p) -> None:  # noqa: ANN001
        if p.total == 12 and p.done >= 4 and not control.cancelled:
            during.append(len(lib.search("a photo", n=50, rerank=0).results))
            control.cancel()

    rep = lib.index_photos(progress=progress, control=control, batch_size=2)
    assert rep.switch is not None and not rep.switch.switched
    assert during == [12]
    assert lib.pack.name == "tiny-clip"
    assert len(lib.search("a photo", n=50, rerank=0).results) == 12
    assert (
        0
        < lib.catalog.counts(
            lib.catalog.get_setting("pending_pack")
            and modelpack.load(lib.paths.models / "tiny-coca").id
        )["indexed"]
        < 12
    )

    rep = lib.index_photos(batch_size=2)  # finishes, then swaps

    assert rep.switch is not None and rep.switch.switched
    assert lib.pack.name == "tiny-coca" and lib.pending_pack is None
    assert lib.catalog.counts(lib.pack.id)["indexed"] == 12
    assert len(lib.search("a photo", n=50, rerank=0).results) == 12
    assert lib.doctor() == []
    assert lib.catalog.counts(old.id)["indexed"] == 12  # kept: switching back is instant
    assert lib.use_pack("tiny-clip") is True


def test_a_photo_that_cannot_be_read_does_not_hold_a_switch_back(
    lib: Library,
    tiny_clip_pack: Path,
    tiny_coca_pack: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from photosearch import indexer

    lib.import_pack(tiny_clip_pack)
    good_photos(tmp_path / "Pictures", 6)
    lib.add_folder(tmp_path / "Pictures")
    lib.index_photos()
    lib.import_pack(tiny_coca_pack)
    assert lib.use_pack("tiny-coca") is False
    locked = sorted((tmp_path / "Pictures").iterdir())[0]
    real_hashed = indexer._hashed  # how the indexer reads a file (hash, and bytes to decode)

    def hashed(path, size):  # noqa: ANN001, ANN202
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_hashed(path, size)

    monkeypatch.setattr(indexer, "_hashed", hashed)
    rep = lib.index_photos()
    assert rep.switch is not None and rep.switch.switched
    assert [Path(p) for p, _ in rep.switch.run.errors] == [locked]
    assert lib.pack.name == "tiny-coca" and lib.pending_pack is None
    assert len(lib.search("a photo", n=50, rerank=0).results) == 5
    monkeypatch.setattr(indexer, "_hashed", real_hashed)  # readable again: caught up next pass
    lib.index_photos()
    assert len(lib.search("a photo", n=50, rerank=0).results) == 6


def test_leftovers_of_an_interrupted_install_are_cleaned_when_the_library_opens(
    isolated_home: Path, tiny_clip_pack: Path
) -> None:
    with Library(isolated_home) as lib:
        lib.import_pack(tiny_clip_pack)
        models = lib.paths.models
    # killed while replacing tiny-clip: the old copy moved aside, the new one not in place
    os.replace(models / "tiny-clip", models / ".tiny-clip.old-4242")
    shutil.copytree(models / ".tiny-clip.old-4242", models / ".tiny-clip.staging-abc123")
    (models / ".import-xyz").mkdir()
    with Library(isolated_home) as lib:
        assert [p.name for p in lib.installed_packs()] == ["tiny-clip"]
        assert sorted(p.name for p in models.iterdir()) == ["tiny-clip"]
        assert lib.pack.name == "tiny-clip"


def test_choosing_a_pack_in_a_library_without_vectors_switches_at_once(
    lib: Library, tiny_clip_pack: Path, tiny_coca_pack: Path
) -> None:
    lib.import_pack(tiny_clip_pack)
    lib.import_pack(tiny_coca_pack)
    assert lib.use_pack("tiny-coca") is True
    assert lib.pack.name == "tiny-coca"


# -- the command line --------------------------------------------------------------------------


def photosearch(home: Path, *args: str, env: dict | None = None, code: str | None = None):
    full = {**os.environ, "PHOTOSEARCH_HOME": str(home), **(env or {})}
    cmd = [sys.executable, "-m", "photosearch", *args]
    if code is not None:
        cmd = [sys.executable, "-c", code, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=full)


def test_cli_models_download_then_remove(served: Hub, isolated_home: Path) -> None:
    run = photosearch(
        isolated_home, "models", "download", REPO, env={"HF_ENDPOINT": served.endpoint}
    )
    assert run.returncode == 0, run.stderr
    assert "downloaded tiny-clip into" in run.stdout and "(active)" in run.stdout

    run = photosearch(isolated_home, "models", "remove", "tiny-clip")
    assert run.returncode == 1
    assert "is the active model pack" in run.stderr and "--force" in run.stderr

    run = photosearch(isolated_home, "models", "remove", "tiny-clip", "--force")
    assert run.returncode == 0, run.stderr
    assert not (isolated_home / "models" / "tiny-clip").exists()


def test_cli_download_failures_are_one_clear_line(served: Hub, isolated_home: Path) -> None:
    served.fail["manifest.json"] = 503
    run = photosearch(
        isolated_home, "models", "download", REPO, env={"HF_ENDPOINT": served.endpoint}
    )
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("photosearch: error: the server 127.0.0.1:")
    assert "HTTP 503" in run.stderr and "Traceback" not in run.stderr


def test_cli_prepare_without_the_export_extra(isolated_home: Path) -> None:
    block = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'open_clip'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from photosearch.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    run = photosearch(isolated_home, "models", "prepare", code=block)
    assert run.returncode == 1
    assert "needs the 'export' extra" in run.stderr
    assert "pip install 'photosearch[export]'" in run.stderr
    assert "photosearch models download" in run.stderr


def test_cli_models_available_lists_the_catalogue(isolated_home: Path) -> None:
    run = photosearch(isolated_home, "models", "available", "--json")
    assert run.returncode == 0, run.stderr
    listed = json.loads(run.stdout)
    rows = listed["prepare"]
    assert rows[0]["name"] == "mobileclip2-s2" and rows[0]["default"]
    assert {r["pretrained"] for r in rows} >= {"dfndr2b", "datacompdr", "datacomp_s34b_b86k"}
    assert all(r["download_mb"] > 0 and r["speed"] and r["quality"] for r in rows)
    ready = listed["ready"]
    assert [r["name"] for r in ready if r["default"]] == [acquire.DEFAULT_READY]
    assert {r["source"] for r in ready} >= {
        "https://huggingface.co/yurijmikhalevich/rclip-models",
        "https://huggingface.co/immich-app/ViT-B-32__openai",
        "https://huggingface.co/immich-app/nllb-clip-base-siglip__v1",
    }
    for r in ready:  # each figure says where it comes from; each model its languages, licence
        assert r["download_mb"] > 0 and r["languages"] and r["licence"] and r["speed"]
        assert "(" in r["quality"] and r["can_refine"] is False
    assert any("201 languages" in r["languages"] for r in ready)

    run = photosearch(isolated_home, "models", "available")
    assert run.returncode == 0, run.stderr
    for words in (
        "Ready to download (no torch needed)",
        "rclip-vit-b-32-256  (default)",
        "licence: CC BY-NC 4.0",
        "mobileclip2-s2  (default)",
        "77.2 %",
    ):
        assert words in run.stdout, words  # fmt: skip


@pytest.mark.skipif(
    not (ROOT / "tests" / "data" / "synthetic-pack" / "manifest.json").exists(),
    reason="tests/data/synthetic-pack missing",
)
def test_cli_demo_makes_a_searchable_library(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    run = photosearch(
        tmp_path / "unused", "--home", str(home), "demo", "--no-gui", "--photos", "40"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(home)
    assert "search" in run.stderr
    query = run.stderr.split('search "')[1].split('"')[0]

    found = photosearch(tmp_path / "unused", "--home", str(home), "search", query, "--json")
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)["results"]
    assert len(results) >= 10
    assert Path(results[0]["path"]).parent == home / "Pictures"


@pytest.mark.skipif(
    not (ROOT / "tests" / "data" / "synthetic-pack" / "manifest.json").exists(),
    reason="tests/data/synthetic-pack missing",
)
def test_demo_in_a_bundle_uses_its_samples_and_built_in_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle has no source checkout; built --with-pack, it demos its self-test samples."""
    from photosearch import demo, resources
    from photosearch.library import Library

    def no_checkout() -> Path:
        raise demo.DemoError("no source checkout")

    monkeypatch.setattr(demo, "source_root", no_checkout)
    monkeypatch.setattr(resources, "bundled_packs", lambda: [])
    with pytest.raises(demo.DemoError, match="no source checkout"):
        demo.prepare(tmp_path / "without-pack")

    built_in = tmp_path / "bundle-packs" / "synthetic-base"
    shutil.copytree(ROOT / "tests" / "data" / "synthetic-pack", built_in)
    monkeypatch.setattr(resources, "bundled_packs", lambda: [built_in])
    made = demo.prepare(tmp_path / "home")
    assert made.pack == "synthetic-base" and made.queries
    with Library(made.home) as lib:
        assert lib.status()["indexed"] == len(list(made.photos.iterdir())) >= 20
        first = lib.search(made.queries[0], n=3, rerank=0)[0]
        assert first.photo.path.parent == made.photos


# -- the dialog --------------------------------------------------------------------------------


def test_the_dialog_downloads_with_progress_and_resumes_after_cancel(
    served: Hub, lib: Library, qtbot
) -> None:
    from photosearch.ui.models_dialog import ModelsDialog

    release = threading.Event()
    served.stall["text_encoder.onnx"] = (200_000, release)
    dialog = ModelsDialog(lib)
    qtbot.addWidget(dialog)
    assert not dialog.bar.isVisible() and "needs a model pack" in dialog.intro.text()
    dialog.choice.setCurrentIndex(dialog.choice.count() - 1)  # another repository
    assert dialog.choice.currentData() == ("other", "")
    dialog.start_button.click()  # nothing typed: said, and nothing starts
    assert not dialog.running() and "Type a Hugging Face repository" in dialog.status.text()
    dialog.source.setText(REPO)

    dialog.start_button.click()
    assert served.stalled.wait(30)
    qtbot.waitUntil(lambda: dialog.bar.value() > 0, timeout=10_000)
    dialog.cancel_button.click()
    release.set()
    qtbot.waitUntil(lambda: not dialog.running(), timeout=30_000)
    assert dialog.start_button.text() == "Resume"
    assert "Stopped" in dialog.status.text()
    nothing_installed(lib)

    with qtbot.waitSignal(dialog.installed, timeout=60_000) as got:
        dialog.start_button.click()
    assert got.args == ["tiny-clip"]
    assert served.gets("text_encoder.onnx")[-1].startswith("bytes=")
    qtbot.waitUntil(lambda: not dialog.running(), timeout=10_000)
    assert dialog.bar.value() == 1000 and "Installed tiny-clip" in dialog.status.text()
    assert lib.pack.name == "tiny-clip"
    assert [(r.name, r.active, r.problem) for r in dialog.packs.rows] == [("tiny-clip", True, None)]
    assert "needs a model pack" not in dialog.intro.text()
    dialog.close()


@pytest.mark.parametrize(
    ("given", "fetched", "is_zip"),
    [
        (
            "https://h.example/a/pack.zip?X-Amz-Signature=abc&x=1",
            "https://h.example/a/pack.zip?X-Amz-Signature=abc&x=1",
            True,
        ),
        ("https://h.example/a/my%20pack.zip", "https://h.example/a/my%20pack.zip", True),
        (
            "https://h.example/p1/manifest.json?sig=1",
            "https://h.example/p1/manifest.json?sig=1",
            False,
        ),
        ("https://h.example/p1/", "https://h.example/p1/manifest.json", False),
        ("https://h.example/p1", "https://h.example/p1/manifest.json", False),
    ],
)
def test_web_addresses_keep_their_query_and_quoting(given: str, fetched: str, is_zip: bool) -> None:
    """Signed links (their query), quoted names and a pasted manifest address all fetch the
    file they name."""
    from urllib.parse import unquote, urlparse

    where, zipped = acquire.parse_source(given)
    assert zipped is is_zip
    name = unquote(Path(urlparse(given).path).name) if zipped else "manifest.json"
    assert where.url(name) == fetched


def test_a_failed_install_gives_a_download_its_files_back(
    lib: Library, tiny_clip_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installing moves a download's files; if the install then fails (disk full while
    syncing, here), they go back, so trying again needs no new download."""
    download = tmp_path / "download"
    shutil.copytree(tiny_clip_pack, download)
    before = sorted(p.name for p in download.iterdir())

    def full(folder: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(modelpack, "_fsync_dir_files", full)
    with pytest.raises(OSError, match="No space left"):
        lib.import_pack(download, move=True)
    assert sorted(p.name for p in download.iterdir()) == before
    nothing_installed(lib)
    monkeypatch.undo()
    assert lib.import_pack(download, move=True).name == "tiny-clip"


def test_a_file_cut_off_before_its_check_is_fetched_again(
    served: Hub, lib: Library, tiny_clip_pack: Path
) -> None:
    """Killed between a file's arrival and its checksum: the next run checks it, finds it
    damaged, fetches it anew and installs."""
    where, _ = acquire.parse_source(REPO)
    work = lib.paths.cache / acquire.DOWNLOADS / where.key()
    work.mkdir(parents=True)
    damaged = bytearray((tiny_clip_pack / "text_encoder.onnx").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # the right size, the wrong content
    (work / "text_encoder.onnx").write_bytes(bytes(damaged))

    pack = acquire.download_pack(lib, REPO)

    assert served.gets("text_encoder.onnx")  # fetched anew
    modelpack.verify(pack.path, full=True)
