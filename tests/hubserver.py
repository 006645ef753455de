"""A small Hugging Face Hub on 127.0.0.1 for the download tests, speaking the protocol that
huggingface_hub speaks to the real one, with faults on request.

- ``HEAD``/``GET /{owner}/{name}/resolve/{revision}/{file}``: ``X-Repo-Commit``, an ``ETag``
  (git's blob sha1 for small files), ``Content-Length``, ``Accept-Ranges``; ``404`` with
  ``X-Error-Code`` ``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``.
- Large files (``.onnx``, ``.safetensors``, ``.zip``) are "LFS": the resolve URL answers ``302``
  to a second server (the CDN, another port: another origin, as on the real hub) with
  ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``; the CDN serves the bytes.
- ``GET /files/{name}``: a plain web server (no hub headers), for URL downloads.
- Every ``GET`` honours ``Range: bytes=N-`` with ``206`` and ``Content-Range``.

Uploads, as ``huggingface_hub``'s ``create_repo`` and ``create_commit`` speak them:
``POST /api/repos/create`` (409 when it exists), ``/api/validate-yaml``,
``/api/models/{repo}/preupload/{revision}`` (every file "regular": sent inline) and
``/api/models/{repo}/commit/{revision}`` (ndjson: a header, then the files, base64), which makes
a new commit of the repository with those files added or replaced.

Faults, per file name: ``cut`` (send that many bytes, then drop the connection, once),
``corrupt`` (flip a byte on the wire; headers as for the true file), ``fail`` (answer with
that status).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

LFS_SUFFIXES = (".onnx", ".safetensors", ".zip", ".bin")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Hub:
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    commits: dict[str, str] = field(default_factory=dict)
    plain: dict[str, bytes] = field(default_factory=dict)
    cut: dict[str, int] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)
    fail: dict[str, int] = field(default_factory=dict)
    # send that many bytes, then wait for the event before sending the rest (once)
    stall: dict[str, tuple[int, threading.Event]] = field(default_factory=dict)
    stalled: threading.Event = field(default_factory=threading.Event)
    # (method, path, Range header or None, file name or None), in arrival order
    log: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    endpoint: str = ""
    cdn: str = ""
    messages: list[str] = field(default_factory=list)  # the summaries of uploaded commits

    def publish(self, repo: str, files: dict[str, bytes]) -> str:
        """Put ``files`` in ``repo`` as a new commit; returns the commit id."""
        self.repos[repo] = dict(files)
        commit = hashlib.sha1(repr(sorted((k, v) for k, v in files.items())).encode()).hexdigest()
        self.commits[repo] = commit
        return commit

    def publish_folder(self, repo: str, folder: Path) -> str:
        files = {f.name: f.read_bytes() for f in folder.iterdir() if not f.name.startswith(".")}
        return self.publish(repo, files)

    def gets(self, name: str) -> list[str | None]:
        """The Range header of every GET that sent bytes of ``name``."""
        return [r for m, _, r, n in self.log if m == "GET" and n == name]

    def _blob(self, sha: str) -> tuple[str, bytes] | None:
        for files in self.repos.values():
            for name, data in files.items():
                if hashlib.sha256(data).hexdigest() == sha:
                    return name, data
        return None


class _Uploads:
    """What ``huggingface_hub``'s ``create_repo`` and ``create_commit`` send (see the module's
    docstring); mixed into the hub's request handler, which sets ``hub``."""

    hub: Hub

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = unquote(self.path.split("?")[0]).strip("/").split("/")
        self.hub.log.append(("POST", self.path, None, None))
        if parts[:3] == ["api", "repos", "create"]:
            self._created(json.loads(body))
        elif parts[:2] == ["api", "validate-yaml"]:
            self._json(200, {"errors": [], "warnings": []})
        elif parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "preupload":
            files = json.loads(body)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            self._json(200, {"files": modes})
        elif parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "commit":
            self._committed("/".join(parts[2:4]), body)
        else:
            self._empty(404, {})

    def _json(self, status: int, data: object) -> None:
        out = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def _created(self, payload: dict) -> None:
        repo = f"{payload.get('organization')}/{payload['name']}"
        status = 409 if repo in self.hub.repos else 200
        if repo not in self.hub.repos:
            self.hub.publish(repo, {})
        self._json(status, {"url": f"{self.hub.endpoint}/{repo}"})

    def _committed(self, repo: str, body: bytes) -> None:
        if repo not in self.hub.repos:
            self._json(404, {"error": "Repository not found"})
            return
        files = dict(self.hub.repos[repo])
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] == "header":
                self.hub.messages.append(item["value"]["summary"])
        commit = self.hub.publish(repo, files)
        self._json(
            200,
            {"commitUrl": f"{self.hub.endpoint}/{repo}/commit/{commit}", "commitOid": commit,
             "pullRequestUrl": None},
        )  # fmt: skip

    def _empty(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _handler(hub: Hub, *, is_cdn: bool) -> type[BaseHTTPRequestHandler]:
    hub_ = hub  # the class body below names its attribute after it

    class Handler(_Uploads, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        hub = hub_

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, *, head: bool) -> None:
            path = unquote(self.path.split("?")[0])
            parts = path.strip("/").split("/")
            if is_cdn:
                found = hub._blob(parts[-1]) if parts[0] == "cdn" else None
                if found is None:
                    self._empty(404, {})
                    return
                self._send(found[0], found[1], head, {"ETag": f'"{parts[-1]}"'})
                return
            if parts[0] == "files":
                name = "/".join(parts[1:])
                if name not in hub.plain:
                    self._empty(404, {})
                    return
                self._send(name, hub.plain[name], head, {})
                return
            if len(parts) < 5 or parts[2] != "resolve":
                self._empty(404, {})
                return
            repo, revision, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            if repo not in hub.repos:
                self._empty(404, {"X-Error-Code": "RepoNotFound"})
                return
            commit = hub.commits[repo]
            if revision not in ("main", commit):
                self._empty(404, {"X-Error-Code": "RevisionNotFound"})
                return
            files = hub.repos[repo]
            if name not in files:
                self._empty(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit})
                return
            if name in hub.fail:
                hub.log.append((self.command, path, self.headers.get("Range"), name))
                self._empty(hub.fail[name], {"X-Repo-Commit": commit})
                return
            data = files[name]
            if name.endswith(LFS_SUFFIXES):
                sha = hashlib.sha256(data).hexdigest()
                hub.log.append((self.command, path, None, None))
                self._empty(
                    302,
                    {
                        "Location": f"{hub.cdn}/cdn/{sha}",
                        "X-Repo-Commit": commit,
                        "X-Linked-Etag": f'"{sha}"',
                        "X-Linked-Size": str(len(data)),
                        "ETag": f'"{git_blob_sha1(data)}"',
                    },
                )
                return
            self._send(
                name, data, head, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"'}
            )

        def _send(self, name: str, data: bytes, head: bool, headers: dict[str, str]) -> None:
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and not head:
                start = int(rng[len("bytes=") :].split("-")[0])
            hub.log.append((self.command, self.path, rng, name))
            body = data[start:]
            if name in hub.corrupt and not head and body:
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            self.send_response(206 if start else 200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if head:
                return
            stall = hub.stall.pop(name, None)
            if stall is not None and stall[0] < len(body):
                self.wfile.write(body[: stall[0]])
                self.wfile.flush()
                hub.stalled.set()
                stall[1].wait(10)
                body = body[stall[0] :]
            cut = hub.cut.pop(name, None)
            if cut is not None and cut < len(body):
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


class _Server(ThreadingHTTPServer):
    """Keeps its connections, so that closing the server ends the threads serving kept-alive
    ones (a test that checks for leaked threads would otherwise see them)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.connections: set[socket.socket] = set()

    def process_request(self, request, client_address) -> None:  # noqa: ANN001
        self.connections.add(request)
        super().process_request(request, client_address)

    def close_connections(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class HubServer:
    """The hub and its CDN, each on its own port of 127.0.0.1, served from threads."""

    def __init__(self) -> None:
        self.hub = Hub()
        self._servers = [
            _Server(("127.0.0.1", 0), _handler(self.hub, is_cdn=False)),
            _Server(("127.0.0.1", 0), _handler(self.hub, is_cdn=True)),
        ]
        for s in self._servers:
            s.daemon_threads = True
        self.hub.endpoint = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        self.hub.cdn = f"http://127.0.0.1:{self._servers[1].server_address[1]}"
        self._threads = [
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            for s in self._servers
        ]

    def __enter__(self) -> Hub:
        for t in self._threads:
            t.start()
        return self.hub

    def __exit__(self, *exc: object) -> None:
        for s in self._servers:
            s.shutdown()
            s.close_connections()
            s.server_close()
        for t in self._threads:
            t.join(5)
