"""Publish photosearch's own ready packs: export a catalogue model (or any open_clip model) with
the exporter's parity gate, check the pack as an install would, write its model card, and upload
it to a Hugging Face repository with huggingface_hub, so that an app without torch gets it with
``photosearch models download OWNER/NAME`` (a CoCa pack carries the reranker; ``models
add-reranker`` then gives it to any other pack).

    python packaging/publish_packs.py --choice mobileclip2-s2 --repo OWNER/NAME
    python packaging/publish_packs.py --model MODEL --pretrained TAG --reranker self --repo …
    python packaging/publish_packs.py --choice vit-b-32-256 --out DIR     # export only

Needs the 'export' extra (torch, open_clip) and, to upload, a token with write access
(``HF_TOKEN``); ``HF_ENDPOINT`` chooses the server. The pack's files go to the repository's top
with the manifest; the card (README.md) is the only file beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from photosearch import acquire, config, modelpack
from photosearch.encoders import check_pack


def export(args: argparse.Namespace, out: Path) -> modelpack.ModelPack:
    """The pack, exported with the parity gate (the exporter refuses a graph that fails it)."""
    from photosearch.export_onnx import exporter

    if args.choice:
        c = acquire.choice(args.choice)
        source = exporter.Source(c.encoder.model, c.encoder.tag)
        reranker: Any = (
            exporter.Source(c.reranker.model, c.reranker.tag) if c.reranker is not None else None
        )
    else:
        pretrained = None if args.pretrained in (None, "none") else args.pretrained
        source = exporter.Source(args.model, pretrained)
        reranker = exporter.parse_reranker(args.reranker)
    exporter.export_pack(source, out, reranker=reranker, quantize=args.quantize)
    pack = modelpack.verify(out, full=True)
    check_pack(pack)  # what `models import` and a download would check
    return pack


def model_card(pack: modelpack.ModelPack, repo: str, licence: str) -> str:
    """README.md: what the pack is, where its weights come from, how it was checked, and how
    to install it."""
    m = pack.manifest
    src, r = m["source"], m.get("reranker")
    rows = "\n".join(f"| `{n}` | {e['size']:,} | `{e['sha256']}` |" for n, e in m["files"].items())
    parity = json.dumps(m.get("parity", {}), indent=2, sort_keys=True)
    reranker = (
        f"- reranker: {r['source'].get('model')} `{r['source'].get('pretrained')}` "
        "(cross-attention; refines the top results)\n"
        if r
        else "- no reranker (fast search only)\n"
    )
    return f"""---
license: {licence}
library_name: onnx
tags: [photosearch, clip, onnx, image-retrieval]
---

# {pack.name}: a photosearch model pack

ONNX graphs for photosearch (local photo search), made from open_clip weights by
`python -m photosearch.export_onnx`, each accepted only within its parity gate against torch.

- dual encoder: {src.get("model")} `{src.get("pretrained")}`, {pack.embedding_dim}-d, images
  {pack.image.size[0]}×{pack.image.size[1]}
{reranker}- licence of the weights: {licence} (the weights' own terms apply)

Install (no torch needed): `photosearch models download {repo}`. Every file below is checked
against its sha256 before anything is installed.

| file | bytes | sha256 |
|---|--:|---|
{rows}

Parity figures recorded by the export:

```json
{parity}
```
"""


def upload(folder: Path, repo: str, card: str, *, private: bool) -> str:
    """Create the repository if needed and commit the pack and its card in one commit; returns
    the commit id."""
    from huggingface_hub import CommitOperationAdd, HfApi

    # HF_ENDPOINT read now: huggingface_hub reads it once, when it is first imported.
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
    api.create_repo(repo, exist_ok=True, private=private)
    operations = [
        CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f))
        for f in sorted(folder.iterdir())
        if not f.name.startswith(".")
    ]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
    info = api.create_commit(
        repo,
        operations=operations,
        commit_message=f"photosearch pack {folder.name}",
    )
    return str(info.oid)


def licence_id(text: str) -> str:
    """The Hub's licence identifier for a catalogue licence text."""
    lowered = text.lower()
    for known in ("apple-amlr", "cc-by-nc-4.0", "apache-2.0"):
        if known in lowered:
            return known
    return "mit" if lowered.startswith("mit") else "other"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--choice", help="a `photosearch models available` prepare choice")
    what.add_argument("--model", help="an open_clip architecture")
    p.add_argument("--pretrained", help="its weights' tag (none: random, for tests)")
    p.add_argument("--reranker", help="self, none, or MODEL:TAG (with --model)")
    p.add_argument("--quantize", default="int8", choices=["int8", "none"])
    p.add_argument("--licence", help="the weights' licence for the card (default: the catalogue's)")
    p.add_argument("--repo", help="OWNER/NAME to upload to (without it: export and check only)")
    p.add_argument("--name", help="the pack's name (default: the choice's, or the model's)")
    p.add_argument(
        "--out", type=Path, help="keep the exported pack here (its folder name: the name)"
    )
    p.add_argument("--private", action="store_true")
    args = p.parse_args(argv)
    if args.quantize == "none":
        args.quantize = None
    if not (args.repo or args.out):
        p.error("give --repo to upload, or --out to keep the pack")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    licence = args.licence or (acquire.choice(args.choice).licence if args.choice else "other")
    with tempfile.TemporaryDirectory(prefix="publish-") as tmp:
        name = args.name or args.choice or config.slug(args.model.lower())
        out = args.out or Path(tmp) / name
        pack = export(args, out)
        print(f"exported {pack.name} into {out} ({len(pack.manifest['files'])} files, checked)")
        if args.repo:
            card = model_card(pack, args.repo, licence_id(licence))
            commit = upload(out, args.repo, card, private=args.private)
            print(f"uploaded to {args.repo} at {commit}: photosearch models download {args.repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
