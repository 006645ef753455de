"""Thumbnails: made off the GUI thread by a small pool, kept on disk and in memory.

A thumbnail is keyed by the photo's path, size and modification time, so an edited photo gets
a new one. Disk: JPEG files under ``cache/thumbnails`` (trimmed to a size limit, oldest first).
Memory: an LRU of pixmaps. Newer requests are served first: what is on screen now matters more
than what was scrolled past.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from photosearch.imaging import make_thumbnail

log = logging.getLogger(__name__)

#: Side of the thumbnails made and cached (pixels); the grid scales them to its zoom.
THUMB_SIDE = 320
MEMORY_ITEMS = 600


def thumbnail_key(path: Path, size: int, mtime_ns: int) -> str:
    raw = f"{os.fsencode(path)!r}|{size}|{mtime_ns}|{THUMB_SIDE}".encode()
    return hashlib.sha1(raw).hexdigest()


class _Signals(QObject):
    ready = Signal(str, QImage)
    failed = Signal(str, str)
    image = Signal(int, QImage, str)


def _to_qimage(path: Path, side: int) -> QImage:
    thumb = make_thumbnail(path, side).convert("RGB")
    data = thumb.tobytes()
    return QImage(
        data, thumb.width, thumb.height, 3 * thumb.width, QImage.Format.Format_RGB888
    ).copy()


class _LoadImage(QRunnable):
    def __init__(self, ticket: int, path: Path, side: int, signals: _Signals) -> None:
        super().__init__()
        self.ticket, self.path, self.side, self.signals = ticket, path, side, signals

    def run(self) -> None:
        try:
            image, problem = _to_qimage(self.path, self.side), ""
        except Exception as e:  # shown to the person as the reason
            image, problem = QImage(), str(e)
        self.signals.image.emit(self.ticket, image, problem)


class _Load(QRunnable):
    def __init__(self, key: str, path: Path, folder: Path, signals: _Signals) -> None:
        super().__init__()
        self.key, self.path, self.folder, self.signals = key, path, folder, signals

    def run(self) -> None:
        cached = self.folder / self.key[:2] / f"{self.key}.jpg"
        image = QImage(str(cached)) if cached.exists() else QImage()
        if image.isNull():
            try:
                image = _to_qimage(self.path, THUMB_SIDE)
            except Exception as e:  # any unreadable file: a placeholder, never a crash
                self.signals.failed.emit(self.key, str(e))
                return
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp.jpg")
                if image.save(str(tmp), "JPEG", 85):
                    os.replace(tmp, cached)
            except OSError as e:
                log.debug("thumbnail cache write failed: %s", e)
        self.signals.ready.emit(self.key, image)


class Thumbnails(QObject):
    """Ask with :meth:`get`; ``ready(key)`` says when a thumbnail asked for has arrived."""

    ready = Signal(str)
    #: ``load_image``'s answer: ticket, image (null if unreadable), the reason if unreadable
    image_ready = Signal(int, QImage, str)

    def __init__(
        self, folder: Path, parent: QObject | None = None, threads: int | None = None
    ) -> None:
        super().__init__(parent)
        self.folder = folder
        self._pool = QThreadPool(self)
        if threads is None:  # leave a core to the window: scrolling stays smooth
            threads = min(4, (os.cpu_count() or 2) - 1)
        self._pool.setMaxThreadCount(max(1, threads))
        self._signals = _Signals()
        self._signals.ready.connect(self._arrived, Qt.ConnectionType.QueuedConnection)
        self._signals.failed.connect(self._failed, Qt.ConnectionType.QueuedConnection)
        self._signals.image.connect(self.image_ready, Qt.ConnectionType.QueuedConnection)
        self._tickets = itertools.count(1)
        self._memory: OrderedDict[str, QPixmap | None] = OrderedDict()
        self._asked: set[str] = set()
        self._priority = itertools.count()

    def get(self, key: str, path: Path) -> QPixmap | None:
        """The thumbnail if ready (None while it is made, or if the file cannot be read)."""
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        if key not in self._asked:
            self._asked.add(key)
            # QThreadPool runs higher priorities first: the newest request wins.
            self._pool.start(_Load(key, path, self.folder, self._signals), next(self._priority))
        return None

    def load_image(self, path: Path, side: int) -> int:
        """Read a large upright image off the GUI thread; answers with ``image_ready``."""
        ticket = next(self._tickets)
        self._pool.start(_LoadImage(ticket, path, side, self._signals), 1 << 30)
        return ticket

    def known(self, key: str) -> bool:
        return key in self._memory

    def forget_pending(self) -> None:
        """Drop requests not started yet (a new result list replaces the old one)."""
        self._pool.clear()
        self._asked.clear()

    def _remember(self, key: str, pixmap: QPixmap | None) -> None:
        self._memory[key] = pixmap
        while len(self._memory) > MEMORY_ITEMS:
            self._memory.popitem(last=False)

    def _arrived(self, key: str, image: QImage) -> None:
        self._asked.discard(key)
        self._remember(key, QPixmap.fromImage(image))
        self.ready.emit(key)

    def _failed(self, key: str, reason: str) -> None:
        self._asked.discard(key)
        log.debug("no thumbnail for %s: %s", key, reason)
        self._remember(key, None)
        self.ready.emit(key)

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def close(self) -> None:
        """Drop what is queued and wait for the loads running now."""
        self._pool.clear()
        self._pool.waitForDone()


def trim_cache(folder: Path, max_bytes: int) -> int:
    """Delete the least recently written thumbnails until the folder fits; returns how many."""
    files = []
    for f in folder.glob("*/*.jpg"):
        try:
            st = f.stat()
        except OSError:
            continue
        files.append((st.st_mtime, st.st_size, f))
    total = sum(s for _, s, _ in files)
    removed = 0
    for _, size, f in sorted(files):
        if total <= max_bytes:
            break
        try:
            f.unlink()
        except OSError:
            continue
        total -= size
        removed += 1
    return removed
