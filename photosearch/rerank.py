"""The slow, accurate stage: a CoCa-style decoder reads each candidate photo against the query.

``h(x, y) = Σ_l log p(y_l | y_<l, x)`` from the pack's two reranker graphs: one turns pixels into
the image tokens the decoder cross-attends to, the other scores one query against a batch of
those tokens. Runs on ONNX Runtime (a GPU provider when one really works), never on torch.

:class:`Reranker` is what search uses: it scores candidate photos by the length-normalised
``h̄ = h / tokens``, reading each photo's image tokens from a bounded on-disk
:class:`TokenCache` (keyed by content, so a moved photo keeps its tokens) or computing them
from the file. Tokens are stored as float16 and always scored from the float16 copy, so a
photo scores the same whether its tokens were just computed or came from the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from photosearch.catalog import PhotoDetails
from photosearch.encoders import (
    create_session,
    device_name,
    reverse_caption,
    run_in_batches,
    trim_padding,
)
from photosearch.errors import EncoderError, PackError, PhotosearchError
from photosearch.imaging import ImageError, load_for_model
from photosearch.modelpack import ModelPack
from photosearch.tokenizer import Tokenizer

log = logging.getLogger(__name__)

#: Default bound of the image-token cache. CoCa ViT-B-32 tokens take 256 × 512 × 2 bytes
#: (256 KiB) a photo, so 1 GiB keeps about 4,000 photos: the top results of many queries.
DEFAULT_CACHE_BYTES = 1 << 30
CACHE_FILE = "rerank-tokens.sqlite3"
#: Candidates scored in one run of the scoring graph: the usual depths (20–100) in one run,
#: the deepest (1000) in eight. The absorbed graph's memory per candidate is small (its largest
#: intermediate is heads × query length × tokens floats: 80 KiB for CoCa ViT-B-32).
SCORE_BATCH = 128


class Cancelled(PhotosearchError):
    """A newer query (or the user) cancelled this one."""


def check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


ImageTokens = NDArray[np.float32]  # [N, tokens, token_dim]


DIRECTIONS = ("forward", "backward")


class CrossAttentionScorer:
    """Scores how well each photo explains a query: log-likelihood and token count.

    With a pack that has a backward scorer, both directions are read by default and summed:
    ``h = h_fwd + h_bwd`` over twice the tokens, so ``h / tokens`` stays a mean per-token
    log-probability. ``directions`` picks one (benchmarks compare them).
    """

    def __init__(
        self,
        pack: ModelPack,
        *,
        device: str = "auto",
        threads: int | None = None,
        batch_size: int = 16,
        score_batch: int = SCORE_BATCH,
        directions: Sequence[str] | None = None,
    ):
        spec = pack.reranker
        if spec is None:
            raise PackError("this pack has no reranker", pack=str(pack.path))
        self.spec = spec
        self.batch_size = batch_size
        self.score_batch = max(1, score_batch)
        self.image_session = create_session(
            pack.path / spec.image_file, device=device, threads=threads
        )
        available = ("forward", "backward") if spec.backward_file else ("forward",)
        wanted = tuple(directions) if directions is not None else available
        unknown = [d for d in wanted if d not in available]
        if unknown or not wanted:
            raise PackError(
                f"this pack's reranker reads {', '.join(available)}, not {', '.join(unknown)}",
                pack=str(pack.path),
            )
        self.directions = wanted
        files = {"forward": spec.scorer_file, "backward": spec.backward_file}
        self.sessions = {}
        for d in wanted:
            file = files[d]
            assert file is not None
            sess = create_session(pack.path / file, device=device, threads=threads)
            got = [i.name for i in sess.get_inputs()]
            if got != ["image_tokens", "input_ids"]:
                raise PackError(f"unexpected scorer inputs {got}", pack=str(pack.path), file=file)
            self.sessions[d] = (file, sess)
        self.scorer_session = self.sessions[wanted[0]][1]
        self.tokenizer = Tokenizer.from_config(pack.path, spec.tokenizer)
        self.pad_id = int(spec.tokenizer.get("pad_id", 0))
        self.providers: list[str] = self.scorer_session.get_providers()

    @property
    def device(self) -> str:
        return device_name(self.providers)

    def image_tokens(self, pixels: NDArray[np.float32]) -> ImageTokens:
        """Preprocessed pixels (per ``spec.image``) to the tokens the decoder attends to."""
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        h, w = self.spec.image.size
        if pixels.ndim != 4 or pixels.shape[1:] != (3, h, w):
            raise ValueError(f"pixels must have shape (N, 3, {h}, {w}), got {pixels.shape}")
        if len(pixels) == 0:
            return np.zeros((0, self.spec.tokens, self.spec.token_dim), np.float32)
        return run_in_batches(
            self.image_session,
            self.spec.image_file,
            "image_tokens",
            "pixels",
            pixels,
            self.batch_size,
        )

    def query_ids(self, text: str) -> NDArray[np.int64]:
        """One query's ids, [1, length], cut after its end token (the graph allows any length)."""
        return trim_padding(self.tokenizer([text]), self.pad_id)

    def score(
        self, text: str, tokens: ImageTokens
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Log-likelihood of ``text`` given each image, and the number of scored tokens (both
        summed over the directions read)."""
        each = self.score_each(text, tokens)
        ll = np.sum([v[0] for v in each.values()], axis=0, dtype=np.float32)
        n = np.sum([v[1] for v in each.values()], axis=0, dtype=np.float32)
        return ll, n

    def score_each(
        self, text: str, tokens: ImageTokens
    ) -> dict[str, tuple[NDArray[np.float32], NDArray[np.float32]]]:
        """Per direction read: log-likelihood of ``text`` given each image, and token counts."""
        ids = self.query_ids(text)
        out = {}
        for d in self.directions:
            file, sess = self.sessions[d]
            q = ids if d == "forward" else reverse_caption(ids, self.pad_id)
            out[d] = self._run(file, sess, q, tokens)
        return out

    def _run(
        self, file: str, sess: object, ids: NDArray[np.int64], tokens: ImageTokens
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        lls, counts = [], []
        for start in range(0, len(tokens), self.score_batch):
            batch = np.ascontiguousarray(tokens[start : start + self.score_batch], np.float32)
            try:
                ll, n = sess.run(None, {"image_tokens": batch, "input_ids": ids})  # type: ignore[attr-defined]
            except Exception as e:
                raise EncoderError(f"{file} failed on a batch: {e}") from e
            lls.append(ll)
            counts.append(n)
        if not lls:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return np.concatenate(lls), np.concatenate(counts).astype(np.float32)


class TokenCache:
    """Image tokens on disk, least recently used out first, within ``max_bytes``.

    A plain cache: a damaged or unreadable file is replaced by an empty one and every failure
    is a miss, never an error for the search. Keys are (reranker id, photo content hash).
    """

    def __init__(self, path: Path, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._open()
        except sqlite3.OperationalError as e:  # locked, unwritable, …: no cache this time
            log.warning("token cache %s cannot be opened (%s); not caching", self.path, e)
        except sqlite3.DatabaseError as e:  # not a database, malformed: it is only a cache
            log.warning("token cache %s is damaged (%s); starting an empty one", self.path, e)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            try:
                self._db = self._open()
            except sqlite3.Error as e2:
                log.warning("token cache disabled: %s", e2)

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise sqlite3.OperationalError(f"cannot create {self.path.parent}: {e}") from e
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a cache: losing the last writes is fine
            db.execute(
                "CREATE TABLE IF NOT EXISTS tokens (model TEXT NOT NULL, hash TEXT NOT NULL, "
                "shape TEXT NOT NULL, data BLOB NOT NULL, bytes INTEGER NOT NULL, "
                "used REAL NOT NULL, PRIMARY KEY (model, hash)) WITHOUT ROWID"
            )
            db.execute("CREATE INDEX IF NOT EXISTS tokens_used ON tokens(used)")
            db.execute("SELECT count(*) FROM tokens").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def get(self, model: str, hashes: Sequence[str]) -> dict[str, NDArray[np.float16]]:
        """The cached tokens of these photos (by content hash); marks them as just used."""
        out: dict[str, NDArray[np.float16]] = {}
        if not hashes:
            return out
        with self._lock:
            if self._db is None:
                return out
            try:
                self._read(model, hashes, out)
                if out:
                    self._touch(model, list(out))
            except sqlite3.Error as e:
                log.warning("token cache read failed: %s", e)
        return out

    def _read(self, model: str, hashes: Sequence[str], out: dict[str, NDArray[np.float16]]) -> None:
        """Put the cached tokens of these hashes into ``out``, 500 hashes a query (SQLite
        limits a statement's parameters); an entry of the wrong size is skipped."""
        assert self._db is not None
        for start in range(0, len(hashes), 500):
            part = list(hashes[start : start + 500])
            rows = self._db.execute(
                "SELECT hash, shape, data FROM tokens WHERE model = ? AND hash IN "
                f"({','.join('?' * len(part))})",
                [model, *part],
            ).fetchall()
            for h, shape, data in rows:
                dims = tuple(int(d) for d in shape.split("x"))
                arr = np.frombuffer(data, np.float16)
                if arr.size == int(np.prod(dims)):
                    out[h] = arr.reshape(dims)

    def _touch(self, model: str, hashes: list[str]) -> None:
        """Mark these entries as just used, in one transaction: what the LRU trim goes by."""
        assert self._db is not None
        now = time.time()
        with self._db:
            self._db.executemany(
                "UPDATE tokens SET used = ? WHERE model = ? AND hash = ?",
                [(now, model, h) for h in hashes],
            )

    def put(self, model: str, tokens: dict[str, NDArray[np.float16]]) -> None:
        """Store tokens (float16), then trim the least recently used beyond ``max_bytes``."""
        if not tokens or self.max_bytes <= 0:
            return
        now = time.time()
        rows = [
            (model, h, "x".join(map(str, t.shape)), np.ascontiguousarray(t, np.float16).tobytes())
            for h, t in tokens.items()
        ]
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO tokens(model, hash, shape, data, bytes, used) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(m, h, sh, d, len(d), now) for m, h, sh, d in rows],
                )
                self._trim(now)
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                log.warning("token cache write failed (%s); the tokens are not kept", e)
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")

    def _trim(self, now: float) -> None:
        """Remove the least recently used entries beyond ``max_bytes``; never those just put
        (a batch larger than the whole cache then overfills it until the next put)."""
        assert self._db is not None
        total = self._db.execute("SELECT coalesce(sum(bytes), 0) FROM tokens").fetchone()[0]
        if total <= self.max_bytes:
            return
        excess = total - self.max_bytes
        # Oldest first, until what is removed covers the excess.
        cut = self._db.execute(
            "SELECT used FROM (SELECT used, sum(bytes) OVER (ORDER BY used, hash) AS run "
            "FROM tokens WHERE used < ?) WHERE run >= ? ORDER BY used LIMIT 1",
            (now, excess),
        ).fetchone()
        if cut is not None:
            self._db.execute("DELETE FROM tokens WHERE used <= ? AND used < ?", (cut[0], now))
        else:
            self._db.execute("DELETE FROM tokens WHERE used < ?", (now,))

    def stats(self) -> tuple[int, int]:
        """(photos, bytes) held."""
        with self._lock:
            if self._db is None:
                return 0, 0
            n, b = self._db.execute(
                "SELECT count(*), coalesce(sum(bytes), 0) FROM tokens"
            ).fetchone()
        return int(n), int(b)

    def clear(self) -> None:
        with self._lock:
            if self._db is None:
                return
            self._db.execute("DELETE FROM tokens")
            self._db.execute("VACUUM")


