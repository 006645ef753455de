"""What ``photosearch status`` and ``photosearch doctor`` report: the library's state, and
whether catalog, vector index and disk agree (repairing them when asked).

Checks only read; a repair goes through the library's own operations (rebuild the index from
the catalog, rescan the folders), so it keeps the same promises as any other change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from photosearch import modelpack
from photosearch.catalog import Catalog
from photosearch.config import Paths
from photosearch.encoders import TextEncoder
from photosearch.errors import PackError, PhotosearchError
from photosearch.packs import NoModelError
from photosearch.vectors import IndexFileError, VectorIndex


class CheckedLibrary(Protocol):
    """What the checks need of a library (:class:`photosearch.library.Library` is one)."""

    paths: Paths
    catalog: Catalog

    @property
    def pack(self) -> modelpack.ModelPack: ...

    @property
    def text_encoder(self) -> TextEncoder: ...

    @property
    def pending_pack(self) -> str | None: ...

    @property
    def index_path(self) -> Path: ...

    def writer_elsewhere(self) -> bool: ...

    def rebuild_index(self) -> int: ...

    def scan(self) -> Any: ...

    def save_index(self) -> None: ...


def status(lib: CheckedLibrary) -> dict[str, Any]:
    """The library at a glance (``photosearch status --json`` prints it as is)."""
    out: dict[str, Any] = {"home": str(lib.paths.data.parent)}
    try:
        pack = lib.pack
        # Loaded and run once: a pack whose checksums match can still hold an encoder that
        # does not load or does not fit its manifest.
        lib.text_encoder.encode("a photo")
    except PhotosearchError as e:
        out["model"] = None
        out["model_problem"] = str(e)
        out.update(lib.catalog.counts())
    else:
        out["model"] = {
            "name": pack.name,
            "id": pack.id,
            "source": pack.manifest["source"].get("model"),
        }
        out.update(lib.catalog.counts(pack.id))
        out["execution_provider"] = lib.text_encoder.providers[0]
        out["device"] = lib.text_encoder.device
    if lib.pending_pack:
        out["switching_to"] = _switch_status(lib, lib.pending_pack)
    out["folders"] = [
        {"path": str(f.path), "state": f.state, "last_scan": f.last_scan}
        for f in lib.catalog.folders()
    ]
    out["error_list"] = [{"path": str(p), "reason": r} for p, r, _ in lib.catalog.errors()]
    return out


def _switch_status(lib: CheckedLibrary, name: str) -> dict[str, Any]:
    try:
        target = modelpack.described(lib.paths.models / name)
    except PackError as e:
        return {"name": name, "problem": str(e)}
    counts = lib.catalog.counts(target.id)
    return {"name": name, "encoded": counts["indexed"], "pending": counts["pending"]}


def has_pack(lib: CheckedLibrary) -> bool:
    try:
        return lib.pack is not None
    except NoModelError:
        return False


def doctor(lib: CheckedLibrary, *, repair: bool = False) -> list[str]:
    """Check catalog ↔ index ↔ disk; returns the problems found (after repair, if asked).

    Beside a writer (a reader's check while indexing runs elsewhere) an index file that lags
    the catalog is expected: the writer saves it at checkpoints, and any reader serves the
    committed vectors meanwhile."""
    problems = lib.catalog.integrity_check()
    if has_pack(lib):
        problems += _index_file_problems(lib)
    missing = [
        f"{p.path}"
        for f in lib.catalog.folders()
        if f.state == "ok"
        for p in lib.catalog.photos_in(f.id).values()
        if not p.path.exists()
    ]
    if missing:
        problems.append(f"{len(missing)} photos are gone from disk (e.g. {missing[0]})")
    if repair and problems:
        if has_pack(lib):
            lib.rebuild_index()
        if missing:
            lib.scan()
            lib.save_index()
        return doctor(lib, repair=False)
    return problems


def _index_file_problems(lib: CheckedLibrary) -> list[str]:
    want = lib.catalog.vector_ids(lib.pack.id)
    try:
        on_disk = VectorIndex.load(lib.index_path, dim=lib.pack.embedding_dim)
    except IndexFileError as e:
        return [f"vector index: {e}"]
    lagging = on_disk.generation < lib.catalog.generation()
    if not on_disk.matches(want) and not (lagging and lib.writer_elsewhere()):
        return [f"vector index holds {len(on_disk)} vectors, the catalog {len(want)}"]
    return []
