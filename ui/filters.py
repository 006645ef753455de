"""The filter bar: folder, date range and file type; ``changed`` when any of them changes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QDate, QLocale, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDateEdit, QHBoxLayout, QLabel, QWidget

from photosearch.catalog import Filters
from photosearch.search import parse_formats

FILE_TYPES = ["jpg", "png", "heic", "webp", "tif", "gif", "bmp"]


def date_format() -> str:
    """The user's locale's short date format; ISO 8601 where the locale has none of its own
    (C, POSIX: Qt would write "3 12 2025")."""
    locale = QLocale()
    if locale.language() == QLocale.Language.C:
        return "yyyy-MM-dd"
    return locale.dateFormat(QLocale.FormatType.ShortFormat)


class FilterBar(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.folder = QComboBox()
        self.folder.addItem(self.tr("All folders"), None)
        self.after_on = QCheckBox(self.tr("From"))
        self.after = QDateEdit(QDate.currentDate().addYears(-1), calendarPopup=True)
        self.after.setDisplayFormat(date_format())
        self.before_on = QCheckBox(self.tr("until"))
        self.before = QDateEdit(QDate.currentDate(), calendarPopup=True)
        self.before.setDisplayFormat(date_format())
        self.kind = QComboBox()
        self.kind.addItem(self.tr("All file types"), None)
        for ext in FILE_TYPES:
            self.kind.addItem(ext.upper(), ext)
        layout.addWidget(QLabel(self.tr("Filters:")))
        for w in (self.folder, self.after_on, self.after, self.before_on, self.before, self.kind):
            layout.addWidget(w)
        layout.addStretch()
        self.folder.currentIndexChanged.connect(self.changed)
        self.kind.currentIndexChanged.connect(self.changed)
        for box, edit in ((self.after_on, self.after), (self.before_on, self.before)):
            edit.setEnabled(False)
            box.toggled.connect(edit.setEnabled)
            box.toggled.connect(self.changed)
            edit.dateChanged.connect(lambda _d, b=box: b.isChecked() and self.changed.emit())

    def set_folders(self, folders: list[Path]) -> None:
        current = self.folder.currentData()
        self.folder.blockSignals(True)
        while self.folder.count() > 1:
            self.folder.removeItem(1)
        for f in folders:
            self.folder.addItem(f.name or str(f), str(f))
            self.folder.setItemData(self.folder.count() - 1, str(f), 3)  # tooltip
        found = self.folder.findData(current)
        self.folder.setCurrentIndex(max(0, found))
        self.folder.blockSignals(False)

    def filters(self) -> Filters:
        folder = self.folder.currentData()
        kind = self.kind.currentData()
        # "until" includes its day: the engine's ``before`` excludes the day it names.
        return Filters(
            folder=Path(folder) if folder else None,
            after=self.after.date().toString("yyyy-MM-dd") if self.after_on.isChecked() else None,
            before=self.before.date().addDays(1).toString("yyyy-MM-dd")
            if self.before_on.isChecked()
            else None,
            formats=parse_formats([kind]) if kind else (),
        )
