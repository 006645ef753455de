"""The main window's dialogs and viewer: one of each at a time, kept in ``dialogs`` by name
and closed with the window. The engine calls they need run through the window's tasks.

Their words keep the ``MainWindow`` context they were written in (see :mod:`.grid`).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QWidget

from photosearch.ui.folders import FoldersDialog
from photosearch.ui.indexing import UnreadableDialog
from photosearch.ui.settings import SettingsDialog, SettingsValues
from photosearch.ui.thumbnails import trim_cache
from photosearch.ui.viewer import Viewer

translate = QCoreApplication.translate


class WindowDialogs:
    """A part of :class:`~photosearch.ui.window.MainWindow` (a mixin): it uses the window's
    ``dialogs``, ``library``, ``state``, ``tasks``, ``thumbnails``, ``model`` and ``view``."""

    def open_viewer(self, row: int) -> None:
        viewer = self.dialogs.get("viewer")
        if viewer is None:
            viewer = Viewer(self.model, self.thumbnails, row, self)
            viewer.moved.connect(self._viewer_moved)
            viewer.finished.connect(lambda _r=0: self.dialogs.pop("viewer", None))
            viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self.dialogs["viewer"] = viewer
            viewer.show()
        else:
            viewer.show_row(row)
        viewer.raise_()

    def _viewer_moved(self, row: int) -> None:
        self.view.setCurrentIndex(self.model.index(row))
        result = self.model.result(row)
        if result is not None and self.library.writer:  # most viewed: tokens made first
            self.tasks.run(lambda pid=result.photo_id: self.library.record_view(pid))

    def _dialog(self, name: str, make) -> QWidget:  # noqa: ANN001
        dialog = self.dialogs.get(name)
        if dialog is None:
            dialog = make()
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.finished.connect(lambda _r=0, n=name: self.dialogs.pop(n, None))
            self.dialogs[name] = dialog
        dialog.show()
        dialog.raise_()
        return dialog

    def show_folders(self) -> QWidget:
        return self._dialog("folders", lambda: FoldersDialog(self))

    def show_models(self) -> QWidget:
        """The installed packs; download, prepare or import one (progress, cancel, resume)."""
        from photosearch.ui.models_dialog import ModelsDialog

        def make() -> QWidget:
            dialog = ModelsDialog(self.library, self)
            dialog.changed.connect(self.refresh_library)
            return dialog

        return self._dialog("models", make)

    def show_unreadable(self) -> None:
        def show(errors: list[tuple[str, str]]) -> None:
            old = self.dialogs.pop("unreadable", None)
            if old is not None:
                old.close()
            self._dialog("unreadable", lambda: UnreadableDialog(errors, self))

        self.tasks.run(
            lambda: [(str(p), r) for p, r, _ in self.library.errors()], show, self._failed
        )

    def show_settings(self) -> None:
        def gather() -> SettingsValues:
            lib = self.library
            packs = [p.name for p in lib.installed_packs()]
            return SettingsValues(
                packs=packs,
                pack=lib.chosen_pack or (packs[0] if packs else None),
                device=str(self.state.get("device", "auto")),
                rerank_depth=int(lib.setting("rerank_depth")),
                rerank_beta=lib.setting("rerank_beta"),
                thumbnail_cache_mb=int(self.state.get("thumbnail_cache_mb", 500, int)),
                threads=int(self.state.get("threads", 0, int)),
            )

        def show(values: SettingsValues) -> None:
            dialog = self._dialog("settings", lambda: SettingsDialog(values, self))
            dialog.accepted.connect(
                lambda: self.apply_settings(values, dialog.values(values.packs))
            )

        self.tasks.run(gather, show, self._failed)

    def apply_settings(self, old: SettingsValues, new: SettingsValues) -> None:
        self.state.set("device", new.device)
        self.state.set("threads", new.threads)
        self.state.set("thumbnail_cache_mb", new.thumbnail_cache_mb)
        self.refine.setValue(new.rerank_depth)
        folder = self.thumbnails.folder
        limit = new.thumbnail_cache_mb << 20

        def apply() -> None:
            lib = self.library
            lib.set_setting("rerank_depth", str(new.rerank_depth))
            lib.set_setting(
                "rerank_beta", None if new.rerank_beta is None else str(new.rerank_beta)
            )
            switched = True
            if new.pack and new.pack != old.pack:
                switched = lib.use_pack(new.pack)
            trim_cache(folder, limit)
            return switched

        def applied(switched: bool) -> None:
            if new.pack and new.pack != old.pack:
                self.rescan()  # encode with the new pack: all of it, or what it lacks
            if not switched:  # the photos are re-encoded first; the old vectors serve meanwhile
                self.statusBar().showMessage(
                    translate(
                        "MainWindow",
                        "Switching to {pack}: your photos are re-encoded in the background; "
                        "search keeps using the current model until then",
                    ).format(pack=new.pack),
                    15_000,
                )
            self.refresh_library()

        self.tasks.run(apply, applied, self._failed)
