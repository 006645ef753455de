"""Watched folders: keep the catalog in step with the disk while the library is open.

watchdog events only say which library folder changed and when. A worker thread waits until a
folder has been quiet for a moment (or busy for too long), then reconciles it with the same
scan and indexer as ``photosearch index``: moves keep their vectors, an unplugged drive is only
marked offline, and files still being written are left for a later pass. Folders that cannot be
watched (inotify limits, permissions, network file systems) are polled instead, and every
folder is rescanned now and then, because watchers miss events.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from watchdog import events as wd_events
from watchdog.observers import Observer

from photosearch.errors import PhotosearchError
from photosearch.imaging import SUPPORTED_EXTENSIONS
from photosearch.indexer import IndexControl, Progress
from photosearch.scanner import FileEntry, is_hidden
from photosearch.watch_fs import Watches, WriteLog, describe_watch_error

try:  # Linux only: the one observer that reports when a file written to is closed
    from watchdog.observers.inotify import InotifyObserver
except ImportError:  # pragma: no cover - other platforms
    InotifyObserver = None  # type: ignore[assignment,misc]

from photosearch.watch_events import (
    FolderOffline,
    FolderOnline,
    IndexingFailed,
    PhotosIndexed,
    Ready,
    WatchEvent,
    WatchFallback,
    WatchStarted,
)

if TYPE_CHECKING:
    from photosearch.catalog import Folder
    from photosearch.runs import IndexRunReport

__all__ = [
    "FolderOffline",
    "FolderOnline",
    "IndexingFailed",
    "PhotosIndexed",
    "Ready",
    "WatchEvent",
    "WatchFallback",
    "WatchStarted",
    "WatchedLibrary",
    "Watcher",
]

log = logging.getLogger(__name__)


class _Handler(wd_events.FileSystemEventHandler):
    def __init__(self, watcher: Watcher):
        self._watcher = watcher

    def on_any_event(self, event: wd_events.FileSystemEvent) -> None:
        try:
            self._watcher._on_fs_event(event)
        except Exception:  # an event handler must never stop the observer
            log.exception("watcher: cannot handle %r", event)


@dataclass
class _Dirty:
    """A library folder with changes not yet reconciled."""

    first: float
    last: float
    not_before: float = 0.0


_STOP = object()  # the worker's "no more work"


# -- the watcher -------------------------------------------------------------------------------


class WatchedLibrary(Protocol):
    """What a watcher needs of a library (:class:`photosearch.library.Library` is one)."""

    def setting(self, name: str) -> Any: ...

    def folders(self) -> list[Folder]: ...

    def counts(self, pack_id: str | None = None) -> dict[str, int]: ...

    def index_photos(
        self,
        *,
        progress: Callable[[Progress], None] | None = None,
        control: IndexControl | None = None,
        batch_size: int = 32,
        folders: Sequence[Path] | None = None,
        defer: Callable[[FileEntry], bool] | None = None,
    ) -> IndexRunReport: ...


class Watcher:
    """Follow the library's folders and index what changes, until :meth:`stop`.

    ``on_event`` receives :class:`WatchEvent` objects on the watcher's thread (a GUI forwards
    them to its own thread); ``progress`` receives the indexer's progress during each pass.
    :meth:`start` reconciles every folder first, so changes made while the library was closed
    are found. Use :meth:`Library.watch` to get one started and stopped with the library.

    Timings, in seconds: a folder is reconciled once its events have been quiet for
    ``debounce`` (keep it above watchdog's 0.5 s wait for the other half of a move, so a photo
    moved between two library folders is seen leaving one and arriving in the other in one
    pass), or ``max_delay`` after its first event under a steady stream. ``settle`` and
    ``open_write_timeout``: see :meth:`_defer`. ``poll_interval``: how often folders that
    cannot be watched live, and offline ones, are checked; ``rescan_interval``: how often
    every folder is reconciled (None: the library's settings ``watch_poll_seconds`` and
    ``watch_rescan_seconds``).
    """

    def __init__(
        self,
        library: WatchedLibrary,
        on_event: Callable[[WatchEvent], None] | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        debounce: float = 1.0,
        max_delay: float = 10.0,
        settle: float = 2.0,
        open_write_timeout: float = 60.0,
        poll_interval: float | None = None,
        rescan_interval: float | None = None,
        batch_size: int = 32,
    ):
        self.library = library
        self.on_event = on_event
        self.progress = progress
        self.debounce = debounce
        self.max_delay = max(max_delay, debounce)
        self.poll_interval = float(
            poll_interval if poll_interval is not None else library.setting("watch_poll_seconds")
        )
        self.rescan_interval = float(
            rescan_interval
            if rescan_interval is not None
            else library.setting("watch_rescan_seconds")
        )
        self.batch_size = batch_size
        #: reconciling passes run so far (each one scan of some folders, then indexing)
        self.runs = 0

        self._cond = threading.Condition()
        self._stopping = threading.Event()
        # Set by the worker as it ends. Waiting on it, not on Thread.join: a KeyboardInterrupt
        # that lands inside join() makes CPython (before 3.12) release the thread's state
        # lock and take a running thread for finished, so the library would close under it.
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._handler = _Handler(self)
        self._watches = Watches(None, self._handler, None)
        self._control: IndexControl | None = None
        self._paused = False
        # Shared with the observer's threads (under _cond):
        self._roots: tuple[tuple[str, Path], ...] = ()
        self._dirty: dict[Path, _Dirty] = {}
        self._writes = WriteLog(settle=settle, open_write_timeout=open_write_timeout)
        self._rewatch: set[Path] = set()
        self._next_poll = 0.0
        self._next_rescan = 0.0
        # The worker's own:
        self._polled: dict[Path, str] = {}
        self._offline: set[Path] = set()
        self._states: dict[Path, str] = {}
        self._deferred: list[Path] = []
        self._ready = False

    # -- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this watcher was already started")
        try:
            observer = Observer()
            observer.start()
        except Exception as e:  # no inotify instance left, an unsupported platform, …
            reason = describe_watch_error(e)
            log.warning("cannot watch folders for changes: %s", reason)
            self._watches = Watches(None, self._handler, reason)
        else:
            self._watches = Watches(observer, self._handler, None)
            self._writes.close_events = InotifyObserver is not None and isinstance(
                observer, InotifyObserver
            )
        self._thread = threading.Thread(target=self._run, name="photosearch-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; a pass in progress stops after its current batch (what it committed
        is kept). Waits for the watcher's threads to end."""
        self._stopping.set()
        with self._cond:
            control = self._control
            self._cond.notify_all()
        if control is not None:
            control.cancel()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            self._done.wait()
            thread.join()
        observer, self._watches.observer = self._watches.observer, None
        if observer is not None:
            observer.stop()
            observer.join()

    def pause(self) -> None:
        """Pause indexing: the pass in progress waits after its current batch, and later
        passes start paused, until :meth:`resume` (stopping still works)."""
        with self._cond:
            self._paused = True
            if self._control is not None:
                self._control.pause()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            if self._control is not None:
                self._control.resume()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called (its threads may still be ending)."""
        return self._stopping.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the watcher has stopped, at most ``timeout`` seconds; True if it has."""
        return self._thread is None or self._done.wait(timeout)

    def refresh(self) -> None:
        """Reconcile every folder now (after folders were added to or removed from the
        library, or when the user asks)."""
        with self._cond:
            self._next_rescan = 0.0
            self._cond.notify_all()

    def folder_modes(self) -> dict[Path, str]:
        """How each library folder is followed: ``live``, ``polled`` (with the reason in
        :class:`WatchFallback`) or ``offline``."""
        with self._cond:
            roots = [p for _, p in self._roots]
            out = {}
            for p in roots:
                if p in self._offline:
                    out[p] = "offline"
                elif p in self._watches:
                    out[p] = "live"
                else:
                    out[p] = "polled"
            return out

    # -- events from the observer's threads -----------------------------------------------

    def _root_of(self, path: str) -> tuple[str, Path] | None:
        for text, root in self._roots:
            if path == text or path.startswith(text.rstrip(os.sep) + os.sep):
                return text, root
        return None

    @staticmethod
    def _relevant(path: str, root: str, is_directory: bool) -> bool:
        rel = path[len(root.rstrip(os.sep)) + 1 :]
        if any(is_hidden(part) for part in rel.split(os.sep)):
            return False
        return is_directory or os.path.splitext(path)[1].lower() in SUPPORTED_EXTENSIONS

    def _on_fs_event(self, event: wd_events.FileSystemEvent) -> None:
        now = time.monotonic()
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if getattr(event, "dest_path", "") else ""
        with self._cond:
            touched: list[str] = []
            for path in (src, dest) if dest else (src,):
                found = self._root_of(path)
                if found is None:
                    continue
                text, root = found
                if path == text.rstrip(os.sep) or path == text:
                    if not event.is_directory:
                        continue
                    self._rewatch.add(root)  # the folder itself came, went or was renamed
                elif not self._relevant(path, text, event.is_directory):
                    continue
                touched.append(path)
                dirty = self._dirty.get(root)
                if dirty is None:
                    self._dirty[root] = _Dirty(first=now, last=now)
                else:
                    dirty.last = now
            if not touched:
                return
            if not event.is_directory:
                self._writes.record(kind, src, dest, now)
            self._cond.notify_all()

    # -- deciding whether a file is complete (called by the scan) -------------------------

    def _defer(self, entry: FileEntry) -> bool:
        """True while a new or changed file may still be being written (the scan leaves it
        for a later pass): see :meth:`WriteLog.incomplete`."""
        try:
            st = os.stat(entry.path)
        except OSError:
            return False  # gone or unreadable: the scan and the indexer say what is wrong
        with self._cond:
            if not self._writes.incomplete(entry.path, st):
                return False
        self._deferred.append(entry.path)
        return True

    # -- the worker ------------------------------------------------------------------------

    def _emit(self, event: WatchEvent) -> None:
        log.info("%s", event.message)
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("watcher: the event callback failed on %r", event)

    def _run(self) -> None:
        with self._cond:
            now = time.monotonic()
            self._next_rescan = now + self.rescan_interval
            self._next_poll = now + self.poll_interval
        try:
            job: Any = None  # the first pass: every folder
            while job is not _STOP and not self._stopping.is_set():
                self._reconcile(job)
                job = self._next_job()
        except Exception:  # a bug, not a condition: say so, keep the process alive
            log.exception("the folder watcher stopped")
            self._emit(IndexingFailed("the folder watcher stopped unexpectedly", 0.0))
        finally:
            self._done.set()

    def _next_job(self) -> Any:
        with self._cond:
            while not self._stopping.is_set():
                now = time.monotonic()
                if now >= self._next_rescan:
                    self._dirty.clear()
                    self._next_rescan = now + self.rescan_interval
                    self._next_poll = now + self.poll_interval
                    return None
                due = {
                    root
                    for root, d in self._dirty.items()
                    if now >= d.not_before
                    and (now - d.last >= self.debounce or now - d.first >= self.max_delay)
                }
                if now >= self._next_poll:
                    self._next_poll = now + self.poll_interval
                    due |= set(self._polled) | self._offline | self._dead_watches()
                if due:
                    # Every folder with news goes along: a file moved between two library
                    # folders must be seen leaving one and arriving in the other in one pass.
                    due |= {root for root, d in self._dirty.items() if now >= d.not_before}
                    for root in due:
                        self._dirty.pop(root, None)
                    return sorted(due)
                wake = min(
                    [self._next_rescan, self._next_poll]
                    + [
                        max(d.not_before, min(d.last + self.debounce, d.first + self.max_delay))
                        for d in self._dirty.values()
                    ]
                )
                self._cond.wait(max(0.01, wake - now))
        return _STOP

    def _dead_watches(self) -> set[Path]:
        """Folders whose live watch stopped on its own; they are watched anew."""
        dead = self._watches.dead()
        self._rewatch |= dead
        return dead

    def _redirty(self, roots: Iterable[Path], delay: float) -> None:
        now = time.monotonic()
        with self._cond:
            for root in roots:
                d = self._dirty.setdefault(root, _Dirty(first=now, last=now))
                d.not_before = max(d.not_before, now + delay)

    def _reconcile(self, folders: list[Path] | None) -> None:
        """One pass over ``folders`` (None: all of them): scan, index, report."""
        fresh = self._sync_watches(retry=folders is None)
        if folders is not None:
            folders = sorted(set(folders) | fresh)
        started = time.monotonic()
        report = self._index(folders)
        if report is None:
            return
        self.runs += 1
        self._report(report, folders)
        if report.run.cancelled:  # stopping
            return
        self._forget_settled(folders, started)
        if self._deferred:
            deferred_roots = {found[1] for p in self._deferred if (found := self._root_of(str(p)))}
            self._redirty(deferred_roots, max(self._writes.settle, self.debounce))
        self._follow_states(initial=not self._ready)
        if not self._ready:
            self._ready = True
            counts = self.library.counts()
            self._emit(
                Ready(
                    photos=counts["photos"], folders=counts["folders"], waiting=len(self._deferred)
                )
            )

    def _index(self, folders: list[Path] | None) -> IndexRunReport | None:
        """Scan and index ``folders`` under a control that :meth:`stop` and :meth:`pause`
        reach; None when stopping or when the pass failed (said, and tried again later)."""
        control = IndexControl()
        with self._cond:
            if self._stopping.is_set():
                return None
            self._control = control
            if self._paused:
                control.pause()
            self._deferred = []
        try:
            return self.library.index_photos(
                progress=self.progress,
                control=control,
                batch_size=self.batch_size,
                folders=folders,
                defer=self._defer,
            )
        except Exception as e:  # never the end of watching
            if not self._stopping.is_set():
                self._failed(e, folders)
            return None
        finally:
            with self._cond:
                self._control = None

    def _failed(self, e: Exception, folders: list[Path] | None) -> None:
        if isinstance(e, (PhotosearchError, sqlite3.Error, OSError)):
            log.warning("watcher: indexing failed: %s", e)
            reason = str(e)
        else:
            log.exception("watcher: indexing failed")
            reason = f"unexpected error: {type(e).__name__}: {e}"
        self._emit(IndexingFailed(reason, self.poll_interval))
        roots = folders if folders is not None else [p for _, p in self._roots]
        self._redirty(roots, self.poll_interval)

    def _report(self, report: IndexRunReport, folders: list[Path] | None) -> None:
        run = report.run
        if run.indexed or run.failed or report.moved or report.removed:
            self._emit(
                PhotosIndexed(
                    indexed=run.indexed,
                    reused=run.reused,
                    moved=report.moved,
                    removed=report.removed,
                    failed=run.failed,
                    seconds=round(run.seconds, 3),
                    folders=tuple(folders if folders is not None else self._all_roots()),
                    errors=tuple(run.errors),
                )
            )

    def _all_roots(self) -> list[Path]:
        with self._cond:
            return [p for _, p in self._roots]

    def _forget_settled(self, folders: list[Path] | None, started: float) -> None:
        """Drop write records the pass has dealt with (kept: files it deferred, and any
        written to since it began)."""

        def dealt_with(key: str) -> bool:
            found = self._root_of(key)
            return found is None or folders is None or found[1] in folders

        with self._cond:
            self._writes.forget(started, {str(p) for p in self._deferred}, dealt_with)

    def _follow_states(self, *, initial: bool) -> None:
        """Report folders that went offline or came back, and watch or unwatch them."""
        back: list[Path] = []
        for f in self.library.folders():
            before = self._states.get(f.path)
            self._states[f.path] = f.state
            if f.state == "offline" and (initial or before != "offline"):
                self._emit(FolderOffline(f.path))
            elif f.state != "offline" and before == "offline":
                self._emit(FolderOnline(f.path))
                back.append(f.path)
        self._sync_watches()  # unwatch what went offline, watch what came back
        if back:
            # Anything copied in between the pass and the new watch is picked up now.
            self._redirty(back, 0.0)

    # -- watches (the worker's thread only) ------------------------------------------------

    def _sync_watches(self, *, retry: bool = False) -> set[Path]:
        """Watch every library folder that is there, stop watching those gone or removed;
        returns folders new to the watcher (to be reconciled now). ``retry``: try again to
        watch the folders being polled (a limit may have been raised since)."""
        folders = self.library.folders()
        current = {f.path: f for f in folders}
        fresh = {p for p in current if p not in self._states}
        for p in fresh:
            self._states[p] = current[p].state
        for p in [p for p in self._states if p not in current]:
            del self._states[p]
        with self._cond:
            self._roots = tuple(
                sorted(((str(p), p) for p in current), key=lambda r: len(r[0]), reverse=True)
            )
            rewatch, self._rewatch = self._rewatch, set()
        for p in [p for p in self._watches if p not in current or p in rewatch]:
            self._watches.unwatch(p)
        for p in [p for p in self._polled if p not in current]:
            del self._polled[p]
        self._watches.sync_parents({p.parent for p in current if p.parent != p})
        offline: set[Path] = set()
        for f in folders:
            if f.state == "offline" or not f.path.is_dir():
                self._watches.unwatch(f.path)
                self._polled.pop(f.path, None)  # when it is back, try watching it again
                offline.add(f.path)
                continue
            if f.path in self._watches or (f.path in self._polled and not retry):
                continue
            reason = self._watches.watch(f.path)
            if reason is None:
                self._polled.pop(f.path, None)
                self._emit(WatchStarted(f.path))
            elif self._polled.get(f.path) != reason:
                log.warning("%s: cannot watch for changes: %s", f.path, reason)
                self._polled[f.path] = reason
                self._emit(WatchFallback(f.path, reason, self.poll_interval))
        with self._cond:
            self._offline = offline
        return fresh
