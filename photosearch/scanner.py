"""Walk the library's folders and diff them against the catalog: new, changed, moved, deleted.

A move or rename is recognised by content hash, across folders too, so it keeps its vector and
costs no re-encoding. Hidden and system folders are skipped; symlinked folders are followed
once each, so loops and duplicates are harmless.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from photosearch.catalog import Catalog, Folder, PhotoRecord, fs_bytes
from photosearch.errors import PhotosearchError
from photosearch.imaging import SUPPORTED_EXTENSIONS

log = logging.getLogger(__name__)

# Folders no one keeps photos in on purpose: OS trash, indexes, NAS thumbnails.
SYSTEM_FOLDERS = frozenset(
    {
        "$recycle.bin",
        "system volume information",
        "lost+found",
        "@eadir",
        "#recycle",
        "__macosx",
        "node_modules",
    }
)
HASH_CHUNK = 1 << 20


class ScanCancelled(PhotosearchError):
    """A scan was asked to stop; nothing it saw was recorded."""


HASH_DIGEST_SIZE = 20  # bytes of BLAKE2b: a photo's content identity in the catalog


def content_hash(data: bytes) -> str:
    """The same identity as :func:`file_hash`, of bytes already read."""
    return hashlib.blake2b(data, digest_size=HASH_DIGEST_SIZE).hexdigest()


def file_hash(path: Path) -> str:
    h = hashlib.blake2b(digest_size=HASH_DIGEST_SIZE)
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class FileEntry:
    path: Path
    size: int
    mtime_ns: int


@dataclass
class FolderDiff:
    folder: Folder
    device: int | None = None
    new: list[FileEntry] = field(default_factory=list)
    changed: list[tuple[int, FileEntry]] = field(default_factory=list)
    moved: list[tuple[int, FileEntry]] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)


@dataclass
class ScanReport:
    """What one scan found; problems are paths that could not be looked at, with the reason."""

    diffs: list[FolderDiff] = field(default_factory=list)
    offline: list[Folder] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)
    # New or changed files left for a later scan (still being written, see ``scan(defer=)``).
    deferred: list[Path] = field(default_factory=list)
    seen: int = 0

    def count(self, kind: str) -> int:
        return sum(len(getattr(d, kind)) for d in self.diffs)


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in SYSTEM_FOLDERS


def walk_photos(
    root: Path,
    *,
    include_hidden: bool = False,
    on_problem: Callable[[Path, str], None] | None = None,
    other_roots: tuple[Path, ...] = (),
) -> Iterator[FileEntry]:
    """Every supported image file under ``root`` (following symlinks once, never looping).

    A symbolic link to a folder inside ``root`` or inside one of ``other_roots`` (the library's
    other folders, resolved) is not followed: those files are reached by their real path, so
    they are never catalogued twice. Entries are walked in name order, so scans repeat.
    """
    problem = on_problem or (lambda p, why: log.info("skipped %s: %s", p, why))
    roots = (root.resolve(), *other_roots)
    visited: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError as e:
            problem(folder, f"cannot open folder: {e.strerror or e}")
            continue
        key = (st.st_dev, st.st_ino)
        if key in visited:
            continue  # a symlink back to a folder already walked (a loop, or a second route)
        visited.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            problem(folder, f"cannot list folder: {e.strerror or e}")
            continue
        for entry in entries:
            name = entry.name
            if not include_hidden and is_hidden(name):
                continue
            path = Path(entry.path)
            try:
                est = entry.stat(follow_symlinks=True)
            except OSError as e:
                if entry.is_symlink():
                    problem(
                        path,
                        "broken symbolic link"
                        if e.errno == 2
                        else f"symbolic link cannot be followed: {e.strerror or e}",
                    )
                else:
                    problem(path, f"cannot read file information: {e.strerror or e}")
                continue
            if stat.S_ISDIR(est.st_mode):
                if entry.is_symlink() and _inside_any(path.resolve(), roots):
                    continue
                stack.append(path)
            elif stat.S_ISREG(est.st_mode) and path.suffix.lower() in SUPPORTED_EXTENSIONS:
                yield FileEntry(path=path, size=est.st_size, mtime_ns=est.st_mtime_ns)


def _inside_any(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _device_if_reachable(folder: Folder, has_photos: bool) -> int | None:
    """The folder's device if it is there to be scanned, else None (offline).

    Offline: missing, unreadable, or empty on another device than before while the catalog
    holds photos from it — an unplugged drive or unmounted share leaves an empty mount point
    on the parent file system, and reading that as "every photo was deleted" would throw away
    the folder's whole index. Empty on the same device is a real deletion.
    """
    try:
        st = os.stat(folder.path)
        with os.scandir(folder.path) as it:
            empty = next(it, None) is None
    except OSError:
        return None
    if empty and has_photos and folder.device is not None and st.st_dev != folder.device:
        return None
    return st.st_dev


def _under(path: Path, blocked: list[Path]) -> bool:
    return any(path == b or b in path.parents for b in blocked)


def scan(
    catalog: Catalog,
    folders: list[Folder],
    *,
    include_hidden: bool = False,
    hasher: Callable[[Path], str] = file_hash,
    defer: Callable[[FileEntry], bool] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ScanReport:
    """Diff ``folders`` against the catalog. Reads only; :func:`apply` records the result.

    ``defer`` is asked about every new or changed file: True leaves it out of this scan (it may
    still be being written), as if it were not there yet and its catalog row, if any, as it
    was. A photo gone from its place whose size matches a deferred file is kept too, since it
    may be that file's move. ``cancelled`` is polled while walking: when it returns True the
    scan raises :class:`ScanCancelled`.
    """
    diffing = _Diffing(
        catalog, include_hidden=include_hidden, hasher=hasher, defer=defer, cancelled=cancelled
    )
    roots = [f.path.resolve() for f in folders]
    for folder in folders:
        diffing.walk_folder(folder, roots)
    diffing.pair_moves()
    diffing.record_deletions()
    return diffing.report


class _Diffing:
    """One scan in progress. Each folder is diffed on its own, but moves are paired only once
    every folder is walked: a photo may move from one library folder to another."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        include_hidden: bool,
        hasher: Callable[[Path], str],
        defer: Callable[[FileEntry], bool] | None,
        cancelled: Callable[[], bool] | None,
    ):
        self.catalog = catalog
        self.include_hidden = include_hidden
        self.hasher = hasher
        self.defer = defer
        self.cancelled = cancelled
        self.report = ScanReport()
        self.deferred_sizes: set[int] = set()
        # Candidates for moves: photos gone from their place, by size, then by content hash.
        self.vanished: dict[int, PhotoRecord] = {}
        self.appeared: list[tuple[FolderDiff, FileEntry]] = []

    def _check_cancelled(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise ScanCancelled("the scan was cancelled")

    def walk_folder(self, folder: Folder, roots: list[Path]) -> None:
        """Diff one folder: changed files now, new ones and vanished photos as move
        candidates. A folder that is not there (or is an empty mount point) is offline."""
        known = self.catalog.photos_in(folder.id)
        device = _device_if_reachable(folder, bool(known))
        if device is None:
            self.report.offline.append(folder)
            return
        diff = FolderDiff(folder, device=device)
        # Paths that could not be looked at: their photos are not "gone", only unseen.
        unseen: list[Path] = []

        def problem(p: Path, why: str) -> None:
            self.report.problems.append((p, why))
            unseen.append(p)

        on_disk: set[bytes] = set()
        for entry in walk_photos(
            folder.path,
            include_hidden=self.include_hidden,
            on_problem=problem,
            other_roots=tuple(r for r in roots if r != folder.path.resolve()),
        ):
            self._check_cancelled()
            self.report.seen += 1
            key = fs_bytes(entry.path)
            on_disk.add(key)
            self._file_seen(diff, entry, known.get(key))
        for key, rec in known.items():
            if key not in on_disk and not _under(rec.path, unseen):
                self.vanished[rec.id] = rec
        self.report.diffs.append(diff)

    def _file_seen(self, diff: FolderDiff, entry: FileEntry, rec: PhotoRecord | None) -> None:
        """Sort one file on disk against its catalog row (None: no row at its path)."""
        differs = rec is None or rec.size != entry.size or rec.mtime_ns != entry.mtime_ns
        if self.defer is not None and differs and self.defer(entry):
            self.report.deferred.append(entry.path)
            self.deferred_sizes.add(entry.size)
        elif rec is None:
            self.appeared.append((diff, entry))
        elif differs:
            diff.changed.append((rec.id, entry))

    def pair_moves(self) -> None:
        """Each file new to its place is a move of a vanished photo of the same size and
        content hash (hashed only when a candidate of that size exists), else new."""
        by_size: dict[int, list[PhotoRecord]] = {}
        for rec in self.vanished.values():
            if rec.content_hash:
                by_size.setdefault(rec.size, []).append(rec)
        for diff, entry in self.appeared:
            candidates = [r for r in by_size.get(entry.size, []) if r.id in self.vanished]
            match = None
            if candidates:
                self._check_cancelled()
                try:
                    digest = self.hasher(entry.path)
                except OSError as e:
                    self.report.problems.append(
                        (entry.path, f"cannot read file: {e.strerror or e}")
                    )
                    continue
                match = next((r for r in candidates if r.content_hash == digest), None)
            if match is not None:
                del self.vanished[match.id]
                diff.moved.append((match.id, entry))
            else:
                diff.new.append(entry)

    def record_deletions(self) -> None:
        """The vanished photos no move claimed are deleted, unless a deferred file of their
        size may yet turn out to be their move."""
        by_folder = {d.folder.id: d for d in self.report.diffs}
        for rec in self.vanished.values():
            if rec.size not in self.deferred_sizes:
                by_folder[rec.folder_id].deleted.append(rec.id)


def apply(catalog: Catalog, report: ScanReport) -> list[int]:
    """Record a scan in the catalog; returns the photo ids whose vectors must leave the index.

    Deletions and moves are applied before insertions, so a file moved within the library
    keeps its row. Each folder is one transaction. Offline folders are only marked offline:
    their photos are kept until the folder comes back or is removed from the library.
    """
    stale: list[int] = []
    for folder in report.offline:
        catalog.set_folder_state(folder.id, "offline")
    for diff in report.diffs:
        catalog.apply_scan(
            diff.folder.id,
            new=((e.path, e.size, e.mtime_ns) for e in diff.new),
            changed=((i, e.size, e.mtime_ns) for i, e in diff.changed),
            moved=((i, e.path, e.size, e.mtime_ns) for i, e in diff.moved),
            deleted=diff.deleted,
            device=diff.device,
        )
        stale += diff.deleted
        stale += [i for i, _ in diff.changed]
    return stale
