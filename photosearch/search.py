"""Search: a query in, ranked photos out — fast at once, then refined by the cross-attention
reranker.

A query is text, an example image, or both, with optional negative terms and filters:

1. **Encode**: the text (and each negative term) by the pack's text encoder; the example image
   from its stored vector when it is in the library, else by the image encoder. Text and
   image together search by the normalised sum of their unit vectors.
2. **Fast**: FAISS inner product over the library (restricted inside FAISS to the photos that
   pass the filters). A photo is dropped when a negative term describes it better than the
   query's text does (``n·v > t·v``, the zero-shot comparison CLIP-like models are built for;
   "a photo" stands in for the text of an image-only query).
3. **Names**: photos whose file or folder names hold every word of the text (SQLite FTS5) come
   first, ordered by their semantic score; they are marked ``"name"`` (or ``"both"``).
4. **Refine** (``rerank > 0``, a text query, a pack with a reranker): the top ``rerank``
   content matches are scored by the decoder, ``h̄`` = mean log-probability of the query's
   tokens given the photo, and re-ordered by ``fast + β·h̄`` (Miech et al.'s fusion). The
   rest keep their fast order below them. Without a reranker, or if it cannot be loaded,
   the fast list stands and :attr:`Results.note` says why.

``Searcher.search`` delivers the fast list to ``on_fast`` before refining, and stops refining
(raising :class:`~photosearch.rerank.Cancelled`) as soon as its ``cancel`` event is set.
:class:`photosearch.latest.LatestSearch` runs queries on one worker thread so that a newer
query cancels the refinement of an older one — what search-as-you-type needs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from photosearch.active import ActiveModels
from photosearch.bounds import check_beta, check_depth, check_threshold
from photosearch.catalog import Catalog, Filters, PhotoDetails
from photosearch.errors import PhotosearchError
from photosearch.imaging import load_for_model
from photosearch.relevance import RANKS_ONLY, Calibration, displayed, for_manifest
from photosearch.rerank import Cancelled, RerankStats, check

log = logging.getLogger(__name__)

#: Default refinement depth and fusion weight, from the synthetic instrument's validation runs
#: (``benchmarks/results/synthetic.md``): re-ranking's R@1 stops growing by K = 5–10 and its
#: R@10 by K = 20; β = 0.1 was best for the base and distilled dual encoders (0.2 for the
#: control). A pack's own ``reranker.beta`` (chosen on its validation data) comes first.
DEFAULT_RERANK = 20
DEFAULT_BETA = 0.1
# Candidates fetched per wanted result when negative terms may drop some.
NEGATIVE_OVERFETCH = 4
IMAGE_ONLY_REFERENCE = "a photo"
#: How a list is ordered: by relevance (best first), or the matches by date taken (newest
#: first; photos without a date by their file's time), the weaker matches after them.
SORTS = ("relevance", "date")


class QueryError(PhotosearchError):
    """A query that cannot be run as given (nothing to search for, a bad date, …)."""


def clean_text(text: str) -> str:
    """Text a model and SQLite can take: bytes that were not UTF-8 (a command-line argument
    decodes them to lone surrogates) become U+FFFD, as in any text editor."""
    try:
        raw = text.encode("utf-8", "surrogateescape")  # one U+FFFD per byte that was not UTF-8
    except UnicodeEncodeError:  # other lone surrogates (from JSON, say)
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True)
class Query:
    """What to look for. ``rerank``/``beta`` None take the library's defaults."""

    text: str = ""
    like: Path | None = None
    exclude: tuple[str, ...] = ()
    filters: Filters = field(default_factory=Filters)
    n: int = 20
    rerank: int | None = None
    beta: float | None = None
    names: bool = True
    threshold: float | None = None  # the relevance cut-off; None: the library's, else the pack's
    sort: str = "relevance"

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", clean_text(self.text))
        object.__setattr__(self, "exclude", tuple(clean_text(t) for t in self.exclude))

    def check(self) -> None:
        if not self.text.strip() and self.like is None:
            raise QueryError("nothing to search for: give a description or an example image")
        if self.n < 1:
            raise QueryError(f"the number of results must be at least 1, got {self.n}")
        if self.sort not in SORTS:
            raise QueryError(f"unknown order {self.sort!r} (known: {', '.join(SORTS)})")
        for what, value, check_value in (
            ("rerank depth", self.rerank, check_depth),
            ("beta", self.beta, check_beta),
            ("threshold", self.threshold, check_threshold),
        ):
            if value is not None:
                try:
                    check_value(value)  # type: ignore[operator]
                except ValueError as e:
                    raise QueryError(f"{what} {e}") from None


