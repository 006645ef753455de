"""Getting a model pack onto this machine: a short curated catalogue, downloads of ready packs
(a Hugging Face repository or a URL), preparing one from open_clip weights, zip import.

Downloads speak the Hugging Face Hub protocol through huggingface_hub (``HF_ENDPOINT`` chooses
the server). Files arrive in the cache's ``downloads`` folder as hidden ``.part`` files that a
later run resumes with HTTP Range requests; each finished file is checked against the hub's own
content hash (its ETag) and, in a pack, the manifest's sha256 before anything is installed.
Free disk space is checked before anything large is written. Installing is
:meth:`Library.import_pack`: verify, stage, rename, so a failure at any point leaves no half
pack. Nothing here imports torch: :func:`prepare` loads the exporter only when called.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import logging
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlparse

from photosearch import __version__, config, modelpack
from photosearch.errors import (
    DiskSpaceError,
    DownloadCancelled,
    DownloadError,
    MissingExtraError,
    PackError,
)

if TYPE_CHECKING:
    from photosearch.library import Library

log = logging.getLogger(__name__)

DOWNLOADS = "downloads"  # under the cache folder: packs being downloaded, one folder each
WEIGHTS = "weights"  # under the cache folder: open_clip weights being downloaded
# Left free beyond what a download needs: a full disk breaks more than the download.
SPARE_BYTES = 50_000_000
_ATTEMPTS = 3  # connections that break off are resumed this many times within one call


# -- the catalogue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Weights:
    """Published open_clip weights: the architecture, the tag, where the hub keeps them."""

    model: str
    tag: str
    repo: str
    files: tuple[str, ...] = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    mb: int = 0  # about how much to download (MB = 10⁶ bytes); the server says exactly


@dataclass(frozen=True)
class Choice:
    """A model pack ``models prepare`` can make, with what a person needs to choose."""

    name: str
    title: str
    encoder: Weights
    reranker: Weights | None
    pack_mb: int  # the installed pack (int8 dual encoder, fp32 reranker), about
    speed: str
    quality: str

    @property
    def download_mb(self) -> int:
        return self.encoder.mb + (self.reranker.mb if self.reranker else 0)


COCA_B32 = Weights(
    "coca_ViT-B-32",
    "mscoco_finetuned_laion2b_s13b_b90k",
    "laion/mscoco_finetuned_CoCa-ViT-B-32-laion2B-s13B-b90k",
    mb=1014,
)

# Speeds measured on 2 CPU cores (benchmarks/results/encoders.md) where marked, else estimated
# from the models' compute; quality is the published ImageNet zero-shot accuracy.
MAX_MANIFEST = 16 << 20  # bytes: a manifest lists a few files and their checksums

CATALOGUE: tuple[Choice, ...] = (
    Choice(
        "mobileclip-s2",
        "MobileCLIP-S2 + CoCa ViT-B-32 reranker (recommended)",
        Weights("MobileCLIP-S2", "datacompdr", "apple/MobileCLIP-S2-OpenCLIP", mb=396),
        COCA_B32,
        pack_mb=1280,
        speed="indexes about 4 photos/s on 2 CPU cores (measured); queries in ~0.1 s",
        quality="74.4 % ImageNet zero-shot; the best accuracy for its speed",
    ),
    Choice(
        "vit-b-32-256",
        "ViT-B-32-256 (DataComp) + CoCa ViT-B-32 reranker",
        Weights(
            "ViT-B-32-256",
            "datacomp_s34b_b86k",
            "laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K",
            mb=605,
        ),
        COCA_B32,
        pack_mb=1250,
        speed="indexes about 6 photos/s on 2 CPU cores (measured): the fastest to index",
        quality="72.8 % ImageNet zero-shot: a little below MobileCLIP-S2",
    ),
    Choice(
        "mobileclip-b",
        "MobileCLIP-B (LT) + CoCa ViT-B-32 reranker",
        Weights("MobileCLIP-B", "datacompdr_lt", "apple/MobileCLIP-B-LT-OpenCLIP", mb=600),
        COCA_B32,
        pack_mb=1300,
        speed="about 2× slower to index than MobileCLIP-S2 (estimated)",
        quality="77.2 % ImageNet zero-shot: better, for a larger, slower model",
    ),
    Choice(
        "vit-l-14",
        "ViT-L-14 (DataComp.XL) + CoCa ViT-B-32 reranker",
        Weights(
            "ViT-L-14",
            "datacomp_xl_s13b_b90k",
            "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K",
            mb=1710,
        ),
        COCA_B32,
        pack_mb=1500,
        speed="about 10× slower to index than MobileCLIP-S2 (estimated): for a GPU",
        quality="79.2 % ImageNet zero-shot: the most accurate here",
    ),
)
DEFAULT = "mobileclip-s2"


def choice(name: str | None = None) -> Choice:
    """The catalogue entry ``name`` (default: the recommended one)."""
    wanted = (name or DEFAULT).lower()
    for c in CATALOGUE:
        if c.name == wanted:
            return c
    known = ", ".join(c.name for c in CATALOGUE)
    raise PackError(f"no model named {name!r} in the catalogue (choose from: {known})")


# -- progress and cancelling -------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """One progress event. ``done``/``total`` are bytes while downloading (``total`` None
    when unknown, e.g. while exporting); ``rate`` bytes/s, ``eta`` seconds."""

    stage: str  # "download" | "verify" | "export" | "install"
    message: str
    done: int = 0
    total: int | None = None
    rate: float = 0.0
    eta: float | None = None

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


ProgressFn = Callable[[Progress], None]


class _Reporter:
    """Counts bytes across the files of one job, reports progress, honours a cancel event."""

    def __init__(self, progress: ProgressFn | None, cancel: threading.Event | None):
        self.progress = progress
        self.cancel = cancel
        self.total: int | None = None
        self.done = 0
        self.message = ""
        self._fresh = 0  # bytes that came over the network in this call: the rate
        self._start = time.monotonic()
        self._last = 0.0

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise DownloadCancelled(
                "download stopped; what arrived so far is kept, and the next try resumes it"
            )

    def stage(self, stage: str, message: str) -> None:
        self.check()
        self.message = message
        if self.progress is not None:
            total = self.total if stage == "download" else None
            self.progress(Progress(stage, message, self.done if total else 0, total))

    def add(self, n: int, *, fresh: bool = True) -> None:
        self.done += n
        if fresh:
            self._fresh += n
        self.check()
        now = time.monotonic()
        if self.progress is None or (now - self._last < 0.1 and self.done != self.total):
            return
        self._last = now
        elapsed = now - self._start
        rate = self._fresh / elapsed if elapsed > 0 else 0.0
        left = None if self.total is None else max(0, self.total - self.done)
        eta = left / rate if left is not None and rate > 0 else None
        self.progress(Progress("download", self.message, self.done, self.total, rate, eta))

    def bar(self) -> type:
        """A class huggingface_hub's ``http_get`` can use as its progress bar (``tqdm_class``):
        it counts into this reporter and stops the transfer when cancelled."""
        reporter = self

        class Bar:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            def update(self, n: int | float | None = 1) -> None:
                reporter.add(int(n or 0))

            def close(self) -> None:
                pass

            def __enter__(self) -> Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

        return Bar


# -- where files come from ---------------------------------------------------------------------


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


# -- fetching one file ------------------------------------------------------------------------


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
    hf = _hf()
    from huggingface_hub.file_download import http_get

    with _translated(where, filename):
        meta = meta or where.head(filename)
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
        for attempt in range(_ATTEMPTS):
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
                    break
                except hf.errors.HfHubHTTPError:
                    raise
                except OSError as e:
                    if e.errno == errno.ENOSPC:
                        free = shutil.disk_usage(part.parent).free
                        raise DiskSpaceError(
                            needed=(meta.size or 0) - have, free=free, where=str(part.parent)
                        ) from e
                    if "Consistency check failed" not in str(e) or attempt == _ATTEMPTS - 1:
                        raise DownloadError(
                            f"{filename} arrived incomplete; try again (the download resumes "
                            "where it stopped)",
                            url=meta.url,
                        ) from e
                except Exception as e:
                    import httpx2

                    if not isinstance(e, httpx2.TransportError) or attempt == _ATTEMPTS - 1:
                        raise
                    log.info("%s: connection lost (%s); resuming", filename, e)
                    time.sleep(0.5)
        size = part.stat().st_size
        if meta.size is not None and size != meta.size:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{filename}: {size} bytes arrived, the server announced {meta.size}; it was "
                "deleted, try again",
                url=meta.url,
            )
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
        os.replace(part, dest)
        return dest


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


# -- disk space -------------------------------------------------------------------------------


def _existing(folder: Path) -> Path:
    for p in (folder, *folder.parents):
        if p.exists():
            return p
    return folder


def check_space(needs: dict[Path, int]) -> None:
    """Raise :class:`DiskSpaceError` unless each folder's disk has room for its bytes (and a
    spare margin). Folders on the same disk add up."""
    by_device: dict[int, tuple[Path, int]] = {}
    for folder, n in needs.items():
        where = _existing(folder)
        dev = where.stat().st_dev
        seen = by_device.get(dev)
        by_device[dev] = (seen[0] if seen else where, (seen[1] if seen else 0) + n)
    for where, n in by_device.values():
        if n <= 0:
            continue
        free = shutil.disk_usage(where).free
        if free < n + SPARE_BYTES:
            raise DiskSpaceError(needed=n + SPARE_BYTES, free=free, where=str(where))


def _same_disk(a: Path, b: Path) -> bool:
    return _existing(a).stat().st_dev == _existing(b).stat().st_dev


# -- ready packs -------------------------------------------------------------------------------


def download_pack(
    library: Library,
    source: str,
    *,
    revision: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    activate: bool | None = None,
    replace: bool = False,
) -> modelpack.ModelPack:
    """Download an exported pack (``owner/name[@revision]`` on a hub, a folder URL, or a zip
    URL), check every file and install it; returns the installed pack.

    Cancelled (``cancel`` set) or broken off, what arrived is kept under the cache's
    ``downloads`` folder and the next call resumes it. Nothing is installed unless every file
    matches the manifest's sha256.
    """
    where, is_zip = parse_source(source, revision)
    reporter = _Reporter(progress, cancel)
    downloads = library.paths.cache / DOWNLOADS
    if is_zip:
        name = unquote(PurePosixPath(urlparse(source).path).name)  # quoted again per request
        work = downloads / _key(name, source)
        reporter.stage("download", f"asking {where.label} for {name}")
        with _translated(where, name):
            meta = where.head(name)
        reporter.total = meta.size
        have = sum(p.stat().st_size for p in work.glob(f".{name}.*.part"))
        check_space({downloads: (meta.size or 0) - have})
        reporter.stage("download", f"downloading {name}")
        zipped = _fetch(where, name, work / name, reporter, meta)
        try:
            return import_zip(
                library,
                zipped,
                activate=activate,
                replace=replace,
                progress=progress,
                cancel=cancel,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    work = downloads / where.key()
    reporter.stage("download", f"reading the manifest of {where.label}")
    with _translated(where, modelpack.MANIFEST):
        meta = where.head(modelpack.MANIFEST)
    if isinstance(where, _Hub) and meta.commit:
        where = where.pinned(meta.commit)
    fresh = work / ".manifest.new"
    _fetch(where, modelpack.MANIFEST, fresh, reporter, meta)
    reporter.done = 0
    if (work / modelpack.MANIFEST).exists() and (
        (work / modelpack.MANIFEST).read_bytes() != fresh.read_bytes()
    ):
        log.info("%s changed since the last try: starting afresh", where.label)
        for f in work.iterdir():
            if f != fresh:
                f.unlink()
    os.replace(fresh, work / modelpack.MANIFEST)
    try:
        manifest = modelpack.read_manifest(work)
    except PackError as e:
        shutil.rmtree(work, ignore_errors=True)
        raise PackError(f"{where.label} cannot be installed: {e}") from e
    dest = library.pack_folder(str(manifest["name"]))
    if dest.exists() and not replace:
        shutil.rmtree(work, ignore_errors=True)
        raise PackError(
            f"a pack named {dest.name!r} is already installed; pass --replace to replace it "
            "(photos encoded with it will be encoded again)"
        )
    files: dict[str, dict[str, Any]] = manifest["files"]
    total = sum(int(e["size"]) for e in files.values())
    done = {
        n: (work / n).is_file() and (work / n).stat().st_size == e["size"] for n, e in files.items()
    }
    have = sum(p.stat().st_size for p in work.glob(".*.part"))
    have += sum(int(files[n]["size"]) for n, ok in done.items() if ok)
    needs = {downloads: total - have}
    if not _same_disk(downloads, library.paths.models):
        needs[library.paths.models] = total
    check_space(needs)
    reporter.total = total
    for name, entry in files.items():
        target = work / name
        if done[name]:  # from an earlier run: the right size, and the right content?
            reporter.stage("verify", f"checking {name} (downloaded before)")
            if modelpack.sha256_file(target) == entry["sha256"]:
                reporter.add(int(entry["size"]), fresh=False)
                continue
            target.unlink()  # cut off before it was checked: fetch it anew
        reporter.stage("download", f"downloading {name}")
        _fetch(where, name, target, reporter, sha256=entry["sha256"])
    reporter.stage("install", f"installing {manifest['name']}")
    pack = library.import_pack(work, activate=activate, replace=replace, move=True)
    shutil.rmtree(work, ignore_errors=True)
    return pack


def import_zip(
    library: Library,
    path: Path,
    *,
    activate: bool | None = None,
    replace: bool = False,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> modelpack.ModelPack:
    """Install a pack from a zip file: its files at the top or in one folder. Anything that
    could write outside the unpacking folder (absolute or ``..`` paths, links), files the
    manifest does not list and sizes it does not state are refused before unpacking."""
    path = Path(path)
    reporter = _Reporter(progress, cancel)
    reporter.stage("verify", f"reading {path.name}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise PackError(f"not a readable zip file ({e})", pack=str(path)) from e
    with zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        for info in members:
            p = PurePosixPath(info.filename.replace("\\", "/"))
            mode = info.external_attr >> 16
            if p.is_absolute() or ".." in p.parts or ":" in info.filename or stat.S_ISLNK(mode):
                raise PackError(
                    f"refused: {info.filename!r} would be written outside the pack's folder",
                    pack=str(path),
                )
        manifests = [i for i in members if PurePosixPath(i.filename).name == modelpack.MANIFEST]
        manifests = [i for i in manifests if len(PurePosixPath(i.filename).parts) <= 2]
        if len(manifests) != 1:
            raise PackError(
                "not a model pack: no manifest.json at its top or in one folder"
                if not manifests
                else "holds more than one pack (several manifest.json)",
                pack=str(path),
            )
        top = PurePosixPath(manifests[0].filename).parent
        with tempfile.TemporaryDirectory(prefix=".import-", dir=_scratch(library)) as tmp:
            unpacked = Path(tmp)
            if manifests[0].file_size > MAX_MANIFEST:
                raise PackError("manifest.json is implausibly large", pack=str(path))
            (unpacked / modelpack.MANIFEST).write_bytes(zf.read(manifests[0]))
            manifest = modelpack.read_manifest(unpacked)
            files: dict[str, Any] = manifest["files"]
            wanted: dict[str, zipfile.ZipInfo] = {}
            for info in members:
                p = PurePosixPath(info.filename)
                if info is manifests[0] or p.name.startswith(".") or "__MACOSX" in p.parts:
                    continue
                if p.parent != top or p.name not in files:
                    raise PackError(
                        "foreign file: not part of this pack (its manifest does not list it)",
                        pack=str(path),
                        file=info.filename,
                    )
                if info.file_size != files[p.name]["size"]:
                    raise PackError(
                        f"damaged or foreign: {info.file_size} bytes, the manifest says "
                        f"{files[p.name]['size']}",
                        pack=str(path),
                        file=p.name,
                    )
                wanted[p.name] = info
            total = sum(int(e["size"]) for e in files.values())
            check_space({unpacked: total})
            for name, info in wanted.items():
                reporter.stage("verify", f"unpacking {name}")
                try:
                    with zf.open(info) as src, open(unpacked / name, "wb") as dst:
                        left = info.file_size + 1  # never more than the stated size
                        while chunk := src.read(min(1 << 20, left)):
                            left -= len(chunk)
                            if left <= 0:
                                raise PackError("larger than stated", pack=str(path), file=name)
                            dst.write(chunk)
                            reporter.check()
                except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # damaged in the zip
                    raise PackError(
                        f"damaged in the zip file ({e})", pack=str(path), file=name
                    ) from e
                except (NotImplementedError, RuntimeError) as e:  # Deflate64, encrypted, …
                    raise PackError(
                        f"cannot unpack this zip entry ({e}); re-pack it with plain deflate",
                        pack=str(path),
                        file=name,
                    ) from e
            reporter.stage("install", f"installing {manifest['name']}")
            return library.import_pack(unpacked, activate=activate, replace=replace, move=True)


def _scratch(library: Library) -> Path:
    """A folder on the models' disk, so installing moves files instead of copying them."""
    folder = library.paths.cache / DOWNLOADS
    if not _same_disk(folder, library.paths.models):
        folder = library.paths.models
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def install(
    library: Library,
    source: str | os.PathLike[str],
    *,
    activate: bool | None = None,
    replace: bool = False,
) -> modelpack.ModelPack:
    """``models import``: a pack folder, or a zip file holding one."""
    path = Path(source)
    if path.is_file():
        return import_zip(library, path, activate=activate, replace=replace)
    return library.import_pack(path, activate=activate, replace=replace)


