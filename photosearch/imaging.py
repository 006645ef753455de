"""Open photo files safely and turn them into a model's input: EXIF orientation, reduced-size
JPEG decoding, correct colour conversion, open_clip's preprocessing in numpy, and thumbnails."""

from __future__ import annotations

import io
import logging
import math
import os
import re
import stat
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import ExifTags, Image, UnidentifiedImageError, features

from photosearch.errors import PackError, PhotosearchError
from photosearch.modelpack import ImageSpec

log = logging.getLogger(__name__)

PixelArray = NDArray[np.float32]  # [3, H, W], normalised, what an image encoder takes

MAX_PIXELS: int = 200_000_000

# Pillow's own guard warns above MAX_IMAGE_PIXELS and refuses above twice that; its default
# (~89 MP) would warn on ordinary 100 MP medium-format photos and refuse 180 MP panoramas that
# our documented limit accepts. Raising it to ours makes the two agree: we refuse anything above
# MAX_PIXELS ourselves, from the header, before a single pixel is decoded.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

try:  # a declared dependency; without its wheel (rare platforms) HEIC is simply unsupported
    import pillow_heif
except ImportError:  # pragma: no cover - depends on the platform
    pillow_heif = None  # type: ignore[assignment]
else:
    pillow_heif.register_heif_opener()

Image.init()  # load every plugin now, not lazily and racily inside the decode pool

_HAS_HEIF = pillow_heif is not None
# Pillow has decoded AVIF natively since 11.2, where its wheel carries libavif.
_HAS_AVIF = "avif" in features.modules and bool(features.check_module("avif"))

# Only these decoders ever see a file: a photo folder can hold anything, and Pillow's other
# plugins (EPS runs Ghostscript, for one) are no business of a photo search. (Multi-picture
# JPEGs open through "JPEG" and report themselves as "MPO".)
_FORMATS: tuple[str, ...] = tuple(
    f
    for f in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
    if f in Image.OPEN and (f != "AVIF" or _HAS_AVIF)
)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
    | ({".heic", ".heif"} if _HAS_HEIF else set())
    | ({".avif"} if _HAS_AVIF else set())
)

# Formats whose decoder can deliver a smaller image cheaply: JPEG by DCT scaling (1/2, 1/4,
# 1/8), HEIF by picking an embedded thumbnail that is an exact scaled copy of the image.
_DRAFTABLE = frozenset({"JPEG", "MPO", "HEIF"})

_ORIENTATION = ExifTags.Base.Orientation
# EXIF orientation → the transpose that shows the image upright (as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = frozenset({5, 6, 7, 8})

# open_clip accepts "bicubic", "bilinear" and "random"; "random" means bicubic at inference.
_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "random": Image.Resampling.BICUBIC,
}
_RESIZE_MODES = ("shortest", "squash", "longest")

