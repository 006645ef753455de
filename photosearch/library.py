"""The library facade: the one API the command line and the GUI use.

A library is a data directory (catalog, vector index, lock) plus installed model packs. One
process at a time may change it (a *writer*: indexing, watching, folder and pack changes); a
second writer gets :class:`LibraryLockedError`. Any number of *readers* (``writer=False``:
search, similar, status, doctor's checks) may open it meanwhile: SQLite's WAL gives them the
catalog as of its last commit, and they serve the vector index of that same state, reloading it
when the writer commits more.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from photosearch import config, imaging, modelpack, scanner
from photosearch.catalog import Catalog, Filters, Folder
from photosearch.encoders import ImageEncoder, TextEncoder, check_pack
from photosearch.errors import PackError, PhotosearchError
from photosearch.indexer import IndexControl, Indexer, IndexReport, Progress
from photosearch.rerank import CACHE_FILE, DEFAULT_CACHE_BYTES, Reranker, TokenCache
from photosearch.search import (
    DEFAULT_BETA,
    DEFAULT_RERANK,
    Query,
    Results,
    Searcher,
    check_beta,
    check_depth,
)
from photosearch.vectors import IndexFileError, VectorIndex

if TYPE_CHECKING:
    from photosearch.watcher import Watcher, WatchEvent

log = logging.getLogger(__name__)

CATALOG_FILE = "catalog.sqlite3"
LOCK_FILE = "photosearch.lock"


class LibraryLockedError(PhotosearchError):
    """Another photosearch process is changing this data directory."""


class ReadOnlyLibraryError(PhotosearchError):
    """A change was asked of a library opened for reading (``writer=False``)."""


class NoModelError(PhotosearchError):
    """No usable model pack is installed."""


class FolderError(PhotosearchError):
    """A folder cannot be added to or removed from the library."""


@dataclass(frozen=True)
class Models:
    """What a query runs on, taken together (see :meth:`Library.models`)."""

    pack: modelpack.ModelPack
    text_encoder: TextEncoder
    index: VectorIndex


@dataclass
class SwitchReport:
    """What an indexing run did towards a pending model pack switch (see ``use_pack``)."""

    pack: str  # the pack being switched to
    run: IndexReport | None  # its encoding run (None: the switch was dropped, see problem)
    switched: bool  # every photo is encoded with it: it serves searches now
    problem: str | None = None


@dataclass
class IndexRunReport:
    """A scan followed by an indexing run, in the numbers a person wants at the end."""

    new: int
    changed: int
    moved: int
    removed: int
    offline: list[Path]
    problems: list[tuple[Path, str]]
    run: IndexReport
    switch: SwitchReport | None = None


def _depth(text: str) -> int:
    return check_depth(int(text))


def _beta(text: str) -> float | None:
    if text.strip().lower() in ("pack", "default", "none"):
        return None
    return check_beta(float(text))


def _mib(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 (no cache) or more")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not (np.isfinite(value) and value > 0):
        raise ValueError("must be a number of seconds above 0")
    return value


def _flag(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be on or off")


@dataclass(frozen=True)
class Setting:
    """A user setting stored in the catalog: how to read it from text, its default, what it is."""

    parse: Callable[[str], Any]
    default: Any
    help: str


SETTINGS: dict[str, Setting] = {
    "rerank_depth": Setting(
        _depth, DEFAULT_RERANK, "photos the reranker refines per query (0 = fast only)"
    ),
    "rerank_beta": Setting(
        _beta, None, "weight of the reranker's score (unset: the pack's own, else 0.1)"
    ),
    "rerank_cache_mb": Setting(
        _mib, DEFAULT_CACHE_BYTES >> 20, "disk space for cached reranker image tokens (MiB)"
    ),
    "rerank_precompute": Setting(
        _flag, False, "compute reranker image tokens for every photo after indexing"
    ),
    "watch_rescan_seconds": Setting(
        _seconds, 900.0, "while watching: seconds between full rescans (events can be missed)"
    ),
    "watch_poll_seconds": Setting(
        _seconds, 60.0, "while watching: seconds between checks of unwatchable or offline folders"
    ),
}


def _try_lock(fh: Any) -> bool:
    """Take the exclusive lock on an open lock file without waiting; False if it is held."""
    try:
        if sys.platform == "win32":
            import msvcrt

            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class DataDirLock:
    """The writer's lock on a data directory: exclusive, released when the process dies."""

    # A reader asking "is a writer there?" (:meth:`held_elsewhere`) holds the lock for an
    # instant; a writer starting at that instant tries again instead of refusing.
    RETRY_SECONDS = 0.5

    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self._fh: Any = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the life of the library
        deadline = time.monotonic() + self.RETRY_SECONDS
        while not _try_lock(fh):
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            try:
                fh.seek(0)
                owner = fh.read().strip() or "unknown"
            except OSError:  # Windows: the locked byte cannot be read
                owner = "unknown"
            fh.close()
            raise LibraryLockedError(
                f"another photosearch process (pid {owner}) is changing {self.path.parent} "
                "(indexing, watching its folders, or the window is open); searching and status "
                "work beside it, but indexing and changes to folders or model packs wait for "
                "it: close that one first, or use a different --home"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def held_elsewhere(self) -> bool:
        """Whether another process holds the lock now (a writer is running)."""
        if self._fh is not None:
            return False
        try:
            fh = open(self.path, "a+")  # noqa: SIM115 - closed below
        except OSError:
            return False
        try:
            return not _try_lock(fh)
        finally:
            fh.close()  # drops the lock if this probe took it

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the lock
            self._fh = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "pack"


class Library:
    """Open with ``Library(home)`` (or as a context manager); close when done."""

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        device: str = "auto",
        threads: int | None = None,
        writer: bool = True,
    ):
        imaging.route_decoder_warnings()
        self.paths = config.paths(home).ensure()
        self.device = device
        self.threads = threads
        self.writer = writer
        self._lock = DataDirLock(self.paths.data)
        if writer:
            self._lock.acquire()
        try:
            self.catalog = Catalog(self.paths.data / CATALOG_FILE)
        except BaseException:
            self._lock.release()
            raise
        if writer:
            try:
                for said in modelpack.sweep_leftovers(self.paths.models):
                    log.warning("model packs: %s", said)
            except OSError as e:  # never a reason not to open the library
                log.warning("model packs: could not clean up after an interrupted install: %s", e)
        # _job: one mutating job at a time (index, scan, remove, switch pack); searches run
        # beside it. _init: lazy loading of pack, encoders and index happens once.
        self._job = threading.RLock()
        self._init = threading.RLock()
        self._control: IndexControl | None = None
        self._pack: modelpack.ModelPack | None = None
        self._index: VectorIndex | None = None
        self._index_dirty = False
        self._image_encoder: ImageEncoder | None = None
        self._text_encoder: TextEncoder | None = None
        self._reranker: Reranker | None = None
        self._reranker_problem: str | None = None
        self._watchers: list[Watcher] = []
        self.searcher = Searcher(self)

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop watchers and a running indexing job (they keep what they committed), save,
        release the lock."""
        for watcher in list(self._watchers):
            watcher.stop()
        if self._control is not None:
            self._control.cancel()
        try:
            with self._job:
                self._save_or_defer()
        finally:
            if self._reranker is not None:
                self._reranker.close()
            self.catalog.close()
            self._lock.release()

    def _writing(self, what: str) -> None:
        """Refuse ``what`` (a change) in a library opened for reading."""
        if not self.writer:
            raise ReadOnlyLibraryError(
                f"{what} changes the library, which this process opened for reading only"
            )

    def writer_elsewhere(self) -> bool:
        """Whether another process is changing this library now (a reader's question)."""
        return not self.writer and self._lock.held_elsewhere()

    # -- model packs -----------------------------------------------------------------------

    def installed_packs(self) -> list[Path]:
        return modelpack.list_installed(self.paths.models)

    @property
    def pack(self) -> modelpack.ModelPack:
        """The active pack (chosen in settings, else the only or first installed one)."""
        with self._init:
            return self._load_pack()

    def _load_pack(self) -> modelpack.ModelPack:
        if self._pack is None:
            installed = self.installed_packs()
            chosen = self.catalog.get_setting("active_pack")
            if chosen:
                folder = self.paths.models / chosen
                if not folder.is_dir():
                    raise PackError(
                        f"the active model pack {chosen!r} is missing from {self.paths.models}; "
                        "import it again, or choose another with `photosearch models use NAME`"
                    )
            elif installed:
                folder = installed[0]
            else:
                raise NoModelError(
                    f"no model pack is installed in {self.paths.models}; import one with "
                    "`photosearch models import PACK_DIR`"
                )
            self._pack = modelpack.load(folder)
        return self._pack

    def pack_folder(self, name: str) -> Path:
        """Where the installed pack ``name`` lives (whether or not it is there)."""
        return self.paths.models / _slug(name)

    def import_pack(
        self,
        source: Path,
        *,
        activate: bool | None = None,
        replace: bool = False,
        move: bool = False,
    ) -> modelpack.ModelPack:
        """Verify a pack and copy it into the models folder atomically; make it active if it
        is the first (or ``activate``). An installed pack of the same name is replaced only
        with ``replace``: its vectors would no longer match. ``move`` moves the files instead
        of copying them (a download's own folder: no second copy on disk)."""
        self._writing("installing a model pack")
        src = modelpack.verify(Path(source), full=True)
        check_pack(src)  # checksums vouch for the files; this for their fit with the manifest
        dest = self.pack_folder(src.name)
        if dest.exists() and not replace:
            raise PackError(
                f"a pack named {dest.name!r} is already installed; pass --replace to replace it "
                "(photos encoded with it will be encoded again)"
            )
        with self._job:
            loaded = self._pack is not None and self._pack.path == dest
            if loaded or self.pending_pack == dest.name:  # replacing what is in use
                self._forget_models()
            self._install(src, dest, move=move)
        pack = modelpack.verify(dest, full=True, record=True)
        first = self.catalog.get_setting("active_pack") is None
        if activate or (activate is None and first):
            self.use_pack(dest.name)
        return pack

    @staticmethod
    def _install(src: modelpack.ModelPack, dest: Path, *, move: bool = False) -> None:
        moved: list[str] = []

        def rescue(staging: Path) -> None:  # a failed install gives a download its files back
            for f in moved:
                if (staging / f).exists():
                    os.replace(staging / f, src.path / f)

        with modelpack.staged_pack(dest, overwrite=True, rescue=rescue) as staging:
            for f in [*src.manifest["files"], modelpack.MANIFEST]:
                if move:
                    try:
                        os.replace(src.path / f, staging / f)
                        moved.append(f)
                        continue
                    except OSError:  # another file system: copy instead
                        pass
                shutil.copy2(src.path / f, staging / f)

    def use_pack(self, name: str) -> bool:
        """Make the installed pack ``name`` the active one; returns True when it serves searches
        from now on.

        When photos are already encoded with the active pack and not yet with ``name``, the
        switch is pending instead (False): searches keep using the active pack's vectors while
        :meth:`index_photos` encodes every photo with ``name``, and the swap happens once it has
        encoded them all. Choosing the active pack again cancels a pending switch."""
        self._writing("choosing the model pack")
        folder = self.paths.models / name
        new = modelpack.load(folder)  # refuse a broken pack before switching
        with self._job:
            try:
                current = self.pack
            except (NoModelError, PackError):  # nothing (usable) serves now: switch at once
                current = None
            if current is not None and current.path.name == name:
                self.catalog.set_setting("active_pack", name)
                self.catalog.delete_setting("pending_pack")
                return True
            if (
                current is not None
                and self.catalog.counts(current.id)["indexed"] > 0
                and self.catalog.counts(new.id)["pending"] > 0
            ):
                self.catalog.set_setting("pending_pack", name)
                return False
            self._activate(name)
            return True

    def _activate(self, name: str) -> None:
        self.save_index()
        self.catalog.set_setting("active_pack", name)
        self.catalog.delete_setting("pending_pack")
        self._forget_models()

    @property
    def pending_pack(self) -> str | None:
        """The installed pack the library is switching to (see :meth:`use_pack`), if any."""
        return self.catalog.get_setting("pending_pack")

    def remove_pack(self, name: str, *, force: bool = False) -> None:
        """Uninstall the pack ``name`` and forget the vectors it made.

        The active pack is refused (:class:`PackError` saying what to do) unless ``force``:
        then search has no model until another pack is chosen (the first installed one is).
        The folder is renamed away first, so a crash never leaves half a pack that looks
        installed."""
        self._writing("removing a model pack")
        folder = self.paths.models / name
        if not (folder / modelpack.MANIFEST).is_file():
            installed = ", ".join(p.name for p in self.installed_packs()) or "none"
            raise PackError(f"no installed model pack is named {name!r} (installed: {installed})")
        with self._job:
            active = self.catalog.get_setting("active_pack")
            if active is None:
                installed = self.installed_packs()
                active = installed[0].name if installed else None
            if name == active and not force:
                others = [p.name for p in self.installed_packs() if p.name != name]
                hint = (
                    f"choose another first (`photosearch models use {others[0]}`)"
                    if others
                    else "install another first"
                )
                raise PackError(
                    f"{name!r} is the active model pack: search needs it; {hint}, or pass "
                    "--force to remove it anyway"
                )
            try:
                pack_id: str | None = modelpack.described(folder).id
            except PackError:  # an unreadable manifest: its vectors cannot be told apart
                pack_id = None
            gone = folder.parent / f".{folder.name}.removing-{os.getpid()}"
            os.replace(folder, gone)
            if name == active:
                self.catalog.delete_setting("active_pack")
                self._forget_models()
            if self.catalog.get_setting("pending_pack") == name:
                self.catalog.delete_setting("pending_pack")
            if pack_id is not None:
                self.catalog.drop_vectors(pack_id)
                self._index_file(pack_id).unlink(missing_ok=True)
            shutil.rmtree(gone, ignore_errors=True)

    def _forget_models(self) -> None:
        with self._init:
            self._pack = None
            self._index = None
            self._image_encoder = self._text_encoder = None
            if self._reranker is not None:
                self._reranker.close()
            self._reranker = None
            self._reranker_problem = None

    # -- encoders and index (loaded on first use) ------------------------------------------

    def models(self) -> Models:
        """The active pack with its text encoder and vector index, taken together: a query
        uses one consistent set even if a pack switch swaps them while it runs."""
        with self._init:
            if not self.writer:
                self._follow_writer()
            return Models(self._load_pack(), self._load_text_encoder(), self.index)

    def _follow_writer(self) -> None:
        """A reader's view keeps up with a writer elsewhere: a pack switch it completed drops
        the models, vectors it committed since the index was loaded reload the index."""
        if self._pack is not None and self.catalog.get_setting("active_pack") not in (
            None,
            self._pack.path.name,
        ):
            self._forget_models()
        elif self._index is not None and self._index.generation != self.catalog.generation():
            self._index = None

    def image_encoder_for(self, pack: modelpack.ModelPack) -> ImageEncoder:
        """The image encoder of ``pack``: the loaded one when it is the active pack."""
        with self._init:
            if self._pack is pack:
                return self._load_image_encoder()
        return ImageEncoder(pack, device=self.device, threads=self.threads)

    @property
    def image_encoder(self) -> ImageEncoder:
        with self._init:
            return self._load_image_encoder()

    def _load_image_encoder(self) -> ImageEncoder:
        if self._image_encoder is None:
            self._image_encoder = ImageEncoder(self.pack, device=self.device, threads=self.threads)
        return self._image_encoder

    @property
    def text_encoder(self) -> TextEncoder:
        with self._init:
            return self._load_text_encoder()

    def _load_text_encoder(self) -> TextEncoder:
        if self._text_encoder is None:
            self._text_encoder = TextEncoder(self.pack, device=self.device, threads=self.threads)
        return self._text_encoder

    def _index_file(self, pack_id: str) -> Path:
        return self.paths.data / f"vectors-{_slug(pack_id)}.faiss"

    @property
    def index_path(self) -> Path:
        return self._index_file(self.pack.id)

    @property
    def index(self) -> VectorIndex:
        """The vector index, checked against the catalog (count and ids) and rebuilt from it
        when they differ: after a crash, a copy from elsewhere, or a damaged file. The ids alone
        are not enough (a photo re-encoded keeps its id), so the index also records the
        catalog's vector generation it reflects."""
        with self._init:
            if self._index is None:
                self._index = self._load_index()
            return self._index

    def _load_index(self, pack: modelpack.ModelPack | None = None) -> VectorIndex:
        """The index file of ``pack`` (the active one by default) if it reflects the catalog,
        else one rebuilt from the catalog. A writer saves what it rebuilt (a failure to, such as
        a full disk, only postpones that: searches are served from memory meanwhile); a reader
        never writes: an index file behind the catalog is normal beside a writer, which saves
        at checkpoints."""
        active = pack is None
        pack = pack or self.pack
        path = self._index_file(pack.id)
        generation = self.catalog.generation()
        index = None
        try:
            index = VectorIndex.load(path, dim=pack.embedding_dim)
        except IndexFileError as e:
            if path.exists() and self.writer:
                log.warning("rebuilding the vector index: %s", e)
        if (
            index is not None
            and index.generation == generation
            and index.matches(self.catalog.vector_ids(pack.id))
        ):
            return index
        if index is not None and self.writer:
            log.warning("the vector index is out of date with the catalog: rebuilding it")
        index = self._rebuild_index(pack)
        index.generation = generation  # what it reflects at least: a later commit reloads it
        if self.writer:
            try:
                self._save(index, pack)
            except OSError as e:
                log.warning(
                    "the rebuilt vector index could not be saved (%s): searching from "
                    "memory, saving it later",
                    e,
                )
                if active:
                    self._index_dirty = True
        return index

    def _rebuild_index(self, pack: modelpack.ModelPack | None = None) -> VectorIndex:
        pack = pack or self.pack
        parts = list(self.catalog.vectors(pack.id, pack.embedding_dim))
        if parts:
            # float16 as stored: build() converts in chunks, never a full float32 copy
            return VectorIndex.build(
                np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            )
        return VectorIndex.create(pack.embedding_dim)

    def _save(self, index: VectorIndex, pack: modelpack.ModelPack | None = None) -> None:
        # Called by the thread that changed catalog and index together, so the index now
        # reflects the catalog's current generation.
        index.generation = self.catalog.generation()
        index.save(self._index_file((pack or self.pack).id))

    def save_index(self) -> None:
        if self.writer and self._index is not None and self._index_dirty:
            self._save(self._index)
            self._index_dirty = False

    def _save_or_defer(self) -> None:
        """:meth:`save_index`, where failing to write (a full disk) is no reason to fail: the
        catalog holds every vector, and the next save, or the next open, writes the index."""
        try:
            self.save_index()
        except OSError as e:
            log.warning("the vector index could not be saved (%s); it is rebuilt next time", e)

    def rebuild_index(self) -> int:
        self._writing("rebuilding the vector index")
        with self._job:
            index = self._rebuild_index()
            self._save(index)
            with self._init:
                self._index = index
                self._index_dirty = False
            return len(index)

    # -- folders ---------------------------------------------------------------------------

    def add_folder(self, path: str | os.PathLike[str]) -> Folder:
        self._writing("adding a folder")
        folder = Path(path).expanduser()
        if not folder.exists():
            raise FolderError(f"{folder}: no such folder")
        if not folder.is_dir():
            raise FolderError(f"{folder}: not a folder")
        folder = folder.resolve()
        for known in self.catalog.folders():
            if folder == known.path:
                return known
            if known.path in folder.parents:
                raise FolderError(f"{folder} is already in the library, inside {known.path}")
            if folder in known.path.parents:
                raise FolderError(
                    f"{folder} contains {known.path}, which is already in the library; "
                    "remove that one first"
                )
        return self.catalog.add_folder(folder)

    def remove_folder(self, path: str | os.PathLike[str]) -> int:
        """Forget a folder and its photos (the files are not touched); returns how many."""
        self._writing("removing a folder")
        folder = Path(path).expanduser()
        rec = self.catalog.folder(folder) or self.catalog.folder(folder.resolve())
        if rec is None:
            raise FolderError(f"{folder} is not in the library")
        with self._job:
            ids = self.catalog.remove_folder(rec.id)
            if ids and self._has_pack():
                self.index.remove(np.array(ids, np.int64))
                self._index_dirty = True
                self.save_index()
        return len(ids)

    def folders(self) -> list[Folder]:
        return self.catalog.folders()

    def _has_pack(self) -> bool:
        try:
            return self.pack is not None
        except NoModelError:
            return False

    # -- indexing --------------------------------------------------------------------------

    def scan(
        self,
        folders: Sequence[Path] | None = None,
        *,
        defer: Callable[[scanner.FileEntry], bool] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> scanner.ScanReport:
        """Diff the library's folders (all, or those of ``folders``) against the disk and record
        what changed; ``defer`` and ``cancelled`` as in :func:`scanner.scan`."""
        self._writing("scanning its folders")
        with self._job:
            chosen = self.catalog.folders()
            if folders is not None:
                wanted = {Path(f) for f in folders}
                chosen = [f for f in chosen if f.path in wanted]
            report = scanner.scan(self.catalog, chosen, defer=defer, cancelled=cancelled)
            # Load (and check) the index before apply() moves the catalog's generation on, or
            # a current index file would look stale and be rebuilt.
            drops = report.count("deleted") or report.count("changed")
            index = self.index if drops and self._has_pack() else None
            stale = scanner.apply(self.catalog, report)
            if stale and index is not None:
                index.remove(np.array(stale, np.int64))
                self._index_dirty = True
                self.save_index()
            return report

    def index_photos(
        self,
        *,
        progress: Callable[[Progress], None] | None = None,
        control: IndexControl | None = None,
        batch_size: int = 32,
        checkpoint_seconds: float = 30.0,
        folders: Sequence[Path] | None = None,
        defer: Callable[[scanner.FileEntry], bool] | None = None,
    ) -> IndexRunReport:
        """Scan every folder (or only ``folders``), then encode what is new or changed.

        The vector index is saved every ``checkpoint_seconds`` and at the end; after a kill,
        the next open rebuilds it from the catalog if it is behind. ``defer`` leaves files out
        of the scan (see :func:`scanner.scan`). Cancelled during the scan, nothing is recorded.
        """
        self._writing("indexing")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        control = control or IndexControl()
        with self._job:
            self._control = control
            try:
                return self._index_photos(
                    progress, control, batch_size, checkpoint_seconds, folders, defer
                )
            finally:
                self._control = None

    def _index_photos(
        self,
        progress: Callable[[Progress], None] | None,
        control: IndexControl,
        batch_size: int,
        checkpoint_seconds: float,
        folders: Sequence[Path] | None = None,
        defer: Callable[[scanner.FileEntry], bool] | None = None,
    ) -> IndexRunReport:
        pack = self.pack
        try:
            scan = self.scan(folders, defer=defer, cancelled=control.cancel_event.is_set)
        except scanner.ScanCancelled:
            return IndexRunReport(0, 0, 0, 0, [], [], IndexReport(cancelled=True))
        index = self.index
        last_save = time.monotonic()

        def on_commit() -> None:
            nonlocal last_save
            self._index_dirty = True
            if time.monotonic() - last_save >= checkpoint_seconds:
                self.save_index()
                last_save = time.monotonic()

        indexer = Indexer(
            self.catalog,
            index,
            self.image_encoder,
            pack.id,
            batch_size=batch_size,
            on_commit=on_commit,
        )
        try:
            run = indexer.run(self.catalog.pending(pack.id), progress=progress, control=control)
            if index.needs_rebuild():  # outgrew its kind (flat → IVF) or its training
                self.rebuild_index()
        finally:
            self.save_index()
        switch = None
        if self.pending_pack and not run.cancelled:
            switch = self._encode_for_switch(progress, control, batch_size, checkpoint_seconds)
        if self.setting("rerank_precompute") and not run.cancelled:
            self.precompute_rerank_tokens(control)
        return IndexRunReport(
            new=scan.count("new"),
            changed=scan.count("changed"),
            moved=scan.count("moved"),
            removed=scan.count("deleted"),
            offline=[f.path for f in scan.offline] + run.offline,
            problems=scan.problems,
            run=run,
            switch=switch,
        )

    def _encode_for_switch(
        self,
        progress: Callable[[Progress], None] | None,
        control: IndexControl,
        batch_size: int,
        checkpoint_seconds: float,
    ) -> SwitchReport:
        """Encode the photos the pending pack has no vector for, into its own vectors and
        index, while the active pack keeps serving searches; swap once none is left."""
        name = str(self.pending_pack)
        try:
            target = modelpack.load(self.paths.models / name)
            encoder = ImageEncoder(target, device=self.device, threads=self.threads)
        except PhotosearchError as e:
            log.warning("cannot switch to the model pack %r: %s", name, e)
            self.catalog.delete_setting("pending_pack")
            return SwitchReport(name, None, False, f"the switch to {name!r} was dropped: {e}")
        index = self._load_index(target)
        last_save = time.monotonic()

        def on_commit() -> None:
            nonlocal last_save
            if time.monotonic() - last_save >= checkpoint_seconds:
                self._save(index, target)
                last_save = time.monotonic()

        indexer = Indexer(
            self.catalog, index, encoder, target.id, batch_size=batch_size, on_commit=on_commit
        )
        run = indexer.run(self.catalog.pending(target.id), progress=progress, control=control)
        if index.needs_rebuild():
            index = self._rebuild_index(target)
        self._save(index, target)
        # Photos this run tried and could not read (permission denied, I/O) do not hold the
        # switch back: they are retried by later passes, as with any pack.
        failed = {str(path) for path, _why in run.errors}
        left = [p for p in self.catalog.pending(target.id) if str(p.path) not in failed]
        if run.cancelled or left:
            if self._index is not None:  # still exact for its pack: spare the next open a rebuild
                self._save(self._index)
            return SwitchReport(name, run, False)
        self.save_index()
        with self._init:  # one step: a query sees the old set or the new one, never a mix
            self.catalog.set_setting("active_pack", name)
            self.catalog.delete_setting("pending_pack")
            reranker = self._reranker
            self._pack, self._index, self._image_encoder = target, index, encoder
            self._text_encoder = None
            self._reranker = None
            self._reranker_problem = None
            self._index_dirty = False
        if reranker is not None:
            reranker.close()
        return SwitchReport(name, run, True)

    def watch(
        self, on_event: Callable[[WatchEvent], None] | None = None, **options: Any
    ) -> Watcher:
        """Start watching the library's folders (see :class:`photosearch.watcher.Watcher`, whose
        keyword ``options`` these are); returns the running watcher. Closing the library stops
        it."""
        from photosearch.watcher import Watcher

        self._writing("watching its folders")
        watcher = Watcher(self, on_event, **options)
        watcher.start()
        return watcher

    # -- what the catalog says, for the faces ------------------------------------------------

    def counts(self, pack_id: str | None = None) -> dict[str, int]:
        """Photos by state (``indexed`` and ``pending`` for ``pack_id``'s vectors, when given)."""
        return self.catalog.counts(pack_id)

    def errors(self, limit: int | None = None) -> list[tuple[Path, str, float]]:
        """Photos that could not be read: path, why, when (newest reason per photo)."""
        return self.catalog.errors(limit)

    def photo_states(self, folder: Folder) -> Counter[str]:
        """How many of ``folder``'s photos are in each state (indexed, failed, …)."""
        return Counter(p.state for p in self.catalog.photos_in(folder.id).values())

    @property
    def chosen_pack(self) -> str | None:
        """The pack chosen in settings (None: the only or first installed one serves)."""
        return self.catalog.get_setting("active_pack")

    # -- search ----------------------------------------------------------------------------

    def search(self, query: Query | str, n: int = 20, **options: Any) -> Results:
        """Run a query (see :mod:`photosearch.search`): text, or a :class:`Query`.

        ``options`` are :class:`Query` fields (``rerank``, ``beta``, ``exclude``, ``like``,
        ``filters``, ``names``) for a text query.
        """
        if isinstance(query, str):
            query = Query(text=query, n=n, **options)
        return self.searcher.search(query)

    def similar(self, image: str | os.PathLike[str], n: int = 20, **options: Any) -> Results:
        """Photos that look like ``image`` (a photo in the library, or any image file)."""
        return self.searcher.search(Query(like=Path(image), n=n, **options))

    # -- reranker (loaded on first use) ------------------------------------------------------

    def setting(self, name: str) -> Any:
        """A user setting's value (see :data:`SETTINGS`), or its default."""
        return self.catalog.get_setting(name, SETTINGS[name].default)

    def set_setting(self, name: str, text: str | None) -> Any:
        """Set a user setting from its text form (None: back to the default); returns the value.

        Raises ``KeyError`` for an unknown name and ``ValueError`` for a bad value.
        """
        spec = SETTINGS[name]
        if text is None:
            self.catalog.delete_setting(name)
        else:
            value = spec.parse(text)
            if value is None:
                self.catalog.delete_setting(name)
            else:
                self.catalog.set_setting(name, value)
        if name.startswith("rerank_cache"):
            with self._init:  # the cache is opened with its size
                if self._reranker is not None:
                    self._reranker.close()
                self._reranker = None
                self._reranker_problem = None
        return self.setting(name)

    def rerank_defaults(self, k: int | None = None, beta: float | None = None) -> tuple[int, float]:
        """The rerank depth and β to use: the given ones, else the library's settings, else
        β from the pack (chosen on its validation data) and the built-in defaults."""
        if k is None:
            k = int(self.setting("rerank_depth"))
        if beta is None:
            beta = self.setting("rerank_beta")
        if beta is None:
            spec = self.pack.manifest.get("reranker") or {}
            beta = spec.get("beta", DEFAULT_BETA)
        return k, float(beta)

    def reranker_or_reason(self) -> tuple[Reranker | None, str | None]:
        """The pack's reranker, or None and why it cannot be used (fast search still works)."""
        with self._init:
            if self._reranker is None and self._reranker_problem is None:
                pack = self.pack
                if pack.reranker is None:
                    self._reranker_problem = (
                        f"the model pack {pack.name!r} has no reranker: showing the fast results"
                    )
                else:
                    try:
                        mib = self.setting("rerank_cache_mb")
                        cache = TokenCache(self.paths.cache / CACHE_FILE, int(mib) << 20)
                        self._reranker = Reranker(
                            pack, device=self.device, threads=self.threads, cache=cache
                        )
                        log.info("reranker loaded on %s", self._reranker.device)
                    except (PhotosearchError, OSError) as e:
                        self._reranker_problem = (
                            f"the reranker could not be loaded ({e}): showing the fast results"
                        )
                        log.warning("%s", self._reranker_problem)
            return self._reranker, self._reranker_problem

    def precompute_rerank_tokens(self, control: IndexControl | None = None) -> int:
        """Compute the reranker's image tokens of indexed photos not yet in its cache (the
        ``rerank_precompute`` setting runs this after indexing); returns how many.

        The newest photos first, and only as many as the cache holds: filling it past its
        bound would only evict the tokens of recent searches.
        """
        reranker, _ = self.reranker_or_reason()
        if reranker is None or reranker.cache is None:
            return 0
        spec = reranker.spec
        per_photo = spec.tokens * spec.token_dim * 2  # float16
        room = max(0, reranker.cache.max_bytes // per_photo)
        ids = self.catalog.filtered_ids(self.pack.id, Filters())[::-1][:room].tolist()
        cancel = control.cancel_event if control is not None else None
        done = 0
        try:
            for start in range(0, len(ids), 256):
                if cancel is not None and cancel.is_set():
                    break
                if control is not None:
                    control.wait_while_paused()
                photos = list(self.catalog.details(ids[start : start + 256]).values())
                done += reranker.precompute([p for p in photos if p.online], cancel)
        except (PhotosearchError, OSError, MemoryError) as e:  # indexing itself succeeded
            log.warning("precomputing reranker tokens stopped: %s", e)
        return done

    # -- health ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"home": str(self.paths.data.parent)}
        try:
            pack = self.pack
            # Loaded and run once: a pack whose checksums match can still hold an encoder
            # that does not load or does not fit its manifest.
            self.text_encoder.encode("a photo")
        except PhotosearchError as e:
            out["model"] = None
            out["model_problem"] = str(e)
            out.update(self.catalog.counts())
        else:
            out["model"] = {
                "name": pack.name,
                "id": pack.id,
                "source": pack.manifest["source"].get("model"),
            }
            out.update(self.catalog.counts(pack.id))
            out["execution_provider"] = self.text_encoder.providers[0]
            out["device"] = self.text_encoder.device
        switching = self.pending_pack
        if switching:
            try:
                target = modelpack.described(self.paths.models / switching)
                counts = self.catalog.counts(target.id)
                out["switching_to"] = {
                    "name": switching,
                    "encoded": counts["indexed"],
                    "pending": counts["pending"],
                }
            except PackError as e:
                out["switching_to"] = {"name": switching, "problem": str(e)}
        out["folders"] = [
            {"path": str(f.path), "state": f.state, "last_scan": f.last_scan}
            for f in self.catalog.folders()
        ]
        out["error_list"] = [{"path": str(p), "reason": r} for p, r, _ in self.catalog.errors()]
        return out

    def doctor(self, *, repair: bool = False) -> list[str]:
        """Check catalog ↔ index ↔ disk; returns the problems found (after repair, if asked).

        Beside a writer (a reader's check while indexing runs elsewhere) an index file that
        lags the catalog is expected: the writer saves it at checkpoints, and any reader
        serves the committed vectors meanwhile."""
        if repair:
            self._writing("doctor --repair")
        problems = self.catalog.integrity_check()
        if self._has_pack():
            want = self.catalog.vector_ids(self.pack.id)
            try:
                on_disk = VectorIndex.load(self.index_path, dim=self.pack.embedding_dim)
                lagging = on_disk.generation < self.catalog.generation()
                if not on_disk.matches(want) and not (lagging and self.writer_elsewhere()):
                    problems.append(
                        f"vector index holds {len(on_disk)} vectors, the catalog {len(want)}"
                    )
            except IndexFileError as e:
                problems.append(f"vector index: {e}")
        missing = [
            f"{p.path}"
            for f in self.catalog.folders()
            if f.state == "ok"
            for p in self.catalog.photos_in(f.id).values()
            if not p.path.exists()
        ]
        if missing:
            problems.append(f"{len(missing)} photos are gone from disk (e.g. {missing[0]})")
        if repair and problems:
            if self._has_pack():
                self.rebuild_index()
            if missing:
                self.scan()
                self.save_index()
            return self.doctor(repair=False)
        return problems
