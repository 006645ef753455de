"""Many readers, one writer: search, similar, status and doctor's checks beside indexing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clirun import run_cli
from photos import good_photos, write_photo

from photosearch.library import Library, LibraryLockedError, ReadOnlyLibraryError


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """``cli(home, *args)``: ``photosearch --home HOME ARGS`` run in this process."""

    def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(capsys, home, "--home", str(home), *args)

    return run


@pytest.fixture
def writer(isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path):
    lib = Library(isolated_home)
    lib.import_pack(tiny_clip_pack)
    good_photos(tmp_path / "Pictures", 6)
    lib.add_folder(tmp_path / "Pictures")
    lib.index_photos()
    yield lib
    lib.close()


def found(lib: Library) -> set[Path]:
    return {r.path for r in lib.search("a red circle", n=100, rerank=0)}


def test_a_reader_searches_beside_the_writer_and_follows_its_commits(
    writer: Library, isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Library(isolated_home, writer=False) as reader:
        assert found(reader) == found(writer)
        assert len(found(reader)) == 6
        # The writer commits two more photos but has not saved its index file yet (it saves at
        # checkpoints): the reader serves the committed state, rebuilt from the catalog.
        monkeypatch.setattr(Library, "save_index", lambda self: None)
        new = [write_photo(tmp_path / "Pictures" / f"new{i}.jpg", 500 + i) for i in range(2)]
        writer.index_photos()
        assert set(new) <= found(reader)
        assert len(found(reader)) == 8
        assert reader.status()["indexed"] == 8
        # Lagging behind the catalog is normal beside a writer: not a problem for doctor.
        assert reader.doctor() == []
        index_file = reader.index_path
        before = index_file.stat().st_mtime_ns
    assert index_file.stat().st_mtime_ns == before  # a reader never writes the index


def test_a_reader_refuses_changes_and_a_second_writer_is_still_refused(
    writer: Library, isolated_home: Path, tmp_path: Path
) -> None:
    with Library(isolated_home, writer=False) as reader:
        for change in (
            lambda: reader.add_folder(tmp_path),
            lambda: reader.index_photos(),
            lambda: reader.remove_folder(tmp_path / "Pictures"),
            lambda: reader.doctor(repair=True),
            lambda: reader.remove_pack(reader.pack.path.name),
        ):
            with pytest.raises(ReadOnlyLibraryError, match="opened for reading only"):
                change()
        with pytest.raises(LibraryLockedError, match="searching and status work beside it"):
            Library(isolated_home)
    assert len(found(writer)) == 6  # the writer is untouched


def test_the_command_line_reads_while_index_watch_runs(
    writer: Library, isolated_home: Path, cli
) -> None:
    writer.close()
    env = {**os.environ, "PHOTOSEARCH_HOME": str(isolated_home)}
    watch = subprocess.Popen(
        [sys.executable, "-m", "photosearch", "index", "--watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while json.loads(watch.stdout.readline())["event"] != "ready":
            assert time.monotonic() < deadline and watch.poll() is None
        search = cli(isolated_home, "search", "a red circle", "--json")
        assert search.returncode == 0, search.stderr
        assert len(json.loads(search.stdout)["results"]) == 6
        status = cli(isolated_home, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["indexed"] == 6
        doctor = cli(isolated_home, "doctor")
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        listed = cli(isolated_home, "folders", "list")
        assert listed.returncode == 0 and "Pictures" in listed.stdout
        # A second writer is told what is going on and what still works.
        second = cli(isolated_home, "index")
        assert second.returncode == 1
        assert "searching and status work beside it" in second.stderr
        assert watch.poll() is None
    finally:
        watch.terminate()
        out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
