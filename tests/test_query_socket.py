"""The query socket: a process holding the library answers other processes' searches.

What a user relies on: a search from a terminal gives the same results (and the same errors)
whether the window, ``index --watch`` or ``photosearch serve`` answers it or the command runs
alone; the socket is reachable only by its owner; a dead or stale server never breaks a search.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import run_cli
from photos import good_photos

from photosearch import encoders, query_socket
from photosearch.library import Library

pytestmark = pytest.mark.skipif(not query_socket.supported(), reason="no Unix sockets")


@pytest.fixture
def short_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home whose socket path fits a Unix socket address (pytest's tmp paths can be long)."""
    home = Path(tempfile.mkdtemp(prefix="psq-", dir="/tmp"))
    monkeypatch.setenv("PHOTOSEARCH_HOME", str(home))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def served(short_home: Path, tiny_clip_pack: Path) -> Iterator[tuple[Library, list[dict]]]:
    """A writer library (as the window holds it) with photos, answering over its socket; the
    requests it answered are recorded."""
    photos = short_home / "Pictures"
    good_photos(photos / "a", 5)
    good_photos(photos / "b", 5, start_seed=50)
    lib = Library(short_home)
    lib.import_pack(tiny_clip_pack)
    lib.add_folder(photos)
    lib.index_photos()
    asked: list[dict] = []
    answer = lib.answer

    def recording(request: dict) -> dict:
        asked.append(request)
        return answer(request)

    lib.answer = recording  # type: ignore[method-assign]
    lib.search("a scene", n=1)  # the models loaded, as in a window that has searched
    encoders.wait_for_saved_graphs()  # (their optimised copies are written meanwhile)
    assert lib.serve_queries()
    yield lib, asked
    lib.close()


