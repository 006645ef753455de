"""Watched folders on the real file system: what a user does to their folders while the app is
open (or closed), and what search then knows. Short timings; every wait has a deadline."""

from __future__ import annotations

import errno
import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import consistent
from photos import good_photos, scene, write_photo
from PIL import Image

from photosearch import watcher as watcher_module
from photosearch.indexer import IndexControl
from photosearch.library import Library
from photosearch.watcher import (
    FolderOffline,
    FolderOnline,
    IndexingFailed,
    PhotosIndexed,
    Ready,
    Watcher,
    WatchEvent,
    WatchFallback,
    WatchStarted,
)

# debounce above watchdog's 0.5 s wait for the other half of a move (see Watcher)
FAST = dict(debounce=0.7, max_delay=3.0, settle=0.5, poll_interval=1.0, rescan_interval=3600)


@pytest.fixture(autouse=True)
def every_test_stops_its_threads(no_leaked_threads: None) -> None:
    """The conftest check guards every test here: watchers and indexing runs stop."""


class Events:
    """The events a watcher sent, for assertions from the test's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all: list[WatchEvent] = []

    def __call__(self, event: WatchEvent) -> None:
        with self._lock:
            self._all.append(event)

    def of(self, kind: type[WatchEvent]) -> list:
        with self._lock:
            return [e for e in self._all if isinstance(e, kind)]

    def total(self, field: str) -> int:
        return sum(getattr(e, field) for e in self.of(PhotosIndexed))


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def indexed(library: Library, path: Path) -> bool:
    rec = library.catalog.photo_by_path(path)
    return rec is not None and rec.state == "indexed"


def start(library: Library, events: Events, **options: float) -> Watcher:
    w = library.watch(events, **{**FAST, **options})
    wait_for(lambda: events.of(Ready), "the first pass")
    return w


def test_create_modify_delete(lib: Library, tmp_path: Path) -> None:
    pics = tmp_path / "Pictures"
    first = good_photos(pics, 3)
    lib.add_folder(pics)
    lib.index_photos()
    events = Events()
    with start(lib, events) as w:
        assert [e.path for e in events.of(WatchStarted)] == [pics.resolve()]
        assert w.folder_modes() == {pics.resolve(): "live"}

        new = write_photo(pics / "trip" / "beach.png", 100)
        wait_for(lambda: indexed(lib, new), "a new photo to be indexed")
        wait_for(lambda: events.total("indexed") == 1, "the event that says so")
        assert events.of(PhotosIndexed)[0].message == "1 photo indexed"

        rec = lib.catalog.photo_by_path(first[0])
        old = next(lib.catalog.vectors(lib.pack.id, 32, ids=[rec.id]))[1][0].copy()
        write_photo(first[0], 555)  # edited in place
        size = first[0].stat().st_size

        def re_encoded() -> bool:
            now = lib.catalog.photo_by_path(first[0])
            return now is not None and now.state == "indexed" and now.size == size

        wait_for(re_encoded, "an edited photo to be encoded again")
        vec = next(lib.catalog.vectors(lib.pack.id, 32, ids=[rec.id]))[1][0]
        assert not np.array_equal(old, vec)

        first[1].unlink()
        wait_for(lambda: lib.catalog.photo_by_path(first[1]) is None, "a deleted photo to go")
        wait_for(lambda: events.total("removed") == 1, "the event that says so")
    assert not w.running
    assert lib.status()["indexed"] == 3 and lib.status()["errors"] == 0
    consistent(lib)


def test_moves_and_renamed_folders_keep_their_vectors(lib: Library, tmp_path: Path) -> None:
    pics = tmp_path / "Pictures"
    photos = good_photos(pics / "2019", 5)
    other = tmp_path / "Other"
    other.mkdir()
    lib.add_folder(pics)
    lib.add_folder(other)
    lib.index_photos()
    ids = {p.name: lib.catalog.photo_by_path(p).id for p in photos}
    vectors_before = set(lib.catalog.vector_ids(lib.pack.id).tolist())
    events = Events()
    with start(lib, events):
        moved = pics / "best" / "renamed.jpg"
        moved.parent.mkdir()
        os.rename(photos[0], moved)  # a file moved to another folder and renamed
        wait_for(lambda: indexed(lib, moved), "a moved photo at its new place")
        assert lib.catalog.photo_by_path(moved).id == ids[photos[0].name]

        os.rename(pics / "2019", pics / "Summer 2019")  # a folder renamed
        renamed = [pics / "Summer 2019" / p.name for p in photos[1:]]
        wait_for(lambda: all(indexed(lib, p) for p in renamed), "the renamed folder's photos")
        assert {lib.catalog.photo_by_path(p).id for p in renamed} == {
            ids[p.name] for p in photos[1:]
        }

        across = other / "from-pictures.jpg"
        shutil.move(renamed[0], across)  # into another library folder
        wait_for(lambda: indexed(lib, across), "a photo moved across library folders")
        assert lib.catalog.photo_by_path(across).id == ids[photos[1].name]
        wait_for(lambda: events.total("moved") == 6, "the events that say so")
    assert events.total("indexed") == 0 and events.total("removed") == 0
    assert set(lib.catalog.vector_ids(lib.pack.id).tolist()) == vectors_before  # none re-encoded
    consistent(lib)


def test_bulk_copy_is_indexed_in_a_few_passes(lib: Library, tmp_path: Path) -> None:
    staging = tmp_path / "camera"
    staging.mkdir()
    for i in range(200):
        scene(i, (48, 36)).save(staging / f"IMG_{i:04d}.jpg", "JPEG")
    pics = tmp_path / "Pictures"
    pics.mkdir()
    lib.add_folder(pics)
    events = Events()
    with start(lib, events, debounce=1.0, max_delay=8.0) as w:
        runs = w.runs
        t0 = time.monotonic()
        for f in sorted(staging.iterdir()):
            shutil.copy(f, pics / f.name)
        copy_seconds = time.monotonic() - t0
        wait_for(lambda: lib.status()["indexed"] == 200, "200 copied photos", timeout=60)
        passes = w.runs - runs
    # One pass per quiet moment (or per max_delay while the copy goes on), not one per file.
    assert passes <= 3 + int(copy_seconds / 8.0), (passes, copy_seconds)
    assert events.total("indexed") == 200 and events.total("failed") == 0
    consistent(lib)


def test_a_file_still_being_written_waits_until_it_is_complete(
    lib: Library, tmp_path: Path
) -> None:
    pics = tmp_path / "Pictures"
    pics.mkdir()
    lib.add_folder(pics)
    whole = write_photo(tmp_path / "whole.jpg", 7, (640, 480))
    data = whole.read_bytes()
    target = pics / "download.jpg"
    events = Events()
    with start(lib, events) as w:
        runs = w.runs
        with open(target, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            # A pass runs while the file is half there (and still open): it must not read it.
            wait_for(lambda: w.runs > runs, "a pass over the half-written file")
            assert lib.catalog.photo_by_path(target) is None
            f.write(data[len(data) // 2 :])
        wait_for(lambda: indexed(lib, target), "the completed file to be indexed")
    assert lib.catalog.errors() == []
    assert events.total("failed") == 0 and events.total("indexed") == 1


def test_a_folder_that_disappears_goes_offline_and_comes_back(lib: Library, tmp_path: Path) -> None:
    drive = tmp_path / "drive" / "Photos"
    good_photos(drive, 4)
    lib.add_folder(drive)
    lib.index_photos()
    ids = set(lib.catalog.vector_ids(lib.pack.id).tolist())
    events = Events()
    with start(lib, events) as w:
        shutil.move(drive, tmp_path / "unplugged")  # the drive goes away
        wait_for(lambda: events.of(FolderOffline), "the folder to be reported offline")
        assert events.of(FolderOffline)[0].path == drive.resolve()
        assert lib.folders()[0].state == "offline"
        assert lib.status()["indexed"] == 4 and lib.status()["offline"] == 4
        assert w.folder_modes() == {drive.resolve(): "offline"}

        shutil.move(tmp_path / "unplugged", drive)  # and comes back
        wait_for(lambda: events.of(FolderOnline), "the folder to be back")
        assert lib.folders()[0].state == "ok"
        wait_for(lambda: w.folder_modes()[drive.resolve()] == "live", "a live watch again")

        later = write_photo(drive / "after.jpg", 50)  # watched again
        wait_for(lambda: indexed(lib, later), "a photo added after the folder came back")
    assert ids < set(lib.catalog.vector_ids(lib.pack.id).tolist())
    assert events.total("removed") == 0 and events.total("indexed") == 1
    consistent(lib)


def test_changes_made_while_closed_are_found_on_open(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    pics = tmp_path / "Pictures"
    photos = good_photos(pics, 4)
    with Library(isolated_home) as lib:
        lib.import_pack(tiny_clip_pack)
        lib.add_folder(pics)
        events = Events()
        start(lib, events)  # closing the library stops its watcher
        wait_for(lambda: lib.status()["indexed"] == 4, "the first photos")
        renamed_id = lib.catalog.photo_by_path(photos[0]).id

    # The app is closed: a photo added, one deleted, one renamed.
    added = write_photo(pics / "new.png", 99)
    photos[1].unlink()
    renamed = pics / "renamed.jpg"
    os.rename(photos[0], renamed)

    with Library(isolated_home) as lib:
        events = Events()
        start(lib, events)
        wait_for(lambda: indexed(lib, added) and indexed(lib, renamed), "the changes")
        wait_for(lambda: lib.catalog.photo_by_path(photos[1]) is None, "the deleted photo")
        assert lib.catalog.photo_by_path(renamed).id == renamed_id
        assert lib.status()["indexed"] == 4
        wait_for(
            lambda: [events.total(k) for k in ("indexed", "moved", "removed")] == [1, 1, 1],
            "the events that say so",
        )


class FullObserver(watcher_module.Observer):
    """inotify out of watches: every recursive watch is refused, as the kernel does."""

    def schedule(self, handler, path, *, recursive=False, **kw):  # type: ignore[override]
        if recursive:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return super().schedule(handler, path, recursive=recursive, **kw)


def test_watch_limit_reached_falls_back_to_polling(
    lib: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watcher_module, "Observer", FullObserver)
    pics = tmp_path / "Pictures"
    good_photos(pics, 2)
    lib.add_folder(pics)
    events = Events()
    with start(lib, events, poll_interval=0.5) as w:
        fallback = events.of(WatchFallback)
        assert [e.path for e in fallback] == [pics.resolve()]
        assert "max_user_watches" in fallback[0].reason
        assert "checking it every 0.5 s" in fallback[0].message
        assert w.folder_modes() == {pics.resolve(): "polled"}
        new = write_photo(pics / "polled.jpg", 31)
        wait_for(lambda: indexed(lib, new), "a new photo found by polling")
    assert lib.status()["indexed"] == 3


def test_no_watcher_at_all_still_polls(
    lib: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_inotify() -> None:
        raise OSError(errno.EMFILE, "inotify instance limit reached")

    monkeypatch.setattr(watcher_module, "Observer", no_inotify)
    pics = tmp_path / "Pictures"
    pics.mkdir()
    lib.add_folder(pics)
    events = Events()
    with start(lib, events, poll_interval=0.5):
        assert "max_user_instances" in events.of(WatchFallback)[0].reason
        new = write_photo(pics / "polled.jpg", 32)
        wait_for(lambda: indexed(lib, new), "a new photo found by polling")


def test_a_pass_cancelled_during_its_scan_records_nothing(lib: Library, tmp_path: Path) -> None:
    good_photos(tmp_path / "p", 3)
    lib.add_folder(tmp_path / "p")
    control = IndexControl()
    control.cancel()  # what stopping the watcher does to the pass in flight
    rep = lib.index_photos(control=control)
    assert rep.run.cancelled and rep.new == 0
    assert lib.status()["photos"] == 0
    assert lib.index_photos().run.indexed == 3


def test_a_watcher_that_stopped_on_its_own_is_still_stopped_when_the_library_closes(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watcher whose thread ended on a bug still holds its file-system observer: watching
    again must not make the library forget it, or closing leaves the observer running."""
    folder = tmp_path / "photos"
    folder.mkdir()
    library = Library(isolated_home)
    library.import_pack(tiny_clip_pack)
    library.add_folder(folder)
    broke: list[Watcher] = []
    real_next_job = Watcher._next_job

    def fails_once(self: Watcher) -> object:
        if not broke:
            broke.append(self)
            raise RuntimeError("a bug in the watcher")
        return real_next_job(self)

    monkeypatch.setattr(Watcher, "_next_job", fails_once)
    events = Events()
    first = library.watch(events, **FAST)
    assert first.wait(30), "the broken watcher's thread did not end"
    assert [e.reason for e in events.of(IndexingFailed)] == [
        "the folder watcher stopped unexpectedly"
    ]
    assert not first.running and not first.stopped
    second = library.watch(**FAST)
    library.close()
    assert first.stopped and second.stopped
    assert first.wait(0) and second.wait(0)


