"""What the catalog hands out and takes in: folders, photos, search filters, encoding results.

Plain frozen records, free of SQLite, so every layer can pass them around; paths are kept as
the file system's own bytes in the catalog (:func:`fs_bytes`, :func:`fs_path`).
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

# State of a photo row.
PENDING = "pending"  # known on disk, not (or no longer) encoded
INDEXED = "indexed"  # has a vector for the active pack
FAILED = "error"  # could not be read; the errors table says why


def fs_bytes(path: str | os.PathLike[str]) -> bytes:
    return os.fsencode(os.fspath(path))


def fs_path(raw: bytes) -> Path:
    return Path(os.fsdecode(raw))


@dataclass(frozen=True)
class Folder:
    id: int
    path: Path
    state: str
    added: float
    last_scan: float | None
    device: int | None  # st_dev when last seen: an unmounted drive leaves another device


@dataclass(frozen=True)
class PhotoRecord:
    id: int
    path: Path
    folder_id: int
    size: int
    mtime_ns: int
    content_hash: str | None
    state: str


@dataclass(frozen=True)
class PhotoDetails:
    """What a search result shows of a photo."""

    id: int
    path: Path
    size: int
    mtime_ns: int
    content_hash: str | None
    width: int | None
    height: int | None
    format: str | None
    taken: str | None  # ISO 8601 from EXIF, local time as the camera wrote it
    online: bool  # False while its folder is offline (unplugged drive, unmounted share)

    @property
    def date(self) -> str:
        """When it was taken: the EXIF date, else the file's modification time (local), ISO
        text as :data:`PHOTO_DATE_SQL` gives it to the date filters."""
        if self.taken:
            return self.taken
        return _dt.datetime.fromtimestamp(self.mtime_ns / 1e9).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class Filters:
    """Which photos a search may return; None (or empty) means no restriction.

    ``after``/``before`` are ISO date prefixes ("2019", "2019-05", "2019-05-03"): ``after``
    keeps photos taken on or after its start, ``before`` those taken before its start (so
    ``before="2020"`` ends with 2019). The date is the EXIF date taken, else the file's
    modification time (local). ``formats`` are Pillow format names ("JPEG", "PNG", "HEIF").
    ``folder`` is any folder: photos at any depth under it pass.
    """

    folder: Path | None = None
    after: str | None = None
    before: str | None = None
    formats: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.folder or self.after or self.before or self.formats)

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE fragment over ``photos p`` and its parameters ("1" when unrestricted)."""
        where, params = [], []
        if self.folder is not None:
            prefix = fs_bytes(self.folder).rstrip(b"/") or b"/"
            # Byte ranges use the path's unique index: everything that starts with "prefix/".
            lo = prefix if prefix.endswith(b"/") else prefix + b"/"
            where.append("(p.path = ? OR (p.path >= ? AND p.path < ?))")
            params += [prefix, lo, lo[:-1] + bytes([lo[-1] + 1])]
        date = PHOTO_DATE_SQL
        if self.after:
            where.append(f"{date} >= ?")
            params.append(self.after)
        if self.before:
            where.append(f"{date} < ?")
            params.append(self.before)
        if self.formats:
            where.append(f"p.format IN ({','.join('?' * len(self.formats))})")
            params += [f.upper() for f in self.formats]
        return (" AND ".join(where) or "1"), params


# A photo's date in SQL over ``photos p``: the EXIF date taken, else the file's modification
# time (local), both ISO text, so they sort and compare alike.
PHOTO_DATE_SQL = (
    "COALESCE(p.taken, strftime('%Y-%m-%dT%H:%M:%S', p.mtime_ns / 1000000000, "
    "'unixepoch', 'localtime'))"
)


@dataclass(frozen=True)
class Encoded:
    """A photo read and encoded: everything the catalog records for it, in one write.

    ``size`` and ``mtime_ns`` are the file's as the scan saw it: the write applies only if the
    row still says the same (the file was not changed, moved or forgotten meanwhile).
    """

    photo_id: int
    size: int
    mtime_ns: int
    content_hash: str
    width: int
    height: int
    format: str
    taken: str | None
    vector: NDArray[np.floating]


@dataclass(frozen=True)
class Failed:
    """A photo that could not be read. Transient failures (permission, I/O) are retried by the
    next run; content failures (corrupt, not an image) only once the file changes."""

    photo_id: int
    size: int
    mtime_ns: int
    reason: str
    transient: bool = False
