"""A local, owner-only socket through which a process that holds a library answers queries.

The window, ``index --watch`` and ``photosearch serve`` have the models loaded and the vector
index in memory; a ``photosearch search`` in a terminal would otherwise spend most of its time
starting Python's numerical stack and loading them again. The socket (``query.sock`` in the
data directory) carries one JSON request per connection and one JSON answer; what the request
means is the caller's business (see ``Library.answer``), this module only moves the lines.

It is a Unix domain socket: created inside a private folder (mode 0700) and renamed into place,
so it is never reachable by another user, even for a moment; on Linux each connection's peer
must also be this user (``SO_PEERCRED``). Where Unix sockets are unavailable (Windows) there is
no server and every command answers in its own process. This module imports only the standard
library: the command line's client side must stay quick to start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROTOCOL = 1
SOCKET_NAME = "query.sock"
MAX_LINE = 1 << 20  # a request or answer larger than this is refused (a query is ~1 kB)
_MAX_PATH = 100  # sockaddr_un's sun_path is 108 bytes on Linux, 104 on macOS
REQUEST_TIMEOUT_S = 10.0  # a client that connects must send its request within this
Answer = Callable[[dict[str, Any]], dict[str, Any]]


def supported() -> bool:
    return hasattr(socket, "AF_UNIX")


def socket_path(data_dir: Path) -> Path:
    return Path(data_dir) / SOCKET_NAME


def _usable(path: Path) -> bool:
    return supported() and len(os.fsencode(path)) <= _MAX_PATH


def _read_line(conn: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        end = chunk.find(b"\n")
        if end >= 0:
            chunks.append(chunk[:end])
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_LINE:
            raise ConnectionError("message too long")


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message, ensure_ascii=True).encode("ascii") + b"\n")


# -- the client ------------------------------------------------------------------------------


def ask(data_dir: Path, request: dict[str, Any], *, timeout: float = 300.0) -> dict | None:
    """Send ``request`` to the process serving ``data_dir``; its answer, or None when no
    process serves it (or it declined, or the connection failed): the caller then answers the
    request itself. Never raises for a missing or dead server."""
    path = socket_path(data_dir)
    if not _usable(path) or not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2.0)
            conn.connect(os.fspath(path))
            conn.settimeout(timeout)
            _send(conn, {"protocol": PROTOCOL, **request})
            answer = json.loads(_read_line(conn))
    except (OSError, ValueError) as e:  # refused, stale, timed out, reset, not JSON
        log.debug("query socket %s: %s; answering here", path, e)
        return None
    if not isinstance(answer, dict) or answer.get("protocol") != PROTOCOL or "declined" in answer:
        log.debug("query socket %s declined: %s", path, answer.get("declined", answer))
        return None
    return answer


def serving(data_dir: Path) -> bool:
    """Whether a live process answers on ``data_dir``'s socket."""
    path = socket_path(data_dir)
    if not _usable(path) or not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(os.fspath(path))
        except OSError:
            return False
    return True


# -- the server ------------------------------------------------------------------------------


def _peer_is_us(conn: socket.socket) -> bool:
    peercred = getattr(socket, "SO_PEERCRED", None)
    if peercred is None:  # macOS, BSD: the socket file's mode (0600, in a 0700 folder) guards
        return True
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, peercred, 12))
    return uid == os.getuid()


def _bind_private(path: Path) -> socket.socket:
    """A listening socket at ``path`` that only this user could ever reach."""
    private = Path(tempfile.mkdtemp(prefix=".query-", dir=path.parent))  # mode 0700
    try:
        staged = private / "s"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(os.fspath(staged))
            os.chmod(staged, 0o600)
            listener.listen(8)
            os.replace(staged, path)
        except BaseException:
            listener.close()
            raise
        return listener
    finally:
        with contextlib.suppress(OSError):
            for leftover in private.iterdir():
                leftover.unlink()
            private.rmdir()


class QueryServer:
    """Answers requests on ``data_dir``'s socket on one thread until :meth:`close`.

    Requests are answered one at a time, in the order they come (a query runs on the models
    the holder already has; two at once would only share the same cores). ``answer`` gets the
    request and returns the answer; an exception it raises is logged and answered as declined,
    so the client answers the request itself.
    """

    def __init__(self, data_dir: Path, answer: Answer):
        self.path = socket_path(data_dir)
        self._answer = answer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._inode: int | None = None

    @classmethod
    def start(cls, data_dir: Path, answer: Answer) -> QueryServer | None:
        """A running server, or None (logged) where none can be: no Unix sockets, a data
        directory whose path is too long for one, or another process already serving it."""
        server = cls(data_dir, answer)
        if not _usable(server.path):
            log.info("not answering other processes' queries: no usable socket at %s", server.path)
            return None
        if serving(Path(data_dir)):
            log.info("another process already answers queries at %s", server.path)
            return None
        try:
            server._listener = _bind_private(server.path)
            server._inode = os.stat(server.path).st_ino
        except OSError as e:
            log.warning("cannot answer other processes' queries at %s: %s", server.path, e)
            return None
        server._listener.settimeout(0.25)  # how often the loop looks at the stop flag
        server._thread = threading.Thread(
            target=server._serve, name="photosearch-query-socket", daemon=True
        )
        server._thread.start()
        return server

    def _serve(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as e:
                if not self._stop.is_set():
                    log.warning("query socket stopped: %s", e)
                return
            with conn:
                self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        try:
            if not _peer_is_us(conn):
                log.warning("query socket: refused a connection from another user")
                return
            conn.settimeout(REQUEST_TIMEOUT_S)
            line = _read_line(conn)
            try:
                request = json.loads(line)
            except ValueError:
                request = None
            if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
                answer: dict[str, Any] = {"declined": f"a JSON request of protocol {PROTOCOL}"}
            else:
                try:
                    answer = self._answer(request)
                except Exception as e:  # noqa: BLE001 - the client answers it itself instead
                    log.exception("query socket: could not answer a request")
                    answer = {"declined": f"{type(e).__name__}: {e}"}
            _send(conn, {"protocol": PROTOCOL, **answer})
        except (OSError, ValueError) as e:  # the client went away or sent garbage
            log.debug("query socket: %s", e)

    def close(self) -> None:
        """Stop answering and remove the socket (if it is still this server's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._listener is not None:
            self._listener.close()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()

    def __enter__(self) -> QueryServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
