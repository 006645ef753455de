"""Make the self-test's sample photos: a few synthetic scenes and captions that find them.

    .venv/bin/python packaging/make_samples.py [--families 24] [--queries 4]

Writes ``resources/samples/photos/`` (64 px scenes of the synthetic world's test split, one per
family, half PNG and half JPEG, so both decoders are exercised) and
``resources/samples/samples.json``: the captions and the photo each must find first. A caption
is kept only when the trained fixture pack (``tests/data/synthetic-pack``) ranks its scene first
with the default refinement and a clear lead over the second result, so the self-test checks
the installed program, not the model's luck. The scenes are of different families, so this is
an easy gallery (no same-words distractors): the point is the program, not retrieval quality.
Run it again only when the scene world or the fixture pack changes; commit the result (~40 KB).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "tests" / "data" / "synthetic-pack"
OUT = ROOT / "resources" / "samples"
MIN_LEAD = 0.05  # fused-score gap between the expected photo and the runner-up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=24)
    parser.add_argument("--queries", type=int, default=4)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks.synthetic import scenes
    from photosearch.library import Library

    photos = OUT / "photos"
    shutil.rmtree(photos, ignore_errors=True)
    photos.mkdir(parents=True)
    world = scenes.World(scenes.WorldConfig())
    families = list(world.families("test", args.families))
    for fam in families:
        image = fam.base.render(64)
        if fam.index % 2:
            image.save(photos / f"scene{fam.index:02d}.jpg", quality=92)
        else:
            image.save(photos / f"scene{fam.index:02d}.png", optimize=True)

    queries = []
    with tempfile.TemporaryDirectory() as tmp, Library(Path(tmp) / "home") as lib:
        lib.import_pack(PACK)
        lib.add_folder(photos)
        lib.index_photos()
        for fam in families:
            text = fam.captions["base"]
            expected = next(photos.glob(f"scene{fam.index:02d}.*")).name
            res = lib.search(text, n=2, names=False)
            lead = res[0].score - res[1].score
            ok = res.refined and res[0].path.name == expected and lead >= MIN_LEAD
            first = f"{res[0].path.name} ({res[0].score:.3f}, lead {lead:.3f})"
            print(f"{'kept' if ok else 'left'}: {text!r} -> {first}")
            if ok and len(queries) < args.queries:
                queries.append({"text": text, "expected": expected, "lead": round(lead, 3)})
        pack_name = lib.pack.name
    if not queries:
        print("no caption found its scene first: is the fixture pack right?", file=sys.stderr)
        return 1
    manifest = {
        "about": "Self-test samples (photosearch --self-test): each query must rank its "
        "expected photo first. Made by packaging/make_samples.py.",
        "pack": pack_name,
        "photos": sorted(p.name for p in photos.iterdir()),
        "queries": queries,
    }
    (OUT / "samples.json").write_text(json.dumps(manifest, indent=2) + "\n")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(
        f"{len(manifest['photos'])} photos, {len(queries)} queries, {size / 1024:.0f} KB in {OUT}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
