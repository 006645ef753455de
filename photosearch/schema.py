"""The catalog's SQLite schema: one migration per version, each run inside one transaction.

A catalog at version ``i`` is brought to :data:`SCHEMA_VERSION` by running ``MIGRATIONS[i:]``
in order (see ``Catalog._migrate``); a newer version than this code knows is refused. Add a
version by appending a migration, never by editing one that shipped.
"""

from __future__ import annotations

import os
import sqlite3

SCHEMA_VERSION = 3


# Each migration takes the schema from version i to i + 1, inside one transaction.
def _migrate_0_to_1(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE folders (
            id INTEGER PRIMARY KEY,
            path BLOB NOT NULL UNIQUE,
            state TEXT NOT NULL DEFAULT 'ok',
            added REAL NOT NULL,
            last_scan REAL,
            device INTEGER
        )"""
    )
    db.execute(
        """
        CREATE TABLE photos (
            -- AUTOINCREMENT: an id is never reused, so a stale vector can never pass for new
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path BLOB NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            content_hash TEXT,
            width INTEGER,
            height INTEGER,
            taken TEXT,
            format TEXT,
            state TEXT NOT NULL,
            added REAL NOT NULL,
            updated REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX photos_folder ON photos(folder_id)")
    db.execute("CREATE INDEX photos_state ON photos(state)")
    db.execute("CREATE INDEX photos_hash ON photos(content_hash)")
    db.execute(
        """
        CREATE TABLE vectors (
            photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
            pack TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (photo_id, pack)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX vectors_pack ON vectors(pack)")
    db.execute(
        """
        CREATE TABLE errors (
            photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
            reason TEXT NOT NULL,
            transient INTEGER NOT NULL DEFAULT 0,
            at REAL NOT NULL
        )"""
    )
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # Bumped by every transaction that changes a vector; the vector index records the
    # generation it reflects, so an index file saved before a crash is never mistaken for
    # current even when it holds the same ids.
    db.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute("INSERT INTO counters VALUES ('vectors', 0)")


def name_text(path: bytes, folder: bytes | None) -> str:
    """What the name search sees of a photo: its folder's own name and its path inside it.

    ``/home/ana/Pictures/Paris 2019/day 2/IMG_2041.jpg`` in the library folder
    ``/home/ana/Pictures`` reads ``Pictures/Paris 2019/day 2/IMG_2041.jpg``: a query for "paris
    2019" or "IMG_2041" finds it, and "home" or "ana" (in every path) finds nothing. Names that
    are not valid UTF-8 are matched on what they decode to.
    """
    p = bytes(path)
    if folder is not None:
        f = bytes(folder).rstrip(b"/\\")
        if p.startswith(f) and p[len(f) : len(f) + 1] in (b"/", b"\\"):
            p = os.path.basename(f) + p[len(f) :]
    return p.decode("utf-8", "replace")


# SQLite calls this (registered on every connection) from the triggers that keep the name
# index in step with the photos table, inside the same transaction.
_NAME_SQL = "photosearch_name(new.path, (SELECT path FROM folders WHERE id = new.folder_id))"


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    # File and folder names, searchable by word: FTS5 (porter stemming, accents folded), kept
    # in step with ``photos`` by triggers so that no code path can forget it.
    db.execute(
        "CREATE VIRTUAL TABLE names USING fts5(name, "
        "tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    db.execute(
        f"CREATE TRIGGER photos_names_insert AFTER INSERT ON photos BEGIN "
        f"INSERT INTO names(rowid, name) VALUES (new.id, {_NAME_SQL}); END"
    )
    db.execute(
        f"CREATE TRIGGER photos_names_update AFTER UPDATE OF path, folder_id ON photos BEGIN "
        f"DELETE FROM names WHERE rowid = old.id; "
        f"INSERT INTO names(rowid, name) VALUES (new.id, {_NAME_SQL}); END"
    )
    db.execute(
        "CREATE TRIGGER photos_names_delete AFTER DELETE ON photos BEGIN "
        "DELETE FROM names WHERE rowid = old.id; END"
    )
    db.execute(
        "INSERT INTO names(rowid, name) SELECT p.id, photosearch_name(p.path, f.path) "
        "FROM photos p LEFT JOIN folders f ON f.id = p.folder_id"
    )


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    # How often the user opened each photo: the reranker's background token pass does the
    # most viewed first (they are the likeliest to be candidates again).
    db.execute(
        """
        CREATE TABLE views (
            photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
            count INTEGER NOT NULL,
            last REAL NOT NULL
        )"""
    )


MIGRATIONS = [_migrate_0_to_1, _migrate_1_to_2, _migrate_2_to_3]
assert len(MIGRATIONS) == SCHEMA_VERSION
