"""Installing a pack from a zip file (``models import``), refusing anything that could write
outside the unpacking folder or that the manifest does not list."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from photosearch import modelpack
from photosearch.acquire.disk import _scratch, check_space
from photosearch.acquire.progress import ProgressFn, _Reporter
from photosearch.errors import PackError

if TYPE_CHECKING:
    from photosearch.library import Library

MAX_MANIFEST = 16 << 20  # bytes: a manifest lists a few files and their checksums


def import_zip(
    library: Library,
    path: Path,
    *,
    activate: bool | None = None,
    replace: bool = False,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> modelpack.ModelPack:
    """Install a pack from a zip file: its files at the top or in one folder. Anything that
    could write outside the unpacking folder (absolute or ``..`` paths, links), files the
    manifest does not list and sizes it does not state are refused before unpacking."""
    path = Path(path)
    reporter = _Reporter(progress, cancel)
    reporter.stage("verify", f"reading {path.name}")
    with _open_zip(path) as zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        _refuse_escapes(members, path)
        found = _the_manifest(members, path)
        with tempfile.TemporaryDirectory(prefix=".import-", dir=_scratch(library)) as tmp:
            unpacked = Path(tmp)
            if found.file_size > MAX_MANIFEST:
                raise PackError("manifest.json is implausibly large", pack=str(path))
            (unpacked / modelpack.MANIFEST).write_bytes(zf.read(found))
            manifest = modelpack.read_manifest(unpacked)
            files: dict[str, Any] = manifest["files"]
            wanted = _listed_members(members, found, files, path)
            total = sum(int(e["size"]) for e in files.values())
            check_space({unpacked: total})
            for name, info in wanted.items():
                reporter.stage("verify", f"unpacking {name}")
                _unpack(zf, info, unpacked / name, reporter, path)
            reporter.stage("install", f"installing {manifest['name']}")
            return library.import_pack(unpacked, activate=activate, replace=replace, move=True)


def _open_zip(path: Path) -> zipfile.ZipFile:
    """The zip file, or a :class:`PackError` naming it when it is not one."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise PackError(f"not a readable zip file ({e})", pack=str(path)) from e


def _refuse_escapes(members: list[zipfile.ZipInfo], path: Path) -> None:
    """Refuse the whole zip, before anything is unpacked, if one entry could land outside the
    unpacking folder: an absolute path, ``..``, a drive letter or a link."""
    for info in members:
        p = PurePosixPath(info.filename.replace("\\", "/"))
        mode = info.external_attr >> 16
        if p.is_absolute() or ".." in p.parts or ":" in info.filename or stat.S_ISLNK(mode):
            raise PackError(
                f"refused: {info.filename!r} would be written outside the pack's folder",
                pack=str(path),
            )


def _the_manifest(members: list[zipfile.ZipInfo], path: Path) -> zipfile.ZipInfo:
    """The one manifest.json at the zip's top or in one folder: that folder is the pack."""
    manifests = [i for i in members if PurePosixPath(i.filename).name == modelpack.MANIFEST]
    manifests = [i for i in manifests if len(PurePosixPath(i.filename).parts) <= 2]
    if len(manifests) != 1:
        raise PackError(
            "not a model pack: no manifest.json at its top or in one folder"
            if not manifests
            else "holds more than one pack (several manifest.json)",
            pack=str(path),
        )
    return manifests[0]


def _listed_members(
    members: list[zipfile.ZipInfo],
    manifest: zipfile.ZipInfo,
    files: dict[str, Any],
    path: Path,
) -> dict[str, zipfile.ZipInfo]:
    """The entries to unpack, by file name: each must be one the manifest lists, beside it and
    of the stated size. Hidden files and macOS's ``__MACOSX`` folders are passed over."""
    top = PurePosixPath(manifest.filename).parent
    wanted: dict[str, zipfile.ZipInfo] = {}
    for info in members:
        p = PurePosixPath(info.filename)
        if info is manifest or p.name.startswith(".") or "__MACOSX" in p.parts:
            continue
        if p.parent != top or p.name not in files:
            raise PackError(
                "foreign file: not part of this pack (its manifest does not list it)",
                pack=str(path),
                file=info.filename,
            )
        if info.file_size != files[p.name]["size"]:
            raise PackError(
                f"damaged or foreign: {info.file_size} bytes, the manifest says "
                f"{files[p.name]['size']}",
                pack=str(path),
                file=p.name,
            )
        wanted[p.name] = info
    return wanted


def _unpack(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, reporter: _Reporter, path: Path
) -> None:
    """Unpack one entry, never past its stated size (a zip can lie about it); the zip
    module's errors become a :class:`PackError` naming the file."""
    name = target.name
    try:
        with zf.open(info) as src, open(target, "wb") as dst:
            left = info.file_size + 1  # never more than the stated size
            while chunk := src.read(min(1 << 20, left)):
                left -= len(chunk)
                if left <= 0:
                    raise PackError("larger than stated", pack=str(path), file=name)
                dst.write(chunk)
                reporter.check()
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # damaged in the zip
        raise PackError(f"damaged in the zip file ({e})", pack=str(path), file=name) from e
    except (NotImplementedError, RuntimeError) as e:  # Deflate64, encrypted, …
        raise PackError(
            f"cannot unpack this zip entry ({e}); re-pack it with plain deflate",
            pack=str(path),
            file=name,
        ) from e


def install(
    library: Library,
    source: str | os.PathLike[str],
    *,
    activate: bool | None = None,
    replace: bool = False,
) -> modelpack.ModelPack:
    """``models import``: a pack folder, or a zip file holding one."""
    path = Path(source)
    if path.is_file():
        return import_zip(library, path, activate=activate, replace=replace)
    return library.import_pack(path, activate=activate, replace=replace)
