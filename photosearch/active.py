"""What a library runs on: the active model pack with its encoders, vector index and reranker.

:class:`ActiveModels` takes them together, as one object that never changes: a query holds one
and uses a consistent set even if a pack switch publishes another meanwhile. Each part loads on
first use (a text search never loads the image encoder; ``status`` never loads the reranker),
once, whichever thread asks first.

:class:`IndexStore` keeps each pack's vector index file in step with the catalog, which is the
source of truth: an index file that does not reflect it is rebuilt from it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from photosearch import config, modelpack
from photosearch.catalog import Catalog
from photosearch.encoders import ImageEncoder, TextEncoder
from photosearch.errors import PhotosearchError
from photosearch.rerank import Reranker
from photosearch.vectors import IndexFileError, VectorIndex

log = logging.getLogger(__name__)

T = TypeVar("T")


class Once(Generic[T]):
    """A value made on first use, once. A failed attempt stores nothing: the next one retries."""

    def __init__(self, make: Callable[[], T], value: T | None = None):
        self._make = make
        self._value = value
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
        return self._value

    def peek(self) -> T | None:
        """The value if it was made, without making it."""
        return self._value

    def settled(self) -> T | None:
        """The value if it was made, after waiting out a making in progress."""
        with self._lock:
            return self._value


# The reranker, or None and why it cannot be used (fast search still works).
RerankerOrReason = tuple[Reranker | None, str | None]


@dataclass(frozen=True, eq=False)
class ActiveModels:
    """The active pack and what runs it, loaded on first use (see :meth:`build`)."""

    pack: modelpack.ModelPack
    _text: Once[TextEncoder]
    _image: Once[ImageEncoder]
    _index: Once[VectorIndex]
    _reranker: Once[RerankerOrReason]
    _load_index: Callable[[modelpack.ModelPack], VectorIndex]
    _open_reranker: Callable[[modelpack.ModelPack], Reranker]
    # Set when this set's reranker is closed (the set was replaced): a query still holding the
    # set then gets none, rather than opening one that nobody would close.
    _closed: threading.Event

    @classmethod
    def build(
        cls,
        pack: modelpack.ModelPack,
        *,
        device: str,
        threads: int | None,
        load_index: Callable[[modelpack.ModelPack], VectorIndex],
        open_reranker: Callable[[modelpack.ModelPack], Reranker],
        image_encoder: ImageEncoder | None = None,
        index: VectorIndex | None = None,
        saved_graphs: Path | None = None,
    ) -> ActiveModels:
        """``load_index`` and ``open_reranker`` run on first use; an ``image_encoder`` or
        ``index`` already at hand (a pack switch made them) is taken as loaded;
        ``saved_graphs`` keeps an optimised copy of the text graph (see
        ``encoders.create_session``): a terminal's query opens it each time."""
        closed = threading.Event()
        return cls(
            pack,
            Once(
                lambda: TextEncoder(pack, device=device, threads=threads, saved_graphs=saved_graphs)
            ),
            # No saved copy for the image encoder: it opens once per indexing run, beside the
            # decode threads (see Indexer), where writing a copy (another session in memory,
            # hundreds of MB on disk) would cost more than it saves.
            Once(lambda: ImageEncoder(pack, device=device, threads=threads), image_encoder),
            Once(lambda: load_index(pack), index),
            Once(lambda: _reranker_or_reason(pack, open_reranker, closed)),
            load_index,
            open_reranker,
            closed,
        )

    @property
    def text_encoder(self) -> TextEncoder:
        return self._text.get()

    @property
    def image_encoder(self) -> ImageEncoder:
        return self._image.get()

    @property
    def index(self) -> VectorIndex:
        return self._index.get()

    @property
    def loaded_index(self) -> VectorIndex | None:
        """The index if it was loaded, without loading it."""
        return self._index.peek()

    def reranker_or_reason(self) -> RerankerOrReason:
        """The pack's reranker, or None and why it cannot be used."""
        return self._reranker.get()

    def with_index(self, index: VectorIndex | None) -> ActiveModels:
        """The same pack and encoders over ``index`` (None: load it again on first use)."""
        pack, load = self.pack, self._load_index
        return replace(self, _index=Once(lambda: load(pack), index))

    def with_new_reranker(self) -> ActiveModels:
        """The same set with the reranker opened again on first use (its cache was resized);
        this one's reranker is closed."""
        self.close()
        pack, opener, closed = self.pack, self._open_reranker, threading.Event()
        return replace(
            self,
            _reranker=Once(lambda: _reranker_or_reason(pack, opener, closed)),
            _closed=closed,
        )

    def close(self) -> None:
        """Close the reranker if it was opened (its cache file); none opens after this."""
        self._closed.set()
        loaded = self._reranker.settled()
        if loaded is not None and loaded[0] is not None:
            loaded[0].close()


