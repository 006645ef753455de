"""``python -m photosearch.export_onnx``: export an open_clip model to a verified model pack."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from photosearch.errors import PhotosearchError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m photosearch.export_onnx",
        description="Export an open_clip model (and optionally a CoCa reranker) to a photosearch "
        "model pack. Every graph must match torch (parity gate) or nothing is written.",
    )
    p.add_argument("--model", required=True, help="open_clip model name, e.g. MobileCLIP-S2")
    p.add_argument(
        "--pretrained",
        required=True,
        help="open_clip pretrained tag, or 'none' for random weights (tests, benchmarks)",
    )
    p.add_argument("--checkpoint", type=Path, help="load weights from this file instead")
    p.add_argument(
        "--weights",
        type=Path,
        help="the --pretrained tag's weights, already downloaded (no network is used)",
    )
    p.add_argument(
        "--correct-cls-mask",
        action="store_true",
        help="CoCa trained with open_clip's corrected text padding mask (our own training does)",
    )
    p.add_argument(
        "--reranker",
        default="none",
        help="NAME:TAG of a CoCa model to score the top K (TAG may be 'none'), 'self' when "
        "--model is itself a CoCa, or 'none' (default)",
    )
    p.add_argument(
        "--reranker-weights",
        type=Path,
        help="the --reranker tag's weights, already downloaded (no network is used)",
    )
    p.add_argument(
        "--quantize", choices=["int8"], help="dynamic int8 MatMul/Gemm, kept if it passes parity"
    )
    p.add_argument("--out", type=Path, required=True, help="folder to create for the pack")
    p.add_argument("--name", help="pack name (default: the folder's name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing pack at --out")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # torch's tracer, onnxscript and the quantiser are chatty; show our own warnings only.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("photosearch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    try:
        from photosearch.export_onnx.exporter import Source, export_pack, parse_reranker
    except ImportError as e:
        print(
            f"error: exporting needs the 'export' extra (torch, open_clip_torch, onnx): {e}\n"
            "install it with: pip install 'photosearch[export]'",
            file=sys.stderr,
        )
        return 2
    say = (lambda m: None) if args.quiet else (lambda m: print(f"… {m}", file=sys.stderr))
    try:
        reranker = parse_reranker(args.reranker)
        if args.reranker_weights is not None:
            if not isinstance(reranker, Source) or reranker.pretrained is None:
                raise PhotosearchError("--reranker-weights goes with --reranker NAME:TAG")
            reranker.weights = args.reranker_weights
        if args.weights is not None and args.pretrained == "none":
            raise PhotosearchError("--weights goes with a --pretrained tag")
        manifest = export_pack(
            Source(
                model=args.model,
                pretrained=None if args.pretrained == "none" else args.pretrained,
                checkpoint=args.checkpoint,
                weights=args.weights,
                correct_cls_mask=args.correct_cls_mask,
            ),
            args.out,
            reranker=reranker,
            quantize=args.quantize,
            name=args.name,
            overwrite=args.overwrite,
            progress=say,
        )
    except PhotosearchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    total = sum(f["size"] for f in manifest["files"].values())
    print(f"wrote {args.out} ({total / 1e6:.1f} MB)")
    print(json.dumps(manifest["parity"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
