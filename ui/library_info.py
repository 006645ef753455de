"""What the main window shows about the library: gathered in one go on a worker thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from photosearch.errors import PackError
from photosearch.library import Library, NoModelError


@dataclass
class LibraryInfo:
    """What the window shows about the library (gathered on a worker thread)."""

    pack: str | None = None
    problem: str | None = None
    folders: list[Path] = field(default_factory=list)
    photos: int = 0
    indexed: int = 0
    errors: int = 0
    device: str | None = None
    rerank_depth: int = 20


def gather_info(library: Library) -> LibraryInfo:
    info = LibraryInfo(folders=[f.path for f in library.folders()])
    try:
        pack = library.pack
    except (NoModelError, PackError) as e:
        # No pack at all is the welcome page's own story; a pack that cannot be used is told.
        info.problem = None if isinstance(e, NoModelError) else str(e)
        counts = library.counts()
    else:
        info.pack = pack.name
        counts = library.counts(pack.id)
        info.indexed = counts.get("indexed", 0)
        # Loading the text encoder and index here warms them for the first search.
        info.device = library.text_encoder.device
        _ = library.index
    info.photos, info.errors = counts["photos"], counts["errors"]
    info.rerank_depth = int(library.setting("rerank_depth"))
    return info
