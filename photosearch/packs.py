"""The installed model packs: a folder of verified packs, and which one serves.

:class:`PackShelf` installs a pack atomically (staged, then renamed into place), removes one
without ever leaving half a pack that looks installed, and says which pack is chosen (the
``active_pack`` setting, else the only or first installed one) and which one a switch is
encoding towards (``pending_pack``). What the vectors of a pack mean to the library (forgetting
them, switching searches over) is the library's business; the files are this one's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from photosearch import config, modelpack
from photosearch.catalog import Catalog
from photosearch.encoders import check_pack
from photosearch.errors import PackError, PhotosearchError
from photosearch.hints import NO_PACK_HINT


class NoModelError(PhotosearchError):
    """No usable model pack is installed."""


class PackShelf:
    """The packs installed in ``folder``; the choice among them is kept in ``catalog``."""

    def __init__(self, folder: Path, catalog: Catalog):
        self.folder = folder
        self.catalog = catalog

    def installed(self) -> list[Path]:
        return modelpack.list_installed(self.folder)

    def folder_of(self, name: str) -> Path:
        """Where the installed pack ``name`` lives (whether or not it is there)."""
        return self.folder / config.slug(name)

    @property
    def chosen(self) -> str | None:
        """The pack chosen in settings (None: the only or first installed one serves)."""
        return self.catalog.get_setting("active_pack")

    @property
    def pending(self) -> str | None:
        """The installed pack a switch is encoding towards, if any."""
        return self.catalog.get_setting("pending_pack")

    def active_name(self) -> str | None:
        """The name of the pack that serves: the chosen one, else the first installed."""
        chosen = self.chosen
        if chosen is not None:
            return chosen
        installed = self.installed()
        return installed[0].name if installed else None

    def load_active(self) -> modelpack.ModelPack:
        """The pack that serves, loaded and checked; a clear error when there is none."""
        chosen = self.chosen
        if chosen:
            folder = self.folder / chosen
            if not folder.is_dir():
                raise PackError(
                    f"the active model pack {chosen!r} is missing from {self.folder}; "
                    "import it again, or choose another with `photosearch models use NAME`"
                )
            return modelpack.load(folder)
        installed = self.installed()
        if not installed:
            raise NoModelError(f"no model pack is installed in {self.folder}. {NO_PACK_HINT}")
        return modelpack.load(installed[0])

    def choose(self, name: str) -> None:
        """Make ``name`` the pack that serves, dropping any pending switch."""
        self.catalog.set_setting("active_pack", name)
        self.catalog.delete_setting("pending_pack")

    def set_pending(self, name: str | None) -> None:
        if name is None:
            self.catalog.delete_setting("pending_pack")
        else:
            self.catalog.set_setting("pending_pack", name)

    # -- installing and removing -----------------------------------------------------------

    def checked_source(self, source: Path, *, replace: bool) -> tuple[modelpack.ModelPack, Path]:
        """A pack to install, verified in full and its encoders run once (checksums vouch for
        the files, this for their fit with the manifest), and where it would go. An installed
        pack of the same name is replaced only with ``replace``: its vectors would no longer
        match."""
        src = modelpack.verify(Path(source), full=True)
        check_pack(src)
        dest = self.folder_of(src.name)
        if dest.exists() and not replace:
            raise PackError(
                f"a pack named {dest.name!r} is already installed; pass --replace to replace it "
                "(photos encoded with it will be encoded again)"
            )
        return src, dest

    def install(
        self, src: modelpack.ModelPack, dest: Path, *, move: bool = False
    ) -> modelpack.ModelPack:
        """Copy (or ``move``: a download's own folder, no second copy on disk) ``src`` into
        place atomically; returns the installed pack, verified and its stamp recorded."""
        moved: list[str] = []

        def rescue(staging: Path) -> None:  # a failed install gives a download its files back
            for f in moved:
                if (staging / f).exists():
                    os.replace(staging / f, src.path / f)

        with modelpack.staged_pack(dest, overwrite=True, rescue=rescue) as staging:
            for f in [*src.manifest["files"], modelpack.MANIFEST]:
                if move and _moved(src.path / f, staging / f):
                    moved.append(f)
                else:
                    shutil.copy2(src.path / f, staging / f)
        return modelpack.verify(dest, full=True, record=True)

    def check_removable(self, name: str, *, force: bool) -> None:
        """Refuse to remove what is not installed, or (without ``force``) the pack search
        needs, saying what to do instead."""
        folder = self.folder / name
        if not (folder / modelpack.MANIFEST).is_file():
            installed = ", ".join(p.name for p in self.installed()) or "none"
            raise PackError(f"no installed model pack is named {name!r} (installed: {installed})")
        if name == self.active_name() and not force:
            others = [p.name for p in self.installed() if p.name != name]
            hint = (
                f"choose another first (`photosearch models use {others[0]}`)"
                if others
                else "install another first"
            )
            raise PackError(
                f"{name!r} is the active model pack: search needs it; {hint}, or pass "
                "--force to remove it anyway"
            )

    def uninstall(self, name: str) -> tuple[str | None, Path]:
        """Take the pack ``name`` out of the installed ones: renamed away first, so a crash
        never leaves half a pack that looks installed; the settings forget it. Returns its id
        (None when its manifest is unreadable, so its vectors cannot be told apart) and where
        its files now are, to delete once its vectors are forgotten (a leftover is swept when
        the library next opens)."""
        folder = self.folder / name
        try:
            pack_id: str | None = modelpack.described(folder).id
        except PackError:
            pack_id = None
        gone = folder.parent / f".{folder.name}.removing-{os.getpid()}"
        os.replace(folder, gone)
        if self.chosen == name:
            self.catalog.delete_setting("active_pack")
        if self.pending == name:
            self.catalog.delete_setting("pending_pack")
        return pack_id, gone


def _moved(src: Path, dest: Path) -> bool:
    """Move a file by renaming; False when that cannot be done (another file system)."""
    try:
        os.replace(src, dest)
    except OSError:
        return False
    return True
