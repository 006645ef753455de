"""Installing a ready model: a published model's ONNX graphs (Immich's or rclip's repositories
on the Hugging Face Hub) downloaded, resumed and checked like any download, then made into a
verified pack here, without torch.

The pack's manifest is written by us: every file's size and sha256, the preprocessing and the
tokenizer taken from the source's own files (Immich's ``preprocess_cfg.json``, ``config.json``,
``tokenizer.json`` and ``tokenizer_config.json``; rclip's CLIP vocabulary, and the settings its
code uses, which the catalogue records), the graphs' own input and output names and types. The
tokenizer must give the catalogue's ids on fixed strings before anything is installed, and
:meth:`Library.import_pack` then runs both graphs once.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photosearch import modelpack, resources
from photosearch.acquire.catalogue import FLORES_200, Ready
from photosearch.acquire.disk import DOWNLOADS, _same_disk, check_space
from photosearch.acquire.locations import _Hub, _Meta
from photosearch.acquire.progress import ProgressFn, _Reporter
from photosearch.acquire.transfer import _fetch, _matches_etag, _translated
from photosearch.errors import PackError
from photosearch.tokenizer import HUB_KIND, build_clip_bpe, load_tokenizer, read_clip_vocab

if TYPE_CHECKING:
    from photosearch.library import Library

log = logging.getLogger(__name__)

# rclip's preprocessing lives in its code (rclip/utils/preprocess.py), not in a file: open_clip's
# settings for ViT-B-32-256 DataComp, which the catalogue entry names.
_RCLIP_IMAGE = modelpack.ImageSpec(
    size=(256, 256),
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
    interpolation="bicubic",
    resize_mode="shortest",
)
CLIP_VOCAB = "bpe_simple_vocab_16e6.txt.gz"
TOKENIZER = "tokenizer.json"
_ONNX_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}


def files_of(entry: Ready) -> dict[str, str]:
    """The repository's files this layout needs, by their name in the pack."""
    if entry.layout == "immich":
        return {
            "source_config.json": "config.json",
            "preprocess_cfg.json": "visual/preprocess_cfg.json",
            modelpack.IMAGE_ENCODER: "visual/model.onnx",
            modelpack.TEXT_ENCODER: "textual/model.onnx",
            TOKENIZER: "textual/tokenizer.json",
            "tokenizer_config.json": "textual/tokenizer_config.json",
        }
    if entry.layout == "rclip":
        return {
            modelpack.IMAGE_ENCODER: f"{entry.folder}/visual.onnx",
            modelpack.TEXT_ENCODER: f"{entry.folder}/textual.onnx",
            CLIP_VOCAB: f"tokenizer/{CLIP_VOCAB}",
        }
    raise PackError(f"unknown repository layout {entry.layout!r} for {entry.name}")


def install_ready(
    library: Library,
    entry: Ready,
    *,
    revision: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    activate: bool | None = None,
    replace: bool = False,
) -> modelpack.ModelPack:
    """Download ``entry``'s graphs and configs, make them a pack, check it and install it.

    Cancelled or broken off, what arrived is kept under the cache's ``downloads`` folder and
    the next call resumes it; a file that changed on the server since is fetched anew."""
    reporter = _Reporter(progress, cancel)
    where = _Hub(entry.repo, revision or "main")
    dest = library.pack_folder(entry.name)
    if dest.exists() and not replace:
        raise PackError(
            f"a pack named {dest.name!r} is already installed; pass --replace to replace it "
            "(photos encoded with it will be encoded again)"
        )
    work = library.paths.cache / DOWNLOADS / where.key()
    where, metas = _ask(where, entry, reporter)
    _make_room(library, work, metas)
    for local, remote in files_of(entry).items():
        _fetch_one(where, remote, work / local, metas[local], reporter)
    reporter.stage("verify", f"making {entry.name} a pack")
    manifest = _manifest(entry, work, where)
    check_tokenizer(entry, work, manifest["tokenizer"])
    modelpack.finalize_manifest(work, manifest, format_version=2)
    reporter.stage("install", f"installing {entry.name}")
    pack = library.import_pack(work, activate=activate, replace=replace, move=True)
    shutil.rmtree(work, ignore_errors=True)
    return pack


def _ask(where: _Hub, entry: Ready, reporter: _Reporter) -> tuple[_Hub, dict[str, _Meta]]:
    """Every file's size and version, all from one commit (the first answer pins it)."""
    reporter.stage("download", f"asking {where.label} for {entry.title}")
    metas: dict[str, _Meta] = {}
    for local, remote in files_of(entry).items():
        with _translated(where, remote):
            meta = where.head(remote)
        if meta.commit and where.revision != meta.commit:
            where = where.pinned(meta.commit)
        metas[local] = meta
    reporter.total = sum(m.size or 0 for m in metas.values())
    return where, metas


