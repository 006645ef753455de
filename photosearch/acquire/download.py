"""Downloading a ready pack (a hub repository, a web folder or a zip URL), checking every file
against its manifest, and installing it; what arrived is kept for the next try to resume."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from photosearch import modelpack
from photosearch.acquire.catalogue import READY, Ready
from photosearch.acquire.disk import DOWNLOADS, _same_disk, check_space
from photosearch.acquire.locations import _Hub, _key, _Location, parse_source
from photosearch.acquire.progress import ProgressFn, _Reporter
from photosearch.acquire.ready import install_ready
from photosearch.acquire.transfer import _fetch, _translated
from photosearch.acquire.zips import import_zip
from photosearch.errors import PackError

if TYPE_CHECKING:
    from photosearch.library import Library

log = logging.getLogger(__name__)


def download_pack(
    library: Library,
    source: str,
    *,
    revision: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    activate: bool | None = None,
    replace: bool = False,
) -> modelpack.ModelPack:
    """Download an exported pack (``owner/name[@revision]`` on a hub, a folder URL, or a zip
    URL), check every file and install it; returns the installed pack. A ready model's name
    or repository (the catalogue's :data:`READY`) is made into a pack by :func:`install_ready`.

    Cancelled (``cancel`` set) or broken off, what arrived is kept under the cache's
    ``downloads`` folder and the next call resumes it. Nothing is installed unless every file
    matches the manifest's sha256.
    """
    options: dict[str, Any] = {"activate": activate, "replace": replace}
    entry = find_ready(source)
    if entry is not None:
        revision = revision or _revision_of(source)
        return install_ready(
            library, entry, revision=revision, progress=progress, cancel=cancel, **options
        )
    where, is_zip = parse_source(source, revision)
    reporter = _Reporter(progress, cancel)
    if is_zip:
        zipped, work = _download_zip(library, where, source, reporter)
        try:
            return import_zip(library, zipped, progress=progress, cancel=cancel, **options)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    work = library.paths.cache / DOWNLOADS / where.key()
    where, manifest = _read_manifest(where, work, reporter)
    dest = library.pack_folder(str(manifest["name"]))
    if dest.exists() and not replace:
        shutil.rmtree(work, ignore_errors=True)
        raise PackError(
            f"a pack named {dest.name!r} is already installed; pass --replace to replace it "
            "(photos encoded with it will be encoded again)"
        )
    files: dict[str, dict[str, Any]] = manifest["files"]
    done = _check_room(library, work, files)
    reporter.total = sum(int(e["size"]) for e in files.values())
    for name, entry in files.items():
        _fetch_listed(where, work, name, entry, done[name], reporter)
    reporter.stage("install", f"installing {manifest['name']}")
    pack = library.import_pack(work, activate=activate, replace=replace, move=True)
    shutil.rmtree(work, ignore_errors=True)
    return pack


def find_ready(source: str) -> Ready | None:
    """The ready model ``source`` names: its catalogue name, or its repository (with or
    without ``@revision``)."""
    wanted = source.strip().removeprefix("hf://").split("@")[0]
    for entry in READY:
        if wanted.lower() in (entry.name, entry.repo.lower()):
            return entry
    return None


def _revision_of(source: str) -> str | None:
    _, at, revision = source.partition("@")
    return revision.strip() if at and revision.strip() else None


def _download_zip(
    library: Library, where: _Location, source: str, reporter: _Reporter
) -> tuple[Path, Path]:
    """Fetch a zipped pack into its own downloads folder; returns the zip file and the folder
    (the caller removes it once the zip is imported, or found unusable)."""
    downloads = library.paths.cache / DOWNLOADS
    name = unquote(PurePosixPath(urlparse(source).path).name)  # quoted again per request
    work = downloads / _key(name, source)
    reporter.stage("download", f"asking {where.label} for {name}")
    with _translated(where, name):
        meta = where.head(name)
    reporter.total = meta.size
    have = sum(p.stat().st_size for p in work.glob(f".{name}.*.part"))
    check_space({downloads: (meta.size or 0) - have})
    reporter.stage("download", f"downloading {name}")
    return _fetch(where, name, work / name, reporter, meta), work


def _read_manifest(
    where: _Location, work: Path, reporter: _Reporter
) -> tuple[_Location, dict[str, Any]]:
    """Fetch the manifest afresh and read it; returns where the pack's files are, pinned to
    the manifest's commit on a hub so every file comes from one version. Files kept from an
    earlier try are dropped when the manifest has changed since."""
    reporter.stage("download", f"reading the manifest of {where.label}")
    with _translated(where, modelpack.MANIFEST):
        meta = where.head(modelpack.MANIFEST)
    if isinstance(where, _Hub) and meta.commit:
        where = where.pinned(meta.commit)
    fresh = work / ".manifest.new"
    _fetch(where, modelpack.MANIFEST, fresh, reporter, meta)
    reporter.done = 0
    if (work / modelpack.MANIFEST).exists() and (
        (work / modelpack.MANIFEST).read_bytes() != fresh.read_bytes()
    ):
        log.info("%s changed since the last try: starting afresh", where.label)
        for f in work.iterdir():
            if f != fresh:
                f.unlink()
    os.replace(fresh, work / modelpack.MANIFEST)
    try:
        return where, modelpack.read_manifest(work)
    except PackError as e:
        shutil.rmtree(work, ignore_errors=True)
        raise PackError(f"{where.label} cannot be installed: {e}") from e


def _check_room(library: Library, work: Path, files: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Check the disks have room for what is still to come (and, on another disk, for the
    installed pack); returns which files an earlier try left at their full size."""
    downloads = library.paths.cache / DOWNLOADS
    total = sum(int(e["size"]) for e in files.values())
    done = {
        n: (work / n).is_file() and (work / n).stat().st_size == e["size"] for n, e in files.items()
    }
    have = sum(p.stat().st_size for p in work.glob(".*.part"))
    have += sum(int(files[n]["size"]) for n, ok in done.items() if ok)
    needs = {downloads: total - have}
    if not _same_disk(downloads, library.paths.models):
        needs[library.paths.models] = total
    check_space(needs)
    return done


def _fetch_listed(
    where: _Location,
    work: Path,
    name: str,
    entry: dict[str, Any],
    whole: bool,
    reporter: _Reporter,
) -> None:
    """One file the manifest lists. A whole one left by an earlier run is kept only when its
    sha256 is right: that run may have stopped before checking it."""
    target = work / name
    if whole:
        reporter.stage("verify", f"checking {name} (downloaded before)")
        if modelpack.sha256_file(target) == entry["sha256"]:
            reporter.add(int(entry["size"]), fresh=False)
            return
        target.unlink()  # cut off before it was checked: fetch it anew
    reporter.stage("download", f"downloading {name}")
    _fetch(where, name, target, reporter, sha256=entry["sha256"])