@dataclass(frozen=True)
class Result:
    """One photo found. ``relevance`` is what a person is shown: the calibrated probability
    that the photo fits the query (:mod:`photosearch.relevance`), never increasing down a list
    in relevance order; None when the pack has no calibration (ranks only). ``match``: at or
    above the cut-off (always True without a calibration). The raw numbers stay for power
    users: ``score`` (what ordered the list: ``fast`` or ``fast + β·h̄``), ``fast_score`` (the
    dual encoder's cosine) and ``rerank_score`` (the decoder's ``h̄``, when refined)."""

    rank: int
    photo: PhotoDetails
    score: float
    fast_score: float
    rerank_score: float | None
    matched: str  # "content", "name" or "both"
    relevance: float | None = None
    match: bool = True

    @property
    def refined(self) -> bool:
        """Whether the reranker scored this photo."""
        return self.rerank_score is not None

    @property
    def path(self) -> Path:
        return self.photo.path

    @property
    def photo_id(self) -> int:
        return self.photo.id


@dataclass(frozen=True)
class Timing:
    """Where a query's time went, in milliseconds."""

    encode_ms: float = 0.0
    search_ms: float = 0.0
    names_ms: float = 0.0
    rerank_ms: float = 0.0
    total_ms: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Results:
    """A ranked list. ``refined`` says whether the reranker ordered its top; ``note`` says why
    it did not when it was asked to."""

    query: Query
    results: list[Result]
    timing: Timing
    refined: bool = False
    rerank: int = 0
    beta: float = 0.0
    device: str | None = None  # where the reranker ran
    rerank_stats: RerankStats | None = None
    note: str | None = None
    can_refine: bool = True  # False: the pack has no reranker (a face says once how to get one)
    threshold: float | None = None  # the relevance cut-off; None: no calibration
    calibration_note: str | None = None  # why there is no relevance score, when there is none
    pending: bool = False  # the fast list, shown while its refinement runs
    words_read: int | None = None  # a description too long for the model: its first words

    @property
    def matches(self) -> int:
        """How many results are at or above the cut-off (all of them without a calibration)."""
        return sum(r.match for r in self.results)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (docs/cli.md), also what the query socket answers."""
        return {
            "query": self.query.text,
            "results": [_result_json(r) for r in self.results],
            "matches": self.matches,
            "threshold": self.threshold,
            "calibration_note": self.calibration_note,
            "refined": self.refined,
            "rerank": self.rerank,
            "beta": self.beta,
            "device": self.device,
            "note": self.note,
            "can_refine": self.can_refine,
            "sort": self.query.sort,
            "words_read": self.words_read,
            "timing": self.timing.to_json(),
        }

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)

    def __getitem__(self, i: int) -> Result:
        return self.results[i]


def _num(x: float | None) -> float | None:
    # A photo found by name before it has a vector has no score: null, never NaN (not JSON).
    return None if x is None or x != x else round(x, 6)


def _result_json(r: Result) -> dict[str, Any]:
    p = r.photo
    return {
        "rank": r.rank,
        "path": str(p.path),
        "relevance": _num(r.relevance),
        "match": r.match,
        "refined": r.refined,
        "score": _num(r.score),
        "fast_score": _num(r.fast_score),
        "rerank_score": _num(r.rerank_score),
        "matched": r.matched,
        "taken": p.taken,
        "format": p.format,
        "width": p.width,
        "height": p.height,
        "online": p.online,
    }


def _unit(v: NDArray[np.float32]) -> NDArray[np.float32]:
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else v.astype(np.float32)


class SearchSource(Protocol):
    """What a :class:`Searcher` needs of a library (:class:`photosearch.library.Library` is
    one): its catalog, the active models, and the rerank depth and β to use."""

    @property
    def catalog(self) -> Catalog: ...

    def models(self) -> ActiveModels: ...

    def rerank_defaults(
        self, k: int | None = None, beta: float | None = None
    ) -> tuple[int, float]: ...

    def match_threshold(self) -> float | None: ...


@dataclass(frozen=True)
class _Encoded:
    """A query turned into vectors: what to search for, and what its negative terms are
    compared with (``reference``: the text's own vector, or "a photo" for an image)."""

    text: str
    vector: NDArray[np.float32]
    reference: NDArray[np.float32] | None
    negatives: NDArray[np.float32]
    like_id: int | None
    words_read: int | None = None  # the text was too long: the words the model read


@dataclass
class _Listing:
    """The candidates of one query, ready to be listed in any content order: name matches
    first (by semantic score), then content matches."""

    query: Query
    k_rerank: int
    beta: float
    names_ranked: list[int]
    content_ids: set[int]
    fast: dict[int, float]
    details: dict[int, PhotoDetails]
    calibration: Calibration | None
    calibration_note: str | None
    threshold: float | None

    def build(
        self, content: list[tuple[int, float, float | None]], timing: Timing, **kw: Any
    ) -> Results:
        """Results from content matches (id, score, h̄ or None) in their final order, each with
        its relevance and whether it passes the cut-off; then sorted as the query asks."""
        scored = {i: (score, h) for i, score, h in content}
        rows: list[Result] = []
        seen: set[int] = set()
        for i in self.names_ranked:
            if i in self.details and i not in seen:
                seen.add(i)
                f = self.fast.get(i, float("nan"))
                score, h = scored.get(i, (f, None))
                match = "both" if i in self.content_ids else "name"
                rows.append(Result(0, self.details[i], score, f, h, match))
        for i, score, h in content:
            if i in self.details and i not in seen:
                seen.add(i)
                rows.append(Result(0, self.details[i], score, self.fast[i], h, "content"))
        rows = self._rated(rows[: self.query.n])
        if self.query.sort == "date":
            good = sorted((r for r in rows if r.match), key=lambda r: r.photo.date, reverse=True)
            rows = good + [r for r in rows if not r.match]
        rows = [replace(r, rank=n + 1) for n, r in enumerate(rows)]
        return Results(
            self.query,
            rows,
            timing,
            rerank=self.k_rerank,
            beta=self.beta,
            threshold=self.threshold,
            calibration_note=self.calibration_note,
            **kw,
        )

    def _rated(self, rows: list[Result]) -> list[Result]:
        """Each row's relevance (shown non-increasing down the list) and cut-off."""
        cal, t = self.calibration, self.threshold
        if cal is None or t is None:
            return rows
        raw = [cal.probability(r.fast_score, r.rerank_score) for r in rows]
        names = sum(1 for r in rows if r.matched != "content")
        shown = displayed(raw, names)
        return [replace(r, relevance=p, match=p >= t) for r, p in zip(rows, shown, strict=True)]


class Searcher:
    """Runs queries against one library (its catalog, index, encoders and reranker)."""

    def __init__(self, library: SearchSource):
        self.library = library
        self._activity = threading.Lock()
        self._running = 0
        self._last_end = float("-inf")

    def idle_seconds(self) -> float:
        """Seconds since the last query ended (0 while one runs): background work (the
        reranker's token pass) waits while the user is searching."""
        with self._activity:
            return 0.0 if self._running else time.monotonic() - self._last_end

    # -- pieces ----------------------------------------------------------------------------

    def _example(self, like: Path, models: ActiveModels) -> tuple[NDArray[np.float32], int | None]:
        """The example image's vector, and its photo id when it is in the library."""
        catalog, pack = self.library.catalog, models.pack
        path = Path(like).expanduser()
        rec = catalog.photo_by_path(path.resolve()) or catalog.photo_by_path(path)
        if rec is not None:
            for _, vecs in catalog.vectors(pack.id, pack.embedding_dim, ids=[rec.id]):
                return _unit(vecs[0].astype(np.float32)), rec.id
        pixels, _ = load_for_model(path, pack.image)
        encoder = models.image_encoder
        return _unit(encoder.encode(pixels[None])[0]), rec.id if rec else None

    def _vectors(self, ids: Sequence[int], models: ActiveModels) -> dict[int, NDArray[np.float32]]:
        pack = models.pack
        out: dict[int, NDArray[np.float32]] = {}
        for got, vecs in self.library.catalog.vectors(pack.id, pack.embedding_dim, ids=ids):
            out.update(zip(got.tolist(), vecs.astype(np.float32), strict=True))
        return out

    def settings(self, query: Query) -> tuple[int, float]:
        """The rerank depth and β this query runs with (its own, else the library's)."""
        return self.library.rerank_defaults(query.rerank, query.beta)

    def _encode(self, query: Query, models: ActiveModels) -> _Encoded:
        """The query's vector: its text's, its example image's, or their normalised sum."""
        text = query.text.strip()
        texts = ([text] if text else []) + [t for t in query.exclude if t.strip()]
        if not text and query.exclude:
            texts = [IMAGE_ONLY_REFERENCE, *texts]
        if texts:
            encoded = models.text_encoder.encode(texts)
        else:
            encoded = np.zeros((0, models.pack.embedding_dim), np.float32)
        vecs = [_unit(encoded[0])] if text else []
        like_id = None
        if query.like is not None:
            img, like_id = self._example(query.like, models)
            vecs.append(img)
        reference = encoded[0] if len(encoded) else None
        read = models.text_encoder.words_read(text) if text else None
        return _Encoded(text, _unit(np.sum(vecs, axis=0)), reference, encoded[1:], like_id, read)

    def _name_matches(self, query: Query, enc: _Encoded, models: ActiveModels) -> list[int]:
        """Photos whose file or folder names hold every word of the text, without the example
        photo and those a negative term describes better than the query."""
        if not (query.names and enc.text):
            return []
        # More than n: ties in bm25 (a folder's photos) are then ordered by content.
        found = self.library.catalog.match_names(
            enc.text.split(), filters=query.filters, limit=max(10 * query.n, 100)
        )
        ids = [i for i in found if i != enc.like_id]
        if ids and len(enc.negatives):
            stored = self._vectors(ids, models)
            ids = [
                i
                for i in ids
                if i not in stored or not _excluded(stored[i], enc.reference, enc.negatives)
            ]
        return ids

    def _listing(
        self,
        query: Query,
        settings: tuple[int, float],
        enc: _Encoded,
        pairs: list[tuple[int, float]],
        name_ids: list[int],
        models: ActiveModels,
    ) -> _Listing:
        fast = dict(pairs)
        missing = [i for i in name_ids if i not in fast]
        if missing:
            vecs = self._vectors(missing, models).items()
            fast.update((i, float(v @ enc.vector)) for i, v in vecs)
        # A photo with no vector yet (still being indexed) can match by name: it ranks last.
        names_ranked = sorted(name_ids, key=lambda i: -fast.get(i, -np.inf))[: query.n]
        details = self.library.catalog.details([i for i, _ in pairs] + names_ranked)
        cal, why = for_manifest(models.pack.manifest)
        if query.like is not None:  # the curves were fitted on text queries: ranks only
            cal, why = None, None
        k_rerank, beta = settings
        if cal is not None and cal.refined is not None and k_rerank > 0 and cal.beta != beta:
            why = f"relevance is calibrated for beta {cal.beta:g}; with beta {beta:g} {RANKS_ONLY}"
            cal = None
        threshold = None
        if cal is not None:
            threshold = query.threshold
            if threshold is None:
                threshold = self.library.match_threshold()
            if threshold is None:
                threshold = cal.threshold
        return _Listing(
            query,
            k_rerank,
            beta,
            names_ranked,
            {i for i, _ in pairs},
            fast,
            details,
            cal,
            why,
            threshold,
        )

    # -- the query -------------------------------------------------------------------------

    def search(
        self,
        query: Query,
        *,
        on_fast: Callable[[Results], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Results:
        """Run ``query`` and return its final list.

        When a refinement is to be tried (``rerank`` > 0, a text, some results), the fast list
        first goes to ``on_fast`` (if given); the final list is then the refined one, or the
        fast one again with :attr:`Results.note` saying why refining was not possible. With
        nothing to refine, the fast list is the final list and ``on_fast`` is not called.
        Raises :class:`Cancelled` if ``cancel`` is set before the refinement ends.
        """
        with self._activity:
            self._running += 1
        try:
            return self._search(query, on_fast, cancel)
        finally:
            with self._activity:
                self._running -= 1
                self._last_end = time.monotonic()

    def _search(
        self,
        query: Query,
        on_fast: Callable[[Results], None] | None,
        cancel: threading.Event | None,
    ) -> Results:
        query.check()
        if query.filters.folder is not None:  # the catalog holds resolved paths
            query = replace(
                query, filters=replace(query.filters, folder=folder_filter(query.filters.folder))
            )
        settings = self.settings(query)
        t0 = time.perf_counter()
        # One consistent set for the whole query, even if a pack switch swaps them meanwhile.
        models = self.library.models()
        enc = self._encode(query, models)
        t1 = time.perf_counter()
        catalog = self.library.catalog
        allowed = catalog.filtered_ids(models.pack.id, query.filters) if query.filters else None
        want = max(query.n, settings[0])
        pairs = self._content(
            enc.vector, want, enc.like_id, allowed, enc.reference, enc.negatives, models
        )
        t2 = time.perf_counter()
        name_ids = self._name_matches(query, enc, models)
        t3 = time.perf_counter()
        listing = self._listing(query, settings, enc, pairs, name_ids, models)
        fast_timing = Timing(
            encode_ms=(t1 - t0) * 1000,
            search_ms=(t2 - t1) * 1000,
            names_ms=(t3 - t2) * 1000,
            total_ms=(time.perf_counter() - t0) * 1000,
        )
        fast_results = listing.build(
            [(i, s, None) for i, s in pairs],
            fast_timing,
            # A damaged reranker can refine once repaired: the note says why it did not.
            can_refine=models.pack.reranker is not None or models.pack.reranker_problem is not None,
            words_read=enc.words_read,
        )
        k_rerank = settings[0]
        if k_rerank <= 0 or not pairs:  # nothing to refine: the fast list is the final one
            return replace(fast_results, rerank=0)
        if not enc.text:  # said only to whoever asked for a depth: `similar` did not
            asked = query.rerank is not None and query.rerank > 0
            note = "refinement needs a description (an image-only query is not re-ranked)"
            return replace(fast_results, rerank=0, note=note if asked else None)
        # The fast list is shown before the reranker is even loaded (its first load takes
        # seconds); then the refinement runs, and any failure of it leaves the fast list.
        if on_fast is not None:
            on_fast(replace(fast_results, pending=True))
        return self._refine(enc.text, pairs, listing, fast_results, models, cancel, t0)

    def _refine(
        self,
        text: str,
        pairs: list[tuple[int, float]],
        listing: _Listing,
        fast_results: Results,
        models: ActiveModels,
        cancel: threading.Event | None,
        t0: float,
    ) -> Results:
        """The top ``rerank`` content matches re-ordered by ``fast + β·h̄``; the rest keep
        their fast order below them. Any failure leaves the fast list, with a note."""
        check(cancel)
        t4 = time.perf_counter()
        reranker, reason = models.reranker_or_reason()
        if reranker is None:
            return replace(fast_results, rerank=0, note=reason)
        check(cancel)
        head = [(i, s) for i, s in pairs[: listing.k_rerank] if i in listing.details]
        try:
            hbar, stats = reranker.score(text, [listing.details[i] for i, _ in head], cancel)
        except Cancelled:
            raise
        except (PhotosearchError, OSError, MemoryError) as e:
            log.warning("refinement failed: %s", e)
            return replace(fast_results, rerank=0, note=f"refinement failed ({e}): fast results")
        check(cancel)
        refined, unread = [], []
        for (i, s), h in zip(head, hbar.tolist(), strict=True):
            if not np.isfinite(h):
                unread.append((i, s, None))
            else:
                refined.append((i, s + listing.beta * h, h))
        refined.sort(key=lambda r: -r[1])
        rest = [(i, s, None) for i, s in pairs[len(head) :]]
        t5 = time.perf_counter()
        timing = replace(fast_results.timing, rerank_ms=(t5 - t4) * 1000, total_ms=(t5 - t0) * 1000)
        note = None
        if stats.unreadable:
            note = (
                f"{stats.unreadable} of the top {len(head)} could not be read for refinement "
                "(missing, offline or damaged); they follow the refined ones"
            )
        return listing.build(
            refined + unread + rest,
            timing,
            refined=True,
            device=reranker.device,
            rerank_stats=stats,
            note=note,
            words_read=fast_results.words_read,
        )

    def _content(
        self,
        qv: NDArray[np.float32],
        want: int,
        like_id: int | None,
        allowed: NDArray[np.int64] | None,
        reference: NDArray[np.float32] | None,
        negatives: NDArray[np.float32],
        models: ActiveModels,
    ) -> list[tuple[int, float]]:
        """The ``want`` best content matches, (id, fast score), without the example photo and
        without photos a negative term describes better than the query."""
        index = models.index
        if not len(index) or (allowed is not None and not len(allowed)):
            return []
        limit = len(index) if allowed is None else min(len(index), len(allowed))
        fetch = want + 1 if not len(negatives) else want * NEGATIVE_OVERFETCH + 50
        while True:
            fetch = min(fetch, limit)
            scores, ids = index.search(qv[None, :], fetch, allowed=allowed)
            pairs = [
                (int(i), float(s))
                for i, s in zip(ids[0], scores[0], strict=True)
                if i >= 0 and int(i) != like_id
            ]
            if len(negatives) and pairs:
                stored = self._vectors([i for i, _ in pairs], models)
                pairs = [
                    (i, s)
                    for i, s in pairs
                    if i in stored and not _excluded(stored[i], reference, negatives)
                ]
            # Negative terms may have dropped too many: fetch deeper until enough or all.
            if len(pairs) >= want or fetch >= limit:
                return pairs[:want]
            fetch *= 4


def _excluded(
    v: NDArray[np.float32], reference: NDArray[np.float32] | None, negatives: NDArray[np.float32]
) -> bool:
    """Whether a negative term describes this photo better than the query's text does."""
    return reference is not None and float((negatives @ v).max()) > float(reference @ v)


def parse_date(text: str) -> str:
    """A user's date ("2019", "2019-05", "2019-05-03") checked and returned as an ISO prefix."""
    import datetime as _dt

    t = text.strip()
    for fmt, width in (("%Y-%m-%d", 10), ("%Y-%m", 7), ("%Y", 4)):
        try:
            _dt.datetime.strptime(t, fmt)
        except ValueError:
            continue
        if len(t) == width:
            return t
    raise QueryError(f"not a date: {text!r} (use YYYY, YYYY-MM or YYYY-MM-DD)")


# Pillow names a phone's multi-picture JPEG "MPO": it is a JPEG to the person asking.
FORMAT_NAMES: dict[str, tuple[str, ...]] = {
    "jpg": ("JPEG", "MPO"),
    "jpeg": ("JPEG", "MPO"),
    "png": ("PNG",),
    "webp": ("WEBP",),
    "heic": ("HEIF",),
    "heif": ("HEIF",),
    "avif": ("AVIF",),
    "tif": ("TIFF",),
    "tiff": ("TIFF",),
    "gif": ("GIF",),
    "bmp": ("BMP",),
}


def parse_formats(names: Sequence[str]) -> tuple[str, ...]:
    """File types as users write them ("jpg", "HEIC") to the catalog's format names."""
    out = []
    for name in names:
        key = name.strip().lower().lstrip(".")
        if key not in FORMAT_NAMES:
            raise QueryError(
                f"unknown file type {name!r} (known: {', '.join(sorted(FORMAT_NAMES))})"
            )
        out.extend(FORMAT_NAMES[key])
    return tuple(dict.fromkeys(out))


def folder_filter(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    return p.resolve() if p.exists() else p.absolute()


def _where(path: str | None, cwd: str) -> Path | None:
    """A path as the asking process meant it (relative to its working folder)."""
    if not path:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(cwd) / p


def query_from_json(d: dict[str, Any]) -> Query:
    """A query described in plain JSON values, as the command line builds it: ``text``,
    ``like``, ``exclude``, ``folder``, ``after``, ``before``, ``type``, ``n``, ``rerank``,
    ``beta``, ``names``, ``threshold``, ``sort``; paths relative to ``cwd`` (the asker's). The
    same description runs in the command's own process or in one that answers it over the
    query socket."""
    cwd = d.get("cwd") or os.getcwd()
    folder = _where(d.get("folder"), cwd)
    filters = Filters(
        folder=folder,  # resolved by Searcher.search, as every query's folder is
        after=parse_date(d["after"]) if d.get("after") else None,
        before=parse_date(d["before"]) if d.get("before") else None,
        formats=parse_formats(d.get("type") or []),
    )
    return Query(
        text=d.get("text") or "",
        like=_where(d.get("like"), cwd),
        exclude=tuple(d.get("exclude") or ()),
        filters=filters,
        n=int(d.get("n", 20)),
        rerank=d.get("rerank"),
        beta=d.get("beta"),
        names=bool(d.get("names", True)),
        threshold=d.get("threshold"),
        sort=d.get("sort") or "relevance",
    )
