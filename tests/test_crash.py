"""SIGKILL at random moments during indexing: nothing committed is lost, nothing duplicated."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from photos import good_photos, write_photo

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")

TOTAL = 240
BATCH = 4
KILLS = 9
PAUSE = 0.25  # seconds after each batch (tests/paced_cli.py): 60 batches take 15 s at least


def cli(home: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "photosearch", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def indexed_in_catalog(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def catalog_is_sound(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        dup = conn.execute(
            "SELECT count(*) FROM (SELECT photo_id FROM vectors GROUP BY photo_id, pack "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
        assert dup == 0
        paths = conn.execute("SELECT count(*), count(DISTINCT path) FROM photos").fetchone()
        # One folder's scan is one transaction: all of its photos are recorded, or none.
        assert paths[0] == paths[1] and paths[0] in (0, TOTAL)
        wrong = conn.execute(
            "SELECT count(*) FROM photos p WHERE (p.state = 'indexed') != EXISTS "
            "(SELECT 1 FROM vectors v WHERE v.photo_id = p.id)"
        ).fetchone()[0]
        assert wrong == 0
    finally:
        conn.close()


def index_matches_catalog(home: Path) -> None:
    """Every vector in the index is the catalog's vector for that photo (not a stale one)."""
    import numpy as np

    from photosearch.library import Library

    with Library(home) as lib:
        pack = lib.pack
        for ids, vecs in lib.catalog.vectors(pack.id, pack.embedding_dim):
            q = vecs.astype(np.float32)
            scores, found = lib.index.search(q, 1)
            assert (found[:, 0] == ids).all()
            np.testing.assert_allclose(scores[:, 0], (q * q).sum(1), atol=1e-3)


def test_kill_during_indexing_resumes_without_loss(tmp_path: Path, tiny_clip_pack: Path) -> None:
    home = tmp_path / "home"
    photos = tmp_path / "photos"
    files = good_photos(photos, TOTAL)
    assert cli(home, "models", "import", str(tiny_clip_pack)).returncode == 0
    assert cli(home, "folders", "add", str(photos)).returncode == 0
    db = home / "data" / "catalog.sqlite3"
    rng = random.Random(7)
    # Every batch is followed by a pause, so each run is still under way when it is killed, on
    # a fast machine as on a slow one; the index is saved after every batch, so kills also land
    # around saves.
    command = [
        sys.executable,
        str(Path(__file__).with_name("paced_cli.py")),
        str(PAUSE),
        "--home",
        str(home),
        "index",
        "-q",
        "--batch-size",
        str(BATCH),
        "--checkpoint-seconds",
        "0",
    ]

    kills = 0
    for attempt in range(KILLS):
        before = indexed_in_catalog(db)
        if attempt % 3 == 1:
            # Between runs, a photo is edited and another moved: work for the next scan.
            write_photo(files[attempt], 10_000 + attempt)
            moved = photos / "sorted" / files[attempt + 1].name
            moved.parent.mkdir(exist_ok=True)
            files[attempt + 1].rename(moved)
            files[attempt + 1] = moved
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if attempt % 3 == 0:
            time.sleep(rng.uniform(0.0, 1.5))  # anywhere: start-up, scan, first batches
        else:
            # Wait until this run has committed 1-3 batches, then kill it at a random instant
            # of the next batch (its decoding, encoding, commit, index save or the pause).
            target = before + BATCH * rng.randint(1, 3)
            deadline = time.monotonic() + 120
            while indexed_in_catalog(db) < target:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "indexing made no progress"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, PAUSE * 1.5))
        assert proc.poll() is None, "a paced run cannot finish within a few batches"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        kills += 1
        if db.exists():
            catalog_is_sound(db)

    assert kills == KILLS
    assert 0 < indexed_in_catalog(db) < TOTAL, "the killed runs committed part of the work"
    done_before_final = indexed_in_catalog(db)
    final = cli(home, "index", "--json", "--batch-size", str(BATCH))
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout)
    # Only what was never committed is encoded again; everything committed survived.
    assert summary["indexed"] == TOTAL - done_before_final
    assert summary["errors"] == 0
    catalog_is_sound(db)
    index_matches_catalog(home)

    doctor = cli(home, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    status = json.loads(cli(home, "status", "--json").stdout)
    assert (status["indexed"], status["pending"], status["errors"]) == (TOTAL, 0, 0)
