"""What the folder watcher learns from the file system, apart from its decisions.

Which watchdog events matter, which file systems never report changes made elsewhere, a watch
error in words a person can act on, the record of files that may still be being written, and
the live watches on an observer. :mod:`photosearch.watcher` decides when to reconcile.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog import events as wd_events

log = logging.getLogger(__name__)


def _event_types(*names: str) -> list[type]:
    # watchdog added some event types over its versions; ask only for those it has.
    return [getattr(wd_events, n) for n in names if hasattr(wd_events, n)]


# What reaches us: never opens or reads (the indexer's own reads would wake the watcher).
FOLDER_EVENTS = _event_types(
    "FileCreatedEvent",
    "FileModifiedEvent",
    "FileAttribEvent",
    "FileDeletedEvent",
    "FileMovedEvent",
    "FileClosedEvent",
    "DirCreatedEvent",
    "DirDeletedEvent",
    "DirMovedEvent",
)
# On a library folder's parent: the folder itself appearing, disappearing or renamed (a watch
# on the folder follows its inode wherever it goes, and says nothing when it leaves).
PARENT_EVENTS = _event_types("DirCreatedEvent", "DirDeletedEvent", "DirMovedEvent")

# File systems whose changes made elsewhere (another machine, the Windows side of WSL) never
# reach inotify: polled instead.
NETWORK_FILE_SYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "drvfs", "ceph", "glusterfs"}
    | {"lustre", "gpfs", "davfs", "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.davfs2"}
    | {"fuse.glusterfs", "fuse.gvfsd-fuse"}
)


def network_file_system(path: Path) -> str | None:
    """The type of the network file system ``path`` is on (Linux), else None."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        return None
    best, kind = "", ""
    p = str(path)
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), parts[1])
        inside = p == mount or p.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, parts[2]
    return kind if kind in NETWORK_FILE_SYSTEMS else None


def describe_watch_error(e: BaseException) -> str:
    """Why a folder cannot be watched, in words a person can act on."""
    code = getattr(e, "errno", None)
    if code == errno.ENOSPC:
        return (
            "the system's limit on watched folders is reached; raise it with "
            "`sudo sysctl fs.inotify.max_user_watches=524288`"
        )
    if code == errno.EMFILE:
        return (
            "the system's limit on folder watchers is reached; raise it with "
            "`sudo sysctl fs.inotify.max_user_instances=1024`"
        )
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.ENOENT:
        return "folder not found"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


@dataclass
class _Writing:
    """A file that may still be being written."""

    touched: float = 0.0  # the last write event (monotonic); 0 if none was seen
    closed: bool | None = None  # closed after its last write; None: unknown (no events)
    signature: tuple[int, int, int] | None = None  # size, mtime, ctime at the last check
    changed_at: float = 0.0  # when the signature last changed (monotonic)


