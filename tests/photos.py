"""Real image files for tests: generated scenes, and a corpus of the bad inputs people have."""

from __future__ import annotations

import os
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (240, 200, 40), (150, 60, 200)]


def scene(seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A distinct little picture per seed: background and a few coloured shapes."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(40, 230) for _ in range(3)))
    d = ImageDraw.Draw(img)
    for _ in range(rng.randrange(1, 4)):
        x, y = rng.randrange(0, size[0] - 30), rng.randrange(0, size[1] - 30)
        s = rng.randrange(15, 45)
        colour = rng.choice(COLOURS)
        if rng.random() < 0.5:
            d.ellipse([x, y, x + s, y + s], fill=colour)
        else:
            d.rectangle([x, y, x + s, y + s], fill=colour)
    return img


def write_photo(path: Path, seed: int, size: tuple[int, int] = (160, 120)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = scene(seed, size)
    fmt = {
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".png": "PNG",
        ".webp": "WEBP",
        ".gif": "GIF",
        ".bmp": "BMP",
        ".tif": "TIFF",
        ".tiff": "TIFF",
    }[path.suffix.lower()]
    img.save(path, fmt)
    return path


def good_photos(folder: Path, n: int, start_seed: int = 0) -> list[Path]:
    exts = [".jpg", ".png", ".webp", ".jpg", ".bmp", ".tif", ".gif", ".jpeg"]
    return [
        write_photo(folder / f"photo_{i:03d}{exts[i % len(exts)]}", start_seed + i)
        for i in range(n)
    ]


def png_bytes(width: int, height: int, depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written by hand: for sample formats Pillow cannot write, and for lying headers."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def odd_but_valid(folder: Path) -> dict[str, Path]:
    """Real photos in the formats and modes that trip up simple tools; all must index."""
    folder.mkdir(parents=True, exist_ok=True)
    base = scene(77, (120, 90))
    out = {"cmyk jpeg": folder / "cmyk.jpg"}
    base.convert("CMYK").save(out["cmyk jpeg"], "JPEG")
    out["16-bit png"] = folder / "grey16.png"
    grey = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(">u2")
    rows = b"".join(b"\x00" + row.tobytes() for row in grey)
    out["16-bit png"].write_bytes(png_bytes(64, 48, 16, 0, rows))
    out["palette with transparency"] = folder / "palette.png"
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(out["palette with transparency"], transparency=0)
    out["animated gif"] = folder / "animated.gif"
    frames = [scene(s, (80, 60)).convert("P") for s in (1, 2, 3)]
    frames[0].save(out["animated gif"], save_all=True, append_images=frames[1:], duration=100)
    return out


def bad_inputs(folder: Path) -> dict[str, Path]:
    """Files a real photo folder contains sooner or later. Returns name → path."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    out["zero bytes"] = folder / "empty.jpg"
    out["zero bytes"].write_bytes(b"")
    whole = folder / "_whole.jpg"
    write_photo(whole, 999, (400, 300))
    data = whole.read_bytes()
    whole.unlink()
    out["truncated"] = folder / "truncated.jpg"
    out["truncated"].write_bytes(data[: len(data) // 3])
    out["text as jpg"] = folder / "notes.jpg"
    out["text as jpg"].write_text("this is a shopping list, not a photo\n")
    out["decompression bomb"] = folder / "bomb.png"
    out["decompression bomb"].write_bytes(png_bytes(20_000, 15_000, 8, 2, b""))
    link = folder / "dangling.jpg"
    os.symlink(folder / "does-not-exist.jpg", link)
    out["broken symlink"] = link
    loop = folder / "loop"
    loop.mkdir()
    os.symlink(folder, loop / "back-to-parent")
    out["symlink loop"] = loop / "back-to-parent"
    return out


def non_utf8_name(folder: Path, seed: int = 4242) -> Path:
    """A valid photo whose file name is not valid UTF-8 (Latin-1 bytes, as old cameras wrote)."""
    raw = os.fsencode(folder) + b"/caf\xe9_" + str(seed).encode() + b".jpg"
    path = Path(os.fsdecode(raw))
    write_photo(path, seed)
    return path
