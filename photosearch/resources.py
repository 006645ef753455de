"""The app's own files (icon, desktop metadata, self-test samples, a pack built into a bundle),
found one way from a source checkout, an installed wheel and a frozen (PyInstaller) bundle.

The files live in the repository's ``resources/`` folder; a wheel installs them as
``photosearch/_resources`` and a bundle carries them as ``resources/`` beside its libraries
(``sys._MEIPASS``). Nothing else in the program should guess these locations.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from photosearch.errors import PhotosearchError

# A file every copy of the resources has: how a candidate folder is recognised.
MARKER = Path("icons") / "photosearch.svg"
ICON = Path("icons") / "photosearch.svg"
SAMPLES = Path("samples")
PACKS = Path("packs")


class ResourceError(PhotosearchError, FileNotFoundError):
    """A file that ships with the app is missing: a broken installation or bundle."""


def frozen() -> bool:
    """Whether this is a PyInstaller bundle rather than Python running the sources."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def candidates() -> list[Path]:
    """Where the resources may be, most specific first."""
    here = Path(__file__).resolve().parent
    found = [Path(sys._MEIPASS) / "resources"] if frozen() else []  # type: ignore[attr-defined]
    return [*found, here / "_resources", here.parent / "resources"]


def root() -> Path:
    """The resources folder of this copy of the app."""
    for folder in candidates():
        if (folder / MARKER).is_file():
            return folder
    tried = ", ".join(str(c) for c in candidates())
    raise ResourceError(f"the app's resources are missing (looked in {tried})")


def resource_path(*parts: str | Path) -> Path:
    """A file or folder under the resources, e.g. ``resource_path("icons", "photosearch.svg")``;
    :class:`ResourceError` (a ``FileNotFoundError``) when it is not there."""
    target = root().joinpath(*parts)
    if not target.exists():
        raise ResourceError(f"missing resource: {target}")
    return target


def samples() -> tuple[Path, dict[str, Any]]:
    """The sample photos' folder and their manifest (``samples.json``: the photos, the pack
    they were made for, and captions with the photo each must find first)."""
    manifest = json.loads(resource_path(SAMPLES, "samples.json").read_text(encoding="utf-8"))
    return resource_path(SAMPLES, "photos"), manifest


def bundled_packs() -> list[Path]:
    """Model packs built into this copy of the app (``build.py --with-pack``), sorted by name."""
    try:
        folder = root() / PACKS
    except ResourceError:
        return []
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / "manifest.json").is_file())
