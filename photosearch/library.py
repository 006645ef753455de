"""The library facade: the one API the command line and the GUI use.

A library is a data directory (catalog, vector index, lock) plus installed model packs. One
process at a time may change it (a *writer*: indexing, watching, folder and pack changes); a
second writer gets :class:`LibraryLockedError`. Any number of *readers* (``writer=False``:
search, similar, status, doctor's checks) may open it meanwhile: SQLite's WAL gives them the
catalog as of its last commit, and they serve the vector index of that same state, reloading it
when the writer commits more.

What it is made of, each in its own module: the writer's lock (:mod:`photosearch.lock`), the
installed packs (:mod:`photosearch.packs`), the active models and the index files
(:mod:`photosearch.active`), indexing runs (:mod:`photosearch.runs`), settings
(:mod:`photosearch.settings`). This class holds them together and keeps its promises: one
mutating job at a time, and a pack switch seen by a query either whole or not at all.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from photosearch import config, imaging, modelpack, scanner
from photosearch.active import ActiveModels, IndexStore
from photosearch.catalog import Catalog, Filters, Folder
from photosearch.encoders import ImageEncoder, TextEncoder
from photosearch.errors import PackError, PhotosearchError
from photosearch.indexer import IndexControl, Progress
from photosearch.lock import DataDirLock, LibraryLockedError
from photosearch.packs import NoModelError, PackShelf
from photosearch.rerank import CACHE_FILE, Reranker, TokenCache
from photosearch.runs import IndexRunReport, RunOptions, SwitchReport, encode_for, left_to_switch
from photosearch.search import DEFAULT_BETA, Query, Results, Searcher
from photosearch.settings import SETTINGS
from photosearch.vectors import IndexFileError, VectorIndex

if TYPE_CHECKING:
    from photosearch.watcher import Watcher, WatchEvent

__all__ = [
    "SETTINGS",
    "FolderError",
    "IndexRunReport",
    "Library",
    "LibraryLockedError",
    "NoModelError",
    "ReadOnlyLibraryError",
    "SwitchReport",
]

log = logging.getLogger(__name__)

CATALOG_FILE = "catalog.sqlite3"


class ReadOnlyLibraryError(PhotosearchError):
    """A change was asked of a library opened for reading (``writer=False``)."""


class FolderError(PhotosearchError):
    """A folder cannot be added to or removed from the library."""


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
        self.packs = PackShelf(self.paths.models, self.catalog)
        self.store = IndexStore(self.catalog, self.paths.data, writer=writer)
        # _job: one mutating job at a time (index, scan, remove, switch pack); searches run
        # beside it. _swap: the active models are looked up, made and replaced under it.
        self._job = threading.RLock()
        self._swap = threading.RLock()
        self._active: ActiveModels | None = None
        self._index_dirty = False  # the active index holds commits its file does not
        self._control: IndexControl | None = None
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
            self._publish(None)
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
        return self.packs.installed()

    def pack_folder(self, name: str) -> Path:
        """Where the installed pack ``name`` lives (whether or not it is there)."""
        return self.packs.folder_of(name)

    @property
    def pack(self) -> modelpack.ModelPack:
        """The active pack (chosen in settings, else the only or first installed one)."""
        return self._current().pack

    @property
    def chosen_pack(self) -> str | None:
        """The pack chosen in settings (None: the only or first installed one serves)."""
        return self.packs.chosen

    @property
    def pending_pack(self) -> str | None:
        """The installed pack the library is switching to (see :meth:`use_pack`), if any."""
        return self.packs.pending

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
        src, dest = self.packs.checked_source(Path(source), replace=replace)
        with self._job:
            active = self._active
            if (active is not None and active.pack.path == dest) or self.pending_pack == dest.name:
                self._publish(None)  # replacing what is in use
            pack = self.packs.install(src, dest, move=move)
        if activate or (activate is None and self.packs.chosen is None):
            self.use_pack(dest.name)
        return pack

    def use_pack(self, name: str) -> bool:
        """Make the installed pack ``name`` the active one; returns True when it serves searches
        from now on.

        When photos are already encoded with the active pack and not yet with ``name``, the
        switch is pending instead (False): searches keep using the active pack's vectors while
        :meth:`index_photos` encodes every photo with ``name``, and the swap happens once it has
        encoded them all. Choosing the active pack again cancels a pending switch."""
        self._writing("choosing the model pack")
        new = modelpack.load(self.paths.models / name)  # refuse a broken pack before switching
        with self._job:
            try:
                current = self.pack
            except (NoModelError, PackError):  # nothing (usable) serves now: switch at once
                current = None
            if current is not None and current.path.name == name:
                self.packs.choose(name)
                return True
            if (
                current is not None
                and self.catalog.counts(current.id)["indexed"] > 0
                and self.catalog.counts(new.id)["pending"] > 0
            ):
                self.packs.set_pending(name)
                return False
            self.save_index()
            self.packs.choose(name)
            self._publish(None)
            return True

    def remove_pack(self, name: str, *, force: bool = False) -> None:
        """Uninstall the pack ``name`` and forget the vectors it made.

        The active pack is refused (:class:`PackError` saying what to do) unless ``force``:
        then search has no model until another pack is chosen (the first installed one is).
        The folder is renamed away first, so a crash never leaves half a pack that looks
        installed."""
        self._writing("removing a model pack")
        with self._job:
            self.packs.check_removable(name, force=force)
            was_active = name == self.packs.active_name()
            pack_id = self.packs.uninstall(name)
            if was_active:
                self._publish(None)
            if pack_id is not None:
                self.catalog.drop_vectors(pack_id)
                self.store.remove(pack_id)

    # -- the active models (loaded on first use, replaced as one) ---------------------------

    def models(self) -> ActiveModels:
        """The active pack with its encoders, vector index and reranker, taken together: a
        query uses one consistent set even if a pack switch swaps them while it runs."""
        with self._swap:
            if not self.writer:
                self._follow_writer()
            return self._current()

    def _current(self) -> ActiveModels:
        with self._swap:
            if self._active is None:
                self._active = self._assemble(self.packs.load_active())
            return self._active

    def _assemble(
        self,
        pack: modelpack.ModelPack,
        image_encoder: ImageEncoder | None = None,
        index: VectorIndex | None = None,
    ) -> ActiveModels:
        return ActiveModels.build(
            pack,
            device=self.device,
            threads=self.threads,
            load_index=self._load_active_index,
            open_reranker=self._open_reranker,
            image_encoder=image_encoder,
            index=index,
        )

    def _publish(self, models: ActiveModels | None) -> None:
        """Replace the active set in one step (None: load it again on next use); the old
        set's reranker is closed unless the new set shares it."""
        with self._swap:
            old, self._active = self._active, models
            if models is None or old is None or models.pack is not old.pack:
                self._index_dirty = False
        if old is not None and (models is None or models._reranker is not old._reranker):
            old.close()

    def _forget_models(self) -> None:
        self._publish(None)

    def _follow_writer(self) -> None:
        """A reader's view keeps up with a writer elsewhere: a pack switch it completed drops
        the models, vectors it committed since the index was loaded reload the index."""
        active = self._active
        if active is None:
            return
        if self.packs.chosen not in (None, active.pack.path.name):
            self._publish(None)
            return
        loaded = active.loaded_index
        if loaded is not None and loaded.generation != self.catalog.generation():
            self._publish(active.with_index(None))

    def _load_active_index(self, pack: modelpack.ModelPack) -> VectorIndex:
        index, saved = self.store.load(pack)
        if not saved:
            self._index_dirty = True
        return index

    def _open_reranker(self, pack: modelpack.ModelPack) -> Reranker:
        cache = TokenCache(
            self.paths.cache / CACHE_FILE, int(self.setting("rerank_cache_mb")) << 20
        )
        return Reranker(pack, device=self.device, threads=self.threads, cache=cache)

    def image_encoder_for(self, pack: modelpack.ModelPack) -> ImageEncoder:
        """The image encoder of ``pack``: the loaded one when it is the active pack."""
        active = self._active
        if active is not None and active.pack is pack:
            return active.image_encoder
        return ImageEncoder(pack, device=self.device, threads=self.threads)

    @property
    def image_encoder(self) -> ImageEncoder:
        return self._current().image_encoder

    @property
    def text_encoder(self) -> TextEncoder:
        return self._current().text_encoder

    @property
    def index_path(self) -> Path:
        return self.store.path(self.pack.id)

    @property
    def index(self) -> VectorIndex:
        """The vector index, checked against the catalog (count and ids) and rebuilt from it
        when they differ: after a crash, a copy from elsewhere, or a damaged file. The ids alone
        are not enough (a photo re-encoded keeps its id), so the index also records the
        catalog's vector generation it reflects."""
        return self._current().index

    def reranker_or_reason(self) -> tuple[Reranker | None, str | None]:
        """The pack's reranker, or None and why it cannot be used (fast search still works)."""
        return self._current().reranker_or_reason()

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

    # -- saving the index ------------------------------------------------------------------

    def save_index(self) -> None:
        """Write the active index if it holds commits its file does not (a writer only)."""
        active = self._active
        index = active.loaded_index if active is not None else None
        if self.writer and index is not None and self._index_dirty:
            self.store.save(index, active.pack)  # type: ignore[union-attr]
            self._index_dirty = False

    def _changed_index(self) -> None:
        """The active index was changed in memory (and the catalog with it)."""
        self._index_dirty = True

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
            active = self._current()
            index = self.store.rebuild(active.pack)
            self.store.save(index, active.pack)
            self._publish(active.with_index(index))
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
                self._changed_index()
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
                self._changed_index()
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
        options = RunOptions(progress, control or IndexControl(), batch_size, checkpoint_seconds)
        with self._job:
            self._control = options.control
            try:
                return self._index_photos(options, folders, defer)
            finally:
                self._control = None

    def _index_photos(
        self,
        options: RunOptions,
        folders: Sequence[Path] | None,
        defer: Callable[[scanner.FileEntry], bool] | None,
    ) -> IndexRunReport:
        active = self._current()
        cancel = options.control.cancel_event
        try:
            scan = self.scan(folders, defer=defer, cancelled=cancel.is_set)
        except scanner.ScanCancelled:
            return IndexRunReport.cancelled_scan()
        index = self.index

        try:
            run = encode_for(
                self.catalog,
                active.pack,
                index,
                active.image_encoder,
                options,
                on_commit=self._changed_index,
                checkpoint=self.save_index,
            )
            if index.needs_rebuild():  # outgrew its kind (flat → IVF) or its training
                self.rebuild_index()
        finally:
            self.save_index()
        switch = None
        if self.pending_pack and not run.cancelled:
            switch = self._encode_for_switch(options)
        if self.setting("rerank_precompute") and not run.cancelled:
            self.precompute_rerank_tokens(options.control)
        return IndexRunReport.of(scan, run, switch)

    def _encode_for_switch(self, options: RunOptions) -> SwitchReport:
        """Encode the photos the pending pack has no vector for, into its own vectors and
        index, while the active pack keeps serving searches; swap once none is left."""
        name = str(self.pending_pack)
        try:
            target = modelpack.load(self.paths.models / name)
            encoder = ImageEncoder(target, device=self.device, threads=self.threads)
        except PhotosearchError as e:
            log.warning("cannot switch to the model pack %r: %s", name, e)
            self.packs.set_pending(None)
            return SwitchReport(name, None, False, f"the switch to {name!r} was dropped: {e}")
        index, _ = self.store.load(target)
        run = encode_for(
            self.catalog,
            target,
            index,
            encoder,
            options,
            checkpoint=lambda: self.store.save(index, target),
        )
        if index.needs_rebuild():
            index = self.store.rebuild(target)
        self.store.save(index, target)
        if run.cancelled or left_to_switch(self.catalog, target, run):
            active = self._active
            if active is not None and active.loaded_index is not None:
                # still exact for its pack: spare the next open a rebuild
                self.store.save(active.loaded_index, active.pack)
            return SwitchReport(name, run, False)
        self.save_index()
        with self._swap:  # one step: a query sees the old set or the new one, never a mix
            self.packs.choose(name)
            self._publish(self._assemble(target, image_encoder=encoder, index=index))
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
        with self._swap:  # the library keeps its watchers, to stop them when it closes
            self._watchers = [w for w in self._watchers if w.running] + [watcher]
        return watcher

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

    # -- settings --------------------------------------------------------------------------

    def setting(self, name: str) -> Any:
        """A user setting's value (see :data:`SETTINGS`), or its default."""
        return self.catalog.get_setting(name, SETTINGS[name].default)

    def set_setting(self, name: str, text: str | None) -> Any:
        """Set a user setting from its text form (None: back to the default); returns the value.

        Raises ``KeyError`` for an unknown name and ``ValueError`` for a bad value.
        """
        spec = SETTINGS[name]
        value = None if text is None else spec.parse(text)
        if value is None:
            self.catalog.delete_setting(name)
        else:
            self.catalog.set_setting(name, value)
        if name.startswith("rerank_cache"):
            with self._swap:  # the cache is opened with its size
                if self._active is not None:
                    self._active = self._active.with_new_reranker()
        return self.setting(name)

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
        if self.pending_pack:
            out["switching_to"] = self._switch_status(self.pending_pack)
        out["folders"] = [
            {"path": str(f.path), "state": f.state, "last_scan": f.last_scan}
            for f in self.catalog.folders()
        ]
        out["error_list"] = [{"path": str(p), "reason": r} for p, r, _ in self.catalog.errors()]
        return out

    def _switch_status(self, name: str) -> dict[str, Any]:
        try:
            target = modelpack.described(self.paths.models / name)
        except PackError as e:
            return {"name": name, "problem": str(e)}
        counts = self.catalog.counts(target.id)
        return {"name": name, "encoded": counts["indexed"], "pending": counts["pending"]}

    def doctor(self, *, repair: bool = False) -> list[str]:
        """Check catalog ↔ index ↔ disk; returns the problems found (after repair, if asked).

        Beside a writer (a reader's check while indexing runs elsewhere) an index file that
        lags the catalog is expected: the writer saves it at checkpoints, and any reader
        serves the committed vectors meanwhile."""
        if repair:
            self._writing("doctor --repair")
        problems = self.catalog.integrity_check()
        if self._has_pack():
            problems += self._index_file_problems()
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

    def _index_file_problems(self) -> list[str]:
        want = self.catalog.vector_ids(self.pack.id)
        try:
            on_disk = VectorIndex.load(self.index_path, dim=self.pack.embedding_dim)
        except IndexFileError as e:
            return [f"vector index: {e}"]
        lagging = on_disk.generation < self.catalog.generation()
        if not on_disk.matches(want) and not (lagging and self.writer_elsewhere()):
            return [f"vector index holds {len(on_disk)} vectors, the catalog {len(want)}"]
        return []
