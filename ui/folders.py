"""The folders dialog: the library's folders with their photo counts and state; add (native
folder picker), remove, rescan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from photosearch.catalog import FAILED, INDEXED

if TYPE_CHECKING:
    from photosearch.library import Library


@dataclass(frozen=True)
class FolderRow:
    path: Path
    state: str  # "ok" or "offline"
    photos: int
    indexed: int
    errors: int


def folder_rows(library: Library) -> list[FolderRow]:
    """Each folder with its counts (runs on a worker thread)."""
    rows = []
    for f in library.folders():
        states = library.photo_states(f)
        rows.append(
            FolderRow(f.path, f.state, sum(states.values()), states[INDEXED], states[FAILED])
        )
    return rows


class FoldersDialog(QDialog):
    """Edits the library's folders through the main window (which runs the engine calls)."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle(self.tr("Folders"))
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                self.tr("photosearch finds photos in these folders and keeps up with changes."),
                wordWrap=True,
            )
        )
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(
            [self.tr("Folder"), self.tr("Photos"), self.tr("Indexed"), self.tr("Status")]
        )
        self.tree.setRootIsDecorated(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.tree)
        row = QHBoxLayout()
        self.add_button = QPushButton(self.tr("Add folder…"))
        self.remove_button = QPushButton(self.tr("Remove"))
        self.rescan_button = QPushButton(self.tr("Rescan"))
        for b in (self.add_button, self.remove_button, self.rescan_button):
            row.addWidget(b)
        row.addStretch()
        layout.addLayout(row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.add_button.clicked.connect(self.choose_folder)
        self.remove_button.clicked.connect(self.remove_selected)
        self.rescan_button.clicked.connect(window.rescan)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        window.folders_changed.connect(self.refresh)
        window.indexing_changed.connect(self.refresh)
        self._selection_changed()
        self.resize(640, 320)
        self.refresh()

    def refresh(self) -> None:
        self.window_.tasks.run(lambda: folder_rows(self.window_.library), self._show)

    def _show(self, rows: list[FolderRow]) -> None:
        selected = {i.text(0) for i in self.tree.selectedItems()}
        self.tree.clear()
        indexing = self.window_.indexing_active
        for r in rows:
            if r.state != "ok":
                status = self.tr("offline (photos kept)")
            elif indexing and r.indexed + r.errors < r.photos:
                status = self.tr("indexing")
            else:
                status = self.tr("up to date")
            if unreadable := r.errors:  # (a plain name: lupdate reads nothing else as a count)
                status += self.tr(", %n unreadable", "", unreadable)
            item = QTreeWidgetItem([str(r.path), str(r.photos), str(r.indexed), status])
            self.tree.addTopLevelItem(item)
            item.setSelected(str(r.path) in selected)
        if not rows:
            self.tree.addTopLevelItem(QTreeWidgetItem([self.tr("No folders yet: add one.")]))

    def _selection_changed(self) -> None:
        items = self.tree.selectedItems()
        self.remove_button.setEnabled(bool(items) and Path(items[0].text(0)).is_absolute())

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Choose a folder of photos"))
        if path:
            self.window_.add_folder(Path(path))

    def remove_selected(self) -> None:
        items = self.tree.selectedItems()
        if not items:
            return
        path = Path(items[0].text(0))
        answer = QMessageBox.question(
            self,
            self.tr("Remove folder"),
            self.tr(
                "Stop searching {path}? Its photos leave the library; the files themselves "
                "are not touched."
            ).format(path=str(path)),
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.window_.remove_folder(path)
