"""The synthetic world as a captioned photo set, the layout real calibration data comes in.

    python -m benchmarks.synthetic.captions --out build/synthetic/captions --seed 1 \\
        --families 150 --condition 128png

writes ``OUT/photos/*.png`` (every member of each family: the base scene and its swap, colour
and relation distractors), ``OUT/captions.json`` in COCO's caption layout (``images``,
``annotations``; two paraphrases per photo) and ``OUT/absent.json``: queries that describe no
photo of the set — descriptions of the world's kind that no written scene satisfies (checked
with :func:`scenes.matches` against every one) and everyday descriptions in words the world
does not have. ``benchmarks/calibrate.py`` reads exactly these files, as it would read COCO.

A photo's caption must match only that photo: a caption that another photo of the set also
satisfies is left out, since COCO's layout can name one photo per caption.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.synthetic import photos, scenes

#: What people type into a photo search, in words the synthetic world never uses.
EVERYDAY = (
    "a dog on the beach",
    "my dog on the beach at sunset",
    "kids blowing out birthday candles",
    "snowy mountains at dawn",
    "a plate of spaghetti",
    "grandma in the garden",
    "the eiffel tower at night",
    "a cat sleeping on the sofa",
    "fireworks over the harbour",
    "a wedding cake",
    "people hiking in the forest",
    "a red car parked in the street",
    "screenshot of a receipt",
    "a baby laughing",
    "city skyline in the rain",
    "a cup of coffee on a wooden table",
    "surfers riding a wave",
    "a horse in a field",
    "our tent at the campsite",
    "passport photo",
)


def write(
    out: Path, *, seed: int = 1, families: int = 150, condition: str = "128png", absent: int = 100
) -> dict[str, int]:
    """Write the set; returns its counts."""
    world = scenes.World(scenes.WorldConfig(seed=seed))
    cond = photos.Condition.parse(condition)
    folder = out / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, scenes.Scene, list[str]]] = []
    for fam in world.families("test", families):
        rng = np.random.default_rng([seed, 7, fam.index])
        for member, scene in fam.members.items():
            name = f"{scene.name}{cond.suffix}"
            (folder / name).write_bytes(photos.photo_bytes(scene, cond))
            texts = [fam.captions[member], scenes.caption(scene.description, rng)]
            written.append((name, scene, list(dict.fromkeys(texts))))
    all_scenes = [s for _, s, _ in written]
    images, annotations = [], []
    dropped = 0
    for i, (name, scene, texts) in enumerate(written):
        images.append({"id": i, "file_name": name})
        others = [s for s in all_scenes if s is not scene]
        if any(scenes.matches(scene.description, s) for s in others):
            dropped += 1  # another photo fits the same words: no single right answer
            continue
        annotations += [{"image_id": i, "id": len(annotations), "caption": t} for t in texts]
    (out / "captions.json").write_text(
        json.dumps({"images": images, "annotations": annotations}, indent=1) + "\n"
    )
    gone: list[str] = []
    rng = np.random.default_rng([seed, 8])
    tries = 0
    while len(gone) < absent and tries < 100 * absent:
        tries += 1
        d = scenes.relational_description(rng) if rng.random() < 0.8 else None
        if d is None:
            d = scenes.single_description(rng)
        if not any(scenes.matches(d, s) for s in all_scenes):
            gone.append(scenes.caption(d, rng))
    gone += list(EVERYDAY)
    (out / "absent.json").write_text(json.dumps(gone, indent=1) + "\n")
    return {
        "photos": len(images),
        "captions": len(annotations),
        "photos_without_caption": dropped,
        "absent": len(gone),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.synthetic.captions", description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=1, help="world seed (1: the held-out world)")
    p.add_argument("--families", type=int, default=150)
    p.add_argument("--condition", default="128png", help="size and format, e.g. 128png, 256jpeg70")
    p.add_argument("--absent", type=int, default=100, help="unseen descriptions to write")
    args = p.parse_args(argv)
    counts = write(
        args.out,
        seed=args.seed,
        families=args.families,
        condition=args.condition,
        absent=args.absent,
    )
    print(json.dumps(counts), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