def _make_room(library: Library, work: Path, metas: dict[str, _Meta]) -> None:
    """Check the disks hold what is still to come (and, elsewhere, the installed pack)."""
    downloads = library.paths.cache / DOWNLOADS
    total = sum(m.size or 0 for m in metas.values())
    have = sum(p.stat().st_size for p in work.glob(".*.part")) if work.is_dir() else 0
    have += sum((work / n).stat().st_size for n in metas if (work / n).is_file())
    needs = {downloads: total - have}
    if not _same_disk(downloads, library.paths.models):
        needs[library.paths.models] = total
    check_space(needs)
    work.mkdir(parents=True, exist_ok=True)


def _fetch_one(where: _Hub, remote: str, target: Path, meta: _Meta, reporter: _Reporter) -> None:
    """One file: kept from an earlier try only when it still matches the server's version."""
    if target.is_file() and target.stat().st_size == meta.size:
        reporter.stage("verify", f"checking {remote} (downloaded before)")
        if _matches_etag(target, meta.etag):
            reporter.add(target.stat().st_size, fresh=False)
            return
    target.unlink(missing_ok=True)
    reporter.stage("download", f"downloading {remote}")
    _fetch(where, remote, target, reporter, meta)


# -- the manifest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Graph:
    """What a graph takes and gives, read from the graph itself."""

    input: str
    dtype: str
    shape: list[Any]
    output: str
    dim: int | None


