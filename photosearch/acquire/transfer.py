"""Fetching one file: resumed from a hidden ``.part`` file with HTTP Range requests, checked
against the size and content hash the server states, and the network's errors said in words a
person can act on."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from photosearch import modelpack
from photosearch.acquire.locations import _hf, _Location, _Meta
from photosearch.acquire.progress import _Reporter
from photosearch.errors import DiskSpaceError, DownloadCancelled, DownloadError, PackError

log = logging.getLogger(__name__)

_ATTEMPTS = 3  # connections that break off are resumed this many times within one call


@contextmanager
def _translated(where: _Location, filename: str) -> Iterator[None]:
    """Turn the network stack's errors into messages a person can act on."""
    hf = _hf()
    import httpx2  # huggingface_hub's own HTTP client

    errors = hf.errors
    host = urlparse(where.url(filename)).netloc
    try:
        yield
    except (DownloadCancelled, DownloadError, PackError, DiskSpaceError):
        raise
    except errors.RepositoryNotFoundError as e:
        raise DownloadError(
            f"{where.label} was not found on {host} (a typo, or a private repository)",
            url=where.url(filename),
        ) from e
    except errors.RevisionNotFoundError as e:
        raise DownloadError(f"{where.label}: no such revision", url=where.url(filename)) from e
    except errors.RemoteEntryNotFoundError as e:
        raise DownloadError(f"{filename} is not in {where.label}", url=where.url(filename)) from e
    except errors.HfHubHTTPError as e:
        code = e.response.status_code if e.response is not None else None
        if code is not None and code >= 500:
            raise DownloadError(
                f"the server {host} failed (HTTP {code}) while sending {filename}; try again "
                "later (what arrived so far is kept)",
                url=where.url(filename),
            ) from e
        if code == 404:
            raise DownloadError(
                f"{filename} was not found at {where.label} (HTTP 404)", url=where.url(filename)
            ) from e
        raise DownloadError(
            f"the server {host} refused {filename} (HTTP {code})", url=where.url(filename)
        ) from e
    except (httpx2.ConnectError, errors.OfflineModeIsEnabled) as e:
        raise DownloadError(
            f"cannot reach {host}: this computer seems to be offline, or the server is down. "
            "Nothing was installed; try again once connected (photosearch itself works "
            "offline once a model pack is installed)",
            url=where.url(filename),
        ) from e
    except httpx2.TimeoutException as e:
        raise DownloadError(
            f"{host} stopped answering while sending {filename}; try again (the download "
            "resumes where it stopped)",
            url=where.url(filename),
        ) from e
    except httpx2.HTTPError as e:
        raise DownloadError(
            f"the connection to {host} broke off while sending {filename} ({e}); try again "
            "(the download resumes where it stopped)",
            url=where.url(filename),
        ) from e


def _fetch(
    where: _Location,
    filename: str,
    dest: Path,
    reporter: _Reporter,
    meta: _Meta | None = None,
    sha256: str | None = None,
) -> Path:
    """Download ``filename`` to ``dest``, resuming a ``.part`` file left by an earlier try.

    The bytes are checked against the size the server announced and, when the server is a
    hub whose ETag is a content hash (sha256 for large files, git's sha1 for small ones),
    against that hash; a file that fails is deleted and :class:`DownloadError` raised. With
    ``sha256`` (the manifest's), a file that differs is deleted and :class:`PackError` raised.
    Both checks read the file once, and before it takes its name.
    """
    with _translated(where, filename):
        meta = meta or where.head(filename)
        part = _part_file(dest, meta, reporter)
        _transfer(where, filename, part, meta, reporter)
        _check_size(filename, part, meta)
        _check_content(where, filename, part, meta, reporter, sha256)
        os.replace(part, dest)
        return dest


