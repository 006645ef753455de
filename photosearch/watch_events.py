"""What a watcher says while it runs: started, fell back to polling, ready, photos indexed,
a folder offline or back, indexing failed. Each event has a one-line ``message`` for people and
``to_json`` for scripts (``photosearch index --watch --json``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class WatchEvent:
    """Something a person may want to see while folders are watched. ``message`` says it in
    words; ``to_json()`` is the stable form (``event`` is the kind)."""

    kind: ClassVar[str] = "event"

    @property
    def message(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = [str(v) if isinstance(v, Path) else v for v in value]
            out[f.name] = value
        out["message"] = self.message
        return out


def _photos(n: int) -> str:
    return f"{n} photo" if n == 1 else f"{n} photos"


@dataclass(frozen=True)
class WatchStarted(WatchEvent):
    """A folder is watched live: changes to it are indexed within seconds."""

    kind: ClassVar[str] = "watching"
    path: Path

    @property
    def message(self) -> str:
        return f"watching {self.path}"


@dataclass(frozen=True)
class WatchFallback(WatchEvent):
    """A folder cannot be watched live; it is checked every ``interval`` seconds instead."""

    kind: ClassVar[str] = "watch_fallback"
    path: Path
    reason: str
    interval: float

    @property
    def message(self) -> str:
        return (
            f"{self.path}: cannot watch for changes ({self.reason}); "
            f"checking it every {self.interval:g} s instead"
        )


@dataclass(frozen=True)
class Ready(WatchEvent):
    """The first pass is done: the catalog matches the disk (but for ``waiting`` files still
    being written, indexed once complete), and changes are followed from now on."""

    kind: ClassVar[str] = "ready"
    photos: int
    folders: int
    waiting: int = 0

    @property
    def message(self) -> str:
        folders = "1 folder" if self.folders == 1 else f"{self.folders} folders"
        said = f"up to date: {_photos(self.photos)} in {folders}"
        if self.waiting:
            said += f"; {self.waiting} just written, indexed once complete"
        return said


@dataclass(frozen=True)
class PhotosIndexed(WatchEvent):
    """A pass found changes and recorded them: photos indexed (new or changed on disk; of
    which ``reused`` took the vector of an identical copy), moved or renamed (vectors kept),
    removed, unreadable (``errors`` lists each path with its reason)."""

    kind: ClassVar[str] = "indexed"
    indexed: int
    reused: int
    moved: int
    removed: int
    failed: int
    seconds: float
    folders: tuple[Path, ...]
    errors: tuple[tuple[str, str], ...] = ()

    @property
    def message(self) -> str:
        parts = [
            (self.indexed, "indexed"),
            (self.moved, "moved or renamed"),
            (self.removed, "removed"),
            (self.failed, "unreadable"),
        ]
        said = [(n, what) for n, what in parts if n]
        if not said:
            return "catalog updated"
        first = f"{_photos(said[0][0])} {said[0][1]}"
        return ", ".join([first] + [f"{n} {what}" for n, what in said[1:]])

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["errors"] = [{"path": p, "reason": r} for p, r in self.errors]
        return out


@dataclass(frozen=True)
class FolderOffline(WatchEvent):
    """A folder disappeared (unplugged drive, unmounted share): its photos are kept, shown as
    offline, and come back with it."""

    kind: ClassVar[str] = "folder_offline"
    path: Path

    @property
    def message(self) -> str:
        return f"{self.path}: folder offline (unplugged or unmounted?); its photos are kept"


@dataclass(frozen=True)
class FolderOnline(WatchEvent):
    kind: ClassVar[str] = "folder_online"
    path: Path

    @property
    def message(self) -> str:
        return f"{self.path}: folder back online"


@dataclass(frozen=True)
class IndexingFailed(WatchEvent):
    """A pass failed (no model pack, a damaged pack, a full disk); it is tried again after
    ``retry`` seconds. Everything committed before the failure is kept."""

    kind: ClassVar[str] = "error"
    reason: str
    retry: float

    @property
    def message(self) -> str:
        return f"indexing failed: {self.reason}; trying again in {self.retry:g} s"
