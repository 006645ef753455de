"""Model packs: a folder holding ONNX graphs, a tokenizer and a manifest that vouches for them.

A pack is verified before use: the manifest's format and version, its required fields, and the
size and sha256 of every file it lists. Anything missing, damaged or foreign is refused with an
error naming the file and what is wrong. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photosearch import fsio
from photosearch.errors import PackError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "photosearch-modelpack"
# 2: a graph's input and output names, input type and normalising may be stated (packs made
# from published models); a version-1 reader would misread such a pack, so it refuses it.
FORMAT_VERSION = 2
# Written after a full verification; lets later loads skip re-hashing unchanged files.
VERIFIED_STAMP = ".verified.json"

IMAGE_ENCODER = "image_encoder.onnx"
TEXT_ENCODER = "text_encoder.onnx"
RERANKER_IMAGE = "reranker_image.onnx"
RERANKER_SCORER = "reranker_scorer.onnx"
RERANKER_SCORER_BACKWARD = "reranker_scorer_bwd.onnx"

_HASH_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ImageSpec:
    """How to turn a photo into a graph's input: read from the manifest, never hard-coded."""

    size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str  # "bicubic" | "bilinear" | ...
    resize_mode: str  # "shortest" (resize short side, centre crop) | "squash" | "longest"

    @classmethod
    def from_manifest(cls, d: dict[str, Any], where: str) -> ImageSpec:
        try:
            size = d["size"]
            if isinstance(size, int):
                size = [size, size]
            spec = cls(
                size=(int(size[0]), int(size[1])),
                mean=tuple(float(x) for x in d["mean"]),  # type: ignore[arg-type]
                std=tuple(float(x) for x in d["std"]),  # type: ignore[arg-type]
                interpolation=str(d.get("interpolation", "bicubic")),
                resize_mode=str(d.get("resize_mode", "shortest")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise PackError(f"invalid {where} preprocessing entry: {e!r}", file=MANIFEST) from e
        if len(spec.mean) != 3 or len(spec.std) != 3 or min(spec.size) < 1:
            raise PackError(f"invalid {where} preprocessing entry: {d}", file=MANIFEST)
        return spec

    def to_manifest(self) -> dict[str, Any]:
        return {
            "size": list(self.size),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "resize_mode": self.resize_mode,
        }


@dataclass(frozen=True)
class RerankerSpec:
    """The cross-attention scorer's two graphs and what they expect."""

    image_file: str
    scorer_file: str
    image: ImageSpec
    tokenizer: dict[str, Any]
    tokens: int  # image tokens the decoder attends to
    token_dim: int
    source: dict[str, Any]
    # Optional: a second scorer that reads each query's words in reverse (h_bwd); the runtime
    # adds its log-likelihood to the forward one's, as Miech et al. fuse h = h_fwd + h_bwd.
    backward_file: str | None = None


@dataclass(frozen=True)
class ModelPack:
    """A verified model pack on disk."""

    path: Path
    manifest: dict[str, Any]
    # Why the reranker was left out of ``manifest``: one of its own files is missing or
    # damaged. The dual encoder (fast search) is still whole and usable.
    reranker_problem: str | None = None

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def embedding_dim(self) -> int:
        return int(self.manifest["embedding_dim"])

    @property
    def image(self) -> ImageSpec:
        return ImageSpec.from_manifest(self.manifest["image"], "image")

    @property
    def tokenizer(self) -> dict[str, Any]:
        return dict(self.manifest["tokenizer"])

    @property
    def context_length(self) -> int:
        return int(self.manifest["text"]["context_length"])

    @property
    def image_encoder(self) -> Path:
        return self.path / self.manifest["image"]["file"]

    @property
    def text_encoder(self) -> Path:
        return self.path / self.manifest["text"]["file"]

    @property
    def reranker(self) -> RerankerSpec | None:
        r = self.manifest.get("reranker")
        if not r:
            return None
        return RerankerSpec(
            image_file=r["image_file"],
            scorer_file=r["scorer_file"],
            image=ImageSpec.from_manifest(r["image"], "reranker image"),
            tokenizer=dict(r["tokenizer"]),
            tokens=int(r["tokens"]),
            token_dim=int(r["token_dim"]),
            source=dict(r.get("source", {})),
            backward_file=(r.get("backward") or {}).get("scorer_file"),
        )

    @property
    def id(self) -> str:
        """Identifies the dual encoder that produced a vector: the catalog records it per vector."""
        return (
            f"{self.name}@{self.manifest['files'][self.manifest['image']['file']]['sha256'][:12]}"
        )


def _read_manifest(path: Path) -> dict[str, Any]:
    mf = path / MANIFEST
    if not path.is_dir():
        raise PackError("model pack folder does not exist", pack=str(path))
    if not mf.is_file():
        raise PackError("missing: this folder is not a model pack", pack=str(path), file=MANIFEST)
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PackError(f"unreadable or not JSON ({e})", pack=str(path), file=MANIFEST) from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PackError(
            f"not a photosearch model pack manifest (format is {manifest.get('format')!r})"
            if isinstance(manifest, dict)
            else "not a photosearch model pack manifest (not a JSON object)",
            pack=str(path),
            file=MANIFEST,
        )
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise PackError(
            f"pack format version {version!r} is not supported by this photosearch "
            f"(it reads version {FORMAT_VERSION}); update photosearch or re-export the pack",
            pack=str(path),
            file=MANIFEST,
        )
    _check_fields(manifest, path)
    return manifest


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a pack's manifest alone (format, version, fields), before its files are
    there: a download refuses an incompatible pack before it fetches anything large."""
    return _read_manifest(Path(path))


def described(path: str | os.PathLike[str]) -> ModelPack:
    """The pack at ``path`` from its manifest alone (its files not verified): its name and id,
    for bookkeeping about a pack that is not to be run."""
    return ModelPack(Path(path), _read_manifest(Path(path)))


_REQUIRED = {
    "name": str,
    "embedding_dim": int,
    "image": dict,
    "text": dict,
    "tokenizer": dict,
    "files": dict,
    "source": dict,
}


def _check_fields(manifest: dict[str, Any], path: Path) -> None:
    for key, kind in _REQUIRED.items():
        if not isinstance(manifest.get(key), kind):
            raise PackError(
                f"field {key!r} is missing or not a {kind.__name__}", pack=str(path), file=MANIFEST
            )
    ImageSpec.from_manifest(manifest["image"], "image")
    referenced = [manifest["image"].get("file"), manifest["text"].get("file")]
    referenced.append(manifest["tokenizer"].get("file"))
    if not isinstance(manifest["text"].get("context_length"), int):
        raise PackError("field text.context_length is missing", pack=str(path), file=MANIFEST)
    r = manifest.get("reranker")
    if r:
        if not isinstance(r, dict):
            raise PackError("field 'reranker' is not an object", pack=str(path), file=MANIFEST)
        for key in ("image_file", "scorer_file", "image", "tokenizer", "tokens", "token_dim"):
            if key not in r:
                raise PackError(f"field reranker.{key} is missing", pack=str(path), file=MANIFEST)
        ImageSpec.from_manifest(r["image"], "reranker image")
        beta = r.get("beta")  # optional: the fusion weight chosen on validation data
        if beta is not None and (
            isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta)
        ):
            raise PackError(
                f"field reranker.beta must be a finite number, not {beta!r}",
                pack=str(path),
                file=MANIFEST,
            )
        referenced += [r["image_file"], r["scorer_file"], r["tokenizer"].get("file")]
        backward = r.get("backward")
        if backward is not None:
            if not isinstance(backward, dict) or not isinstance(backward.get("scorer_file"), str):
                raise PackError(
                    "field reranker.backward must name its scorer_file",
                    pack=str(path),
                    file=MANIFEST,
                )
            referenced.append(backward["scorer_file"])
    for name in referenced:
        if not isinstance(name, str) or name not in manifest["files"]:
            raise PackError(
                f"refers to {name!r}, which is not listed under 'files'",
                pack=str(path),
                file=MANIFEST,
            )
    for name, entry in manifest["files"].items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not isinstance(entry.get("size"), int)
            or Path(name).name != name
        ):
            raise PackError(f"bad 'files' entry for {name!r}", pack=str(path), file=MANIFEST)


def _stamp(path: Path, files: dict[str, Any]) -> dict[str, list[int]]:
    # The change time and inode too: a user (or a tool) can put a file's size and mtime back
    # after editing it, but not those, so an edited file is always hashed again.
    out = {}
    for name in files:
        st = (path / name).stat()
        out[name] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    return out


def verify(
    path: str | os.PathLike[str],
    *,
    full: bool = False,
    record: bool = False,
    lenient: bool = False,
) -> ModelPack:
    """Verify the pack at ``path`` and return it; raise :class:`PackError` naming what is wrong.

    Every listed file must exist with its recorded size and sha256, and no unlisted file may
    sit beside them (hidden files excepted). ``record`` (installed packs only: nothing is ever
    written into a pack being imported) leaves a stamp of each file's size, mtime, change time
    and inode after hashing, so later calls re-hash only when a file changed; ``full=True``
    always re-hashes. ``lenient`` (opening an installed pack for use): a missing or damaged
    file that only the reranker reads leaves a fast-only pack that says why
    (:attr:`ModelPack.reranker_problem`) instead of refusing the pack; importing and
    ``models verify`` stay strict.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    files: dict[str, Any] = manifest["files"]
    optional = {n: files[n] for n in _reranker_only_files(manifest)}
    core = {n: e for n, e in files.items() if n not in optional}
    _check_sizes(path, core)
    _refuse_foreign_files(path, files)
    try:
        _check_sizes(path, optional)
    except PackError as e:  # fast search needs none of them: it goes on without refining
        if not lenient:
            raise
        return _without_reranker(path, manifest, e, core)
    pack = ModelPack(path=path, manifest=manifest)
    stamp = _stamp(path, files)
    if not full and record and _stamp_holds(path, stamp):
        return pack
    _check_hashes(path, core)
    try:
        _check_hashes(path, optional)
    except PackError as e:
        if not lenient:
            raise
        return _without_reranker(path, manifest, e, core, hashed=True)
    if record:
        _record_stamp(path, stamp)
    return pack


def _reranker_only_files(manifest: dict[str, Any]) -> list[str]:
    """The files only the reranker reads (its graphs; a tokenizer may be shared)."""
    r = manifest.get("reranker") or {}
    backward = (r.get("backward") or {}).get("scorer_file")
    names = [r.get("image_file"), r.get("scorer_file"), backward]
    shared = {manifest["image"].get("file"), manifest["text"].get("file")}
    shared.add(manifest["tokenizer"].get("file"))
    return [n for n in names if isinstance(n, str) and n not in shared]


def _without_reranker(
    path: Path,
    manifest: dict[str, Any],
    error: PackError,
    core: dict[str, Any],
    *,
    hashed: bool = False,
) -> ModelPack:
    """The pack as a dual encoder alone, saying why it cannot refine (its own files are
    hashed every time: no stamp vouches for a pack in this state)."""
    if not hashed:
        _check_hashes(path, core)
    log.warning("%s: searching without refinement", error)
    fast_only = {k: v for k, v in manifest.items() if k != "reranker"}
    return ModelPack(path=path, manifest=fast_only, reranker_problem=str(error))


def _check_sizes(path: Path, files: dict[str, Any]) -> None:
    """Every listed file is there with its recorded size: the cheap check, before hashing."""
    for name, entry in files.items():
        f = path / name
        if not f.is_file():
            raise PackError("missing (listed in the manifest)", pack=str(path), file=name)
        size = f.stat().st_size
        if size != entry["size"]:
            raise PackError(
                f"damaged or foreign: {size} bytes, the manifest says {entry['size']}",
                pack=str(path),
                file=name,
            )


def _refuse_foreign_files(path: Path, files: dict[str, Any]) -> None:
    """Nothing the manifest does not list sits in the pack (hidden files excepted): a file
    dropped in beside the graphs is not vouched for by the checksums."""
    listed = set(files) | {MANIFEST}
    for f in sorted(path.iterdir()):
        if f.name.startswith("."):
            continue
        if f.name not in listed:
            raise PackError(
                "foreign file: not part of this pack (its manifest does not list it)",
                pack=str(path),
                file=f.name,
            )


def _check_hashes(path: Path, files: dict[str, Any]) -> None:
    """Every listed file has its recorded sha256 (reads every byte of the pack)."""
    for name, entry in files.items():
        digest = sha256_file(path / name)
        if digest != entry["sha256"]:
            raise PackError(
                "damaged or foreign: its sha256 does not match the manifest",
                pack=str(path),
                file=name,
            )


def _stamp_holds(path: Path, stamp: dict[str, list[int]]) -> bool:
    """Whether the stamp left by an earlier full verification still describes the files and
    the manifest exactly, so that hashing them again can be skipped."""
    try:
        return json.loads((path / VERIFIED_STAMP).read_text()) == {
            "manifest": sha256_file(path / MANIFEST),
            "files": stamp,
        }
    except (OSError, ValueError):
        return False


def _record_stamp(path: Path, stamp: dict[str, list[int]]) -> None:
    """Leave the stamp :func:`_stamp_holds` reads, after a full verification."""
    try:
        fsio.atomic_write(
            path / VERIFIED_STAMP,
            json.dumps({"manifest": sha256_file(path / MANIFEST), "files": stamp}),
        )
    except OSError as e:  # a read-only pack (e.g. inside an installed bundle) is fine
        log.debug("could not write verification stamp in %s: %s", path, e)


def load(path: str | os.PathLike[str]) -> ModelPack:
    """Open a pack for use (verified; re-hashed only if something changed since last time)."""
    return verify(path, full=False, record=True, lenient=True)


def list_installed(models_dir: Path) -> list[Path]:
    """Folders under ``models_dir`` that look like packs (not verified: call :func:`load`).
    Hidden folders are work in progress (staging, replacing, removing), never packs."""
    if not models_dir.is_dir():
        return []
    return sorted(
        p for p in models_dir.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()
    )


_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>staging|old|removing)-[^.]+$|^\.import-")


def sweep_leftovers(models_dir: Path) -> list[str]:
    """Clean what a killed install, replace or removal left under ``models_dir``: half-made
    folders go; a pack moved aside to be replaced comes back if its replacement never arrived.
    Returns what was done, in words. Call only while holding the library's lock."""
    done: list[str] = []
    if not models_dir.is_dir():
        return done
    for p in sorted(models_dir.iterdir()):
        m = _LEFTOVER.match(p.name)
        if m is None or not p.is_dir():
            continue
        target = models_dir / m["name"] if m["name"] else None
        restore = m["kind"] == "old" and target is not None and not target.exists()
        if restore and (p / MANIFEST).is_file():
            os.replace(p, target)
            done.append(f"restored the model pack {target.name} (a replacement was cut off)")
            continue
        shutil.rmtree(p, ignore_errors=True)
        done.append(f"removed {p.name} (left by an interrupted install or removal)")
    return done


def finalize_manifest(
    staging: Path, manifest: dict[str, Any], *, format_version: int = 1
) -> dict[str, Any]:
    """Fill ``files`` with the size and sha256 of every file in ``staging`` and write it.
    ``format_version``: the oldest version that reads it (2 for graph signatures of their own)."""
    files = {}
    for f in sorted(staging.iterdir()):
        if f.name == MANIFEST or f.name.startswith("."):
            continue
        files[f.name] = {"size": f.stat().st_size, "sha256": sha256_file(f)}
    manifest = {
        "format": FORMAT,
        "format_version": format_version,
        **{k: v for k, v in manifest.items() if k not in ("format", "format_version", "files")},
        "files": files,
    }
    fsio.atomic_write(staging / MANIFEST, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


@contextmanager
def staged_pack(
    out: Path, *, overwrite: bool = False, rescue: Callable[[Path], None] | None = None
) -> Iterator[Path]:
    """Build a pack in a hidden sibling folder and move it to ``out`` only if the block succeeds.

    A failure (parity gate, disk full, Ctrl-C) leaves ``out`` as it was: never half a pack.
    ``rescue(staging)`` runs before a failed staging folder is deleted (to move files that
    were moved in back where they came from).
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise PackError("already exists (pass overwrite to replace it)", pack=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        yield staging
        _fsync_dir_files(staging)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            if rescue is not None:
                try:
                    rescue(staging)
                except OSError as e:
                    log.warning("could not move files back from %s: %s", staging, e)
            shutil.rmtree(staging, ignore_errors=True)


# The seam tests/test_acquire.py patches to make a sync fail (disk full) mid-install.
_fsync_dir_files = fsio.fsync_files