def _json(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _alone(
    capsys: pytest.CaptureFixture[str], home: Path, *args: str
) -> subprocess.CompletedProcess:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PHOTOSEARCH_NO_SOCKET", "1")
        return run_cli(capsys, home, *args)


def _ranked(doc: dict) -> list[tuple[str, float]]:
    return [(r["path"], r["score"]) for r in doc["results"]]


def test_a_search_through_the_socket_is_the_search_run_alone(
    served: tuple[Library, list[dict]], short_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lib, asked = served
    queries = [
        ["search", "a red square", "--json"],
        ["search", "a scene", "-n", "3", "--folder", str(short_home / "Pictures" / "b"), "--json"],
        ["similar", str(short_home / "Pictures" / "a" / "photo_000.jpg"), "--json"],
    ]
    for argv in queries:
        remote = _json(run_cli(capsys, short_home, *argv))
        alone = _json(_alone(capsys, short_home, *argv))
        assert _ranked(remote) == _ranked(alone)
        assert remote["results"]
    assert len(asked) == len(queries)  # each one was answered by the serving library
    folder = short_home / "Pictures" / "b"
    assert all(
        r["path"].startswith(str(folder))
        for r in _json(run_cli(capsys, short_home, *queries[1]))["results"]
    )
    # The words a person reads are the same too (the timings aside).
    text = run_cli(capsys, short_home, "search", "a red square", "-n", "4")
    assert text.stdout == _alone(capsys, short_home, "search", "a red square", "-n", "4").stdout
    assert "4 results" in text.stderr


def test_relative_paths_mean_the_askers_folder(
    served: tuple[Library, list[dict]],
    short_home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(short_home / "Pictures")
    remote = _json(run_cli(capsys, short_home, "search", "x", "--folder", "a", "--json"))
    assert remote["results"]
    assert all(r["path"].startswith(str(short_home / "Pictures" / "a")) for r in remote["results"])
    argv = ("similar", "b/photo_003.jpg", "-n", "3", "--json")
    like = _json(run_cli(capsys, short_home, *argv))
    assert served[1][-1]["cwd"] == str(short_home / "Pictures")
    assert _ranked(like) == _ranked(_json(_alone(capsys, short_home, *argv)))
    missing = run_cli(capsys, short_home, "similar", "b/nothing.jpg")
    assert missing.returncode == 1
    assert str(short_home / "Pictures" / "b" / "nothing.jpg") in missing.stderr


def test_a_query_that_cannot_run_says_why_either_way(
    served: tuple[Library, list[dict]], short_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = run_cli(capsys, short_home, "search", "x", "--after", "20x")
    alone = _alone(capsys, short_home, "search", "x", "--after", "20x")
    assert remote.returncode == alone.returncode == 1
    assert remote.stderr == alone.stderr
    assert "not a date" in remote.stderr
    assert served[1], "the serving library was asked"


def test_the_socket_is_its_owners_only_and_goes_with_its_server(
    served: tuple[Library, list[dict]], short_home: Path
) -> None:
    lib, _ = served
    path = query_socket.socket_path(lib.paths.data)
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert not [p for p in lib.paths.data.iterdir() if p.name.startswith(".query-")]
    # A second holder (say `photosearch serve` beside the window) leaves the first serving.
    reader = Library(short_home, writer=False)
    try:
        assert not reader.serve_queries()
    finally:
        reader.close()
    assert query_socket.serving(lib.paths.data)
    lib.stop_serving()
    assert not path.exists()


def test_a_dead_or_stale_server_never_breaks_a_search(
    short_home: Path, tiny_clip_pack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good_photos(short_home / "p", 3)
    with Library(short_home) as lib:
        lib.import_pack(tiny_clip_pack)
        lib.add_folder(short_home / "p")
        lib.index_photos()
        data = lib.paths.data
    # A socket file left by a killed process: nobody listens on it.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(os.fspath(query_socket.socket_path(data)))
    stale.close()
    result = run_cli(capsys, short_home, "search", "a scene", "-n", "2", "--json")
    assert len(_json(result)["results"]) == 2

    # A server that cannot answer (its answer fails) is declined: the command answers itself.
    def broken(request: dict) -> dict:
        raise RuntimeError("boom")

    server = query_socket.QueryServer.start(data, broken)  # replaces the stale socket
    assert server is not None
    try:
        assert query_socket.ask(data, {"op": "search"}) is None
        assert (
            len(_json(run_cli(capsys, short_home, "search", "a scene", "--json"))["results"]) == 3
        )
        # Garbage on the wire does not stop the server.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(os.fspath(server.path))
            s.sendall(b"not json\n")
            assert "declined" in json.loads(s.makefile().readline())
        assert query_socket.serving(data)
    finally:
        server.close()


def test_a_socket_server_answers_only_its_protocol(short_home: Path) -> None:
    data = short_home / "d"
    data.mkdir()
    with query_socket.QueryServer.start(data, lambda r: {"echo": r["x"]}) as server:
        assert query_socket.ask(data, {"x": "é\udcff"}) == {"protocol": 1, "echo": "é\udcff"}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(os.fspath(server.path))
            s.sendall(json.dumps({"protocol": 99}).encode() + b"\n")
            assert "declined" in json.loads(s.makefile().readline())
    assert query_socket.ask(data, {"x": 1}) is None  # closed: nobody answers
    deep = short_home / ("x" * 120)
    deep.mkdir()
    assert query_socket.QueryServer.start(deep, lambda r: r) is None  # too long for a socket


def test_the_command_answered_over_the_socket_loads_no_engine(
    served: tuple[Library, list[dict]], short_home: Path
) -> None:
    """The point of the socket: the asking process starts without numpy or ONNX Runtime."""
    code = (
        "import sys; from photosearch.cli import main; rc = main(['search', 'a red square']); "
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'faiss', 'PIL') if m in sys.modules)); "
        "sys.exit(rc)"
    )
    env = {**os.environ, "PHOTOSEARCH_HOME": str(short_home)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert str(short_home / "Pictures") in out.stdout
    assert served[1]


def test_serve_command_answers_until_stopped(short_home: Path, tiny_clip_pack: Path) -> None:
    good_photos(short_home / "p", 3)
    with Library(short_home) as lib:
        lib.import_pack(tiny_clip_pack)
        lib.add_folder(short_home / "p")
        lib.index_photos()
        data = lib.paths.data
    env = {**os.environ, "PHOTOSEARCH_HOME": str(short_home)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "photosearch", "serve"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stderr is not None
        assert "answering searches" in serve.stderr.readline()
        answer = query_socket.ask(data, {"op": "search", "text": "a scene", "n": 2})
        assert answer is not None and len(answer["results"]["results"]) == 2
        # Beside it, a writer can still open the library (serve only reads).
        with Library(short_home) as writer:
            assert writer.writer
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
        assert "stopped answering" in serve.stderr.read()
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert not query_socket.socket_path(data).exists()


def test_a_server_that_does_not_answer_costs_a_moment_not_a_hang(short_home: Path) -> None:
    """A serving process stopped with Ctrl-Z (its socket still accepts connections) or
    wedged: the command answers by itself after a couple of seconds."""
    import time

    data = short_home / "d"
    data.mkdir()
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(os.fspath(query_socket.socket_path(data)))
    mute.listen(8)  # the kernel accepts; nobody reads
    try:
        t0 = time.monotonic()
        assert query_socket.ask(data, {"op": "search"}) is None
        assert time.monotonic() - t0 < query_socket.ACK_TIMEOUT_S + 2
    finally:
        mute.close()


def test_large_answers_arrive_whole(short_home: Path) -> None:
    data = short_home / "d"
    data.mkdir()
    big = ["x" * 1000] * 3000  # 3 MB, more than a request may be
    with query_socket.QueryServer.start(data, lambda r: {"rows": big}) as server:
        assert server is not None
        assert query_socket.ask(data, {"op": "x"}) == {"protocol": 1, "rows": big}


def test_a_query_in_another_language_is_answered_by_the_asker(
    served: tuple[Library, list[dict]], short_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A multilingual model is told the query's language: the server does not answer for a
    terminal that types in another one (its own locale may differ)."""
    lib, asked = served
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PHOTOSEARCH_LANGUAGE", "de")
        result = run_cli(capsys, short_home, "search", "ein roter Kreis", "-n", "2", "--json")
    assert len(_json(result)["results"]) == 2
    assert asked and asked[-1]["language"] == "de"  # asked, and declined
    assert lib.answer(asked[-1]).get("declined")
