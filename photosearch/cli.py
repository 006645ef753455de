"""The ``photosearch`` command line: a thin face on the engine, for people and for scripts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from photosearch import __version__, config, modelpack
from photosearch.errors import PhotosearchError


def _pack_summary(pack: modelpack.ModelPack) -> dict[str, object]:
    m = pack.manifest
    r = pack.reranker
    return {
        "name": pack.name,
        "path": str(pack.path),
        "model": m["source"].get("model"),
        "pretrained": m["source"].get("pretrained"),
        "embedding_dim": pack.embedding_dim,
        "image_size": list(pack.image.size),
        "precision": {"image": m["image"].get("precision"), "text": m["text"].get("precision")},
        "reranker": r.source.get("model") if r else None,
        "size_mb": round(sum(f["size"] for f in m["files"].values()) / 1e6, 1),
    }


def cmd_info(args: argparse.Namespace) -> int:
    import onnxruntime as ort

    from photosearch.encoders import candidate_providers

    p = config.paths(args.home)
    packs = []
    for folder in modelpack.list_installed(p.models):
        try:
            packs.append(_pack_summary(modelpack.load(folder)))
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
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"photosearch {__version__}")
    print(f"data:   {p.data}\nmodels: {p.models}\ncache:  {p.cache}")
    print(f"ONNX Runtime {ort.__version__}; providers: {', '.join(info['providers_available'])}")
    if not packs:
        print("no model pack installed (export one with: python -m photosearch.export_onnx)")
    for s in packs:
        if "error" in s:
            print(f"  ✗ {s['path']}: {s['error']}")
        else:
            print(
                f"  ✓ {s['name']}: {s['model']} ({s['pretrained']}), {s['embedding_dim']}-d, "
                f"reranker: {s['reranker'] or 'none'}, {s['size_mb']} MB"
            )
    return 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    pack = modelpack.verify(Path(args.path), full=True)
    s = _pack_summary(pack)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print(f"ok: {s['name']} ({len(pack.manifest['files'])} files, checksums match)")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    args.json = getattr(args, "json", False)
    return cmd_info(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photosearch",
        description="Find photos on your own disks from a typed description.",
    )
    parser.add_argument("--version", action="version", version=f"photosearch {__version__}")
    parser.add_argument(
        "--home",
        metavar="DIR",
        help=f"keep all data under DIR (default: ${config.HOME_ENV} or the system's folders)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="show folders, ONNX Runtime providers and installed packs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    models = sub.add_parser("models", help="model packs: verify, list")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = msub.add_parser("verify", help="check a pack's manifest and every file's checksum")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_verify)
    p = msub.add_parser("list", help="list installed packs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args.json = False
        args.func = cmd_info
    try:
        return int(args.func(args))
    except PhotosearchError as e:
        print(f"photosearch: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("photosearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
