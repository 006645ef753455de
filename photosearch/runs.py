"""Indexing runs as a person reads them: a scan, an encoding run, and a pack switch's progress.

:func:`encode_for` encodes what a pack has no vector for yet into that pack's own index; the
library runs it for the active pack and, during a switch (see ``Library.use_pack``), for the
pack being switched to while the active one keeps serving searches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from photosearch import modelpack
from photosearch.active import IndexStore
from photosearch.catalog import Catalog
from photosearch.encoders import ImageEncoder
from photosearch.errors import PhotosearchError
from photosearch.indexer import IndexControl, Indexer, IndexReport, Progress
from photosearch.rerank import Reranker
from photosearch.scanner import ScanReport
from photosearch.vectors import VectorIndex

log = logging.getLogger(__name__)


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
    encoder: ImageEncoder | Callable[[], ImageEncoder],
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
        catalog,
        index,
        encoder,
        pack.id,
        spec=pack.image,
        batch_size=options.batch_size,
        on_commit=committed,
    )
    return indexer.run(catalog.pending(pack.id), progress=options.progress, control=options.control)


def left_to_switch(catalog: Catalog, pack: modelpack.ModelPack, run: IndexReport) -> int:
    """Photos still without a vector of ``pack`` after ``run``. Those the run tried and could
    not read (permission denied, I/O) do not hold a switch back: later passes retry them, as
    with any pack."""
    failed = {str(path) for path, _why in run.errors}
    return sum(1 for p in catalog.pending(pack.id) if str(p.path) not in failed)


def encode_for_switch(
    catalog: Catalog,
    store: IndexStore,
    target: modelpack.ModelPack,
    encoder: ImageEncoder,
    options: RunOptions,
) -> tuple[IndexReport, VectorIndex, bool]:
    """Encode the photos ``target`` (the pack being switched to) has no vector for into its
    own index, saved as it goes; returns the run, the index, and whether none is left."""
    index, _ = store.load(target)
    run = encode_for(
        catalog, target, index, encoder, options, checkpoint=lambda: store.save(index, target)
    )
    if index.needs_rebuild():
        index = store.rebuild(target)
    store.save(index, target)
    done = not run.cancelled and not left_to_switch(catalog, target, run)
    return run, index, done


# The token pass resumes this long after the user's last query ended.
USER_PAUSE_S = 3.0


def precompute_tokens(
    reranker: Reranker,
    catalog: Catalog,
    pack_id: str,
    control: IndexControl | None = None,
    *,
    user_idle: Callable[[], float] | None = None,
) -> int:
    """Compute the reranker's image tokens of indexed photos not yet in its cache; returns how
    many. The most viewed photos first, then the newest, and only as many as the cache holds:
    filling it past its bound would only evict the tokens of recent searches. ``user_idle``
    (seconds since the user's last query, 0 during one): the pass waits while the user
    searches, so it never takes the cores from a query."""
    if reranker.cache is None:
        return 0
    spec = reranker.spec
    per_photo = spec.tokens * spec.token_dim * 2  # float16
    room = max(0, reranker.cache.max_bytes // per_photo)
    ids = catalog.precompute_order(pack_id, room)
    cancel = control.cancel_event if control is not None else None

    def between_batches() -> None:
        if control is not None:
            control.wait_while_paused()
        while user_idle is not None and user_idle() < USER_PAUSE_S:
            if cancel is not None and cancel.wait(0.2):
                return
            if cancel is None:
                time.sleep(0.2)

    done = 0
    try:
        for start in range(0, len(ids), 256):
            if cancel is not None and cancel.is_set():
                break
            photos = [p for p in catalog.details(ids[start : start + 256]).values() if p.online]
            done += reranker.precompute(photos, cancel, between=between_batches)
    except (PhotosearchError, OSError, MemoryError) as e:  # indexing itself succeeded
        log.warning("precomputing reranker tokens stopped: %s", e)
    return done
