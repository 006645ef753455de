"""``photosearch --self-test``: prove this copy of the app works, as installed.

In a temporary home it imports a model pack (``--pack DIR``, else the one built into the app),
indexes the sample photos that ship with the app, and searches for the samples' captions: each
must find its photo first. One line per step, the ONNX Runtime provider really used, exit 0 or 1.
The smoke tests run it from an installed bundle; it is a face of the command line, so it prints.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from photosearch import __version__, resources

if TYPE_CHECKING:
    from photosearch.library import Library


@dataclass(frozen=True)
class Step:
    ok: bool
    text: str
    warn: bool = False  # passed, with something the reader should know

    def line(self) -> str:
        return f"  {'✗' if not self.ok else '!' if self.warn else '✓'} {self.text}"


class Failed(Exception):
    """A step failed; its message is the step's line."""


def steps(pack: Path | None, device: str, home: Path) -> Iterator[Step]:
    """Run the self-test in ``home`` (an empty folder), one :class:`Step` at a time; stops at
    the first failure, which is the last step yielded."""
    try:
        yield from _steps(pack, device, home)
    except Failed as e:
        yield Step(False, str(e))
    except Exception as e:  # a broken installation is what a self-test is for: say it
        yield Step(False, f"{type(e).__name__}: {e}")


def _steps(pack: Path | None, device: str, home: Path) -> Iterator[Step]:
    import onnxruntime as ort

    from photosearch.library import Library

    root = resources.root()
    samples, manifest = resources.samples()
    yield _resources_step(root, len(manifest["photos"]))
    yield _downloads_step()
    pack, origin = _pack_to_test(pack)
    photos = home / "photos"
    shutil.copytree(samples, photos)
    with Library(home / "home", device=device) as lib:
        t = time.perf_counter()
        installed = lib.import_pack(Path(pack))
        yield Step(
            True,
            f"model pack: {installed.name} ({origin}: {pack}), checksums verified, "
            f"imported in {time.perf_counter() - t:.1f} s",
        )
        yield _index_step(lib, photos, len(manifest["photos"]))
        used = lib.image_encoder.providers[0]
        yield Step(
            True,
            f"ONNX Runtime {ort.__version__} ({ort.get_device()} build): providers available "
            f"{', '.join(ort.get_available_providers())}; encoders run on {used}",
        )
        # The samples' captions find their photos with the pack they were chosen for only.
        same_pack = installed.name == manifest["pack"]
        for q in manifest["queries"]:
            yield _search_step(lib, q, manifest["pack"] if not same_pack else None)


def _resources_step(root: Path, samples: int) -> Step:
    """Where the app's resources were found, and whether it runs from a bundle."""
    how = "Python sources"
    if resources.frozen():
        build = root.parent / "BUILD.json"  # written by packaging/photosearch.spec
        flavour = json.loads(build.read_text())["flavour"] if build.is_file() else "unknown"
        how = f"frozen bundle, {flavour} flavour"
    return Step(True, f"resources: {root} ({how}; {samples} sample photos)")


def _downloads_step() -> Step:
    """huggingface_hub loads: `models download` and the download dialog need it, bundle or
    not (a bundle that leaves out one of its modules fails only on a download)."""
    try:
        import huggingface_hub
        import huggingface_hub.file_download  # noqa: F401
    except ImportError as e:
        raise Failed(f"model downloads: huggingface_hub cannot be loaded ({e})") from e
    return Step(True, f"model downloads: huggingface_hub {huggingface_hub.__version__}")


def _pack_to_test(pack: Path | None) -> tuple[Path, str]:
    """The pack given, else the first one built into the app, and which it is in words."""
    if pack is not None:
        return pack, "given"
    bundled = resources.bundled_packs()
    if not bundled:
        raise Failed(
            "model pack: none built into this app; pass --pack DIR "
            "(a bundle built with `packaging/build.py --with-pack DIR` carries one)"
        )
    return bundled[0], "built into the app"


def _index_step(lib: Library, photos: Path, expected: int) -> Step:
    """Every sample photo is indexed, none unreadable."""
    t = time.perf_counter()
    lib.add_folder(photos)
    report = lib.index_photos()
    seconds = time.perf_counter() - t
    run = report.run
    if run.failed or run.indexed != expected:
        why = "; ".join(f"{p}: {r}" for p, r in run.errors[:3])
        raise Failed(
            f"indexing: {run.indexed} of {expected} photos encoded, {run.failed} unreadable {why}"
        )
    return Step(True, f"indexed {run.indexed} photos in {seconds:.1f} s")


def _search_step(lib: Library, q: dict[str, str], other_pack: str | None) -> Step:
    """One sample caption finds its photo first. ``other_pack`` names the pack the captions
    were chosen for when the pack under test is another one: then only results are checked."""
    t = time.perf_counter()
    res = lib.search(q["text"], n=5, names=False)
    ms = 1000 * (time.perf_counter() - t)
    names = [r.path.name for r in res]
    rank = names.index(q["expected"]) + 1 if q["expected"] in names else None
    stage = f"refined top {res.rerank} on {res.device}" if res.refined else "fast only"
    if res.note:
        stage += f"; note: {res.note}"
    if not names:
        raise Failed(f"search {q['text']!r}: no results")
    if other_pack is not None:
        return Step(
            True,
            f"search {q['text']!r}: {len(names)} results in {ms:.0f} ms ({stage}); "
            f"ranking not checked: the samples' captions are for the {other_pack!r} pack",
            warn=True,
        )
    if rank != 1:
        where = f"ranked {rank}" if rank else "not in the top 5"
        raise Failed(f"search {q['text']!r}: {q['expected']} {where}; first: {names[0]} ({stage})")
    return Step(
        True,
        f"search {q['text']!r}: {q['expected']} first "
        f"(score {res[0].score:.3f}; {stage}) in {ms:.0f} ms",
    )


def main(pack: str | None = None, device: str = "auto", out: TextIO | None = None) -> int:
    """Run the self-test in a temporary folder, print one line per step; 0 if all passed."""
    out = out or sys.stdout
    print(
        f"photosearch {__version__} self-test (Python {sys.version.split()[0]}, {sys.platform})",
        file=out,
        flush=True,
    )
    t = time.perf_counter()
    ok = False
    with tempfile.TemporaryDirectory(prefix="photosearch-selftest-") as tmp:
        for step in steps(Path(pack) if pack else None, device, Path(tmp)):
            print(step.line(), file=out, flush=True)
            ok = step.ok
    seconds = time.perf_counter() - t
    print(f"self-test {'passed' if ok else 'FAILED'} in {seconds:.1f} s", file=out, flush=True)
    return 0 if ok else 1
