"""A pack's reranker as a component: the cross-attention reranker of one pack (a CoCa pack made
by ``models prepare``, or one exported elsewhere) added to another installed pack, so that a fast
pack with no reranker of its own (a ready model) can refine.

The target's dual encoder is untouched (its pack id, so the vectors it made, stay valid); the
reranker's graphs and tokenizer are copied in beside it under names of their own, the manifest
is written anew with every file's sha256, and the result is verified and installed in place of
the target in one step, like any install. The reranker's fusion weight β is not carried over:
it was chosen against the source pack's own fast scores, so the library's default serves.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photosearch import modelpack
from photosearch.acquire.disk import _scratch, check_space
from photosearch.errors import PackError

if TYPE_CHECKING:
    from photosearch.library import Library

_PREFIX = "reranker_"


def add_reranker(
    library: Library, source: str | os.PathLike[str], *, to: str | None = None
) -> modelpack.ModelPack:
    """Give the installed pack ``to`` (default: the active one) the reranker of ``source`` (an
    installed pack's name, or a pack folder); returns the pack as installed now."""
    donor = _donor(library, source)
    target = modelpack.load(library.pack_folder(to)) if to else library.pack
    if donor.path.resolve() == target.path.resolve():
        raise PackError("a pack cannot take a reranker from itself", pack=str(target.path))
    spec = donor.manifest["reranker"]
    names = _names(spec)
    sizes = sum(int(target.manifest["files"][f]["size"]) for f in target.manifest["files"])
    sizes += sum(int(donor.manifest["files"][f]["size"]) for f in names)
    check_space({_scratch(library): sizes})
    with tempfile.TemporaryDirectory(prefix=".reranker-", dir=_scratch(library)) as tmp:
        work = Path(tmp)
        # The manifest as written: a damaged reranker is left out of the loaded pack's one.
        written = modelpack.read_manifest(target.path)
        old = _names(written["reranker"]) if written.get("reranker") else {}
        # A file the old reranker shares with the dual encoder (the exporter writes one
        # tokenizer.json for both when they are the same) stays: the encoder still needs it.
        own = {
            (target.manifest.get(part) or {}).get("file") for part in ("image", "text", "tokenizer")
        }
        old = {f: v for f, v in old.items() if f not in own}
        for f in written["files"]:
            if f not in old:  # the target's own files: its folder is replaced, so a link will do
                _link_or_copy(target.path / f, work / f)
        for theirs, ours in names.items():  # the donor stays installed: copies, never links
            shutil.copy2(donor.path / theirs, work / ours)
        manifest = {k: v for k, v in written.items() if k not in ("files", "format")}
        manifest["reranker"] = _section(spec, names, donor)
        if isinstance(manifest.get("calibration"), dict):  # its refined curve was another's
            manifest["calibration"] = {
                k: v for k, v in manifest["calibration"].items() if k not in ("refined", "beta")
            }
        modelpack.finalize_manifest(
            work, manifest, format_version=int(target.manifest["format_version"])
        )
        return library.import_pack(work, replace=True, move=True, activate=None)


def _donor(library: Library, source: str | os.PathLike[str]) -> modelpack.ModelPack:
    """The pack the reranker comes from, verified in full; it must have one."""
    path = Path(source)
    if not path.is_dir():
        path = library.pack_folder(str(source))
    if not path.is_dir():
        raise PackError("neither a pack folder nor an installed pack's name", pack=str(source))
    donor = modelpack.verify(path, full=True)
    if donor.reranker is None:
        raise PackError(
            "has no reranker to give (a CoCa pack from `photosearch models prepare` has one)",
            pack=str(path),
        )
    return donor


def _names(spec: dict[str, Any]) -> dict[str, str]:
    """The reranker's files, and the names they take in the target: prefixed, so that they
    cannot meet the target's own (a ready pack's tokenizer is ``tokenizer.json`` too)."""
    files = [spec["image_file"], spec["scorer_file"], spec["tokenizer"]["file"]]
    return {f: f if f.startswith(_PREFIX) else _PREFIX + f for f in files}


def _section(
    spec: dict[str, Any], names: dict[str, str], donor: modelpack.ModelPack
) -> dict[str, Any]:
    section = {k: v for k, v in spec.items() if k != "beta"}  # β was fitted to the donor's scores
    section["image_file"] = names[spec["image_file"]]
    section["scorer_file"] = names[spec["scorer_file"]]
    section["tokenizer"] = {**spec["tokenizer"], "file": names[spec["tokenizer"]["file"]]}
    section["source"] = {**dict(spec.get("source") or {}), "from_pack": donor.name}
    parity = (donor.manifest.get("parity") or {}).get("reranker")
    if parity:
        section["parity"] = parity
    return section


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the disk allows (no second copy of a large graph), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