def test_event_json_is_stable(tmp_path: Path) -> None:
    e = PhotosIndexed(2, 1, 1, 0, 1, 0.5, (tmp_path,), (("/x/bad.jpg", "not an image file"),))
    assert e.message == "2 photos indexed, 1 moved or renamed, 1 unreadable"
    assert e.to_json() == {
        "event": "indexed",
        "indexed": 2,
        "reused": 1,
        "moved": 1,
        "removed": 0,
        "failed": 1,
        "seconds": 0.5,
        "folders": [str(tmp_path)],
        "errors": [{"path": "/x/bad.jpg", "reason": "not an image file"}],
        "message": e.message,
    }
    assert FolderOffline(tmp_path).to_json()["event"] == "folder_offline"
    assert PhotosIndexed(0, 0, 1, 0, 0, 0.1, ()).message == "1 photo moved or renamed"


def test_cli_index_watch_until_ctrl_c(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    pics = tmp_path / "Pictures"
    good_photos(pics, 2)
    with Library(isolated_home) as lib:
        lib.import_pack(tiny_clip_pack)
        lib.add_folder(pics)
    # PYTHONFAULTHANDLER: if it hangs, SIGABRT makes it print every thread's stack.
    env = {**os.environ, "PHOTOSEARCH_HOME": str(isolated_home), "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "photosearch", "index", "--watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    errors: list[str] = []  # stderr is drained too, so a chatty run cannot block on a full pipe
    readers = [
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True),
        threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    seen: list[dict] = []

    def stacks() -> str:
        """Stop a stuck process and return what it printed, its threads' stacks included."""
        proc.send_signal(signal.SIGABRT)
        proc.wait()
        for reader in readers:
            reader.join(timeout=10)
        return "".join(errors)

    def next_event(kind: str) -> dict:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                assert proc.poll() is None, "".join(errors)
                continue
            seen.append(json.loads(line))
            if seen[-1]["event"] == kind:
                return seen[-1]
        raise AssertionError(f"no {kind!r} event; got {seen}\n{stacks()}")

    try:
        ready = next_event("ready")
        assert ready["folders"] == 1
        write_photo(pics / "new.jpg", 77)
        total = ready["photos"]  # the first pass may leave files just written for later
        while total < 3:
            event = next_event("indexed")
            assert "indexed" in event["message"]
            total += event["indexed"]
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running 60 s after Ctrl-C:\n{stacks()}") from None
        assert code == 0, "".join(errors)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for reader in readers:
        reader.join(timeout=10)
    stderr = "".join(errors)
    proc.stdout.close()
    proc.stderr.close()
    while not lines.empty():
        seen.append(json.loads(lines.get()))  # every line on stdout is one JSON object
    assert "Traceback" not in stderr
    assert "stopping after the current batch" in stderr
    assert "stopped watching" in stderr
    assert seen[0] == {**seen[0], "event": "watching", "path": str(pics.resolve())}
    with Library(isolated_home) as lib:
        assert lib.status()["indexed"] == 3


def test_cli_index_watch_second_ctrl_c_quits_at_once_and_loses_nothing(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    pics = tmp_path / "Pictures"
    pics.mkdir()
    rng = np.random.default_rng(5)
    for i in range(24):  # large PNGs (no draft decoding): a batch of 12 takes a while
        noise = rng.integers(0, 256, (2000, 2000, 3), dtype=np.uint8)
        Image.fromarray(noise).save(pics / f"big{i:02}.png", compress_level=1)
    with Library(isolated_home) as lib:
        lib.import_pack(tiny_clip_pack)
        lib.add_folder(pics)
    env = {**os.environ, "PHOTOSEARCH_HOME": str(isolated_home), "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "photosearch", "index", "--watch", "--json", "--batch-size", "12"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "watching"  # the first pass is under way
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            stuck = proc.communicate()[1]
            raise AssertionError(f"still running after two Ctrl-C:\n{stuck}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # Quit at once (130); or the first stop had finished (0), or finished and the process was
    # on its way out, where Python no longer handles SIGINT (killed by it, as any program).
    assert proc.returncode in (0, 130, -signal.SIGINT), err
    if proc.returncode != 130:
        assert "stopped watching" in err
    assert "Traceback" not in err
    assert "stopping after the current batch" in err
    for line in out.splitlines():
        json.loads(line)
    with Library(isolated_home) as lib:  # what was committed is there, the rest comes next time
        consistent(lib)
        done = lib.status()["indexed"]
        assert done < 24 or proc.returncode == 0
        lib.index_photos()
        assert lib.status()["indexed"] == 24
        consistent(lib)


@pytest.mark.parametrize("moment", ["start-up", "loading", "first pass", "between batches", "idle"])
def test_ctrl_c_at_any_moment_of_index_watch_stops_it_cleanly(
    moment: str, isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    """Ctrl-C while the library opens, while the models load, in the middle of the first pass,
    in the pause between two of its batches, and while idle: the command ends within seconds
    (0 once it watches, 130 before), says nothing alarming, and keeps what it committed."""
    pics = tmp_path / "Pictures"
    good_photos(pics, 24)
    with Library(isolated_home) as lib:
        lib.import_pack(tiny_clip_pack)
        lib.add_folder(pics)
    pause = 0.3  # after every batch of 2 (tests/paced_cli.py): the first pass takes 3.6 s at least
    env = {**os.environ, "PHOTOSEARCH_HOME": str(isolated_home), "PYTHONFAULTHANDLER": "1"}
    paced = [sys.executable, str(Path(__file__).with_name("paced_cli.py")), str(pause)]
    proc = subprocess.Popen(
        [*paced, "index", "--watch", "--json", "--batch-size", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    errors: list[str] = []
    readers = [
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True),
        threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    seen: list[str] = []

    def committed() -> int:
        db = sqlite3.connect(f"file:{isolated_home / 'data' / 'catalog.sqlite3'}?mode=ro", uri=True)
        try:
            return db.execute("SELECT count(*) FROM vectors").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet
            return 0
        finally:
            db.close()

    def printed(event: str) -> bool:
        while not lines.empty():
            seen.append(json.loads(lines.get())["event"])
        return event in seen

    try:
        lock = isolated_home / "data" / "photosearch.lock"
        opened = lambda: lock.read_text().strip() == str(proc.pid)  # noqa: E731
        wait_for(opened, "the library to open", 120)
        if moment == "loading":
            time.sleep(0.2)
        elif moment in ("first pass", "between batches"):
            wait_for(lambda: committed() >= 2, "a first batch", 120)
            if moment == "between batches":
                time.sleep(pause / 3)
        elif moment == "idle":
            # Photos written just now wait for their files to settle: idle is once all are in.
            wait_for(lambda: printed("ready") and committed() == 24, "every photo indexed", 120)
            time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait()
            for reader in readers:
                reader.join(timeout=10)
            raise AssertionError(f"still running 60 s after Ctrl-C:\n{''.join(errors)}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for reader in readers:
        reader.join(timeout=10)
    stderr = "".join(errors)
    assert code in (0, 130), stderr
    assert "Traceback" not in stderr, stderr
    assert ("stopped watching" in stderr) == (code == 0), stderr
    if moment in ("first pass", "between batches", "idle"):
        assert code == 0 and "stopping after the current batch" in stderr
    with Library(isolated_home) as lib:
        consistent(lib)
        done = lib.status()["indexed"]
        if moment == "idle":
            assert done == 24
        if moment in ("first pass", "between batches"):
            assert 2 <= done < 24  # stopped part-way, after a batch, never in the middle of one
        assert lib.index_photos().run.indexed == 24 - done
        consistent(lib)