class WriteLog:
    """Files that may still be being written, from the write, close, move and delete events
    seen for them. Not locked: its owner calls it under its own lock."""

    def __init__(self, *, settle: float, open_write_timeout: float) -> None:
        self.settle = settle
        self.open_write_timeout = open_write_timeout
        #: whether the observer reports a file closed after writing (inotify does)
        self.close_events = False
        self._files: dict[str, _Writing] = {}

    def record(self, kind: str, src: str, dest: str, now: float) -> None:
        """Note a file event (``dest``: where a move went)."""
        files = self._files
        match kind:
            case wd_events.EVENT_TYPE_MODIFIED:  # written to, and open until a close event
                w = files.setdefault(src, _Writing())
                w.touched, w.closed = now, False
            case wd_events.EVENT_TYPE_CREATED:  # also a link, or a file moved in from afar
                files.setdefault(src, _Writing()).touched = now
            case wd_events.EVENT_TYPE_CLOSED:
                files.setdefault(src, _Writing(touched=now)).closed = True
            case wd_events.EVENT_TYPE_DELETED:
                files.pop(src, None)
            case wd_events.EVENT_TYPE_MOVED:
                w = files.pop(src, None)
                if w is not None and dest:
                    files[dest] = w

    def incomplete(self, path: Path, st: os.stat_result) -> bool:
        """True while a new or changed file may still be being written.

        Evidence, best first: a close event after the last write (complete); a write event
        with no close yet (still open, where closes are reported); else the file's own
        modification time: a file written in the last ``settle`` seconds, or dated in the
        future, waits until it has not changed for that long. Renamed and moved files keep
        their old modification time, so they are never held back.
        """
        now = time.monotonic()
        signature = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        key = str(path)
        w = self._files.get(key)
        if w is not None and w.closed:
            del self._files[key]
            return False
        if w is None or w.closed is None:
            if time.time() - st.st_mtime >= self.settle:
                self._files.pop(key, None)
                return False
            w = self._files.setdefault(key, _Writing())
            wait = self.settle
        else:
            wait = self.open_write_timeout if self.close_events else self.settle
        if signature != w.signature:
            w.signature, w.changed_at = signature, now
        if now - max(w.changed_at, w.touched) >= wait:
            del self._files[key]
            return False
        return True

    def forget(self, started: float, keep: set[str], dealt_with: Any) -> None:
        """Drop the records a pass that began at ``started`` has dealt with: not those in
        ``keep`` (it deferred them), nor any written to since; ``dealt_with(path)`` says
        whether the pass covered a file's folder."""
        for key, w in list(self._files.items()):
            if key not in keep and w.touched < started and dealt_with(key):
                del self._files[key]


class Watches:
    """The live watches on one watchdog observer: each library folder recursively, and each
    folder's parent (a watch on the folder follows its inode wherever it goes, and says nothing
    when it leaves). Used from the watcher's own thread only."""

    def __init__(self, observer: Any, handler: Any, no_observer: str | None) -> None:
        self.observer = observer
        self._handler = handler
        self._no_observer = no_observer
        self._folders: dict[Path, Any] = {}
        self._parents: dict[Path, Any] = {}

    def __contains__(self, path: object) -> bool:
        return path in self._folders

    def __iter__(self) -> Iterator[Path]:
        """The watched folders, as a copy (unwatching while iterating is safe)."""
        return iter(list(self._folders))

    def watch(self, path: Path) -> str | None:
        """Start a live watch on a folder; None, or why it cannot be watched."""
        if self.observer is None:
            return self._no_observer or "watching is stopped"
        fs = network_file_system(path)
        if fs is not None:
            return f"a network file system ({fs}): changes made elsewhere are not reported"
        if not os.access(path, os.R_OK | os.X_OK):
            return "permission denied"
        try:
            watch = self.observer.schedule(
                self._handler, str(path), recursive=True, event_filter=FOLDER_EVENTS
            )
        except Exception as e:  # OSError (limits, permissions) or an unsupported file system
            return describe_watch_error(e)
        self._folders[path] = watch
        return None

    def unwatch(self, path: Path) -> None:
        self._unschedule(path, self._folders.pop(path, None))

    def dead(self) -> set[Path]:
        """Folders whose live watch stopped on its own (an error in the observer's thread)."""
        if self.observer is None or not self._folders:
            return set()
        alive = {e.watch for e in self.observer.emitters if e.is_alive()}
        return {p for p, w in self._folders.items() if w not in alive}

    def sync_parents(self, wanted: set[Path]) -> None:
        """Watch exactly the ``wanted`` parent folders (not recursively)."""
        if self.observer is None:
            return
        for parent in [p for p in self._parents if p not in wanted]:
            self._unschedule(parent, self._parents.pop(parent))
        for parent in wanted - set(self._parents):
            try:
                self._parents[parent] = self.observer.schedule(
                    self._handler, str(parent), recursive=False, event_filter=PARENT_EVENTS
                )
            except Exception as e:  # its folder is still polled while offline
                log.debug("cannot watch %s: %s", parent, e)
                self._parents[parent] = None

    def _unschedule(self, path: Path, watch: Any) -> None:
        if watch is not None and self.observer is not None:
            try:
                self.observer.unschedule(watch)
            except Exception as e:  # already gone with its folder
                log.debug("unwatching %s: %s", path, e)
