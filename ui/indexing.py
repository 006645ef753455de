"""The status bar's indexing part: progress (done/total, rate, time left), pause/resume, and
the count of files that could not be read, which opens their list with the reasons."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from photosearch.indexer import Progress


def duration(seconds: float) -> str:
    """A time left in the words a person uses."""
    from PySide6.QtCore import QCoreApplication

    translate = QCoreApplication.translate
    if seconds < 60:
        return translate("duration", "{n} s").format(n=max(1, round(seconds)))
    if seconds < 3600:
        return translate("duration", "{n} min").format(n=round(seconds / 60))
    return translate("duration", "{h} h {m} min").format(
        h=int(seconds // 3600), m=round(seconds % 3600 / 60)
    )


class IndexStatus(QWidget):
    """Shows the indexer's progress; ``pause_toggled(paused)`` asks to pause or resume,
    ``show_errors`` to list the unreadable files."""

    pause_toggled = Signal(bool)
    show_errors = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(180)
        self.bar.setTextVisible(False)
        self.pause_button = QPushButton(self.tr("Pause"))
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._toggled)
        self.errors_button = QPushButton()
        self.errors_button.setFlat(True)
        self.errors_button.clicked.connect(self.show_errors)
        for w in (self.label, self.bar, self.pause_button, self.errors_button):
            layout.addWidget(w)
        self.progress: Progress | None = None
        self.set_idle()
        self.set_errors(0)

    def _toggled(self, paused: bool) -> None:
        self.pause_button.setText(self.tr("Resume") if paused else self.tr("Pause"))
        self.pause_toggled.emit(paused)

    @property
    def paused(self) -> bool:
        return self.pause_button.isChecked()

    def set_idle(self) -> None:
        self.bar.hide()
        self.pause_button.setVisible(self.paused)  # a paused indexer can always be resumed
        self.label.setText("")

    def set_progress(self, p: Progress) -> None:
        self.progress = p
        if p.total == 0 or p.done >= p.total:
            self.set_idle()
            return
        self.bar.show()
        self.pause_button.show()
        self.bar.setRange(0, p.total)
        self.bar.setValue(p.done)
        if p.paused or self.paused:
            text = self.tr("Indexing paused: {done} of {total}").format(done=p.done, total=p.total)
        else:
            text = self.tr("Indexing {done} of {total}").format(done=p.done, total=p.total)
            if p.rate > 0:
                text += self.tr(" · {rate:.1f} photos/s").format(rate=p.rate)
            if p.eta is not None:
                text += self.tr(" · about {left} left").format(left=duration(p.eta))
        self.label.setText(text)

    def set_errors(self, count: int) -> None:
        self.errors_button.setVisible(count > 0)
        self.errors_button.setText(
            self.tr("%n file(s) could not be read", "", count) if count else ""
        )


class UnreadableDialog(QDialog):
    """The files indexing could not read, each with its reason."""

    def __init__(self, errors: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Files that could not be read"))
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                self.tr(
                    "These files were skipped. They are tried again when they change; "
                    "nothing else needs doing."
                )
                if errors
                else self.tr("Every file could be read."),
                wordWrap=True,
            )
        )
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels([self.tr("File"), self.tr("Reason")])
        self.tree.setRootIsDecorated(False)
        for path, reason in errors:
            self.tree.addTopLevelItem(QTreeWidgetItem([path, reason]))
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.tree)
        self.tree.setVisible(bool(errors))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(720, 360)
