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
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

PROTOCOL = 1
SOCKET_NAME = "query.sock"
MAX_REQUEST = 1 << 20  # a request larger than this is refused (a query is ~1 kB)
MAX_ANSWER = 1 << 30  # an answer (results of ``-n 100000 --json``: ~30 MB) up to this
ACK_TIMEOUT_S = 2.0  # a server that does not say "working" by then is not answering
_MAX_PATH = 100  # sockaddr_un's sun_path is 108 bytes on Linux, 104 on macOS
REQUEST_TIMEOUT_S = 2.0  # a client that connects must send its request within this
_ACCEPT_FAILURES = 20  # accept() failing this many times in a row: stop serving
Answer = Callable[[dict[str, Any]], dict[str, Any]]


def supported() -> bool:
    return hasattr(socket, "AF_UNIX")


def socket_path(data_dir: Path) -> Path:
    return Path(data_dir) / SOCKET_NAME


def _usable(path: Path) -> bool:
    return supported() and len(os.fsencode(path)) <= _MAX_PATH


def _read_line(stream: BinaryIO, limit: int) -> bytes:
    """One newline-ended message from a socket's buffered reader (a line may arrive with
    the next one in the same packet: the reader keeps it)."""
    line = stream.readline(limit + 1)
    if not line.endswith(b"\n"):
        raise ConnectionError("message too long" if len(line) > limit else "connection closed")
    return line[:-1]


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
            conn.settimeout(ACK_TIMEOUT_S)
            conn.connect(os.fspath(path))
            _send(conn, {"protocol": PROTOCOL, **request})
            stream = conn.makefile("rb")
            # A live server says it is working at once; one that is stopped (Ctrl-Z) or
            # wedged does not, and the command answers by itself after a moment.
            ack = json.loads(_read_line(stream, MAX_REQUEST))
            if isinstance(ack, dict) and ack.get("working"):
                conn.settimeout(timeout)
                answer = json.loads(_read_line(stream, MAX_ANSWER))
            else:
                answer = ack
    except (OSError, ValueError) as e:  # refused, stale, timed out, reset, not JSON
        log.debug("query socket %s: %s; answering here", path, e)
        return None
    if not isinstance(answer, dict) or answer.get("protocol") != PROTOCOL or "declined" in answer:
        why = answer.get("declined") if isinstance(answer, dict) else answer
        log.debug("query socket %s declined: %s", path, why)
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
        failures = 0
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as e:  # out of file descriptors, say: try again, then give up
                failures += 1
                if self._stop.is_set():
                    return
                if failures >= _ACCEPT_FAILURES:
                    log.warning("query socket stopped: %s", e)
                    self._withdraw()  # clients answer by themselves from now on
                    return
                self._stop.wait(0.1)
                continue
            failures = 0
            with conn:
                try:
                    self._handle(conn)
                except Exception:  # noqa: BLE001 - one bad request never stops the server
                    log.exception("query socket: a request failed")

    def _handle(self, conn: socket.socket) -> None:
        try:
            if not _peer_is_us(conn):
                log.warning("query socket: refused a connection from another user")
                return
            conn.settimeout(REQUEST_TIMEOUT_S)
            line = _read_line(conn.makefile("rb"), MAX_REQUEST)
            try:
                request = json.loads(line)
            except ValueError:
                request = None
            if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
                answer: dict[str, Any] = {"declined": f"a JSON request of protocol {PROTOCOL}"}
            else:
                _send(conn, {"protocol": PROTOCOL, "working": True})
                try:
                    answer = self._answer(request)
                except Exception as e:  # noqa: BLE001 - the client answers it itself instead
                    log.exception("query socket: could not answer a request")
                    answer = {"declined": f"{type(e).__name__}: {e}"}
            _send(conn, {"protocol": PROTOCOL, **answer})
        except (OSError, ValueError) as e:  # the client went away or sent garbage
            log.debug("query socket: %s", e)

    def _withdraw(self) -> None:
        """Remove the socket (if it is still this server's) and stop listening."""
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()
        if self._listener is not None:
            self._listener.close()

    def close(self) -> None:
        """Stop answering (after the request in hand) and remove the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._withdraw()

    def __enter__(self) -> QueryServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
