"""The writer's lock on a data directory: one process changes a library at a time.

An exclusive ``flock`` (``msvcrt.locking`` on Windows) on ``photosearch.lock``, which holds the
writer's pid for the refusal message. The operating system drops the lock when the process
dies, so a crash never leaves a library locked. (``filelock`` would replace the ten-line
platform branch of :func:`_try_lock` and nothing else: the pid a refusal names, the retry
while a reader probes, and the probe itself would stay ours. So the standard library it is.)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from photosearch.errors import PhotosearchError

LOCK_FILE = "photosearch.lock"


class LibraryLockedError(PhotosearchError):
    """Another photosearch process is changing this data directory."""


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