# -- preparing a pack from open_clip weights ---------------------------------------------------

# What `prepare` needs beyond the runtime: the 'export' extra (module → package to install).
EXPORT_EXTRA = {"torch": "torch", "open_clip": "open_clip_torch", "onnx": "onnx"}


def export_extra_problem() -> str | None:
    """Why packs cannot be prepared here (the ``export`` extra is missing), or None. Nothing
    is imported: the export runs in its own process."""
    if getattr(sys, "frozen", False):
        return "a packaged app carries no Python tools"
    missing = []
    for module, package in EXPORT_EXTRA.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return f"missing: {', '.join(missing)}" if missing else None


def prepare(
    library: Library,
    which: Choice | str | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    activate: bool | None = None,
    replace: bool = False,
    keep_weights: bool = False,
) -> modelpack.ModelPack:
    """Download a catalogue entry's open_clip weights (resumable, verified), export them to a
    pack (``python -m photosearch.export_onnx`` in its own process, parity gate included) and
    install it; returns the installed pack.

    Needs the ``export`` extra: :class:`MissingExtraError` says so before anything is
    downloaded. ``cancel`` stops the download (kept for resuming) or the export (discarded).
    The weights are deleted once the pack is installed, unless ``keep_weights``.
    """
    c = which if isinstance(which, Choice) else choice(which)
    problem = export_extra_problem()
    if problem is not None:
        raise MissingExtraError(
            "preparing a model pack needs the 'export' extra (torch, open_clip_torch, onnx), "
            f"which is not installed ({problem}). Install it with: pip install "
            "'photosearch[export]' — or download a ready pack instead: "
            "photosearch models download URL|HF_REPO"
        )
    dest = library.pack_folder(c.name)
    if dest.exists() and not replace:
        raise PackError(
            f"a pack named {dest.name!r} is already installed; pass --replace to prepare it again"
        )
    reporter = _Reporter(progress, cancel)
    cache = library.paths.cache / WEIGHTS
    plan: list[tuple[Weights, _Hub, str, _Meta, Path]] = []
    for w in [c.encoder, *([c.reranker] if c.reranker else [])]:
        hub = _Hub(w.repo)
        reporter.stage("download", f"asking {hub.endpoint} for the {w.model} weights")
        found = None
        for filename in w.files:
            try:
                with _translated(hub, filename):
                    found = (filename, hub.head(filename))
                break
            except DownloadError as e:
                if not isinstance(e.__cause__, _hf().errors.RemoteEntryNotFoundError):
                    raise
        if found is None:
            raise DownloadError(f"{w.repo} holds none of {', '.join(w.files)}")
        filename, meta = found
        target = cache / _key(w.repo, w.repo) / filename
        plan.append((w, hub.pinned(meta.commit or "main"), filename, meta, target))
    total = sum(m.size or 0 for *_, m, _ in plan)
    have = 0
    for *_, target in plan:
        have += target.stat().st_size if target.is_file() else 0
        have += sum(p.stat().st_size for p in target.parent.glob(f".{target.name}.*.part"))
    # The export writes fp32 graphs beside the quantised ones before keeping the smaller.
    check_space({cache: total - have, library.paths.models: 2 * c.pack_mb * 1_000_000})
    reporter.total = total
    weights: list[Path] = []
    for w, hub, filename, meta, target in plan:
        reporter.stage("download", f"downloading the {w.model} weights ({filename})")
        if (
            target.is_file()
            and target.stat().st_size == meta.size
            and _matches_etag(target, meta.etag)
        ):
            reporter.add(target.stat().st_size, fresh=False)
        else:
            target.unlink(missing_ok=True)
            _fetch(hub, filename, target, reporter, meta)
        weights.append(target)

    work = Path(tempfile.mkdtemp(prefix=".prepare-", dir=_scratch(library)))
    try:
        out = work / c.name
        cmd = [
            sys.executable,
            "-m",
            "photosearch.export_onnx",
            "--model",
            c.encoder.model,
            "--pretrained",
            c.encoder.tag,
            "--weights",
            str(weights[0]),
            "--quantize",
            "int8",
            "--name",
            c.name,
            "--out",
            str(out),
        ]
        if c.reranker is not None:
            cmd += ["--reranker", f"{c.reranker.model}:{c.reranker.tag}"]
            cmd += ["--reranker-weights", str(weights[1])]
        _run_export(cmd, reporter)
        reporter.stage("install", f"installing {c.name}")
        pack = library.import_pack(out, activate=activate, replace=replace, move=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not keep_weights:
        for target in weights:
            shutil.rmtree(target.parent, ignore_errors=True)
    return pack


def _run_export(cmd: list[str], reporter: _Reporter) -> None:
    """Run the exporter, passing its "… step" lines on as progress; stop it when cancelled."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}  # weights are local
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, name="export-output", daemon=True).start()
    said: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                reporter.check()
                continue
            if line is None:
                break
            said.append(line)
            if line.startswith("… "):
                reporter.stage("export", line[2:])
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    if proc.wait() != 0:
        errors = [s for s in said if s.startswith("error:")] or said[-3:] or ["no output"]
        raise PackError(f"exporting the model failed: {errors[-1].removeprefix('error: ')}")