def _reranker_or_reason(
    pack: modelpack.ModelPack,
    open_reranker: Callable[[modelpack.ModelPack], Reranker],
    closed: threading.Event,
) -> RerankerOrReason:
    if closed.is_set():
        return None, "the model pack changed while this search ran: showing the fast results"
    if pack.reranker_problem is not None:
        return None, f"the reranker cannot be used ({pack.reranker_problem}): fast results"
    if pack.reranker is None:
        return None, f"the model pack {pack.name!r} cannot refine (no reranker): fast results"
    try:
        reranker = open_reranker(pack)
    except (PhotosearchError, OSError) as e:
        reason = f"the reranker could not be loaded ({e}): showing the fast results"
        log.warning("%s", reason)
        return None, reason
    log.info("reranker loaded on %s", reranker.device)
    return reranker, None


class IndexStore:
    """The vector index file of each pack, in ``folder``, checked against the catalog.

    A reader (``writer=False``) never writes: beside a writer, which saves at checkpoints, an
    index file behind the catalog is normal, and the reader rebuilds what it serves in memory.
    """

    def __init__(self, catalog: Catalog, folder: Path, *, writer: bool):
        self.catalog = catalog
        self.folder = folder
        self.writer = writer

    def path(self, pack_id: str) -> Path:
        return self.folder / f"vectors-{config.slug(pack_id)}.faiss"

    def load(self, pack: modelpack.ModelPack) -> tuple[VectorIndex, bool]:
        """The index file of ``pack`` if it reflects the catalog, else one rebuilt from the
        catalog; and whether what is returned is saved. A writer saves what it rebuilt; a
        failure to (a full disk) only postpones that: searches are served from memory."""
        path = self.path(pack.id)
        generation = self.catalog.generation()
        index = None
        try:
            index = VectorIndex.load(path, dim=pack.embedding_dim)
        except IndexFileError as e:
            if path.exists() and self.writer:
                log.warning("rebuilding the vector index: %s", e)
        if (
            index is not None
            and index.generation == generation
            and index.matches(self.catalog.vector_ids(pack.id))
        ):
            return index, True
        if index is not None and self.writer:
            log.warning("the vector index is out of date with the catalog: rebuilding it")
        index = self.rebuild(pack)
        index.generation = generation  # what it reflects at least: a later commit reloads it
        if not self.writer:
            return index, True  # nothing for a reader to save
        try:
            self.save(index, pack)
        except OSError as e:
            log.warning(
                "the rebuilt vector index could not be saved (%s): searching from memory, "
                "saving it later",
                e,
            )
            return index, False
        return index, True

    def rebuild(self, pack: modelpack.ModelPack) -> VectorIndex:
        """An index of every vector the catalog holds for ``pack``."""
        parts = list(self.catalog.vectors(pack.id, pack.embedding_dim))
        if parts:
            # float16 as stored: build() converts in chunks, never a full float32 copy
            return VectorIndex.build(
                np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            )
        return VectorIndex.create(pack.embedding_dim)

    def save(self, index: VectorIndex, pack: modelpack.ModelPack) -> None:
        """Write ``index`` as ``pack``'s file. Called by the thread that changed catalog and
        index together, so the index reflects the catalog's current generation."""
        index.generation = self.catalog.generation()
        index.save(self.path(pack.id))

    def remove(self, pack_id: str) -> None:
        self.path(pack_id).unlink(missing_ok=True)


