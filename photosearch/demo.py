"""A demo library anyone can try offline in a minute: scenes of coloured shapes from the
synthetic world of the retrieval-quality instrument, indexed with the small pack trained on it.

Both come from a source checkout (``benchmarks/synthetic/scenes.py`` and
``tests/data/synthetic-pack``). A bundle built with that pack inside (``packaging/build.py
--with-pack``) makes a smaller demo from its self-test samples instead; anything else says
what is missing (:class:`DemoError`).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from photosearch import modelpack, resources
from photosearch.errors import PhotosearchError
from photosearch.indexer import Progress

SCENES = Path("benchmarks") / "synthetic" / "scenes.py"
PACK = Path("tests") / "data" / "synthetic-pack"
PHOTOS = "Pictures"


class DemoError(PhotosearchError):
    """The demo's scenes or pack are not part of this installation."""


@dataclass(frozen=True)
class Demo:
    home: Path  # the demo library's data (open it with --home)
    photos: Path  # the generated scenes
    pack: str
    queries: list[str]  # descriptions of some of the scenes, to try


def source_root() -> Path:
    """The source checkout holding the demo's scenes and pack, or :class:`DemoError`."""
    root = Path(__file__).resolve().parent.parent
    missing = [
        str(root / p) for p in (SCENES, PACK / modelpack.MANIFEST) if not (root / p).is_file()
    ]
    if missing:
        raise DemoError(
            "the demo needs photosearch's source checkout (the synthetic scenes and their "
            f"trained pack), and this installation does not have {', '.join(missing)}; run it "
            "from a clone of the repository (`make run`, then `.venv/bin/photosearch demo`)"
        )
    return root


def _scenes_module(root: Path) -> ModuleType:
    name = "photosearch_demo_scenes"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, root / SCENES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def prepare(
    home: Path,
    photos: int = 200,
    *,
    progress: Callable[[Progress], None] | None = None,
    said: Callable[[str], None] | None = None,
) -> Demo:
    """Make (or bring up to date) a demo library in ``home``: about ``photos`` scenes, the
    synthetic pack installed, everything indexed."""

    say = said or (lambda message: None)
    try:
        root = source_root()
    except DemoError as missing:
        bundled = _from_bundle(Path(home), say)
        if bundled is None:
            raise missing from None
        folder, pack_dir, queries = bundled
        return _index(Path(home), folder, pack_dir, queries, progress, say)
    scenes = _scenes_module(root)
    world = scenes.World(scenes.WorldConfig())
    folder = Path(home) / PHOTOS
    folder.mkdir(parents=True, exist_ok=True)
    say(f"drawing {photos} scenes into {folder}")
    queries: list[str] = []
    made = 0
    for family in world.families("test", max(1, (photos + 3) // 4)):
        queries.append(family.captions["base"])
        for member, scene in family.members.items():
            if made >= photos:
                break
            path = folder / f"scene_{family.index:04d}_{member}.png"
            if not path.exists():
                scene.render(128).save(path)
            made += 1
    return _index(Path(home), folder, root / PACK, queries, progress, say)


def _index(
    home: Path,
    folder: Path,
    pack_dir: Path,
    queries: list[str],
    progress: Callable[[Progress], None] | None,
    say: Callable[[str], None],
) -> Demo:
    from photosearch.library import Library

    with Library(home, device="cpu") as lib:
        if not lib.installed_packs():
            say("installing the synthetic model pack")
            lib.import_pack(pack_dir)
        lib.add_folder(folder)
        say("indexing")
        lib.index_photos(progress=progress)
        pack = lib.pack.name
    return Demo(home, folder, pack, queries[:5])


def _from_bundle(home: Path, say: Callable[[str], None]) -> tuple[Path, Path, list[str]] | None:
    """The self-test samples and the synthetic pack built into this bundle, if both are."""
    try:
        samples, manifest = resources.samples()
    except (resources.ResourceError, OSError, ValueError):
        return None
    pack_dir = next((p for p in resources.bundled_packs() if p.name == manifest["pack"]), None)
    if pack_dir is None:
        return None
    folder = home / PHOTOS
    folder.mkdir(parents=True, exist_ok=True)
    say(f"copying {len(manifest['photos'])} sample scenes into {folder}")
    for name in manifest["photos"]:
        if not (folder / name).exists():
            shutil.copy2(samples / name, folder / name)
    return folder, pack_dir, [q["text"] for q in manifest["queries"]]
