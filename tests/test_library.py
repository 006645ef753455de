"""The library engine on real files: indexing, incremental re-runs, bad inputs, consistency."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import consistent
from photos import bad_inputs, good_photos, non_utf8_name, odd_but_valid, write_photo

from photosearch import scanner
from photosearch.catalog import SCHEMA_VERSION, Catalog, CatalogError, Encoded, Failed
from photosearch.indexer import IndexControl, Indexer
from photosearch.library import FolderError, Library, LibraryLockedError, NoModelError


def test_index_a_folder_with_good_and_bad_files(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "Pictures"
    good = good_photos(photos, 8) + list(odd_but_valid(photos / "odd").values())
    odd = non_utf8_name(photos)
    bad = bad_inputs(photos / "junk")
    lib.add_folder(photos)

    seen = []
    rep = lib.index_photos(progress=seen.append, batch_size=3)

    # CMYK, 16-bit, palette with alpha, animated GIF and a non-UTF-8 name are all good photos.
    assert rep.run.indexed == len(good) + 1
    reasons = {Path(p).name: why for p, why in rep.run.errors}
    assert set(reasons) == {"empty.jpg", "truncated.jpg", "notes.jpg", "bomb.png"}
    assert reasons["bomb.png"].startswith("image too large: 20000×15000 pixels")
    assert "empty" in reasons["empty.jpg"] or "not an image" in reasons["empty.jpg"]
    assert "truncated" in reasons["truncated.jpg"] or "corrupt" in reasons["truncated.jpg"]
    assert "not an image" in reasons["notes.jpg"]
    problems = {p.name: why for p, why in rep.problems}
    assert problems["dangling.jpg"] == "broken symbolic link"
    assert seen[-1].done == seen[-1].total == len(good) + 5
    assert seen[-1].failed == 4

    status = lib.status()
    assert status["indexed"] == len(good) + 1 and status["errors"] == 4 and status["pending"] == 0
    assert {Path(e["path"]).name for e in status["error_list"]} == set(reasons)
    assert lib.catalog.photo_by_path(odd) is not None
    assert bad["symlink loop"].exists()  # the loop was walked once, not forever
    consistent(lib)


def test_incremental_runs(lib: Library, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    photos = good_photos(a, 6)
    b.mkdir()
    lib.add_folder(a)
    lib.add_folder(b)
    assert lib.index_photos().run.indexed == 6
    ids_before = set(lib.catalog.vector_ids(lib.pack.id).tolist())

    again = lib.index_photos()
    assert (again.run.indexed, again.new, again.changed, again.moved, again.removed) == (
        0,
        0,
        0,
        0,
        0,
    )

    write_photo(a / "new.png", 100)
    assert lib.index_photos().run.indexed == 1

    moved_from = photos[0]
    moved_id = lib.catalog.photo_by_path(moved_from).id
    shutil.move(moved_from, b / "renamed.jpg")  # across folders, and renamed
    rep = lib.index_photos()
    assert (rep.moved, rep.run.indexed, rep.new, rep.removed) == (1, 0, 0, 0)
    assert lib.catalog.photo_by_path(b / "renamed.jpg").id == moved_id  # same row, same vector

    before = lib.catalog.photo_by_path(photos[1]).id
    old_vec = next(lib.catalog.vectors(lib.pack.id, 32, ids=[before]))[1][0].copy()
    write_photo(photos[1], 555)  # edited in place
    rep = lib.index_photos()
    assert (rep.changed, rep.run.indexed) == (1, 1)
    new_vec = next(lib.catalog.vectors(lib.pack.id, 32, ids=[before]))[1][0]
    assert not np.array_equal(old_vec, new_vec)

    gone_id = lib.catalog.photo_by_path(photos[2]).id
    photos[2].unlink()
    rep = lib.index_photos()
    assert rep.removed == 1
    assert len(lib.index) == 6  # 6 + 1 new - 1 deleted
    ids_after = set(lib.catalog.vector_ids(lib.pack.id).tolist())
    assert moved_id in ids_after and gone_id not in ids_after
    assert len(ids_after - ids_before) == 1  # only the new photo got a new id
    consistent(lib)


def test_identical_copies_reuse_the_vector(lib: Library, tmp_path: Path) -> None:
    photos = good_photos(tmp_path / "p", 3)
    lib.add_folder(tmp_path / "p")
    lib.index_photos()
    shutil.copy(photos[0], tmp_path / "p" / "copy-of-first.jpg")
    rep = lib.index_photos()
    assert rep.new == 1 and rep.run.indexed == 1 and rep.run.reused == 1
    consistent(lib)


def test_file_deleted_between_scan_and_decode(lib: Library, tmp_path: Path) -> None:
    photos = good_photos(tmp_path / "p", 4)
    lib.add_folder(tmp_path / "p")
    lib.scan()
    photos[1].unlink()
    indexer = Indexer(lib.catalog, lib.index, lib.image_encoder, lib.pack.id)
    rep = indexer.run(lib.catalog.pending(lib.pack.id))
    assert rep.indexed == 3 and rep.failed == 1
    assert rep.errors[0][1] == "file not found (deleted since the scan)"
    lib.index_photos()  # the next scan forgets it
    assert lib.catalog.photo_by_path(photos[1]) is None
    assert lib.status()["errors"] == 0
    consistent(lib)


def test_pause_resume_cancel(lib: Library, tmp_path: Path) -> None:
    good_photos(tmp_path / "p", 12)
    lib.add_folder(tmp_path / "p")
    control = IndexControl()
    events = []

    def progress(p) -> None:
        events.append(p)
        if p.done >= 4 and not p.paused and not any(e.paused for e in events[:-1]):
            control.pause()
            threading.Timer(0.3, control.resume).start()
        if p.done >= 8:
            control.cancel()

    t0 = time.monotonic()
    rep = lib.index_photos(progress=progress, control=control, batch_size=4)
    assert any(e.paused for e in events), "a paused run reports it"
    assert time.monotonic() - t0 >= 0.3, "a paused run waits"
    assert rep.run.cancelled and 8 <= rep.run.indexed < 12
    consistent(lib)
    rest = lib.index_photos(batch_size=4)
    assert rep.run.indexed + rest.run.indexed == 12
    consistent(lib)


def test_missing_or_unmounted_folder_keeps_its_photos(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "drive" / "Photos"
    good_photos(photos, 4)
    lib.add_folder(photos)
    lib.index_photos()

    shutil.move(photos, tmp_path / "elsewhere")  # the drive is unplugged
    rep = lib.index_photos()
    assert rep.offline == [photos.resolve()] and rep.removed == 0
    assert lib.status()["indexed"] == 4 and lib.status()["offline"] == 4
    assert lib.folders()[0].state == "offline"
    shutil.move(tmp_path / "elsewhere", photos)  # and back
    rep = lib.index_photos()
    assert (rep.offline, rep.run.indexed, rep.new, rep.removed) == ([], 0, 0, 0)
    assert lib.folders()[0].state == "ok"

    # An unmounted share leaves an empty mount point on another device than before.
    stash = tmp_path / "stash"
    stash.mkdir()
    for f in photos.iterdir():
        shutil.move(f, stash / f.name)
    with lib.catalog._write() as c:
        c.execute("UPDATE folders SET device = device + 1")
    rep = lib.index_photos()
    assert rep.offline == [photos.resolve()] and lib.status()["indexed"] == 4
    # Emptied on the same device: the photos really were deleted.
    with lib.catalog._write() as c:
        c.execute("UPDATE folders SET device = device - 1")
    rep = lib.index_photos()
    assert rep.removed == 4 and lib.status()["indexed"] == 0
    consistent(lib)


def test_unlistable_subfolder_is_not_mistaken_for_deleted(
    lib: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_photos(tmp_path / "p" / "2019", 3)
    good_photos(tmp_path / "p" / "2020", 2, start_seed=40)
    lib.add_folder(tmp_path / "p")
    lib.index_photos()
    real_scandir = os.scandir
    blocked = str((tmp_path / "p" / "2019").resolve())

    def scandir(path):
        if str(path) == blocked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(scanner.os, "scandir", scandir)
    rep = lib.index_photos()
    assert rep.removed == 0 and lib.status()["indexed"] == 5
    assert any("cannot list folder" in why for _, why in rep.problems)


def test_stale_index_file_with_the_same_ids_is_rebuilt(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    """A kill after a re-encoded photo's commit but before the index was saved."""
    photos = good_photos(tmp_path / "p", 4)
    with Library(isolated_home) as library:
        library.import_pack(tiny_clip_pack)
        library.add_folder(tmp_path / "p")
        library.index_photos()
        stale = library.index_path.read_bytes()
    write_photo(photos[0], 321)  # edited: same id, new vector
    with Library(isolated_home) as library:
        library.index_photos()
        index_file = library.index_path
        pid = library.catalog.photo_by_path(photos[0]).id
        vec = next(library.catalog.vectors(library.pack.id, 32, ids=[pid]))[1][0]
    index_file.write_bytes(stale)  # as if the last save never happened
    with Library(isolated_home) as library:
        scores, ids = library.index.search(vec[None].astype(np.float32), 1)
        assert ids[0, 0] == pid
        assert scores[0, 0] == pytest.approx(float(vec.astype(np.float32) @ vec), abs=1e-3)
        consistent(library)


