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
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from photosearch import config, health, imaging, modelpack, scanner
from photosearch.active import ActiveModels, IndexStore, ModelSlot
from photosearch.catalog import Catalog, Folder
from photosearch.encoders import (
    ImageEncoder,
    TextEncoder,
    forget_saved_graphs,
    wait_for_saved_graphs,
)
from photosearch.errors import PackError, PhotosearchError
from photosearch.indexer import IndexControl, Progress
from photosearch.lock import DataDirLock, LibraryLockedError
from photosearch.packs import NoModelError, PackShelf
from photosearch.query_socket import QueryServer
from photosearch.rerank import CACHE_FILE, Reranker, TokenCache
from photosearch.runs import (
    IndexRunReport,
    RunOptions,
    SwitchReport,
    encode_for,
    encode_for_switch,
    precompute_tokens,
)
from photosearch.search import DEFAULT_BETA, Query, Results, Searcher, query_from_json
from photosearch.settings import SETTINGS
from photosearch.vectors import VectorIndex

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
SAVED_GRAPHS = "onnx"  # under the cache folder: optimised copies of packs' graphs


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
        self.active = ModelSlot(
            self.store,
            self.packs.load_active,
            self._open_reranker,
            device=device,
            threads=threads,
            saved_graphs=self.paths.cache / SAVED_GRAPHS,
        )
        # One mutating job at a time (index, scan, remove, switch pack); searches run beside it.
        self._job = threading.RLock()
        self._control: IndexControl | None = None
        self._watchers: list[Watcher] = []
        self._watchers_lock = threading.Lock()
        self._server: QueryServer | None = None
        self.searcher = Searcher(self)

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop watchers and a running indexing job (they keep what they committed), save,
        release the lock."""
        self.stop_serving()
        for watcher in list(self._watchers):
            watcher.stop()
        if self._control is not None:
            self._control.cancel()
        try:
            with self._job:
                self.active.save_or_defer()
            wait_for_saved_graphs(timeout=60)  # optimised graph copies being written (~1 s)
        finally:
            self.active.publish(None)
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
        return self.active.current().pack

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
            active = self.active.loaded
            if (active is not None and active.pack.path == dest) or self.pending_pack == dest.name:
                self.active.publish(None)  # replacing what is in use
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
            self.active.publish(None)
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
            pack_id, gone = self.packs.uninstall(name)
            if was_active:
                self.active.publish(None)
            if pack_id is not None:
                self.catalog.drop_vectors(pack_id)
                self.store.remove(pack_id)
            shutil.rmtree(gone, ignore_errors=True)
            forget_saved_graphs(self.paths.cache / SAVED_GRAPHS, name)

    # -- the active models (loaded on first use, replaced as one: see ModelSlot) -----------

    def models(self) -> ActiveModels:
        """The active pack with its encoders, vector index and reranker, taken together: a
        query uses one consistent set even if a pack switch swaps them while it runs."""
        if not self.writer:
            self.active.follow(self.packs.chosen, self.catalog.generation())
        return self.active.current()

    def _open_reranker(self, pack: modelpack.ModelPack) -> Reranker:
        cache = TokenCache(
            self.paths.cache / CACHE_FILE, int(self.setting("rerank_cache_mb")) << 20
        )
        return Reranker(pack, device=self.device, threads=self.threads, cache=cache)

    @property
    def image_encoder(self) -> ImageEncoder:
        return self.active.current().image_encoder

    @property
    def text_encoder(self) -> TextEncoder:
        return self.active.current().text_encoder

    @property
    def index_path(self) -> Path:
        return self.store.path(self.pack.id)

    @property
    def index(self) -> VectorIndex:
        """The vector index, checked against the catalog (count and ids) and rebuilt from it
        when they differ: after a crash, a copy from elsewhere, or a damaged file. The ids alone
        are not enough (a photo re-encoded keeps its id), so the index also records the
        catalog's vector generation it reflects."""
        return self.active.current().index

    def reranker_or_reason(self) -> tuple[Reranker | None, str | None]:
        """The pack's reranker, or None and why it cannot be used (fast search still works)."""
        return self.active.current().reranker_or_reason()

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

    def match_threshold(self) -> float | None:
        """The relevance cut-off the user set (None: the pack's calibrated one)."""
        value = self.setting("match_threshold")
        return None if value is None else float(value)

    # -- saving the index ------------------------------------------------------------------

    def save_index(self) -> None:
        """Write the active index if it holds commits its file does not (a writer only)."""
        self.active.save()

    def rebuild_index(self) -> int:
        self._writing("rebuilding the vector index")
        with self._job:
            active = self.active.current()
            index = self.store.rebuild(active.pack)
            self.store.save(index, active.pack)
            self.active.publish(active.with_index(index), saved=True)
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
                self.active.changed()
                self.save_index()
        return len(ids)

    def folders(self) -> list[Folder]:
        return self.catalog.folders()

    def _has_pack(self) -> bool:
        return health.has_pack(self)

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
                self.active.changed()
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
        active = self.active.current()
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
                lambda: active.image_encoder,  # opened only when a photo needs encoding
                options,
                on_commit=self.active.changed,
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
        run, index, done = encode_for_switch(self.catalog, self.store, target, encoder, options)
        if not done:
            active = self.active.loaded
            if active is not None and active.loaded_index is not None:
                # still exact for its pack: spare the next open a rebuild
                self.store.save(active.loaded_index, active.pack)
            return SwitchReport(name, run, False)
        self.save_index()
        with self.active.lock:  # one step: a query sees the old set or the new one, never a mix
            self.packs.choose(name)
            self.active.publish(self.active.assemble(target, image_encoder=encoder, index=index))
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
        # Known to the library before its thread starts: a Ctrl-C landing in between must not
        # leave a watcher running that close() does not stop.
        with self._watchers_lock:
            self._watchers = [w for w in self._watchers if not w.stopped] + [watcher]
        try:
            watcher.start()
        except BaseException:
            with self._watchers_lock:
                self._watchers.remove(watcher)
            raise
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

    # -- answering other processes' queries -----------------------------------------------

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """A request from another process (see :meth:`serve_queries`): ``{"op": "search"}`` and
        a query as :func:`~photosearch.search.query_from_json` reads it, answered with
        ``{"results": Results.to_json()}``, or ``{"error": why}`` for a query that cannot run
        (the words the asker would print itself), or ``{"declined": why}`` for one the asker
        should answer in its own process (another device asked for, an unknown request)."""
        if request.get("op") != "search":
            return {"declined": f"unknown request {request.get('op')!r}"}
        if request.get("device", "auto") not in ("auto", self.device):
            return {"declined": f"this process runs its models with device {self.device!r}"}
        if request.get("language") != config.query_language():  # NLLB-CLIP is told it
            return {"declined": "the asker types in another language than this process"}
        try:
            return {"results": self.searcher.search(query_from_json(request)).to_json()}
        except PhotosearchError as e:
            return {"error": str(e)}

    def serve_queries(self) -> bool:
        """Answer other processes' searches (``photosearch search`` in a terminal) over the
        data directory's owner-only socket until :meth:`stop_serving` or :meth:`close`; they
        then skip loading the models themselves. False where no socket can be (no Unix
        sockets, a data directory path too long for one, another process already serving)."""
        if self._server is None:
            self._server = QueryServer.start(self.paths.data, self.answer)
        return self._server is not None

    def stop_serving(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

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
            self.active.reopen_reranker()  # the cache is opened with its size
        return self.setting(name)

    def precompute_rerank_tokens(self, control: IndexControl | None = None) -> int:
        """Compute the reranker's image tokens of indexed photos not yet in its cache (the
        ``rerank_precompute`` setting runs this after indexing; see
        :func:`runs.precompute_tokens`); returns how many."""
        reranker, _ = self.reranker_or_reason()
        if reranker is None:
            return 0
        return precompute_tokens(
            reranker, self.catalog, self.pack.id, control, user_idle=self.searcher.idle_seconds
        )

    def record_view(self, photo_id: int) -> None:
        """The user opened this photo (the window's viewer): the reranker's background token
        pass does the most viewed photos first."""
        self._writing("recording a view")
        self.catalog.record_view(photo_id)

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
        """The library at a glance (see :func:`health.status`)."""
        return health.status(self)

    def doctor(self, *, repair: bool = False) -> list[str]:
        """Check catalog ↔ index ↔ disk (see :func:`health.doctor`); returns the problems found
        (after repair, if asked)."""
        if repair:
            self._writing("doctor --repair")
        return health.doctor(self, repair=repair)
