"""Imaging on real files the tests write: every format and colour mode a photo folder holds,
draft decoding, EXIF orientation and dates, open_clip parity, and the bad inputs people have."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from photos import png_bytes
from PIL import Image, ImageDraw

from photosearch.errors import PackError
from photosearch.imaging import (
    MAX_PIXELS,
    SUPPORTED_EXTENSIONS,
    ImageError,
    ImageInfo,
    load_for_model,
    make_thumbnail,
    preprocess,
    read_image,
)
from photosearch.modelpack import ImageSpec

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
EXIF_IFD, ORIENTATION, DATE_TIME, DATE_TIME_ORIGINAL = 0x8769, 0x0112, 0x0132, 0x9003


def spec(size=(224, 224), mode="shortest", interpolation="bicubic") -> ImageSpec:
    return ImageSpec(size, CLIP_MEAN, CLIP_STD, interpolation, mode)


# --- the corpus --------------------------------------------------------------------------------


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """Gradients, soft texture and hard-edged shapes: the frequencies a photo has."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [x * 255 / width, y * 255 / height, 128 + 60 * np.sin(x / 150) * np.cos(y / 110)], -1
    )
    small = rng.normal(128, 60, (max(1, height // 8), max(1, width // 8)))
    texture = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    pixels = base * 0.8 + np.asarray(texture, np.float32)[..., None] * 0.2
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(width // 100 + 1, width // 10 + 2))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(rng.integers(0, 255, 3).tolist()))
    return img


def marked(width: int, height: int) -> Image.Image:
    """Grey with a red block in the top-left corner: where it ends up shows the orientation."""
    img = Image.new("RGB", (width, height), (128, 128, 128))
    img.paste(RED, (0, 0, width // 4, height // 4))
    return img


def exif_with(**tags: object) -> Image.Exif:
    exif = Image.Exif()
    for key, value in tags.items():
        if key == "original":
            exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = value
        else:
            exif[{"orientation": ORIENTATION, "datetime": DATE_TIME}[key]] = value
    return exif


def write_corpus(folder: Path) -> dict[str, Path]:
    """Every kind of file the tests open, good and bad. Returns name → path."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def put(name: str, data: bytes | Image.Image, fmt: str | None = None, **save) -> None:
        path = folder / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            data.save(path, fmt, **save)
        out[name] = path

    # Formats: a red left half and a blue right half.
    halves = Image.new("RGB", (64, 48), BLUE)
    halves.paste(RED, (0, 0, 32, 48))
    put("halves.jpg", halves, "JPEG", quality=95)
    put("halves.png", halves, "PNG")
    put("halves.webp", halves, "WEBP", quality=95)
    put("halves.gif", halves, "GIF")
    put("halves.bmp", halves, "BMP")
    put("halves.tif", halves, "TIFF")
    put("halves.heic", halves, "HEIF", quality=95)
    if ".avif" in SUPPORTED_EXTENSIONS:
        put("halves.avif", halves, "AVIF", quality=95)
    frames = [Image.new("RGB", (32, 32), c) for c in (RED, GREEN, BLUE)]
    put("animated.gif", frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)

    # Colour modes.
    put("cmyk.jpg", Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (16, 0, 32, 32))  # left half index 0 (transparent), right half blue
    put("palette_transparent.png", palette, "PNG", transparency=0)
    la = Image.new("LA", (32, 32), (0, 0))  # left: fully transparent black
    la.paste((0, 255), (16, 0, 32, 32))  # right: opaque black
    put("la.png", la, "PNG")
    put("rgba_half.png", Image.new("RGBA", (32, 32), (255, 0, 0, 128)), "PNG")
    put("grey16.png", Image.fromarray(np.full((24, 32), 32768, np.uint16)), "PNG")
    row = b"\x00" + struct.pack(">96H", *([32768] * 96))
    put("rgb16.png", png_bytes(32, 4, 16, 2, row * 4))
    bilevel = Image.new("1", (32, 32), 0)
    bilevel.paste(1, (16, 0, 32, 32))
    put("bilevel.png", bilevel, "PNG")
    put("float.tif", Image.fromarray(np.full((16, 16), 0.5, np.float32)), "TIFF")

    # EXIF.
    put("big.jpg", photo_like(4000, 3000), "JPEG", quality=90)
    put("marked_rot6.jpg", marked(4000, 3000), "JPEG", exif=exif_with(orientation=6))
    put(
        "dated.jpg",
        halves,
        "JPEG",
        exif=exif_with(original="2021:07:04 18:30:05", datetime="2022:01:01 00:00:00"),
    )
    put("dated_plain.jpg", halves, "JPEG", exif=exif_with(datetime="2019:12:31 23:59:58"))
    put("undated.jpg", halves, "JPEG")
    put("garbage_date.jpg", halves, "JPEG", exif=exif_with(original="yesterday-ish"))
    put("zero_date.jpg", halves, "JPEG", exif=exif_with(original="0000:00:00 00:00:00"))

    # Bad inputs.
    put("empty.jpg", b"")
    whole = io.BytesIO()
    photo_like(320, 240).save(whole, "JPEG", quality=90)
    put("truncated.jpg", whole.getvalue()[: len(whole.getvalue()) // 2])
    put("text.jpg", b"this is a shopping list, not a photo\n" * 20)
    put("photoshop.jpg", b"8BPS\x00\x01" + b"\x00" * 100)
    put("bomb.png", png_bytes(20_000, 15_000, 8, 2, b""))  # 300 MP claimed, a few bytes
    put("huge_bomb.png", png_bytes(30_000, 30_000, 8, 2, b""))  # beyond Pillow's own guard
    put("corrupt.png", png_bytes(32, 32, 8, 2, b"\x00" * 40))  # far too little pixel data
    unreadable = folder / "unreadable.jpg"
    halves.save(unreadable, "JPEG")
    unreadable.chmod(0)
    out["unreadable.jpg"] = unreadable
    (folder / "album.jpg").mkdir()
    out["album.jpg"] = folder / "album.jpg"
    out["missing.jpg"] = folder / "missing.jpg"
    (folder / "dangling.jpg").symlink_to(folder / "nowhere.jpg")
    out["dangling.jpg"] = folder / "dangling.jpg"
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def near(pixel: tuple[int, ...], want: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, want, strict=True))


# --- preprocessing parity with open_clip -------------------------------------------------------


@pytest.mark.parametrize("mode", ["shortest", "squash", "longest"])
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_preprocess_matches_open_clip(mode: str, interpolation: str) -> None:
    transform = pytest.importorskip("open_clip.transform")
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: thread start-up costs 6× the work on 2 cores
    try:
        _compare_with_open_clip(transform, mode, interpolation)
    finally:
        torch.set_num_threads(threads)


def _compare_with_open_clip(transform, mode: str, interpolation: str) -> None:
    sizes = [(640, 480), (480, 640), (300, 300), (1000, 200), (150, 100), (225, 224), (97, 301)]
    images = [photo_like(w, h, seed=i) for i, (w, h) in enumerate(sizes)]
    for target in [(224, 224), (256, 192), (192, 256)]:
        cfg = transform.PreprocessCfg(
            size=target,
            mean=CLIP_MEAN,
            std=CLIP_STD,
            interpolation=interpolation,
            resize_mode=mode,
        )
        reference = transform.image_transform_v2(cfg, is_train=False)
        for img in images:
            ours = preprocess(img, spec(target, mode, interpolation))
            theirs = reference(img).numpy()
            assert ours.dtype == np.float32 and ours.shape == (3, *target)
            assert ours.flags.c_contiguous
            # The same PIL resampling and the same float32 arithmetic: measured bit-identical.
            np.testing.assert_allclose(
                ours, theirs, rtol=0, atol=1e-6, err_msg=f"{img.size} → {target}"
            )


def test_preprocess_refuses_an_unknown_interpolation() -> None:
    with pytest.raises(PackError, match="interpolation"):
        preprocess(Image.new("RGB", (8, 8)), spec(interpolation="sinc"))
    with pytest.raises(PackError, match="resize_mode"):
        preprocess(Image.new("RGB", (8, 8)), spec(mode="stretch"))


# --- draft decoding and orientation ------------------------------------------------------------


def test_draft_decodes_a_big_jpeg_at_reduced_scale(corpus: dict[str, Path]) -> None:
    big = corpus["big.jpg"]
    full, info = read_image(big)
    assert full.size == (4000, 3000)
    small, small_info = read_image(big, min_size=(224, 224))
    assert small_info == info == ImageInfo(4000, 3000, "JPEG", None)
    # 1/8 scale is the smallest DCT scale that still covers 224 × 224.
    assert small.size == (500, 375)
    assert small.mode == "RGB"
    # A target between scales picks the larger one: 3000 // 1000 = 3, so 1/2, not 1/4.
    assert read_image(big, min_size=(1000, 1000))[0].size == (2000, 1500)
    # A target larger than the image decodes it whole.
    assert read_image(big, min_size=(3001, 10))[0].size == (4000, 3000)


@pytest.mark.parametrize("mode", ["shortest", "squash", "longest"])
def test_draft_preprocessing_is_close_to_full_decoding(corpus: dict[str, Path], mode: str) -> None:
    s = spec(mode=mode)
    full = preprocess(read_image(corpus["big.jpg"])[0], s)
    drafted, info = load_for_model(corpus["big.jpg"], s)
    assert (info.width, info.height) == (4000, 3000)
    diff = np.abs(drafted - full)
    # Measured on this image: mean 0.0047, 99th percentile 0.044, max 0.15 (normalised units;
    # a mean of 0.0047 is about a third of one 8-bit grey level). DCT scaling is a slightly
    # different low-pass filter from bicubic; the bounds leave ~2× headroom.
    assert diff.mean() < 0.01
    assert np.percentile(diff, 99) < 0.1


def test_exif_orientation_rotates_pixels_and_swaps_sides(corpus: dict[str, Path]) -> None:
    path = corpus["marked_rot6.jpg"]
    for min_size, size in [(None, (3000, 4000)), ((224, 224), (375, 500))]:
        img, info = read_image(path, min_size=min_size)
        assert (info.width, info.height) == (3000, 4000)
        assert img.size == size
        w, h = img.size
        # Orientation 6 turns the stored top-left corner to the top right.
        assert near(img.getpixel((int(w * 0.95), int(h * 0.05))), RED, 30)
        assert near(img.getpixel((int(w * 0.05), int(h * 0.05))), (128, 128, 128), 30)
        assert near(img.getpixel((int(w * 0.95), int(h * 0.95))), (128, 128, 128), 30)


def test_draft_size_is_computed_upright(corpus: dict[str, Path]) -> None:
    # Upright the photo is 3000 wide and 4000 tall; asking for 1000 wide and 300 tall allows
    # 1/2 scale. Computed without the swap it would allow 1/4 and deliver only 750 wide.
    img, _ = read_image(corpus["marked_rot6.jpg"], min_size=(300, 1000))
    assert img.size == (1500, 2000)


def test_thumbnail_is_small_upright_and_rgb(corpus: dict[str, Path]) -> None:
    thumb = make_thumbnail(corpus["marked_rot6.jpg"], 256)
    assert thumb.size == (192, 256)
    assert thumb.mode == "RGB"
    assert near(thumb.getpixel((180, 10)), RED, 30)
    assert make_thumbnail(corpus["halves.png"], 1000).size == (64, 48)


# --- EXIF dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "taken"),
    [
        ("dated.jpg", "2021-07-04T18:30:05"),  # DateTimeOriginal wins over DateTime
        ("dated_plain.jpg", "2019-12-31T23:59:58"),  # DateTime when it is all there is
        ("undated.jpg", None),
        ("garbage_date.jpg", None),
        ("zero_date.jpg", None),
    ],
)
def test_date_taken(corpus: dict[str, Path], name: str, taken: str | None) -> None:
    assert read_image(corpus[name])[1].taken == taken


# --- formats and colour modes ------------------------------------------------------------------


def test_supported_extensions() -> None:
    expected = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif"}
    assert expected | {".tiff", ".heic", ".heif"} <= SUPPORTED_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in SUPPORTED_EXTENSIONS)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("halves.jpg", "JPEG"),
        ("halves.png", "PNG"),
        ("halves.webp", "WEBP"),
        ("halves.gif", "GIF"),
        ("halves.bmp", "BMP"),
        ("halves.tif", "TIFF"),
        ("halves.heic", "HEIF"),
        ("halves.avif", "AVIF"),
    ],
)
def test_each_format_opens(corpus: dict[str, Path], name: str, fmt: str) -> None:
    if name not in corpus:
        pytest.skip(f"{fmt} cannot be decoded by this Pillow")
    img, info = read_image(corpus[name])
    assert info == ImageInfo(64, 48, fmt, None)
    assert img.mode == "RGB" and img.size == (64, 48)
    assert near(img.getpixel((8, 24)), RED)
    assert near(img.getpixel((56, 24)), BLUE)


def test_animated_gif_gives_its_first_frame(corpus: dict[str, Path]) -> None:
    img, info = read_image(corpus["animated.gif"])
    assert info.format == "GIF"
    assert img.getpixel((16, 16)) == RED


@pytest.mark.parametrize(
    ("name", "left", "right"),
    [
        ("cmyk.jpg", RED, RED),  # Adobe-inverted CMYK, as Pillow and Photoshop write it
        ("palette_transparent.png", (255, 255, 255), BLUE),  # transparent index on white
        ("la.png", (255, 255, 255), (0, 0, 0)),
        ("rgba_half.png", (255, 127, 127), (255, 127, 127)),  # half-transparent red on white
        ("grey16.png", (128, 128, 128), (128, 128, 128)),  # not clipped to white
        ("rgb16.png", (128, 128, 128), (128, 128, 128)),
        ("bilevel.png", (0, 0, 0), (255, 255, 255)),
        ("float.tif", (128, 128, 128), (128, 128, 128)),
    ],
)
def test_colour_modes_convert_to_rgb(
    corpus: dict[str, Path], name: str, left: tuple[int, ...], right: tuple[int, ...]
) -> None:
    img, _ = read_image(corpus[name])
    assert img.mode == "RGB"
    w, h = img.size
    assert near(img.getpixel((1, h // 2)), left, 3), img.getpixel((1, h // 2))
    assert near(img.getpixel((w - 2, h // 2)), right, 3), img.getpixel((w - 2, h // 2))


# --- bad inputs --------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.jpg", "empty file"),
        ("truncated.jpg", "truncated or corrupt JPEG data"),
        ("text.jpg", "not an image file"),
        ("photoshop.jpg", "unsupported format: PSD"),
        (
            "bomb.png",
            "image too large: 20000×15000 pixels (decompression bomb guard, limit 200 megapixels)",
        ),
        (
            "huge_bomb.png",
            "image too large: 900 megapixels (decompression bomb guard, limit 200 megapixels)",
        ),
        ("corrupt.png", "truncated or corrupt PNG data"),
        ("album.jpg", "is a directory, not a file"),
        ("missing.jpg", "file not found"),
        ("dangling.jpg", "file not found (broken link)"),
    ],
)
def test_bad_inputs_give_a_reason(corpus: dict[str, Path], name: str, reason: str) -> None:
    path = corpus[name]
    with pytest.raises(ImageError) as caught:
        read_image(path)
    assert caught.value.reason == reason
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    with pytest.raises(ImageError) as caught:  # and the same through the model path
        load_for_model(path, spec())
    assert caught.value.reason == reason


def test_unreadable_file(corpus: dict[str, Path]) -> None:
    path = corpus["unreadable.jpg"]
    if os.access(path, os.R_OK):
        pytest.skip("running with privileges that read any file")
    with pytest.raises(ImageError) as caught:
        read_image(path)
    assert caught.value.reason == "permission denied"


def test_bomb_limit_is_ours() -> None:
    assert MAX_PIXELS == 200_000_000
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS


# --- bytes as source ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["halves.jpg", "halves.heic", "marked_rot6.jpg", "la.png"])
def test_bytes_work_like_paths(corpus: dict[str, Path], name: str) -> None:
    data = corpus[name].read_bytes()
    for min_size in (None, (64, 64)):
        from_path, info_path = read_image(corpus[name], min_size=min_size)
        from_bytes, info_bytes = read_image(data, min_size=min_size, name="photo")
        assert info_path == info_bytes
        assert np.array_equal(np.asarray(from_path), np.asarray(from_bytes))
    pixels_path, _ = load_for_model(corpus[name], spec())
    pixels_bytes, _ = load_for_model(data, spec())
    assert np.array_equal(pixels_path, pixels_bytes)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("name", ["empty.jpg", "truncated.jpg", "text.jpg", "bomb.png"])
def test_bad_bytes_give_the_same_reason(corpus: dict[str, Path], name: str) -> None:
    with pytest.raises(ImageError) as from_path:
        read_image(corpus[name])
    with pytest.raises(ImageError) as from_bytes:
        read_image(corpus[name].read_bytes(), name="holiday/IMG_0001.jpg")
    assert from_bytes.value.reason == from_path.value.reason
    assert from_bytes.value.path == "holiday/IMG_0001.jpg"
    assert str(from_bytes.value).startswith("holiday/IMG_0001.jpg: ")