def test_results_for_rows_changed_meanwhile_are_not_written(lib: Library, tmp_path: Path) -> None:
    photos = good_photos(tmp_path / "p", 3)
    lib.add_folder(tmp_path / "p")
    lib.scan()
    recs = [lib.catalog.photo_by_path(p) for p in photos]
    vec = np.ones(32, np.float32) / np.sqrt(32)

    def encoded(r):
        return Encoded(r.id, r.size, r.mtime_ns, "h", 1, 1, "JPEG", None, vec)

    folder = lib.folders()[0]
    lib.catalog.apply_scan(folder.id, deleted=[recs[0].id])  # forgotten meanwhile
    lib.catalog.apply_scan(folder.id, changed=[(recs[1].id, recs[1].size + 1, 1)])  # edited
    written = lib.catalog.commit_batch(
        lib.pack.id,
        [
            encoded(recs[0]),
            encoded(recs[1]),
            encoded(recs[2]),
            Failed(recs[1].id, recs[1].size, recs[1].mtime_ns, "stale failure"),
        ],
    )
    assert written == [recs[2].id]
    assert [p.id for p in lib.catalog.pending(lib.pack.id)] == [recs[1].id]
    assert lib.catalog.errors() == []


def test_transient_failures_are_retried(lib: Library, tmp_path: Path) -> None:
    photos = good_photos(tmp_path / "p", 2)
    lib.add_folder(tmp_path / "p")
    lib.scan()
    a, b = (lib.catalog.photo_by_path(p) for p in photos)
    lib.catalog.commit_batch(
        lib.pack.id,
        [
            Failed(a.id, a.size, a.mtime_ns, "permission denied", transient=True),
            Failed(b.id, b.size, b.mtime_ns, "not an image file"),
        ],
    )
    assert [p.id for p in lib.catalog.pending(lib.pack.id)] == [a.id]
    assert lib.status()["errors"] == 2