_EXIF_DATE = re.compile(r"(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_PILLOW_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class ImageError(PhotosearchError):
    """A file could not be turned into an image; ``reason`` says why, in a few words."""

    def __init__(self, path: str | None, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


@dataclass(frozen=True)
class ImageInfo:
    """What the file says about the photo: full-resolution size as displayed (EXIF orientation
    applied), Pillow's format name, and when it was taken (ISO 8601) if the EXIF data says."""

    width: int
    height: int
    format: str
    taken: str | None


# The decoded image must cover (width, height), upright, given the full upright size.
_Need = Callable[[int, int], tuple[int, int]]


def read_image(
    source: Path | bytes,
    *,
    min_size: tuple[int, int] | None = None,
    name: str | None = None,
) -> tuple[Image.Image, ImageInfo]:
    """Decode a photo from a path or from bytes already read: RGB, upright, fully loaded.

    With ``min_size=(h, w)`` the decoder may deliver a smaller image (JPEG draft mode, HEIF
    thumbnails), never smaller than h × w upright unless the photo itself is. ``name`` labels
    errors when ``source`` is bytes. Every failure raises :class:`ImageError`.
    """
    need: _Need | None = None
    if min_size is not None:
        min_h, min_w = (int(v) for v in min_size)
        if min_h < 1 or min_w < 1:
            raise ValueError(f"min_size must be positive, got {min_size}")

        def need(w: int, h: int) -> tuple[int, int]:
            return min_w, min_h

    return _read(source, name, need)


def preprocess(img: Image.Image, spec: ImageSpec) -> PixelArray:
    """An image as open_clip's eval transform for ``spec`` makes it, float32 [3, H, W].

    Pixel for pixel the same operations as open_clip (torchvision on a PIL image: Resize with
    its size rounding, CenterCrop or CenterCropOrPad, ToTensor, Normalize), in PIL and numpy.
    """
    resample = _resample(spec.interpolation)
    if spec.resize_mode not in _RESIZE_MODES:
        raise PackError(f"unsupported image resize_mode {spec.resize_mode!r}")
    if img.mode != "RGB":
        img = _to_rgb(img)
    th, tw = spec.size
    w, h = img.size
    if spec.resize_mode == "squash":
        size = (tw, th)
    elif spec.resize_mode == "longest":
        ratio = max(h / th, w / tw)
        size = (round(w / ratio), round(h / ratio))
    elif th == tw:  # torchvision Resize(int): the short side to the target, the long one floored
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(th * long / short)
        size = (th, new_long) if w <= h else (new_long, th)
    else:
        # open_clip builds ResizeKeepRatio(size) here without passing the interpolation, so a
        # non-square "shortest" target is always resized bicubic; the model saw that.
        resample = Image.Resampling.BICUBIC
        ratio = min(h / th, w / tw)
        size = (round(w / ratio), round(h / ratio))
    if size != img.size:
        img = img.resize(size, resample)
    pixels = _crop_or_pad(np.asarray(img, dtype=np.uint8), th, tw)
    # The same float32 operations, in the same order, as ToTensor and Normalize.
    x = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((x - mean) / std)


def load_for_model(
    source: Path | bytes, spec: ImageSpec, *, name: str | None = None
) -> tuple[PixelArray, ImageInfo]:
    """Decode at the smallest size the preprocessing needs, then preprocess for ``spec``."""
    img, info = _read(source, name, _need_for(spec))
    try:
        return preprocess(img, spec), info
    finally:
        img.close()


def make_thumbnail(source: Path | bytes, max_side: int, *, name: str | None = None) -> Image.Image:
    """An upright RGB thumbnail whose longer side is at most ``max_side``."""
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")

    def need(w: int, h: int) -> tuple[int, int]:
        scale = min(1.0, max_side / max(w, h))
        return math.ceil(w * scale), math.ceil(h * scale)

    img, _ = _read(source, name, need)
    img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    return img


def _need_for(spec: ImageSpec) -> _Need:
    th, tw = spec.size
    if spec.resize_mode == "longest":
        # Only the longer side (relative to the target) must not shrink below the target.
        def need(w: int, h: int) -> tuple[int, int]:
            ratio = max(w / tw, h / th, 1.0)
            return math.ceil(w / ratio), math.ceil(h / ratio)

        return need
    # "shortest" and "squash" resize both sides down to (at least) the target's.
    return lambda w, h: (tw, th)


def _read(
    source: Path | bytes, name: str | None, need: _Need | None
) -> tuple[Image.Image, ImageInfo]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError(name, "empty file")
        return _decode(io.BytesIO(source), name, need)
    label = name if name is not None else str(source)
    with _open_file(source, label) as fp:
        return _decode(fp, label, need)


def _open_file(path: Path | str, label: str) -> BinaryIO:
    # stat first: opening a FIFO would block until someone writes to it.
    try:
        st = os.stat(path)
    except FileNotFoundError:
        broken = os.path.islink(path)
        raise ImageError(label, "file not found" + (" (broken link)" if broken else "")) from None
    except PermissionError:
        raise ImageError(label, "permission denied") from None
    except OSError as e:
        raise ImageError(label, f"cannot read file: {e.strerror or e}") from e
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(label, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(label, "not a regular file")
    if st.st_size == 0:
        raise ImageError(label, "empty file")
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:  # deleted since the stat
        raise ImageError(label, "file not found") from None
    except PermissionError:
        raise ImageError(label, "permission denied") from None
    except OSError as e:
        raise ImageError(label, f"cannot read file: {e.strerror or e}") from e


# The file each thread is decoding, for the log lines of Pillow's warnings about it.
_decoding = threading.local()
_PILLOW_DIR = os.path.dirname(Image.__file__)


def route_decoder_warnings() -> None:
    """Send Pillow's warnings (a truncated TIFF tag, corrupt EXIF, …) to this module's log,
    naming the file, instead of the terminal: in a photo collection they come by the hundred
    and say nothing the user can act on, since the photo is indexed anyway (or refused with its
    reason). Other warnings are shown as before. Installed once, by :class:`Library`."""
    shown = warnings.showwarning
    if getattr(shown, "_photosearch", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if os.path.dirname(filename) == _PILLOW_DIR:
            log.info("%s: %s", getattr(_decoding, "label", None) or "an image", message)
        else:
            shown(message, category, filename, lineno, file, line)

    show._photosearch = True  # type: ignore[attr-defined]
    warnings.showwarning = show
    # Every one of them, not the first per line of Pillow: each names another photo.
    warnings.filterwarnings("always", module=r"PIL\.")


def _decode(fp: BinaryIO, label: str | None, need: _Need | None) -> tuple[Image.Image, ImageInfo]:
    _decoding.label = label
    try:
        return _decode_file(fp, label, need)
    finally:
        _decoding.label = None


def _decode_file(
    fp: BinaryIO, label: str | None, need: _Need | None
) -> tuple[Image.Image, ImageInfo]:
    try:
        img = Image.open(fp, formats=_FORMATS)
    except UnidentifiedImageError:
        fp.seek(0)
        prefix = fp.read(16)
        damaged = _why_damaged(fp, prefix, label)
        if damaged:
            raise ImageError(label, damaged) from None
        other = _sniff_other_format(prefix)
        raise ImageError(
            label, f"unsupported format: {other}" if other else "not an image file"
        ) from None
    except Image.DecompressionBombError as e:
        raise ImageError(label, _bomb_reason(e)) from e
    except Exception as e:  # Pillow raises many types on a damaged header
        log.debug("cannot open %s", label, exc_info=True)
        raise ImageError(label, "corrupt or unreadable image header") from e

    try:
        return _decode_opened(img, label, need)
    except BaseException:
        img.close()
        raise


def _decode_opened(
    img: Image.Image, label: str | None, need: _Need | None
) -> tuple[Image.Image, ImageInfo]:
    fmt = img.format or "unknown"
    full_w, full_h = img.size
    if full_w * full_h > MAX_PIXELS:
        raise ImageError(label, _bomb_reason(None, (full_w, full_h)))

    if need is not None and fmt in _DRAFTABLE:
        # JPEG's EXIF sits before the image data, so the orientation is known before decoding.
        orientation = _orientation(_exif(img, label))
        if orientation in _SWAPS_SIDES:  # `need` speaks upright; draft speaks as stored
            upright_w, upright_h = need(full_h, full_w)
            box = (upright_h, upright_w)
        else:
            box = need(full_w, full_h)
        try:
            img.draft(None, (max(1, box[0]), max(1, box[1])))
        except Exception as e:
            log.debug("draft failed for %s", label, exc_info=True)
            raise ImageError(label, f"corrupt {fmt} data") from e

    try:
        img.load()
    except Image.DecompressionBombError as e:  # a GIF frame or TIFF tile larger than the header
        raise ImageError(label, _bomb_reason(e)) from e
    except MemoryError as e:
        raise ImageError(label, "not enough memory to decode this image") from e
    except Exception as e:
        log.debug("cannot decode %s", label, exc_info=True)
        raise ImageError(label, f"truncated or corrupt {fmt} data") from e

    exif = _exif(img, label)
    orientation = _orientation(exif)
    try:
        rgb = _to_rgb(img)
    except ValueError as e:
        raise ImageError(label, f"unsupported colour mode: {img.mode}") from e
    if orientation in _TRANSPOSE:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    if orientation in _SWAPS_SIDES:
        full_w, full_h = full_h, full_w
    return rgb, ImageInfo(full_w, full_h, fmt, _taken(exif))


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB for every mode a photo file can have, without Pillow's lossy shortcuts."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        return _flatten_on_white(img.convert("RGBA"))
    if mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N, I (32-bit)
        # Pillow's convert() clips these to 8 bits (a mid-grey 16-bit image comes out white).
        # Integer images are taken as 16-bit, which is what a photo file holds when it is one.
        grey = np.asarray(img).astype(np.float32)
        grey = np.clip(np.rint(grey / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        return Image.fromarray(_float_to_uint8(np.asarray(img, dtype=np.float32))).convert("RGB")
    # L, 1, P, CMYK (Pillow already undoes Adobe's inverted CMYK in JPEGs), YCbCr, ...
    return img.convert("RGB")


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    # White is what a viewer or web page usually shows behind a transparent image, so it is what
    # the user saw; dropping alpha instead would reveal arbitrary colours stored under fully
    # transparent pixels (often black), and a logo on transparency would look like one on black.
    if rgba.getchannel("A").getextrema() == (255, 255):
        return rgba.convert("RGB")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _float_to_uint8(x: NDArray[np.float32]) -> NDArray[np.uint8]:
    # Float image data is conventionally in [0, 1]; anything else (HDR, scientific) is stretched
    # over its own range rather than clipped to white.
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
    if lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    span = hi - lo if hi > lo else 1.0
    return np.clip(np.rint((x - lo) * (255.0 / span)), 0, 255).astype(np.uint8)


def _crop_or_pad(pixels: NDArray[np.uint8], th: int, tw: int) -> NDArray[np.uint8]:
    """torchvision's center_crop / open_clip's center_crop_or_pad (fill 0), in numpy."""
    h, w = pixels.shape[:2]
    if (h, w) == (th, tw):
        return pixels
    out = np.zeros((th, tw, pixels.shape[2]), dtype=pixels.dtype)
    src_y, dst_y, n_y = _axis_window(h, th)
    src_x, dst_x, n_x = _axis_window(w, tw)
    out[dst_y : dst_y + n_y, dst_x : dst_x + n_x] = pixels[src_y : src_y + n_y, src_x : src_x + n_x]
    return out


def _axis_window(size: int, target: int) -> tuple[int, int, int]:
    """(source start, destination start, length) along one axis."""
    if target > size:  # padded: torchvision puts the odd pixel after
        return 0, (target - size) // 2, size
    # int(round(...)) as torchvision writes it: Python's round, halves to even
    return int(round((size - target) / 2.0)), 0, target


def _resample(interpolation: str) -> Image.Resampling:
    try:
        return _RESAMPLE[interpolation]
    except KeyError:
        raise PackError(f"unsupported image interpolation {interpolation!r}") from None


def _exif(img: Image.Image, label: str | None) -> Image.Exif:
    try:
        return img.getexif()
    except Exception:  # damaged EXIF must not cost the photo; it only loses its metadata
        log.debug("unreadable EXIF in %s", label, exc_info=True)
        return Image.Exif()


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _taken(exif: Image.Exif) -> str | None:
    try:
        original = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal)
    except Exception:
        original = None
    for value in (original, exif.get(ExifTags.Base.DateTime)):
        parsed = _parse_exif_date(value)
        if parsed is not None:
            return parsed
    return None


def _parse_exif_date(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    m = _EXIF_DATE.match(value.strip("\x00 \t"))
    if m is None:
        return None
    try:
        return datetime(*(int(g) for g in m.groups())).isoformat()
    except ValueError:  # 0000:00:00 00:00:00 and other placeholders
        return None


def _why_damaged(fp: BinaryIO, prefix: bytes, label: str | None) -> str | None:
    """Why a file that starts like one of our formats did not open (a PNG with a bad CRC, a
    GIF of width 0): "damaged PNG: …" says more than "not an image file"."""
    for fmt in _FORMATS:
        factory, accept = Image.OPEN[fmt]
        try:
            if accept is None or not accept(prefix):
                continue
        except Exception:
            continue
        fp.seek(0)
        try:
            factory(fp, label).close()
        except Exception as e:  # the plugin's own words for what is wrong
            why = str(e).strip()
            if not why or why == "not identified by this driver":  # Pillow's word for its header
                why = "its header is invalid"
            return f"damaged {fmt}: {why}"
        return f"damaged {fmt} file"
    return None


def _sniff_other_format(prefix: bytes) -> str | None:
    """The name of an image format we do not open, if the file's first bytes say it is one."""
    for fmt, (_factory, accept) in Image.OPEN.items():
        if fmt in _FORMATS or accept is None:
            continue
        try:
            if accept(prefix):
                return fmt
        except Exception:
            continue
    return None


def _bomb_reason(e: Exception | None, size: tuple[int, int] | None = None) -> str:
    limit = f"decompression bomb guard, limit {MAX_PIXELS // 1_000_000} megapixels"
    if size is not None:
        return f"image too large: {size[0]}×{size[1]} pixels ({limit})"
    m = _PILLOW_BOMB_PIXELS.search(str(e))
    if m:
        return f"image too large: {int(m.group(1)) / 1e6:.0f} megapixels ({limit})"
    return f"image too large ({limit})"
