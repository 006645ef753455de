"""``info`` and ``models …``: the installation, and the model packs that make search work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from photosearch import __version__, config, modelpack
from photosearch.cli.commands import open_library
from photosearch.cli.output import TransferProgress, pack_summary, print_json
from photosearch.errors import PhotosearchError
from photosearch.hints import NO_PACK_HINT


def cmd_info(args: argparse.Namespace) -> int:
    import onnxruntime as ort

    from photosearch.encoders import candidate_providers, device_name

    p = config.paths(args.home)
    packs = []
    for folder in modelpack.list_installed(p.models):
        try:
            packs.append(pack_summary(modelpack.load(folder)))
        except PhotosearchError as e:
            packs.append({"path": str(folder), "error": str(e)})
    info = {
        "version": __version__,
        "home": {k: str(v) for k, v in vars(p).items()},
        "onnxruntime": ort.__version__,
        "providers_available": ort.get_available_providers(),
        "providers_tried": candidate_providers("auto"),
        "model_packs": packs,
    }
    if getattr(args, "json", False):
        print_json(info)
        return 0
    print(f"photosearch {__version__}")
    print(f"data:   {p.data}\nmodels: {p.models}\ncache:  {p.cache}")
    usable = [device_name([name]) for name in info["providers_tried"]]
    unused = [
        device_name([name])
        for name in info["providers_available"]
        if name not in info["providers_tried"]
    ]
    print(
        f"ONNX Runtime {ort.__version__}; runs on: {', '.join(usable)}"
        + (f" (also built in, not usable here: {', '.join(unused)})" if unused else "")
    )
    if not packs:
        print(f"no model pack installed. {NO_PACK_HINT}")
    for s in packs:
        if "error" in s:
            print(f"  ✗ {s['path']}: {s['error']}")
        else:
            reranker = s["reranker"] or "none"
            if s["reranker_problem"]:
                reranker = f"unusable ({s['reranker_problem']}; fast search works)"
            print(
                f"  ✓ {s['name']}: {s['model']} ({s['pretrained']}), {s['embedding_dim']}-d, "
                f"reranker: {reranker}, {s['size_mb']} MB"
            )
    return 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    if args.path:
        folder = Path(args.path)
    else:
        with open_library(args, writer=False) as lib:
            folder = lib.pack.path
    from photosearch.encoders import check_pack

    pack = modelpack.verify(folder, full=True, record=not args.path)  # never write into a source
    check_pack(pack)
    s = pack_summary(pack)
    if args.json:
        print_json(s)
    else:
        print(
            f"ok: {s['name']} ({len(pack.manifest['files'])} files, checksums match, "
            "encoders load and give the manifest's shapes)"
        )
    return 0


def cmd_models_import(args: argparse.Namespace) -> int:
    from photosearch import acquire

    with open_library(args) as lib:
        pack = acquire.install(
            lib, Path(args.path), activate=True if args.use else None, replace=args.replace
        )
        _say_installed(lib, pack, "imported")
    return 0


def _say_installed(lib: Any, pack: modelpack.ModelPack, verb: str) -> None:
    try:
        current: modelpack.ModelPack | None = lib.pack
    except PhotosearchError as e:  # the active pack is broken or gone: the install still worked
        print(f"photosearch: warning: the active model pack cannot be used: {e}", file=sys.stderr)
        current = None
    active = current is not None and current.path == pack.path
    print(f"{verb} {pack.name} into {pack.path}{' (active)' if active else ''}")
    if lib.pending_pack == pack.path.name and current is not None:
        print(
            f"run `photosearch index` to encode your photos with it; search keeps using "
            f"{current.name} until that is done"
        )


def _resumable(run: Callable[[], int]) -> int:
    try:
        return run()
    except KeyboardInterrupt:
        print(
            "\ninterrupted: nothing was installed; run the same command again to resume the "
            "download where it stopped",
            file=sys.stderr,
        )
        return 130


def cmd_models_download(args: argparse.Namespace) -> int:
    from photosearch import acquire

    def run() -> int:
        with open_library(args) as lib:
            with TransferProgress(args.quiet) as progress:
                pack = acquire.download_pack(
                    lib,
                    args.source or acquire.DEFAULT_READY,
                    revision=args.revision,
                    progress=progress,
                    activate=True if args.use else None,
                    replace=args.replace,
                )
            _say_installed(lib, pack, "downloaded")
        return 0

    return _resumable(run)


def cmd_models_prepare(args: argparse.Namespace) -> int:
    from photosearch import acquire

    chosen = acquire.choice(args.name)
    problem = acquire.export_extra_problem()
    if problem is not None:
        print(
            f"photosearch: error: `models prepare` exports open_clip weights, which needs the "
            f"'export' extra (torch, open_clip_torch, onnx); it is not installed ({problem}).\n"
            "Install it with:  pip install 'photosearch[export]'\n"
            "or download a ready model instead (no torch needed):  photosearch models download "
            f"[NAME]  (default {acquire.DEFAULT_READY}; `photosearch models available` lists "
            "them)",
            file=sys.stderr,
        )
        return 1
    print(
        f"preparing {chosen.name}: {chosen.title}; about {chosen.download_mb:,} MB to "
        f"download, {chosen.pack_mb:,} MB installed",
        file=sys.stderr,
    )

    def run() -> int:
        with open_library(args) as lib:
            with TransferProgress(args.quiet) as progress:
                pack = acquire.prepare(
                    lib,
                    chosen,
                    progress=progress,
                    activate=True if args.use else None,
                    replace=args.replace,
                    keep_weights=args.keep_weights,
                )
            _say_installed(lib, pack, "prepared")
        return 0

    return _resumable(run)


def cmd_models_available(args: argparse.Namespace) -> int:
    from photosearch import acquire

    ready = [_ready_row(r, acquire.DEFAULT_READY) for r in acquire.READY]
    prepared = [_prepared_row(c, acquire.DEFAULT) for c in acquire.CATALOGUE]
    if args.json:
        print_json({"ready": ready, "prepare": prepared})
        return 0
    print("Ready to download (no torch needed): photosearch models download [NAME]")
    for r in ready:
        print(f"  {r['name']}{'  (default)' if r['default'] else ''}: {r['title']}")
        print(f"      download about {r['download_mb']:,} MB from {r['source']}")
        print(f"      speed: {r['speed']}\n      quality: {r['quality']}")
        print(f"      languages: {r['languages']}\n      licence: {r['licence']}")
        print("      refine: no (fast search only; add a reranker by preparing a pack)")
    print("\nPrepared here from open_clip weights (needs pip install 'photosearch[export]'): "
          "photosearch models prepare [NAME]")  # fmt: skip
    for r in prepared:
        print(f"  {r['name']}{'  (default)' if r['default'] else ''}: {r['title']}")
        print(f"      download about {r['download_mb']:,} MB, installed about {r['pack_mb']:,} MB")
        print(f"      speed: {r['speed']}\n      quality: {r['quality']}")
        print("      languages: English\n      refine: yes (CoCa ViT-B-32 reranker)")
    return 0


def _ready_row(r: Any, default: str) -> dict[str, Any]:
    return {
        "name": r.name,
        "title": r.title,
        "default": r.name == default,
        "source": r.source,
        "layout": r.layout,
        "model": r.model,
        "pretrained": r.pretrained,
        "download_mb": r.download_mb,
        "speed": r.speed,
        "quality": r.quality,
        "languages": r.languages,
        "licence": r.licence,
        "can_refine": r.can_refine,
    }


def _prepared_row(c: Any, default: str) -> dict[str, Any]:
    return {
        "name": c.name,
        "title": c.title,
        "default": c.name == default,
        "model": c.encoder.model,
        "pretrained": c.encoder.tag,
        "source": f"https://huggingface.co/{c.encoder.repo}",
        "reranker": f"{c.reranker.model}:{c.reranker.tag}" if c.reranker else None,
        "download_mb": c.download_mb,
        "pack_mb": c.pack_mb,
        "speed": c.speed,
        "quality": c.quality,
        "languages": "English",
        "can_refine": c.reranker is not None,
    }


def cmd_models_add_reranker(args: argparse.Namespace) -> int:
    from photosearch import acquire

    with open_library(args) as lib:
        pack = acquire.add_reranker(lib, args.source, to=args.to)
    donor = pack.reranker.source.get("from_pack") if pack.reranker else None
    print(f"{pack.name} can refine now, with the reranker of {donor} (its vectors are kept)")
    return 0


def cmd_models_remove(args: argparse.Namespace) -> int:
    with open_library(args) as lib:
        lib.remove_pack(args.name, force=args.force)
        try:
            now = lib.pack.name
        except PhotosearchError:
            now = None
    print(f"removed {args.name}" + (f"; active model pack: {now}" if now else ""))
    if now is None:
        print(f"no model pack is installed now: search needs one. {NO_PACK_HINT}", file=sys.stderr)
    return 0


def cmd_models_use(args: argparse.Namespace) -> int:
    with open_library(args) as lib:
        now = lib.use_pack(args.name)
        current = lib.pack.name
    if now:
        print(f"active model pack: {args.name} (run `photosearch index` to encode with it)")
    else:
        print(
            f"switching to {args.name}: run `photosearch index` to encode your photos with it; "
            f"search keeps using {current} until that is done, then switches"
        )
    return 0