def _part_file(dest: Path, meta: _Meta, reporter: _Reporter) -> Path:
    """The ``.part`` file to resume, named after the file's version so that bytes of another
    version are never appended to it; what it already holds counts as done."""
    version = re.sub(r"[^0-9A-Za-z]", "", meta.etag or "")[:16] or "x"
    part = dest.parent / f".{dest.name}.{version}.part"
    dest.parent.mkdir(parents=True, exist_ok=True)
    for old in dest.parent.glob(f".{dest.name}.*.part"):
        if old != part:  # another version of the file: useless now
            old.unlink(missing_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if meta.size is not None and have > meta.size:
        part.unlink()
        have = 0
    reporter.add(have, fresh=False)
    return part


def _transfer(
    where: _Location, filename: str, part: Path, meta: _Meta, reporter: _Reporter
) -> None:
    """Append the rest of the file to ``part``; a connection that breaks off is resumed, up
    to ``_ATTEMPTS`` times, before the error is passed on."""
    hf = _hf()
    from huggingface_hub.file_download import http_get

    for attempt in range(_ATTEMPTS):
        last = attempt == _ATTEMPTS - 1
        with open(part, "ab") as f:
            have = f.tell()
            try:
                http_get(
                    meta.url,
                    f,
                    resume_size=have,
                    headers=where.headers(meta.url),
                    expected_size=meta.size,
                    tqdm_class=reporter.bar(),
                )
                return
            except hf.errors.HfHubHTTPError:
                raise
            except OSError as e:
                _raise_unless_incomplete(e, filename, part, meta, have, last)
            except Exception as e:
                import httpx2

                if not isinstance(e, httpx2.TransportError) or last:
                    raise
                log.info("%s: connection lost (%s); resuming", filename, e)
                time.sleep(0.5)


def _raise_unless_incomplete(
    e: OSError, filename: str, part: Path, meta: _Meta, have: int, last: bool
) -> None:
    """A full disk is said as such; a transfer that arrived short (huggingface_hub's
    consistency check) is worth another attempt, unless it was the last."""
    if e.errno == errno.ENOSPC:
        free = shutil.disk_usage(part.parent).free
        raise DiskSpaceError(
            needed=(meta.size or 0) - have, free=free, where=str(part.parent)
        ) from e
    if "Consistency check failed" not in str(e) or last:
        raise DownloadError(
            f"{filename} arrived incomplete; try again (the download resumes where it stopped)",
            url=meta.url,
        ) from e


def _check_size(filename: str, part: Path, meta: _Meta) -> None:
    """A file of another size than the server announced is deleted: resuming it cannot help."""
    size = part.stat().st_size
    if meta.size is not None and size != meta.size:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{filename}: {size} bytes arrived, the server announced {meta.size}; it was "
            "deleted, try again",
            url=meta.url,
        )


def _check_content(
    where: _Location,
    filename: str,
    part: Path,
    meta: _Meta,
    reporter: _Reporter,
    sha256: str | None,
) -> None:
    """Check the file against the hub's ETag and the manifest's sha256, reading it once; a
    file that fails is deleted so the next try fetches it anew."""
    digest = None
    if sha256 or _sha256_etag(meta.etag):
        reporter.stage("verify", f"checking {filename}")
        digest = modelpack.sha256_file(part)
    if not _matches_etag(part, meta.etag, digest):
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{filename} was damaged in transfer (its checksum does not match the "
            "server's); it was deleted and nothing was installed, try again",
            url=meta.url,
        )
    if sha256 is not None and digest != sha256:
        part.unlink(missing_ok=True)
        raise PackError(
            "damaged or not what the manifest lists: its sha256 does not match; the file "
            "was deleted and nothing was installed (try again to fetch it anew)",
            pack=where.label,
            file=filename,
        )


def _sha256_etag(etag: str | None) -> str | None:
    """The sha256 a hub's ETag states for a large (LFS) file, else None."""
    tag = (etag or "").strip('"').lower()
    return tag if re.fullmatch(r"[0-9a-f]{64}", tag) else None


def _matches_etag(path: Path, etag: str | None, sha256: str | None = None) -> bool:
    """Whether the file has the content hash a hub's ETag states (True when the ETag is not a
    content hash: plain web servers make up their own). ``sha256``: the file's, if known."""
    tag = (etag or "").strip('"').lower()
    if (wanted := _sha256_etag(tag)) is not None:
        return (sha256 or modelpack.sha256_file(path)) == wanted
    if re.fullmatch(r"[0-9a-f]{40}", tag):  # git's blob id: sha1 of "blob <size>\0" + content
        h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest() == tag
    return True
