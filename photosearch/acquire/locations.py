"""Where a pack's files come from: a repository on a Hugging Face server (``HF_ENDPOINT``) at a
revision, or a plain web folder; and the cache key each gets."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urlparse

from photosearch import __version__, config, modelpack
from photosearch.errors import DownloadError, MissingExtraError


@dataclass(frozen=True)
class _Meta:
    url: str  # where to GET it (the hub may redirect to a CDN)
    etag: str | None
    size: int | None
    commit: str | None


def _hf() -> Any:
    try:
        import huggingface_hub
        import huggingface_hub.file_download  # noqa: F401 - http_get lives there
    except ImportError as e:
        raise MissingExtraError(
            f"downloading needs huggingface_hub, which is not installed ({e}); "
            "install it with: pip install huggingface_hub"
        ) from e
    return huggingface_hub


def _endpoint() -> str:
    # Read on every call: huggingface_hub reads HF_ENDPOINT once, when it is imported.
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


class _Location:
    """A folder of files on a server: an HF repository at a revision, or a plain URL."""

    label: str

    def url(self, filename: str) -> str:
        raise NotImplementedError

    def head(self, filename: str) -> _Meta:
        raise NotImplementedError

    def headers(self, url: str) -> dict[str, str]:
        raise NotImplementedError

    def key(self) -> str:
        raise NotImplementedError


class _Hub(_Location):
    def __init__(self, repo: str, revision: str = "main", endpoint: str | None = None):
        self.repo = repo
        self.revision = revision
        self.endpoint = endpoint or _endpoint()
        self.label = repo if revision == "main" else f"{repo}@{revision}"

    def url(self, filename: str) -> str:
        hf = _hf()
        return hf.hf_hub_url(self.repo, filename, revision=self.revision, endpoint=self.endpoint)

    def head(self, filename: str) -> _Meta:
        hf = _hf()
        meta = hf.get_hf_file_metadata(
            self.url(filename),
            endpoint=self.endpoint,
            library_name="photosearch",
            library_version=__version__,
        )
        if meta.commit_hash is None or meta.etag is None:
            raise DownloadError(
                f"{self.endpoint} does not answer like a Hugging Face server (no commit or ETag "
                "header); check HF_ENDPOINT",
                url=self.url(filename),
            )
        return _Meta(meta.location, meta.etag, meta.size, meta.commit_hash)

    def headers(self, url: str) -> dict[str, str]:
        hf = _hf()
        headers = hf.utils.build_hf_headers(library_name="photosearch", library_version=__version__)
        if _origin(url) != _origin(self.endpoint):  # a CDN: the token stays with the hub
            headers.pop("authorization", None)
        return headers

    def key(self) -> str:
        return _key(self.repo, f"{self.endpoint} {self.repo} {self.revision}")

    def pinned(self, commit: str) -> _Hub:
        """The same repository at one commit: every file of a pack comes from one version."""
        pinned = _Hub(self.repo, commit, self.endpoint)
        pinned.label = self.label
        return pinned


class _Url(_Location):
    """Files in one web folder; ``query`` (a signed URL's parameters) goes with each."""

    def __init__(self, base: str, query: str = ""):
        self.base = base if base.endswith("/") else base + "/"
        self.query = query
        self.label = base

    def url(self, filename: str) -> str:
        return self.base + quote(filename) + (f"?{self.query}" if self.query else "")

    def head(self, filename: str) -> _Meta:
        hf = _hf()
        url = self.url(filename)
        # token=False: a Hugging Face token is never sent to another server
        meta = hf.get_hf_file_metadata(url, token=False)
        return _Meta(meta.location, None, meta.size, None)

    def headers(self, url: str) -> dict[str, str]:
        return {"user-agent": f"photosearch/{__version__}"}

    def key(self) -> str:
        name = PurePosixPath(urlparse(self.base).path).name or "pack"
        return _key(name, self.base)


def _origin(url: str) -> tuple[str, str, int | None]:
    u = urlparse(url)
    return u.scheme, (u.hostname or "").lower(), u.port


def _key(name: str, full: str) -> str:
    safe = config.slug(name, "download", strip="-.")
    return f"{safe[:60]}-{hashlib.sha256(full.encode()).hexdigest()[:10]}"


_REPO = re.compile(r"^(?:hf://)?([A-Za-z0-9][\w.-]*/[\w.-]+)(?:@([\w./-]+))?$")


def parse_source(text: str, revision: str | None = None) -> tuple[_Location, bool]:
    """``https://…/pack.zip``, ``https://…/folder/`` or ``owner/name[@revision]``; returns
    where the files are and whether it is a zip file."""
    text = text.strip()
    if text.startswith(("http://", "https://")):
        u = urlparse(text)
        folder, _, last = u.path.rpartition("/")
        if last.lower().endswith(".zip") or last == modelpack.MANIFEST:
            # the folder, and the query kept for each file (signed links carry it)
            base = f"{u.scheme}://{u.netloc}{folder}/"
            return _Url(base, u.query), last != modelpack.MANIFEST
        return _Url(f"{u.scheme}://{u.netloc}{u.path}", u.query), False
    m = _REPO.match(text)
    if m is None:
        raise DownloadError(
            f"{text!r} is neither a web address (https://…) nor a Hugging Face repository "
            "(owner/name); for a folder or zip file on this computer use "
            "`photosearch models import PATH`"
        )
    return _Hub(m.group(1), revision or m.group(2) or "main"), False
