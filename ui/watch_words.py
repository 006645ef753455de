"""The folder watcher's events in words for the status bar (translated)."""

from __future__ import annotations

from PySide6.QtCore import QObject

from photosearch.watcher import (
    FolderOffline,
    FolderOnline,
    IndexingFailed,
    PhotosIndexed,
    Ready,
    WatchEvent,
    WatchFallback,
    WatchStarted,
)


class WatchWords(QObject):
    """The words (a QObject so that lupdate sees the plurals of ``self.tr``)."""

    def describe(self, event: WatchEvent) -> str:
        # (lupdate reads a plural's count only as a plain name, hence the local names)
        if isinstance(event, Ready):
            photos = event.photos
            return self.tr("Up to date: %n photo(s)", "", photos)
        if isinstance(event, PhotosIndexed):
            parts = []
            indexed, moved, removed, failed = (
                event.indexed,
                event.moved,
                event.removed,
                event.failed,
            )
            if indexed:
                parts.append(self.tr("%n photo(s) indexed", "", indexed))
            if moved:
                parts.append(self.tr("%n moved or renamed", "", moved))
            if removed:
                parts.append(self.tr("%n removed", "", removed))
            if failed:
                parts.append(self.tr("%n could not be read", "", failed))
            return ", ".join(parts) or self.tr("Library updated")
        if isinstance(event, FolderOffline):
            return self.tr(
                "{path} is offline (unplugged or unmounted?); its photos are kept"
            ).format(path=str(event.path))
        if isinstance(event, FolderOnline):
            return self.tr("{path} is back").format(path=str(event.path))
        if isinstance(event, WatchStarted):
            return self.tr("Watching {path} for changes").format(path=str(event.path))
        if isinstance(event, WatchFallback):
            return self.tr("{path}: checked every {s:g} s ({reason})").format(
                path=str(event.path), s=event.interval, reason=event.reason
            )
        if isinstance(event, IndexingFailed):
            return self.tr("Indexing failed: {reason}. Trying again in {s:g} s").format(
                reason=event.reason, s=event.retry
            )
        return event.message


_words = WatchWords()


def describe(event: WatchEvent) -> str:
    return _words.describe(event)
