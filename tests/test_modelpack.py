"""A damaged, missing or foreign pack file is refused with an error naming the file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from photosearch import modelpack
from photosearch.errors import PackError


def _edit_manifest(pack: Path, change) -> None:
    mf = pack / modelpack.MANIFEST
    data = json.loads(mf.read_text())
    change(data)
    mf.write_text(json.dumps(data))


def test_good_pack_verifies_and_describes_itself(pack_copy: Path) -> None:
    pack = modelpack.verify(pack_copy, full=True)
    m = pack.manifest
    assert m["format_version"] == 1  # an export needs nothing newer; version 2 is for ready packs
    assert m["source"]["model"] == "photosearch-tiny-clip"
    assert m["source"]["pretrained"] == "none"
    assert pack.embedding_dim == 32
    assert pack.image.size == (32, 32)
    assert len(pack.image.mean) == 3 and len(pack.image.std) == 3
    assert pack.image.interpolation in ("bicubic", "bilinear")
    assert pack.context_length == 77
    assert set(m["files"]) == {"image_encoder.onnx", "text_encoder.onnx", "tokenizer.json"}
    for name, entry in m["files"].items():
        assert entry["sha256"] == modelpack.sha256_file(pack_copy / name)
        assert entry["size"] == (pack_copy / name).stat().st_size
    assert pack.reranker is None


def test_missing_folder_and_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="does not exist"):
        modelpack.verify(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackError, match=r"manifest\.json: missing"):
        modelpack.verify(tmp_path / "empty")


def test_manifest_not_json(pack_copy: Path) -> None:
    (pack_copy / "manifest.json").write_text("{ this is not json")
    with pytest.raises(PackError, match=r"manifest\.json: unreadable or not JSON"):
        modelpack.verify(pack_copy)


def test_foreign_manifest_format(pack_copy: Path) -> None:
    _edit_manifest(pack_copy, lambda m: m.update(format="someone-elses-format"))
    with pytest.raises(PackError, match="not a photosearch model pack manifest"):
        modelpack.verify(pack_copy)


def test_newer_format_version_is_refused_with_advice(pack_copy: Path) -> None:
    _edit_manifest(pack_copy, lambda m: m.update(format_version=modelpack.FORMAT_VERSION + 1))
    with pytest.raises(PackError, match="format version .* is not supported.*update photosearch"):
        modelpack.verify(pack_copy)


def test_missing_field(pack_copy: Path) -> None:
    _edit_manifest(pack_copy, lambda m: m.pop("embedding_dim"))
    with pytest.raises(PackError, match="'embedding_dim' is missing"):
        modelpack.verify(pack_copy)


def test_missing_file_is_named(pack_copy: Path) -> None:
    (pack_copy / "text_encoder.onnx").unlink()
    with pytest.raises(PackError, match=r"text_encoder\.onnx: missing") as e:
        modelpack.verify(pack_copy)
    assert e.value.file == "text_encoder.onnx"


def test_truncated_file_is_named(pack_copy: Path) -> None:
    f = pack_copy / "image_encoder.onnx"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(PackError, match=r"image_encoder\.onnx: damaged or foreign: \d+ bytes"):
        modelpack.load(pack_copy)


def test_same_size_corruption_caught_by_checksum(pack_copy: Path) -> None:
    modelpack.verify(pack_copy, full=True)  # leaves a stamp: later loads may skip hashing
    f = pack_copy / "text_encoder.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))  # a write changes the mtime, so the stamp no longer vouches
    with pytest.raises(PackError, match=r"text_encoder\.onnx: .*sha256 does not match"):
        modelpack.load(pack_copy)


def test_full_verify_ignores_stamp(pack_copy: Path) -> None:
    modelpack.verify(pack_copy, full=True)
    f = pack_copy / "text_encoder.onnx"
    st = f.stat()
    data = bytearray(f.read_bytes())
    data[-10] ^= 0x01
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime: a stealthy change
    with pytest.raises(PackError, match="sha256 does not match"):
        modelpack.verify(pack_copy, full=True)


def test_swapped_graph_is_foreign(pack_copy: Path) -> None:
    shutil.copy(pack_copy / "text_encoder.onnx", pack_copy / "image_encoder.onnx")
    with pytest.raises(PackError, match=r"image_encoder\.onnx: damaged or foreign"):
        modelpack.verify(pack_copy)


def test_unlisted_file_is_foreign_but_hidden_files_are_ignored(pack_copy: Path) -> None:
    (pack_copy / ".DS_Store").write_bytes(b"finder junk")
    modelpack.verify(pack_copy)
    (pack_copy / "extra_model.onnx").write_bytes(b"\0" * 10)
    with pytest.raises(PackError, match=r"extra_model\.onnx: foreign file"):
        modelpack.verify(pack_copy)


def test_manifest_referring_to_unlisted_file(pack_copy: Path) -> None:
    _edit_manifest(pack_copy, lambda m: m["text"].update(file="elsewhere.onnx"))
    with pytest.raises(PackError, match="'elsewhere.onnx', which is not listed"):
        modelpack.verify(pack_copy)


def test_bad_preprocessing_entry(pack_copy: Path) -> None:
    _edit_manifest(pack_copy, lambda m: m["image"].update(mean=[0.5, 0.5]))
    with pytest.raises(PackError, match="invalid image preprocessing"):
        modelpack.verify(pack_copy)


def test_pack_on_read_only_media_still_loads(
    pack_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path, data: bytes | str) -> None:
        raise PermissionError(13, "Read-only file system", str(path))

    (pack_copy / modelpack.VERIFIED_STAMP).unlink(missing_ok=True)
    monkeypatch.setattr(modelpack.fsio, "atomic_write", refuse)
    assert modelpack.load(pack_copy).embedding_dim == 32
    assert not (pack_copy / modelpack.VERIFIED_STAMP).exists()


def test_staged_pack_leaves_nothing_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "new-pack"
    with pytest.raises(RuntimeError), modelpack.staged_pack(out) as staging:
        (staging / "image_encoder.onnx").write_bytes(b"partial")
        raise RuntimeError("parity failed")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_staged_pack_refuses_to_clobber_and_replaces_when_asked(tmp_path: Path) -> None:
    out = tmp_path / "p"
    with modelpack.staged_pack(out) as s:
        (s / "a").write_text("1")
    with pytest.raises(PackError, match="already exists"), modelpack.staged_pack(out):
        pass
    with modelpack.staged_pack(out, overwrite=True) as s:
        (s / "b").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["p"]
