"""How a synthetic scene becomes a photo, and a photo the model's input, the way real files do.

Training and evaluation share these steps so that what the models learn is what the product
sees: a scene is rendered at some size (possibly a crop around its objects, possibly with
sensor-like noise), saved as PNG or JPEG bytes, then read back and preprocessed by photosearch's
own :func:`photosearch.imaging.load_for_model` — JPEG draft-mode decoding, the pack's resize
mode and interpolation, centre crop, normalisation — exactly as indexing a folder does.

:class:`Condition` names one fixed way (a size, a format, a quality) for evaluation;
:class:`Augment` draws a random one per training scene.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from benchmarks.synthetic import scenes
from photosearch import imaging, modelpack

# Clear space kept around every object when cropping: the drawn shapes reach 1.15 × the radius
# (triangles), so a crop never cuts into one.
CROP_MARGIN = 1.25


@dataclass(frozen=True)
class Condition:
    """A rendering size and a file format: the photos of one evaluation column."""

    size: int = 64
    format: str = "png"  # png | jpeg
    quality: int = 70  # JPEG only

    @property
    def label(self) -> str:
        return f"{self.size} px {'JPEG q' + str(self.quality) if self.format == 'jpeg' else 'PNG'}"

    @property
    def suffix(self) -> str:
        return ".jpg" if self.format == "jpeg" else ".png"

    @classmethod
    def parse(cls, text: str) -> Condition:
        """'128' or '128png' (PNG), '256jpeg' (JPEG at quality 70), '256jpeg90'."""
        m = re.fullmatch(r"(\d+)(png|jpeg(\d+)?)?", text.strip().lower())
        if not m or int(m.group(1)) < 8:
            raise ValueError(f"a condition is SIZE, SIZEpng, SIZEjpeg or SIZEjpegQ: {text!r}")
        if (m.group(2) or "png") == "png":
            return cls(int(m.group(1)), "png")
        return cls(int(m.group(1)), "jpeg", int(m.group(3) or 70))

    @property
    def key(self) -> str:
        """The inverse of :meth:`parse`."""
        return f"{self.size}png" if self.format == "png" else f"{self.size}jpeg{self.quality}"


def encode(img: Image.Image, fmt: str, quality: int = 70) -> bytes:
    """The image as a file's bytes (PNG, or baseline JPEG with 4:2:0 chroma, as cameras save)."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=int(quality))
    elif fmt == "png":
        img.save(buf, "PNG", compress_level=1)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return buf.getvalue()


def photo_bytes(scene: scenes.Scene, condition: Condition) -> bytes:
    """The scene as a file of ``condition``: the whole scene, no noise."""
    return encode(scene.render(condition.size), condition.format, condition.quality)


def model_input(data: bytes, spec: modelpack.ImageSpec, name: str = "photo") -> np.ndarray:
    """A photo file's bytes to the model's input, float32 [3, H, W], by the product's path."""
    pixels, _ = imaging.load_for_model(data, spec, name=name)
    return pixels


# ---------------------------------------------------------------------------------------------
# Training-time variety


@dataclass(frozen=True)
class Augment:
    """Random photo conditions for training: sizes, object-keeping crops, noise, JPEG."""

    min_size: int = 48
    max_size: int = 256
    crop_probability: float = 0.5
    min_crop: float = 0.85  # a crop's side, as a fraction of the scene's
    noise_probability: float = 0.3
    max_noise: float = 6.0  # standard deviation, in 8-bit levels
    jpeg_probability: float = 0.5
    jpeg_quality: tuple[int, int] = (40, 95)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def object_box(scene: scenes.Scene) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) around every object, with CROP_MARGIN, in scene units."""
    xs0 = [o.x - CROP_MARGIN * o.radius for o in scene.objects]
    ys0 = [o.y - CROP_MARGIN * o.radius for o in scene.objects]
    xs1 = [o.x + CROP_MARGIN * o.radius for o in scene.objects]
    ys1 = [o.y + CROP_MARGIN * o.radius for o in scene.objects]
    return max(0.0, min(xs0)), max(0.0, min(ys0)), min(1.0, max(xs1)), min(1.0, max(ys1))


def crop_window(
    scene: scenes.Scene, rng: np.random.Generator, min_crop: float
) -> tuple[float, float, float]:
    """A square window (left, top, side) in scene units that holds every object whole."""
    x0, y0, x1, y1 = object_box(scene)
    need = max(x1 - x0, y1 - y0)
    lo = max(min_crop, need)
    if lo >= 1.0:
        return 0.0, 0.0, 1.0
    side = float(rng.uniform(lo, 1.0))
    left = float(rng.uniform(max(0.0, x1 - side), min(x0, 1.0 - side)))
    top = float(rng.uniform(max(0.0, y1 - side), min(y0, 1.0 - side)))
    return left, top, side


def augmented_photo(scene: scenes.Scene, rng: np.random.Generator, aug: Augment) -> bytes:
    """One random photo of ``scene``: its file's bytes."""
    size = int(round(math.exp(rng.uniform(math.log(aug.min_size), math.log(aug.max_size)))))
    if rng.random() < aug.crop_probability:
        left, top, side = crop_window(scene, rng, aug.min_crop)
    else:
        left, top, side = 0.0, 0.0, 1.0
    full = max(size, int(math.ceil(size / side)))
    img = scene.render(full)
    if side < 1.0:
        box = (
            int(round(left * full)),
            int(round(top * full)),
            int(round(left * full)) + size,
            int(round(top * full)) + size,
        )
        img = img.crop(box)
    if rng.random() < aug.noise_probability:
        sigma = float(rng.uniform(1.0, aug.max_noise))
        px = np.asarray(img, np.float32) + rng.normal(0.0, sigma, (img.height, img.width, 3))
        img = Image.fromarray(np.clip(px + 0.5, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < aug.jpeg_probability:
        q = int(rng.integers(aug.jpeg_quality[0], aug.jpeg_quality[1] + 1))
        return encode(img, "jpeg", q)
    return encode(img, "png")
