"""Where downloads are written, and whether the disk has room for them before anything large
is written."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from photosearch.errors import DiskSpaceError

if TYPE_CHECKING:
    from photosearch.library import Library

DOWNLOADS = "downloads"  # under the cache folder: packs being downloaded, one folder each
WEIGHTS = "weights"  # under the cache folder: open_clip weights being downloaded
# Left free beyond what a download needs: a full disk breaks more than the download.
SPARE_BYTES = 50_000_000


def _existing(folder: Path) -> Path:
    for p in (folder, *folder.parents):
        if p.exists():
            return p
    return folder


def check_space(needs: dict[Path, int]) -> None:
    """Raise :class:`DiskSpaceError` unless each folder's disk has room for its bytes (and a
    spare margin). Folders on the same disk add up."""
    by_device: dict[int, tuple[Path, int]] = {}
    for folder, n in needs.items():
        where = _existing(folder)
        dev = where.stat().st_dev
        seen = by_device.get(dev)
        by_device[dev] = (seen[0] if seen else where, (seen[1] if seen else 0) + n)
    for where, n in by_device.values():
        if n <= 0:
            continue
        free = shutil.disk_usage(where).free
        if free < n + SPARE_BYTES:
            raise DiskSpaceError(needed=n + SPARE_BYTES, free=free, where=str(where))


def _same_disk(a: Path, b: Path) -> bool:
    return _existing(a).stat().st_dev == _existing(b).stat().st_dev


def _scratch(library: Library) -> Path:
    """A folder on the models' disk, so installing moves files instead of copying them."""
    folder = library.paths.cache / DOWNLOADS
    if not _same_disk(folder, library.paths.models):
        folder = library.paths.models
    folder.mkdir(parents=True, exist_ok=True)
    return folder
