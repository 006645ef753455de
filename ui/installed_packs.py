"""The installed model packs, as the model dialog lists them: which serves, size, languages,
whether it can refine, whether it verifies; and the actions on one (use, remove)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from photosearch import modelpack
from photosearch.errors import PhotosearchError


@dataclass(frozen=True)
class PackRow:
    name: str
    active: bool
    size_mb: float
    languages: str
    refines: bool
    problem: str | None  # None: verified


def pack_rows(library: Any) -> list[PackRow]:
    """Each installed pack, checked (cheap once verified: only a changed file is hashed)."""
    try:
        active = library.packs.active_name()
    except PhotosearchError:
        active = None
    rows = []
    for folder in library.installed_packs():
        try:
            pack, problem = modelpack.load(folder), None
        except PhotosearchError as e:
            pack, problem = modelpack.described(folder), str(e)
        m = pack.manifest
        rows.append(
            PackRow(
                name=folder.name,
                active=folder.name == active,
                size_mb=sum(f["size"] for f in m["files"].values()) / 1e6,
                languages=str(m.get("languages") or "English"),
                refines=bool(m.get("reranker")),
                problem=problem,
            )
        )
    return rows


class InstalledPacks(QWidget):
    """The list and its buttons. ``changed`` is emitted after a switch or a removal."""

    changed = Signal()

    def __init__(self, library: Any, parent: QWidget | None = None, *, tasks: Any = None) -> None:
        super().__init__(parent)
        self.library = library
        self.tasks = tasks  # a ui.tasks.Tasks: the engine calls run there (None: here)
        self._busy = False
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.tree = QTreeWidget()
        self.tree.setRootIsDecorated(False)
        self.tree.setHeaderLabels(
            [
                self.tr("Pack"),
                self.tr("Size"),
                self.tr("Languages"),
                self.tr("Refine"),
                self.tr("State"),
            ]
        )
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._enable)
        box.addWidget(self.tree)
        row = QHBoxLayout()
        self.use_button = QPushButton(self.tr("Use"))
        self.use_button.clicked.connect(self.use_selected)
        self.remove_button = QPushButton(self.tr("Remove…"))
        self.remove_button.clicked.connect(self.remove_selected)
        self.buttons = QHBoxLayout()  # the dialog adds its import buttons here
        row.addLayout(self.buttons)
        row.addStretch()
        row.addWidget(self.use_button)
        row.addWidget(self.remove_button)
        box.addLayout(row)
        self.rows: list[PackRow] = []
        self.refresh()

    def refresh(self) -> None:
        self.rows = pack_rows(self.library)
        self.tree.clear()
        for r in self.rows:
            state = (
                self.tr("verified")
                if r.problem is None
                else self.tr("damaged: {why}").format(why=r.problem)
            )
            name = self.tr("{name} (active)").format(name=r.name) if r.active else r.name
            refine = self.tr("yes") if r.refines else self.tr("no")
            item = QTreeWidgetItem([name, f"{r.size_mb:,.0f} MB", r.languages, refine, state])
            item.setToolTip(2, r.languages)
            item.setToolTip(4, state)
            self.tree.addTopLevelItem(item)
        if self.rows:
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        self._enable()

    def selected(self) -> PackRow | None:
        i = (
            self.tree.indexOfTopLevelItem(self.tree.currentItem())
            if self.tree.currentItem()
            else -1
        )
        return self.rows[i] if 0 <= i < len(self.rows) else None

    def _enable(self) -> None:
        row = self.selected()
        free = row is not None and not self._busy
        self.use_button.setEnabled(free and not row.active and row.problem is None)
        self.remove_button.setEnabled(free)

    def _call(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """``work`` (an engine call) on the task thread, then ``done`` here; a failure is
        shown. Without a task thread (a test), both run now."""

        def finish(value: Any) -> None:
            self._busy = False
            self._enable()
            done(value)

        def failed(e: BaseException) -> None:
            self._busy = False
            self._enable()
            QMessageBox.warning(self, self.tr("Model packs"), str(e) or type(e).__name__)

        self._busy = True
        self._enable()
        if self.tasks is None:
            try:
                value = work()
            except PhotosearchError as e:
                failed(e)
                return
            finish(value)
            return
        self.tasks.run(work, finish, failed)

    def use_selected(self) -> None:
        row = self.selected()
        if row is None:
            return
        self._call(lambda: self.library.use_pack(row.name), lambda now: self._used(row, now))

    def _used(self, row: Any, now: bool) -> None:
        if not now:
            QMessageBox.information(
                self,
                self.tr("Model packs"),
                self.tr(
                    "Your photos are being encoded with {name}; searches keep using the "
                    "current pack until that is done, then switch."
                ).format(name=row.name),
            )
        self.refresh()
        self.changed.emit()

    def remove_selected(self, *, confirm: bool = True) -> None:
        row = self.selected()
        if row is None:
            return
        question = self.tr("Remove {name} and forget the vectors it made?").format(name=row.name)
        if row.active:
            question += " " + self.tr("It is the active pack: search needs another one after.")
        if confirm and QMessageBox.question(self, self.tr("Model packs"), question) != (
            QMessageBox.StandardButton.Yes
        ):
            return
        self._call(
            lambda: self.library.remove_pack(row.name, force=row.active), lambda _: self._removed()
        )

    def _removed(self) -> None:
        self.refresh()
        self.changed.emit()
