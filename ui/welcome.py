"""The first-run view: which folders to search, and whether a model pack is installed (if
not, how to get one). Shown until both are there."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class WelcomeView(QWidget):
    add_folder = Signal(Path)
    import_pack = Signal(Path)
    get_pack = Signal()  # open the download dialog
    start = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.addStretch()
        box = QVBoxLayout()
        outer.addLayout(box)
        outer.addStretch()
        title = QLabel(self.tr("Welcome to photosearch"))
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        title.setFont(font)
        box.addWidget(title, alignment=Qt.AlignmentFlag.AlignHCenter)
        box.addWidget(
            QLabel(
                self.tr(
                    "Find photos on your own disks by describing them. Everything stays on "
                    "this computer."
                ),
                wordWrap=True,
            )
        )
        box.addSpacing(12)
        box.addWidget(QLabel(self.tr("<b>1. The model</b>")))
        self.model_label = QLabel(wordWrap=True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.addWidget(self.model_label)
        packs = QHBoxLayout()
        self.download_button = QPushButton(self.tr("Get a model pack…"))
        self.download_button.setToolTip(
            self.tr("Prepare the recommended pack, or download a ready one (once; then offline)")
        )
        self.download_button.clicked.connect(self.get_pack)
        packs.addWidget(self.download_button)
        self.import_button = QPushButton(self.tr("Import a model pack folder…"))
        self.import_button.clicked.connect(self._choose_pack)
        packs.addWidget(self.import_button)
        packs.addStretch()
        box.addLayout(packs)
        box.addSpacing(12)
        box.addWidget(QLabel(self.tr("<b>2. Folders to search</b>")))
        self.folders = QListWidget()
        self.folders.setMaximumHeight(120)
        box.addWidget(self.folders)
        row = QHBoxLayout()
        self.add_button = QPushButton(self.tr("Add folder…"))
        self.add_button.clicked.connect(self._choose_folder)
        row.addWidget(self.add_button)
        row.addStretch()
        self.start_button = QPushButton(self.tr("Start searching"))
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        row.addWidget(self.start_button)
        box.addLayout(row)
        self.problem = QLabel(wordWrap=True)
        self.problem.setStyleSheet("color: palette(link)")
        box.addWidget(self.problem)
        self.setMaximumWidth(720)
        self.show_state(None, None, [])

    def show_state(self, pack: str | None, problem: str | None, folders: list[Path]) -> None:
        """Say what is installed (or why the installed pack cannot be used, once, in the
        window's words) and which folders are chosen; "Start searching" says what it waits
        for while it cannot start."""
        if pack:
            self.model_label.setText(self.tr("Installed: {name}").format(name=pack))
        elif problem:
            self.model_label.setText(
                self.tr(
                    "The installed model pack cannot be used: {problem}. Get a model pack "
                    "again, or import a pack folder."
                ).format(problem=html.escape(problem.rstrip(".")))
            )
        else:
            self.model_label.setText(
                self.tr(
                    "No model pack is installed yet. photosearch needs one to understand "
                    "photos: <b>Get a model pack…</b> downloads one (about 600 MB, once; then "
                    "everything works offline), or import a pack folder. From a terminal: "
                    "<code>photosearch models download</code> (a ready model, no torch "
                    "needed; <code>photosearch models available</code> lists them), "
                    "<code>photosearch models prepare</code>, or try <code>photosearch "
                    "demo</code>."
                )
            )
        self.folders.clear()
        for f in folders:
            self.folders.addItem(str(f))
        if not folders:
            self.folders.addItem(self.tr("No folders yet: add the folders that hold your photos."))
        ready = bool(pack) and bool(folders)
        self.start_button.setEnabled(ready)
        if ready:
            self.start_button.setToolTip("")
        elif not pack and not folders:
            self.start_button.setToolTip(self.tr("First get a model pack and add a folder"))
        elif not pack:
            self.start_button.setToolTip(self.tr("First get a model pack"))
        else:
            self.start_button.setToolTip(self.tr("First add a folder of photos"))

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Choose a folder of photos"))
        if path:
            self.add_folder.emit(Path(path))

    def _choose_pack(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Choose a model pack folder"))
        if path:
            self.import_pack.emit(Path(path))
