"""The folder watcher's events in words for the status bar (translated)."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

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


def describe(event: WatchEvent) -> str:
    def tr(text: str, n: int = -1) -> str:
        return QCoreApplication.translate("watch", text, None, n)

    if isinstance(event, Ready):
        return tr("Up to date: %n photo(s)", event.photos)
    if isinstance(event, PhotosIndexed):
        parts = []
        if event.indexed:
            parts.append(tr("%n photo(s) indexed", event.indexed))
        if event.moved:
            parts.append(tr("%n moved or renamed", event.moved))
        if event.removed:
            parts.append(tr("%n removed", event.removed))
        if event.failed:
            parts.append(tr("%n could not be read", event.failed))
        return ", ".join(parts) or tr("Library updated")
    if isinstance(event, FolderOffline):
        return tr("{path} is offline (unplugged or unmounted?); its photos are kept").format(
            path=str(event.path)
        )
    if isinstance(event, FolderOnline):
        return tr("{path} is back").format(path=str(event.path))
    if isinstance(event, WatchStarted):
        return tr("Watching {path} for changes").format(path=str(event.path))
    if isinstance(event, WatchFallback):
        return tr("{path}: checked every {s:g} s ({reason})").format(
            path=str(event.path), s=event.interval, reason=event.reason
        )
    if isinstance(event, IndexingFailed):
        return tr("Indexing failed: {reason}. Trying again in {s:g} s").format(
            reason=event.reason, s=event.retry
        )
    return event.message
