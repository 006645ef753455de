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
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise PackError(f"not a readable zip file ({e})", pack=str(path)) from e
    with zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        for info in members:
            p = PurePosixPath(info.filename.replace("\\", "/"))
            mode = info.external_attr >> 16
            if p.is_absolute() or ".." in p.parts or ":" in info.filename or stat.S_ISLNK(mode):
                raise PackError(
                    f"refused: {info.filename!r} would be written outside the pack's folder",
                    pack=str(path),
                )
        manifests = [i for i in members if PurePosixPath(i.filename).name == modelpack.MANIFEST]
        manifests = [i for i in manifests if len(PurePosixPath(i.filename).parts) <= 2]
        if len(manifests) != 1:
            raise PackError(
                "not a model pack: no manifest.json at its top or in one folder"
                if not manifests
                else "holds more than one pack (several manifest.json)",
                pack=str(path),
            )
        top = PurePosixPath(manifests[0].filename).parent
        with tempfile.TemporaryDirectory(prefix=".import-", dir=_scratch(library)) as tmp:
            unpacked = Path(tmp)
            if manifests[0].file_size > MAX_MANIFEST:
                raise PackError("manifest.json is implausibly large", pack=str(path))
            (unpacked / modelpack.MANIFEST).write_bytes(zf.read(manifests[0]))
            manifest = modelpack.read_manifest(unpacked)
            files: dict[str, Any] = manifest["files"]
            wanted: dict[str, zipfile.ZipInfo] = {}
            for info in members:
                p = PurePosixPath(info.filename)
                if info is manifests[0] or p.name.startswith(".") or "__MACOSX" in p.parts:
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
            total = sum(int(e["size"]) for e in files.values())
            check_space({unpacked: total})
            for name, info in wanted.items():
                reporter.stage("verify", f"unpacking {name}")
                try:
                    with zf.open(info) as src, open(unpacked / name, "wb") as dst:
                        left = info.file_size + 1  # never more than the stated size
                        while chunk := src.read(min(1 << 20, left)):
                            left -= len(chunk)
                            if left <= 0:
                                raise PackError("larger than stated", pack=str(path), file=name)
                            dst.write(chunk)
                            reporter.check()
                except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # damaged in the zip
                    raise PackError(
                        f"damaged in the zip file ({e})", pack=str(path), file=name
                    ) from e
                except (NotImplementedError, RuntimeError) as e:  # Deflate64, encrypted, …
                    raise PackError(
                        f"cannot unpack this zip entry ({e}); re-pack it with plain deflate",
                        pack=str(path),
                        file=name,
                    ) from e
            reporter.stage("install", f"installing {manifest['name']}")
            return library.import_pack(unpacked, activate=activate, replace=replace, move=True)


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
