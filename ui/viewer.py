"""The photo viewer: a large preview with the file's name, folder, date, size and dimensions;
the arrow keys move through the results, Esc closes."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QLocale, Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import QDialog, QLabel, QSizePolicy, QVBoxLayout, QWidget

from photosearch.search import Result
from photosearch.ui.results import ResultsModel
from photosearch.ui.thumbnails import Thumbnails

PREVIEW_SIDE = 2048


def describe(result: Result) -> str:
    """The viewer's caption: name, folder, date, size, dimensions."""
    from PySide6.QtCore import QCoreApplication

    translate = QCoreApplication.translate
    p = result.photo
    when = p.taken or dt.datetime.fromtimestamp(p.mtime_ns / 1e9).isoformat(timespec="seconds")
    size = QLocale().formattedDataSize(p.size)
    dims = (
        f"{p.width} × {p.height}" if p.width and p.height else translate("viewer", "size unknown")
    )
    return translate("viewer", "{name} — {folder}\n{date} · {size} · {dims}").format(
        name=p.path.name,
        folder=str(p.path.parent),
        date=when.replace("T", " "),
        size=size,
        dims=dims,
    )


class Viewer(QDialog):
    """Shows ``model``'s row ``row``; ``moved(row)`` when the arrows move it."""

    moved = Signal(int)

    def __init__(self, model: ResultsModel, thumbnails: Thumbnails, row: int, parent: QWidget):
        super().__init__(parent)
        self.model = model
        self.thumbnails = thumbnails
        self.row = -1
        self._ticket = 0
        self._pixmap: QPixmap | None = None
        layout = QVBoxLayout(self)
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image.setMinimumSize(200, 200)
        self.caption = QLabel(wordWrap=True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)
        thumbnails.image_ready.connect(self._loaded)
        self.resize(1000, 760)
        self.show_row(row)

    def show_row(self, row: int) -> None:
        result = self.model.result(row)
        if result is None:
            return
        self.row = row
        self.setWindowTitle(result.path.name)
        self.caption.setText(describe(result))
        self.image.setText(self.tr("Loading…"))
        self._pixmap = None
        self._ticket = self.thumbnails.load_image(result.path, PREVIEW_SIDE)
        self.moved.emit(row)

    def _loaded(self, ticket: int, image: QImage, problem: str) -> None:
        if ticket != self._ticket:
            return
        if image.isNull():
            self.image.setText(
                self.tr("This photo cannot be shown: {reason}").format(reason=problem)
            )
            return
        self._pixmap = QPixmap.fromImage(image)
        self._fit()

    def _fit(self) -> None:
        if self._pixmap is not None:
            self.image.setPixmap(
                self._pixmap.scaled(
                    self.image.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_Space):
            self.show_row(min(self.row + 1, self.model.rowCount() - 1))
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Up, Qt.Key.Key_Backspace):
            self.show_row(max(self.row - 1, 0))
        else:
            super().keyPressEvent(event)  # Esc closes