class ModelSlot:
    """The library's one place for its active models: looked up, made and replaced as one set
    under one lock (a query sees the old set or the new one, never a mix), together with
    whether the active index holds commits its file does not yet (a writer saves it)."""

    def __init__(
        self,
        store: IndexStore,
        load_pack: Callable[[], modelpack.ModelPack],
        open_reranker: Callable[[modelpack.ModelPack], Reranker],
        *,
        device: str,
        threads: int | None,
        saved_graphs: Path | None = None,
    ):
        self.store = store
        self.lock = threading.RLock()
        self._saved_graphs = saved_graphs
        self._load_pack = load_pack
        self._open_reranker = open_reranker
        self._device = device
        self._threads = threads
        self._models: ActiveModels | None = None
        self._dirty = False

    @property
    def loaded(self) -> ActiveModels | None:
        """The active set if one is made, without making it."""
        return self._models

    def current(self) -> ActiveModels:
        """The active set, made from the active pack on first use."""
        with self.lock:
            if self._models is None:
                self._models = self.assemble(self._load_pack())
            return self._models

    def assemble(
        self,
        pack: modelpack.ModelPack,
        image_encoder: ImageEncoder | None = None,
        index: VectorIndex | None = None,
    ) -> ActiveModels:
        """A set for ``pack`` (not published), taking what is already at hand as loaded."""
        return ActiveModels.build(
            pack,
            device=self._device,
            threads=self._threads,
            load_index=self._load_index,
            open_reranker=self._open_reranker,
            image_encoder=image_encoder,
            index=index,
            saved_graphs=self._saved_graphs,
        )

    def publish(self, models: ActiveModels | None, *, saved: bool = False) -> None:
        """Replace the active set in one step (None: make it again on next use); the old set's
        reranker is closed unless the new set shares it. ``saved``: the new set's index is
        what its file holds."""
        with self.lock:
            old, self._models = self._models, models
            if saved or models is None or old is None or models.pack is not old.pack:
                self._dirty = False
        if old is not None and (models is None or models._reranker is not old._reranker):
            old.close()

    def follow(self, chosen: str | None, generation: int) -> None:
        """A reader's view keeps up with a writer elsewhere: a pack switch it completed
        (``chosen`` names another pack) drops the set, vectors it committed since the index was
        loaded (the catalog's ``generation`` moved on) reload the index."""
        with self.lock:
            models = self._models
            if models is None:
                return
            if chosen not in (None, models.pack.path.name):
                self.publish(None)
                return
            loaded = models.loaded_index
            if loaded is not None and loaded.generation != generation:
                self.publish(models.with_index(None))

    def reopen_reranker(self) -> None:
        """Open the reranker again on next use (its cache was resized)."""
        with self.lock:
            if self._models is not None:
                self._models = self._models.with_new_reranker()

    def changed(self) -> None:
        """The active index was changed in memory (and the catalog with it)."""
        self._dirty = True

    def save(self) -> None:
        """Write the active index if it holds commits its file does not (a writer only)."""
        models = self._models
        index = models.loaded_index if models is not None else None
        if self.store.writer and index is not None and self._dirty:
            self.store.save(index, models.pack)  # type: ignore[union-attr]
            self._dirty = False

    def save_or_defer(self) -> None:
        """:meth:`save`, where failing to write (a full disk) is no reason to fail: the catalog
        holds every vector, and the next save, or the next open, writes the index."""
        try:
            self.save()
        except OSError as e:
            log.warning("the vector index could not be saved (%s); it is rebuilt next time", e)

    def _load_index(self, pack: modelpack.ModelPack) -> VectorIndex:
        index, saved = self.store.load(pack)
        if not saved:
            self._dirty = True
        return index