def _graph(path: Path) -> _Graph:
    from photosearch.encoders import create_session

    session = create_session(path, device="cpu", threads=1)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise PackError(
            f"takes {len(inputs)} inputs ({names}); photosearch runs graphs of one input",
            pack=str(path.parent),
            file=path.name,
        )
    kind = _ONNX_TYPES.get(inputs[0].type)
    if kind is None:
        raise PackError(
            f"input type {inputs[0].type} is not supported", pack=str(path.parent), file=path.name
        )
    dim = outputs[0].shape[-1]
    return _Graph(
        inputs[0].name,
        kind,
        list(inputs[0].shape),
        outputs[0].name,
        dim if isinstance(dim, int) else None,
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PackError(
            f"unreadable or not JSON ({e})", pack=str(path.parent), file=path.name
        ) from e
    if not isinstance(data, dict):
        raise PackError("not a JSON object", pack=str(path.parent), file=path.name)
    return data


def _section(graph: _Graph, *, normalize: bool) -> dict[str, Any]:
    return {
        "input": graph.input,
        "dtype": graph.dtype,
        "output": graph.output,
        "normalize": normalize,
    }


def _source(entry: Ready, where: _Hub) -> dict[str, Any]:
    return {
        "kind": entry.layout,
        "repo": entry.repo,
        "revision": where.revision,
        "model": entry.model,
        "pretrained": entry.pretrained,
        "licence": entry.licence,
        "files": {remote: local for local, remote in files_of(entry).items()},
    }


def _manifest(entry: Ready, work: Path, where: _Hub) -> dict[str, Any]:
    maker = _immich_manifest if entry.layout == "immich" else _rclip_manifest
    manifest = maker(entry, work)
    manifest.update(
        name=entry.name,
        source=_source(entry, where),
        languages=entry.languages,
        title=entry.title,
    )
    return manifest


def _context_length(graph: _Graph, configured: int, path: Path) -> int:
    """The graph's own length where it has one; it must agree with the configuration."""
    fixed = graph.shape[1] if len(graph.shape) == 2 else None
    if isinstance(fixed, int) and fixed != configured:
        raise PackError(
            f"takes {fixed} tokens but the model's configuration says {configured}",
            pack=str(path.parent),
            file=path.name,
        )
    return configured


def _immich_manifest(entry: Ready, work: Path) -> dict[str, Any]:
    """Immich's layout: the open_clip configuration, the visual preprocessing, the textual
    tokenizer files, as its machine-learning service reads them."""
    config = _read_json(work / "source_config.json")
    text_cfg = config.get("text_cfg") or {}
    image = modelpack.ImageSpec.from_manifest(_read_json(work / "preprocess_cfg.json"), "visual")
    visual, textual = _graph(work / modelpack.IMAGE_ENCODER), _graph(work / modelpack.TEXT_ENCODER)
    length = _context_length(textual, int(text_cfg.get("context_length", 77)), work / "textual")
    kwargs = text_cfg.get("tokenizer_kwargs") or {}
    tokenizer: dict[str, Any] = {
        "kind": HUB_KIND,
        "file": TOKENIZER,
        "context_length": length,
        "pad_id": _pad_id(work),
        "clean": "canonicalize" if kwargs.get("clean") == "canonicalize" else "whitespace",
    }
    if entry.language_codes:
        tokenizer["languages"] = dict(FLORES_200)
    dim = config.get("embed_dim")
    if not isinstance(dim, int):
        raise PackError("has no embed_dim", pack=str(work), file="source_config.json")
    return _encoder_sections(dim, image, visual, textual, length, tokenizer, normalize=False)


def _pad_id(work: Path) -> int:
    """The id of the pad token ``tokenizer_config.json`` names (Immich pads with it)."""
    from tokenizers import Tokenizer as HFTokenizer

    pad = _read_json(work / "tokenizer_config.json").get("pad_token")
    if isinstance(pad, dict):
        pad = pad.get("content")
    try:
        hf = HFTokenizer.from_file(str(work / TOKENIZER))
    except Exception as e:  # the library raises a bare Exception for every kind of bad file
        raise PackError(f"not a valid tokenizers file ({e})", pack=str(work), file=TOKENIZER) from e
    pad_id = hf.token_to_id(pad) if isinstance(pad, str) else None
    if pad_id is None:
        raise PackError(
            f"its pad token {pad!r} is not a token of tokenizer.json",
            pack=str(work),
            file="tokenizer_config.json",
        )
    return int(pad_id)


def _rclip_manifest(entry: Ready, work: Path) -> dict[str, Any]:
    """rclip's layout: two graphs whose outputs rclip normalises itself, and CLIP's vocabulary,
    which becomes the same tokenizer file our own exports carry."""
    visual, textual = _graph(work / modelpack.IMAGE_ENCODER), _graph(work / modelpack.TEXT_ENCODER)
    vocab, merges = read_clip_vocab(work / CLIP_VOCAB)
    pattern = resources.resource_path("tokenizers", "clip_split_pattern.txt").read_text().strip()
    build_clip_bpe(vocab, merges, pattern).save(str(work / TOKENIZER), pretty=False)
    length = _context_length(textual, 77, work / modelpack.TEXT_ENCODER)
    if visual.dim is None:
        raise PackError(
            "its output size is not fixed", pack=str(work), file=modelpack.IMAGE_ENCODER
        )
    tokenizer = {
        "kind": "clip-bpe",
        "file": TOKENIZER,
        "context_length": length,
        "sot_id": vocab["<start_of_text>"],
        "eot_id": vocab["<end_of_text>"],
        "pad_id": 0,
        "clean": "lower",
    }
    return _encoder_sections(
        visual.dim, _RCLIP_IMAGE, visual, textual, length, tokenizer, normalize=True
    )


def _encoder_sections(
    dim: int,
    image: modelpack.ImageSpec,
    visual: _Graph,
    textual: _Graph,
    length: int,
    tokenizer: dict[str, Any],
    *,
    normalize: bool,
) -> dict[str, Any]:
    """The manifest's dual-encoder sections for a ready pack's two graphs."""
    return {
        "embedding_dim": dim,
        "image": {
            **image.to_manifest(),
            "file": modelpack.IMAGE_ENCODER,
            **_section(visual, normalize=normalize),
        },
        "text": {
            "file": modelpack.TEXT_ENCODER,
            "context_length": length,
            **_section(textual, normalize=normalize),
        },
        "tokenizer": tokenizer,
    }


# -- the tokenizer's check ---------------------------------------------------------------------


def check_tokenizer(entry: Ready, work: Path, config: dict[str, Any]) -> None:
    """The tokenizer must be the model's: on the catalogue's fixed strings, the very ids its
    graph is fed (start and end tokens and padding included); its special tokens at their ids;
    its languages covered without the unknown token. Raises :class:`PackError` naming what
    differs; nothing is installed then."""
    tok = load_tokenizer(work, config)
    problems: list[str] = []
    for text, want in entry.ids:
        got = [int(i) for i in tok([text])[0]]
        padded = [*want, *[tok.pad_id] * (len(got) - len(want))]
        if got != padded:
            problems.append(f"{text!r} gives {got[: len(want) + 1]}…, the model's {list(want)}")
    for token, want_id in entry.specials:
        got_id = tok.token_id(token)
        if got_id is None or (want_id is not None and got_id != want_id):
            problems.append(f"{token} is {'missing' if got_id is None else f'id {got_id}'}")
    unknown = {tok.token_id(t) for t in ("<unk>", "[UNK]")} - {None}
    for text in entry.covers:
        if unknown & set(tok.encode(text)):
            problems.append(f"{text!r} has unknown tokens")
    if problems:
        raise PackError(
            "its tokenizer is not the one this model was trained with: " + "; ".join(problems),
            pack=entry.repo,
            file=TOKENIZER,
        )