@dataclass(frozen=True)
class RerankStats:
    """What one re-ranking did: photos scored, tokens from the cache, computed, unreadable."""

    scored: int
    cached: int
    computed: int
    unreadable: int
    tokens_ms: float
    score_ms: float


class Reranker:
    """Scores candidate photos against a query by the pack's cross-attention decoder."""

    def __init__(
        self,
        pack: ModelPack,
        *,
        device: str = "auto",
        threads: int | None = None,
        cache: TokenCache | None = None,
        batch_size: int = 16,
        decode_threads: int = 2,
        score_batch: int = SCORE_BATCH,
    ):
        self.scorer = CrossAttentionScorer(
            pack, device=device, threads=threads, batch_size=batch_size, score_batch=score_batch
        )
        self.spec = self.scorer.spec
        self.cache = cache
        self.batch_size = batch_size
        self.decode_threads = max(1, decode_threads)
        # Tokens depend on the reranker's image graph and the preprocessing that feeds it.
        image = pack.manifest["reranker"]["image"]
        prep = hashlib.sha256(json.dumps(image, sort_keys=True).encode()).hexdigest()[:8]
        graph = pack.manifest["files"][self.spec.image_file]["sha256"][:12]
        self.model_id = f"{pack.name}@{graph}.{prep}"

    @property
    def device(self) -> str:
        return self.scorer.device

    @property
    def providers(self) -> list[str]:
        return self.scorer.providers

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def _compute(
        self, photos: Sequence[PhotoDetails], cancel: threading.Event | None
    ) -> dict[int, NDArray[np.float16] | None]:
        """Decode and tokenise photos: id → float16 tokens (None if the file cannot be read).

        Every decode is queued at once, so the decode threads read the next batch's files
        while the image graph encodes this one. Each batch is cached as soon as it is done, so
        a refinement cancelled by the next keystroke still leaves its work for the query that
        replaced it.
        """
        out: dict[int, NDArray[np.float16] | None] = {}
        pool = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="rerank-decode")
        try:
            decoded = [pool.submit(self._pixels, p, cancel) for p in photos]
            for start in range(0, len(photos), self.batch_size):
                check(cancel)
                part = photos[start : start + self.batch_size]
                pixels = [f.result() for f in decoded[start : start + self.batch_size]]
                check(cancel)
                out.update(self._tokenise(part, pixels))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return out

    def _pixels(
        self, p: PhotoDetails, cancel: threading.Event | None
    ) -> NDArray[np.float32] | None:
        """One photo decoded for the reranker's image graph; None when it cannot be read (or
        the query was cancelled meanwhile)."""
        if cancel is not None and cancel.is_set():
            return None
        if not p.online:  # an unplugged drive or a stale share: do not even try
            return None
        try:
            return load_for_model(p.path, self.spec.image)[0]
        except (ImageError, OSError) as e:
            log.info("rerank: cannot read %s: %s", p.path, e)
            return None

    def _tokenise(
        self, part: Sequence[PhotoDetails], pixels: list[NDArray[np.float32] | None]
    ) -> dict[int, NDArray[np.float16] | None]:
        """One batch's image tokens by photo id (None where unreadable), cached at once."""
        out: dict[int, NDArray[np.float16] | None] = {}
        good = [i for i, px in enumerate(pixels) if px is not None]
        for i, px in enumerate(pixels):
            if px is None:
                out[part[i].id] = None
        if not good:
            return out
        batch = np.stack([pixels[i] for i in good])
        tokens = self.scorer.image_tokens(batch).astype(np.float16)
        fresh = {}
        for j, i in enumerate(good):
            out[part[i].id] = tokens[j]
            if part[i].content_hash:
                fresh[part[i].content_hash] = tokens[j]
        if self.cache is not None:
            self.cache.put(self.model_id, fresh)
        return out

    def tokens(
        self, photos: Sequence[PhotoDetails], cancel: threading.Event | None = None
    ) -> tuple[dict[int, NDArray[np.float16] | None], int]:
        """Image tokens of these photos, from the cache or computed (and then cached).

        Returns (id → tokens or None when unreadable, how many came from the cache).
        """
        keyed = [p for p in photos if p.content_hash]
        cached = (
            self.cache.get(self.model_id, [p.content_hash for p in keyed])  # type: ignore[misc]
            if self.cache is not None
            else {}
        )
        out: dict[int, NDArray[np.float16] | None] = {}
        missing = []
        for p in photos:
            hit = cached.get(p.content_hash) if p.content_hash else None
            if hit is not None and hit.shape == (self.spec.tokens, self.spec.token_dim):
                out[p.id] = hit
            else:
                missing.append(p)
        hits = len(out)
        if missing:
            out.update(self._compute(missing, cancel))
        return out, hits

    def score(
        self,
        text: str,
        photos: Sequence[PhotoDetails],
        cancel: threading.Event | None = None,
    ) -> tuple[NDArray[np.float32], RerankStats]:
        """h̄ (mean log-probability per query token) of each photo; NaN where unreadable."""
        t0 = time.perf_counter()
        tokens, hits = self.tokens(photos, cancel)
        t1 = time.perf_counter()
        hbar = np.full(len(photos), np.nan, np.float32)
        rows = [i for i, p in enumerate(photos) if tokens.get(p.id) is not None]
        for start in range(0, len(rows), self.scorer.score_batch):
            check(cancel)
            part = rows[start : start + self.scorer.score_batch]
            batch = np.stack([tokens[photos[i].id] for i in part]).astype(np.float32)
            ll, count = self.scorer.score(text, batch)
            hbar[part] = ll / np.maximum(count, 1)
        t2 = time.perf_counter()
        stats = RerankStats(
            scored=len(rows),
            cached=hits,
            computed=len(photos) - hits - (len(photos) - len(rows)),
            unreadable=len(photos) - len(rows),
            tokens_ms=(t1 - t0) * 1000,
            score_ms=(t2 - t1) * 1000,
        )
        return hbar, stats

    def precompute(
        self,
        photos: Sequence[PhotoDetails],
        cancel: threading.Event | None = None,
        progress: Callable[[int, int], None] | None = None,
        between: Callable[[], None] | None = None,
    ) -> int:
        """Fill the cache with these photos' tokens (those not cached yet); returns how many
        were computed. Stops early when cancelled. ``between`` runs before each batch (it
        may wait: the library's token pass pauses there while the user searches)."""
        if self.cache is None:
            return 0
        done = 0
        step = self.batch_size if between is not None else self.batch_size * 4
        for start in range(0, len(photos), step):
            if between is not None:
                between()
            if cancel is not None and cancel.is_set():
                break
            part = photos[start : start + step]
            try:
                _, hits = self.tokens(part, cancel)
            except Cancelled:
                break
            done += len(part) - hits
            if progress is not None:
                progress(min(start + step, len(photos)), len(photos))
        return done