def test_second_process_gets_a_clear_message(lib: Library, isolated_home: Path) -> None:
    with pytest.raises(LibraryLockedError, match=r"another photosearch process \(pid \d+\)"):
        Library(isolated_home)


def test_no_model_is_a_clear_error(isolated_home: Path, tmp_path: Path) -> None:
    with Library(isolated_home) as library:
        good_photos(tmp_path / "p", 1)
        library.add_folder(tmp_path / "p")
        with pytest.raises(NoModelError, match="models import"):
            library.index_photos()


def test_folder_rules(lib: Library, tmp_path: Path) -> None:
    (tmp_path / "p" / "sub").mkdir(parents=True)
    with pytest.raises(FolderError, match="no such folder"):
        lib.add_folder(tmp_path / "nope")
    lib.add_folder(tmp_path / "p")
    with pytest.raises(FolderError, match="already in the library"):
        lib.add_folder(tmp_path / "p" / "sub")
    with pytest.raises(FolderError, match="not in the library"):
        lib.remove_folder(tmp_path / "elsewhere")
    assert lib.add_folder(tmp_path / "p").path == (tmp_path / "p").resolve()


def test_remove_folder_forgets_its_photos(lib: Library, tmp_path: Path) -> None:
    good_photos(tmp_path / "a", 3)
    good_photos(tmp_path / "b", 2, start_seed=50)
    lib.add_folder(tmp_path / "a")
    lib.add_folder(tmp_path / "b")
    lib.index_photos()
    assert lib.remove_folder(tmp_path / "a") == 3
    assert len(lib.index) == 2 and (tmp_path / "a" / "photo_000.jpg").exists()
    consistent(lib)


def test_index_file_lost_or_damaged_is_rebuilt(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    good_photos(tmp_path / "p", 5)
    with Library(isolated_home) as library:
        library.import_pack(tiny_clip_pack)
        library.add_folder(tmp_path / "p")
        library.index_photos()
        index_file = library.index_path
        first = library.search("a red circle", n=5)
    index_file.write_bytes(b"garbage")
    with Library(isolated_home) as library:
        assert len(library.index) == 5
        assert [h.path for h in library.search("a red circle", n=5)] == [h.path for h in first]
    index_file.unlink()
    with Library(isolated_home) as library:
        consistent(library)


def test_search_and_similar(lib: Library, tmp_path: Path) -> None:
    photos = good_photos(tmp_path / "p", 6)
    lib.add_folder(tmp_path / "p")
    lib.index_photos()
    hits = lib.search("a blue square", n=4)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert all(h.path.exists() for h in hits)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    like = lib.similar(photos[0], n=10)
    assert photos[0].resolve() not in [h.path for h in like] and len(like) == 5
    outside = write_photo(tmp_path / "outside.png", 0)  # same picture as photos[0]
    assert lib.similar(outside, n=1)[0].path == photos[0].resolve()


def test_newer_catalog_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    Catalog(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(CatalogError, match="newer photosearch"):
        Catalog(db)


def test_a_folder_renamed_away_while_indexing_goes_offline_not_unreadable(
    lib: Library, tmp_path: Path
) -> None:
    pics = tmp_path / "Pictures"
    good_photos(pics, 40)
    lib.add_folder(pics)
    moved = tmp_path / "Pictures (old)"

    def rename_after_the_first_batch(p) -> None:  # noqa: ANN001
        if p.done and pics.exists():
            pics.rename(moved)

    rep = lib.index_photos(progress=rename_after_the_first_batch, batch_size=4)
    assert rep.run.errors == [] and rep.run.failed == 0
    assert rep.offline == [pics.resolve()]
    assert 4 <= rep.run.indexed < 40
    status = lib.status()
    assert status["errors"] == 0 and status["folders"][0]["state"] == "offline"
    assert lib.doctor() == []
    moved.rename(pics)  # back again: the rest is indexed, nothing twice
    rest = lib.index_photos()
    assert rest.run.indexed == 40 - rep.run.indexed
    assert lib.status()["folders"][0]["state"] == "ok"
    consistent(lib)
