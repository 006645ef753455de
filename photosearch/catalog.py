"""The catalog: SQLite (WAL) holding folders, photos, their vectors and errors — the truth.

The FAISS index is derived from the vectors stored here and can always be rebuilt. Paths are
stored as the file system's own bytes (``os.fsencode``), so a name that is not valid UTF-8 is
kept exactly and can be opened again. Every write is one transaction: a kill at any instant
leaves the catalog as it was before or after that write, never in between.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from photosearch.errors import PhotosearchError
from photosearch.records import (
    FAILED,
    INDEXED,
    PENDING,
    PHOTO_DATE_SQL,
    Encoded,
    Failed,
    Filters,
    Folder,
    PhotoDetails,
    PhotoRecord,
    fs_bytes,
    fs_path,
)
from photosearch.schema import MIGRATIONS, SCHEMA_VERSION, name_text

# The records are defined beside the schema's rows; callers take them from here.
__all__ = [
    "FAILED",
    "INDEXED",
    "PENDING",
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogError",
    "Encoded",
    "Failed",
    "Filters",
    "Folder",
    "PhotoDetails",
    "PhotoRecord",
    "fs_bytes",
    "fs_path",
    "name_text",
]

log = logging.getLogger(__name__)


class CatalogError(PhotosearchError):
    """The catalog cannot be opened or is from an unknown (newer) version."""


# Ids bound in one ``IN (…)`` query (see Catalog._query_by_ids).
_IDS_PER_QUERY = 500

_PHOTO_COLUMNS = "p.id, p.path, p.folder_id, p.size, p.mtime_ns, p.content_hash, p.state"
# Photos still needing a vector from the pack given as parameter 1: not failed for good (a
# transient failure is retried), and in a folder that is online.
_PENDING_WHERE = (
    "FROM photos p JOIN folders f ON f.id = p.folder_id "
    "WHERE f.state = 'ok' AND NOT EXISTS "
    "(SELECT 1 FROM vectors v WHERE v.photo_id = p.id AND v.pack = ?1) "
    "AND (p.state != 'error' OR EXISTS "
    "(SELECT 1 FROM errors e WHERE e.photo_id = p.id AND e.transient = 1))"
)


class Catalog:
    """One library's SQLite catalog. Thread-safe: calls are serialised on one connection."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
        except sqlite3.Error as e:
            raise CatalogError(f"{self.path}: cannot open the catalog: {e}") from e
        try:
            self._conn = conn
            # A row that REPLACE deletes fires its delete triggers only with this on: a photo
            # replaced that way still leaves the name index.
            conn.execute("PRAGMA recursive_triggers=ON")
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed batch survives even a power cut, not only a killed process.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.create_function("photosearch_name", 2, name_text, deterministic=True)
            # The name triggers call that function; SQLite builds that distrust schemas by
            # default would refuse it ("unsafe use"). The schema is ours.
            conn.execute("PRAGMA trusted_schema=ON")
            self._lock = threading.RLock()
            self._migrate()
        except BaseException as e:
            conn.close()
            if isinstance(e, sqlite3.DatabaseError):
                raise CatalogError(f"{self.path}: cannot open the catalog: {e}") from e
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error)."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _query_by_ids(
        self, sql: str, ids: Sequence[int], params: Sequence[Any] = ()
    ) -> Iterator[list[tuple]]:
        """Run ``sql`` once for each run of up to :data:`_IDS_PER_QUERY` ``ids`` and yield
        each run's rows: its ``{ids}`` becomes that run's ``?, ?, …`` and the ids follow
        ``params`` (SQLite limits the parameters of one statement)."""
        for start in range(0, len(ids), _IDS_PER_QUERY):
            part = [int(i) for i in ids[start : start + _IDS_PER_QUERY]]
            yield self._query(sql.format(ids=",".join("?" * len(part))), [*params, *part])

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path}: the catalog is from a newer photosearch (schema {version}, "
                f"this version reads up to {SCHEMA_VERSION}); update photosearch"
            )
        for i in range(version, SCHEMA_VERSION):
            with self._write() as c:
                # Read again inside the write transaction: two processes opening a new (or
                # older) catalog at once, a reader beside a writer, migrate it once.
                if self.schema_version > i:
                    continue
                MIGRATIONS[i](c)
                c.execute(f"PRAGMA user_version = {i + 1}")
            log.info("catalog %s migrated to schema %d", self.path, i + 1)

    # -- settings --------------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: Any) -> None:
        with self._write() as c:
            c.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def delete_setting(self, key: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM settings WHERE key = ?", (key,))

    # -- folders ---------------------------------------------------------------------------

    def add_folder(self, path: Path) -> Folder:
        with self._write() as c:
            c.execute(
                "INSERT OR IGNORE INTO folders(path, added, device) VALUES (?, ?, ?)",
                (fs_bytes(path), time.time(), os.stat(path).st_dev),
            )
        folder = self.folder(path)
        assert folder is not None
        return folder

    def folder(self, path: Path) -> Folder | None:
        rows = self._query(
            "SELECT id, path, state, added, last_scan, device FROM folders WHERE path = ?",
            (fs_bytes(path),),
        )
        return self._folder(rows[0]) if rows else None

    @staticmethod
    def _folder(row: tuple) -> Folder:
        return Folder(
            id=row[0],
            path=fs_path(row[1]),
            state=row[2],
            added=row[3],
            last_scan=row[4],
            device=row[5],
        )

    def folders(self) -> list[Folder]:
        rows = self._query(
            "SELECT id, path, state, added, last_scan, device FROM folders ORDER BY path"
        )
        return [self._folder(r) for r in rows]

    def remove_folder(self, folder_id: int) -> list[int]:
        """Forget a folder and everything under it; returns the photo ids removed."""
        with self._write() as c:
            ids = [
                r[0] for r in c.execute("SELECT id FROM photos WHERE folder_id = ?", (folder_id,))
            ]
            c.execute("DELETE FROM folders WHERE id = ?", (folder_id,))
            if ids:
                self._bump(c)
        return ids

    def set_folder_state(self, folder_id: int, state: str) -> None:
        with self._write() as c:
            c.execute("UPDATE folders SET state = ? WHERE id = ?", (state, folder_id))

    # -- photos ----------------------------------------------------------------------------

    def photos_in(self, folder_id: int) -> dict[bytes, PhotoRecord]:
        """Every photo of a folder, keyed by its path bytes (what the scanner diffs against)."""
        rows = self._query(
            f"SELECT {_PHOTO_COLUMNS} FROM photos p WHERE p.folder_id = ?",
            (folder_id,),
        )
        return {r[1]: self._photo(r) for r in rows}

    @staticmethod
    def _photo(r: tuple) -> PhotoRecord:
        return PhotoRecord(
            id=r[0],
            path=fs_path(r[1]),
            folder_id=r[2],
            size=r[3],
            mtime_ns=r[4],
            content_hash=r[5],
            state=r[6],
        )

    def photo_by_path(self, path: Path) -> PhotoRecord | None:
        rows = self._query(
            f"SELECT {_PHOTO_COLUMNS} FROM photos p WHERE p.path = ?",
            (fs_bytes(path),),
        )
        return self._photo(rows[0]) if rows else None

    def apply_scan(
        self,
        folder_id: int,
        *,
        new: Iterable[tuple[Path, int, int]] = (),
        changed: Iterable[tuple[int, int, int]] = (),
        moved: Iterable[tuple[int, Path, int, int]] = (),
        deleted: Iterable[int] = (),
        device: int | None = None,
    ) -> None:
        """Record one folder scan's differences in one transaction.

        new: (path, size, mtime_ns) → pending rows; changed: (id, size, mtime_ns) → pending,
        old vector dropped; moved: (id, new path, size, mtime_ns) → same row and vector, new
        path; deleted: ids forgotten with their vectors and errors.
        """
        now = time.time()
        with self._write() as c:
            deleted = list(deleted)
            c.executemany("DELETE FROM photos WHERE id = ?", ((i,) for i in deleted))
            c.executemany(
                "UPDATE photos SET path = ?, folder_id = ?, size = ?, mtime_ns = ?, updated = ? "
                "WHERE id = ?",
                ((fs_bytes(p), folder_id, s, m, now, i) for i, p, s, m in moved),
            )
            changed = list(changed)
            c.executemany(
                "UPDATE photos SET size = ?, mtime_ns = ?, state = ?, content_hash = NULL, "
                "updated = ? WHERE id = ?",
                ((s, m, PENDING, now, i) for i, s, m in changed),
            )
            c.executemany("DELETE FROM vectors WHERE photo_id = ?", ((i,) for i, _, _ in changed))
            c.executemany("DELETE FROM errors WHERE photo_id = ?", ((i,) for i, _, _ in changed))
            c.executemany(
                "INSERT INTO photos(folder_id, path, size, mtime_ns, state, added, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((folder_id, fs_bytes(p), s, m, PENDING, now, now) for p, s, m in new),
            )
            if changed or deleted:
                self._bump(c)
            c.execute(
                "UPDATE folders SET last_scan = ?, state = 'ok', device = ? WHERE id = ?",
                (now, device, folder_id),
            )

    def pending(self, pack: str, limit: int | None = None) -> list[PhotoRecord]:
        """Photos that still need a vector from ``pack`` (new, changed, or of an older pack).

        A photo whose content could not be read is retried once the file changes (the scan
        makes it pending again); one that failed for a transient reason (permission, I/O) by
        every run. Photos of offline folders wait for their folder.
        """
        sql = f"SELECT {_PHOTO_COLUMNS} {_PENDING_WHERE} ORDER BY p.id"
        params: list[Any] = [pack]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [self._photo(r) for r in self._query(sql, params)]

    def commit_batch(self, pack: str, results: Sequence[Encoded | Failed]) -> list[int]:
        """Record a batch of encoded or failed photos in one transaction.

        Each result applies only if its row still has the size and mtime it was read with: a
        photo changed, moved away or forgotten while it was being encoded is left to the next
        run. Returns the ids whose vectors were written (what the vector index must now hold).
        """
        now = time.time()
        written: list[int] = []
        with self._write() as c:
            for r in results:
                where = (r.photo_id, r.size, r.mtime_ns)
                if isinstance(r, Encoded):
                    cur = c.execute(
                        "UPDATE photos SET content_hash = ?, width = ?, height = ?, format = ?, "
                        "taken = ?, state = ?, updated = ? "
                        "WHERE id = ? AND size = ? AND mtime_ns = ?",
                        (r.content_hash, r.width, r.height, r.format, r.taken, INDEXED, now)
                        + where,
                    )
                    if cur.rowcount != 1:
                        continue
                    c.execute(
                        "INSERT OR REPLACE INTO vectors(photo_id, pack, vector) VALUES (?, ?, ?)",
                        (r.photo_id, pack, np.asarray(r.vector, np.float16).tobytes()),
                    )
                    c.execute("DELETE FROM errors WHERE photo_id = ?", (r.photo_id,))
                    written.append(r.photo_id)
                else:
                    cur = c.execute(
                        "UPDATE photos SET state = ?, updated = ? "
                        "WHERE id = ? AND size = ? AND mtime_ns = ?",
                        (FAILED, now) + where,
                    )
                    if cur.rowcount == 1:
                        c.execute(
                            "INSERT OR REPLACE INTO errors(photo_id, reason, transient, at) "
                            "VALUES (?, ?, ?, ?)",
                            (r.photo_id, r.reason, int(r.transient), now),
                        )
            if written:
                self._bump(c)
        return written

    @staticmethod
    def _bump(c: sqlite3.Connection) -> None:
        c.execute("UPDATE counters SET value = value + 1 WHERE name = 'vectors'")

    def generation(self) -> int:
        """Changes with every transaction that adds, replaces or deletes a vector."""
        return int(self._query("SELECT value FROM counters WHERE name = 'vectors'")[0][0])

    def encoded_copy(
        self, pack: str, content_hash: str
    ) -> tuple[NDArray[np.float16], int, int, str, str | None] | None:
        """The vector and facts of a photo with this content already encoded by ``pack``."""
        rows = self._query(
            "SELECT v.vector, p.width, p.height, p.format, p.taken FROM photos p "
            "JOIN vectors v ON v.photo_id = p.id AND v.pack = ? WHERE p.content_hash = ? LIMIT 1",
            (pack, content_hash),
        )
        if not rows:
            return None
        blob, width, height, fmt, taken = rows[0]
        return np.frombuffer(blob, dtype=np.float16), width, height, fmt, taken

    def drop_vectors(self, pack: str) -> int:
        """Forget every vector ``pack`` made (the pack was removed); returns how many."""
        with self._write() as c:
            n = c.execute("DELETE FROM vectors WHERE pack = ?", (pack,)).rowcount
            if n:
                self._bump(c)
        return int(n)

    def vector_ids(self, pack: str) -> NDArray[np.int64]:
        rows = self._query("SELECT photo_id FROM vectors WHERE pack = ? ORDER BY photo_id", (pack,))
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vectors(
        self, pack: str, dim: int, ids: Sequence[int] | None = None, chunk: int = 50_000
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float16]]]:
        """The stored vectors of ``pack`` (all, or those of ``ids``), in chunks."""
        if ids is not None:
            for rows in self._query_by_ids(
                "SELECT photo_id, vector FROM vectors WHERE pack = ? AND photo_id IN ({ids}) "
                "ORDER BY photo_id",
                ids,
                [pack],
            ):
                if rows:
                    yield self._unpack(rows, dim)
            return
        last = -1
        while True:
            rows = self._query(
                "SELECT photo_id, vector FROM vectors WHERE pack = ? AND photo_id > ? "
                "ORDER BY photo_id LIMIT ?",
                (pack, last, chunk),
            )
            if not rows:
                return
            last = rows[-1][0]
            yield self._unpack(rows, dim)

    @staticmethod
    def _unpack(rows: list[tuple], dim: int) -> tuple[NDArray[np.int64], NDArray[np.float16]]:
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16).reshape(-1, dim)
        return ids, vecs

    # -- reporting -------------------------------------------------------------------------

    def counts(self, pack: str | None = None) -> dict[str, int]:
        rows = dict(self._query("SELECT state, count(*) FROM photos GROUP BY state"))
        total = sum(rows.values())
        out = {
            "photos": total,
            "errors": int(rows.get(FAILED, 0)),
            "folders": int(self._query("SELECT count(*) FROM folders")[0][0]),
        }
        out["offline"] = int(
            self._query(
                "SELECT count(*) FROM photos p JOIN folders f ON f.id = p.folder_id "
                "WHERE f.state != 'ok'"
            )[0][0]
        )
        if pack is not None:
            out["indexed"] = int(
                self._query("SELECT count(*) FROM vectors WHERE pack = ?", (pack,))[0][0]
            )
            out["pending"] = int(self._query(f"SELECT count(*) {_PENDING_WHERE}", (pack,))[0][0])
        return out

    def errors(self, limit: int | None = None) -> list[tuple[Path, str, float]]:
        sql = (
            "SELECT p.path, e.reason, e.at FROM errors e JOIN photos p ON p.id = e.photo_id "
            "ORDER BY p.path"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [(fs_path(r[0]), r[1], r[2]) for r in self._query(sql)]

    def details(self, ids: Sequence[int]) -> dict[int, PhotoDetails]:
        """Result details of these photos, in the order of ``ids`` (SQLite returns ``IN (…)``
        rows in whatever order its plan gives; ids no longer in the catalog are left out)."""
        out: dict[int, PhotoDetails] = {}
        for rows in self._query_by_ids(
            "SELECT p.id, p.path, p.size, p.mtime_ns, p.content_hash, p.width, p.height, "
            "p.format, p.taken, f.state FROM photos p JOIN folders f ON f.id = p.folder_id "
            "WHERE p.id IN ({ids})",
            ids,
        ):
            for r in rows:
                out[r[0]] = PhotoDetails(r[0], fs_path(r[1]), *r[2:9], online=r[9] == "ok")
        return {i: out[i] for i in dict.fromkeys(ids) if i in out}

    def filtered_ids(self, pack: str, filters: Filters) -> NDArray[np.int64]:
        """Ids of the photos with a vector from ``pack`` that pass ``filters``."""
        where, params = filters.sql()
        rows = self._query(
            "SELECT p.id FROM photos p JOIN vectors v ON v.photo_id = p.id AND v.pack = ? "
            f"WHERE {where}",
            [pack, *params],
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def record_view(self, photo_id: int) -> None:
        """The user opened this photo (a missing or forgotten id is ignored)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO views (photo_id, count, last) SELECT id, 1, ? FROM photos "
                "WHERE id = ? ON CONFLICT(photo_id) DO UPDATE SET count = count + 1, "
                "last = excluded.last",
                [time.time(), int(photo_id)],
            )

    def views(self, photo_id: int) -> int:
        rows = self._query("SELECT count FROM views WHERE photo_id = ?", [int(photo_id)])
        return int(rows[0][0]) if rows else 0

    def precompute_order(self, pack: str, limit: int) -> list[int]:
        """Photos with a vector from ``pack``, the order the reranker's tokens are made ahead:
        the most viewed first, then the newest (date taken, else modified), at most ``limit``."""
        rows = self._query(
            "SELECT p.id FROM photos p JOIN vectors v ON v.photo_id = p.id AND v.pack = ? "
            "LEFT JOIN views w ON w.photo_id = p.id ORDER BY COALESCE(w.count, 0) DESC, "
            f"{PHOTO_DATE_SQL} DESC, p.id DESC LIMIT ?",
            [pack, int(limit)],
        )
        return [int(r[0]) for r in rows]

    def match_names(
        self, words: Sequence[str], *, filters: Filters | None = None, limit: int = 1000
    ) -> list[int]:
        """Photos whose file or folder names hold every one of ``words`` (see
        :func:`name_text`), best match first. A last word with a digit or an underscore — a
        file name being typed ("IMG_20") — also matches as a prefix; other words match whole
        (with stemming: "dogs" finds "dog"), so "cat" does not find a "Catalonia" folder."""
        terms = [w.replace('"', '""') for w in words if w.strip()]
        if not terms:
            return []
        last = terms[-1]
        star = "*" if any(c.isdigit() or c == "_" for c in last) else ""
        expr = " ".join(f'"{t}"' for t in terms[:-1]) + f' "{last}"{star}'
        where, params = (filters or Filters()).sql()
        try:
            rows = self._query(
                "SELECT n.rowid FROM names n JOIN photos p ON p.id = n.rowid "
                f"WHERE names MATCH ? AND {where} ORDER BY bm25(names) LIMIT ?",
                [expr, *params, int(limit)],
            )
        except sqlite3.OperationalError as e:  # a query FTS5 cannot parse: no name matches
            log.debug("name search %r failed: %s", expr, e)
            return []
        return [r[0] for r in rows]

    def integrity_check(self) -> list[str]:
        """SQLite's own check plus ours: problems in words, [] when all is well."""
        problems = [r[0] for r in self._query("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [
            f"foreign key violation in {r[0]} (row {r[1]})"
            for r in self._query("PRAGMA foreign_key_check")
        ]
        orphan = self._query(
            "SELECT count(*) FROM photos p WHERE p.state = ? AND NOT EXISTS "
            "(SELECT 1 FROM errors e WHERE e.photo_id = p.id)",
            (FAILED,),
        )[0][0]
        if orphan:
            problems.append(f"{orphan} photos marked unreadable without a recorded reason")
        return problems
