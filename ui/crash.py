"""The crash hook: an unexpected error is written to a log file and shown in a dialog whose
text can be copied into a bug report; the app keeps running when it can."""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)


class CrashDialog(QDialog):
    def __init__(self, report: str, log_file: Path | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(self.tr("photosearch ran into a problem"))
        layout = QVBoxLayout(self)
        where = (
            self.tr("The details were saved to {path}.").format(path=str(log_file))
            if log_file
            else self.tr("The details could not be saved to a file.")
        )
        layout.addWidget(
            QLabel(
                self.tr(
                    "Something went wrong that photosearch did not expect. Your photos and "
                    "your library are safe. {where} Please copy the text below into a bug report."
                ).format(where=where),
                wordWrap=True,
            )
        )
        self.text = QPlainTextEdit(report, readOnly=True)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton(
            self.tr("Copy"), QDialogButtonBox.ButtonRole.ActionRole
        )
        self.copy_button.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(640, 420)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text.toPlainText())


class CrashHook(QObject):
    """Installed with :meth:`install`; errors from other threads are shown on the GUI
    thread."""

    _show = Signal(str, object)

    def __init__(self, logs: Path) -> None:
        super().__init__()
        self.logs = logs
        self.dialogs: list[CrashDialog] = []
        self._show.connect(self._open_dialog, Qt.ConnectionType.QueuedConnection)
        self._previous = (sys.excepthook, threading.excepthook)

    def install(self) -> None:
        sys.excepthook = self.handle
        threading.excepthook = lambda args: self.handle(
            args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback
        )

    def uninstall(self) -> None:
        sys.excepthook, threading.excepthook = self._previous

    def handle(
        self, kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        report = "".join(traceback.format_exception(kind, error, tb))
        log.error("unexpected error:\n%s", report)
        log_file: Path | None = self.logs / time.strftime("crash-%Y%m%d-%H%M%S.log")
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            with open(log_file, "a", encoding="utf-8") as fh:  # type: ignore[arg-type]
                fh.write(report)
        except OSError:
            log_file = None
        self._show.emit(report, log_file)

    def _open_dialog(self, report: str, log_file: Path | None) -> None:
        dialog = CrashDialog(report, log_file, QApplication.activeWindow())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _=0, d=dialog: self.dialogs.remove(d))
        self.dialogs.append(dialog)
        dialog.show()
