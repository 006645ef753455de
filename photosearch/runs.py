"""Indexing runs as a person reads them: a scan, an encoding run, and a pack switch's progress.

:func:`encode_for` encodes what a pack has no vector for yet into that pack's own index; the
library runs it for the active pack and, during a switch (see ``Library.use_pack``), for the
pack being switched to while the active one keeps serving searches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from photosearch import modelpack
from photosearch.catalog import Catalog
from photosearch.encoders import ImageEncoder
from photosearch.indexer import IndexControl, Indexer, IndexReport, Progress
from photosearch.scanner import ScanReport
from photosearch.vectors import VectorIndex


@dataclass
class SwitchReport:
    """What an indexing run did towards a pending model pack switch (see ``use_pack``)."""

    pack: str  # the pack being switched to
    run: IndexReport | None  # its encoding run (None: the switch was dropped, see problem)
    switched: bool  # every photo is encoded with it: it serves searches now
    problem: str | None = None


@dataclass
class IndexRunReport:
    """A scan followed by an indexing run, in the numbers a person wants at the end."""

    new: int
    changed: int
    moved: int
    removed: int
    offline: list[Path]
    problems: list[tuple[Path, str]]
    run: IndexReport
    switch: SwitchReport | None = None

    @classmethod
    def of(cls, scan: ScanReport, run: IndexReport, switch: SwitchReport | None) -> IndexRunReport:
        return cls(
            new=scan.count("new"),
            changed=scan.count("changed"),
            moved=scan.count("moved"),
            removed=scan.count("deleted"),
            offline=[f.path for f in scan.offline] + run.offline,
            problems=scan.problems,
            run=run,
            switch=switch,
        )

    @classmethod
    def cancelled_scan(cls) -> IndexRunReport:
        return cls(0, 0, 0, 0, [], [], IndexReport(cancelled=True))


@dataclass(frozen=True)
class RunOptions:
    """How an encoding run goes: its progress callback, its control, batch size, and how often
    the vector index is saved while it runs."""

    progress: Callable[[Progress], None] | None
    control: IndexControl
    batch_size: int
    checkpoint_seconds: float


def encode_for(
    catalog: Catalog,
    pack: modelpack.ModelPack,
    index: VectorIndex,
    encoder: ImageEncoder,
    options: RunOptions,
    *,
    checkpoint: Callable[[], None],
    on_commit: Callable[[], None] | None = None,
) -> IndexReport:
    """Encode every photo ``pack`` has no vector for, into ``index``. ``on_commit`` runs after
    each batch is committed; ``checkpoint`` (saving the index) after a commit once
    ``options.checkpoint_seconds`` have passed since the last. A kill between checkpoints loses
    nothing: the catalog holds every vector."""
    last_save = time.monotonic()

    def committed() -> None:
        nonlocal last_save
        if on_commit is not None:
            on_commit()
        if time.monotonic() - last_save >= options.checkpoint_seconds:
            checkpoint()
            last_save = time.monotonic()

    indexer = Indexer(
        catalog, index, encoder, pack.id, batch_size=options.batch_size, on_commit=committed
    )
    return indexer.run(catalog.pending(pack.id), progress=options.progress, control=options.control)


def left_to_switch(catalog: Catalog, pack: modelpack.ModelPack, run: IndexReport) -> int:
    """Photos still without a vector of ``pack`` after ``run``. Those the run tried and could
    not read (permission denied, I/O) do not hold a switch back: later passes retry them, as
    with any pack."""
    failed = {str(path) for path, _why in run.errors}
    return sum(1 for p in catalog.pending(pack.id) if str(p.path) not in failed)
