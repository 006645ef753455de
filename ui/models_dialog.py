"""The model-pack dialog: download a ready pack (a Hugging Face repository or a URL), or prepare
one from a curated open_clip model when the export tools are installed; with a progress bar,
Cancel, and Start again to resume where it stopped.

The work runs on a QThread (:class:`AcquireWorker`) that only emits signals; the dialog never
blocks and, when closed, stops the transfer (what arrived is kept) and waits for the thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from photosearch import acquire
from photosearch.errors import DownloadCancelled, PhotosearchError
from photosearch.ui.indexing import duration

log = logging.getLogger(__name__)


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


class AcquireWorker(QThread):
    """Runs one download or preparation; reports through signals only (queued to the GUI)."""

    progressed = Signal(object)  # acquire.Progress
    finished_ok = Signal(str)  # the installed pack's name
    failed = Signal(str, bool)  # message, whether it was a cancel (resumable)

    def __init__(self, library: Any, job: str, target: str, parent: QObject | None = None):
        super().__init__(parent)
        self.library = library
        self.job = job  # "download" | "prepare"
        self.target = target  # URL / repository, or a catalogue name
        self.cancel = threading.Event()

    def run(self) -> None:
        try:
            if self.job == "prepare":
                pack = acquire.prepare(
                    self.library, self.target, progress=self.progressed.emit, cancel=self.cancel
                )
            else:
                pack = acquire.download_pack(
                    self.library, self.target, progress=self.progressed.emit, cancel=self.cancel
                )
        except DownloadCancelled as e:
            self.failed.emit(str(e), True)
        except (PhotosearchError, OSError) as e:
            self.failed.emit(str(e), False)
        except Exception as e:  # a bug: said in the dialog and logged, never a silent stop
            log.exception("getting a model pack failed")
            self.failed.emit(self.tr("Unexpected error: {error}").format(error=f"{e!r}"), False)
        else:
            self.finished_ok.emit(pack.path.name)


class ModelsDialog(QDialog):
    """Get a model pack. ``installed`` carries the new pack's folder name once it is in."""

    installed = Signal(str)

    def __init__(self, library: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.worker: AcquireWorker | None = None
        self.setWindowTitle(self.tr("Get a model pack"))
        box = QVBoxLayout(self)
        box.addWidget(
            QLabel(
                self.tr(
                    "photosearch needs a model pack to understand photos. It is downloaded "
                    "once; after that everything works offline."
                ),
                wordWrap=True,
            )
        )
        self._build_choices(box)
        self._build_progress(box)
        self._build_buttons(box)
        self._offer_what_this_installation_can()
        self.mode.buttonToggled.connect(lambda *_: self._describe())
        self.catalogue.currentIndexChanged.connect(lambda *_: self._describe())
        self._describe()

    def _build_choices(self, box: QVBoxLayout) -> None:
        """Download (a repository or address) or prepare (a curated open_clip model)."""
        self.mode = QButtonGroup(self)
        self.download_choice = QRadioButton(self.tr("Download a ready pack"))
        self.prepare_choice = QRadioButton(self.tr("Prepare one from open_clip weights"))
        self.mode.addButton(self.download_choice)
        self.mode.addButton(self.prepare_choice)
        box.addWidget(self.download_choice)
        self.source = QLineEdit(placeholderText=self.tr("owner/name on Hugging Face, or https://…"))
        box.addWidget(self.source)
        box.addWidget(self.prepare_choice)
        self.catalogue = QComboBox()
        for c in acquire.CATALOGUE:
            self.catalogue.addItem(c.title, c.name)
        box.addWidget(self.catalogue)
        self.about = QLabel(wordWrap=True)
        box.addWidget(self.about)

    def _build_progress(self, box: QVBoxLayout) -> None:
        self.status = QLabel(wordWrap=True)
        box.addWidget(self.status)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        box.addWidget(self.bar)

    def _build_buttons(self, box: QVBoxLayout) -> None:
        row = QHBoxLayout()
        self.start_button = QPushButton(self.tr("Start"))
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.clicked.connect(self.stop)
        self.cancel_button.setEnabled(False)
        row.addStretch()
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        box.addLayout(row)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        box.addWidget(close)

    def _offer_what_this_installation_can(self) -> None:
        """Preparing needs the export tools: without them, only downloading is offered."""
        self.export_problem = acquire.export_extra_problem()
        if self.export_problem is not None:
            self.prepare_choice.setEnabled(False)
            self.prepare_choice.setToolTip(
                self.tr("Needs the export tools (pip install 'photosearch[export]'): {why}").format(
                    why=self.export_problem
                )
            )
            self.download_choice.setChecked(True)
        else:
            self.prepare_choice.setChecked(True)

    def _describe(self) -> None:
        preparing = self.prepare_choice.isChecked()
        self.catalogue.setEnabled(preparing and self.worker is None)
        self.source.setEnabled(not preparing and self.worker is None)
        if preparing:
            c = acquire.choice(self.catalogue.currentData())
            self.about.setText(
                self.tr(
                    "About {download} MB to download, {size} MB installed.\n"
                    "Speed: {speed}\nQuality: {quality}"
                ).format(
                    download=f"{c.download_mb:,}",
                    size=f"{c.pack_mb:,}",
                    speed=c.speed,
                    quality=c.quality,
                )
            )
        elif self.export_problem is not None:
            self.about.setText(
                self.tr(
                    "Preparing a pack from open_clip weights needs the export tools, which "
                    "this installation does not have."
                )
            )
        else:
            self.about.setText("")

    # -- the job ---------------------------------------------------------------------------

    def start(self, job: str | None = None, target: str | None = None) -> None:
        """Start (or resume) the chosen download; ``job``/``target`` override the form."""
        if self.worker is not None:
            return
        if job is None:
            job = "prepare" if self.prepare_choice.isChecked() else "download"
        if target is None:
            target = (
                self.catalogue.currentData() if job == "prepare" else self.source.text().strip()
            )
        if not target:
            self.status.setText(self.tr("Type a Hugging Face repository or a web address."))
            return
        self.worker = AcquireWorker(self.library, job, target, self)
        self.worker.progressed.connect(self._progress)
        self.worker.finished_ok.connect(self._done)
        self.worker.failed.connect(self._failed)
        self.worker.finished.connect(self._ended)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._describe()
        self.status.setText(self.tr("Starting…"))
        self.worker.start()

    def stop(self) -> None:
        """Cancel: the transfer stops at its next chunk; what arrived is kept for resuming."""
        if self.worker is not None:
            self.worker.cancel.set()
            self.status.setText(self.tr("Stopping…"))
            self.cancel_button.setEnabled(False)

    def _progress(self, p: acquire.Progress) -> None:
        if p.total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * p.done / p.total))
            eta = self.tr(", about {left} left").format(left=duration(p.eta)) if p.eta else ""
            self.status.setText(
                self.tr("{step}: {done} of {total} ({rate}/s{eta})").format(
                    step=p.message, done=_mb(p.done), total=_mb(p.total), rate=_mb(p.rate), eta=eta
                )
            )
        else:
            self.bar.setRange(0, 0)  # busy: exporting, checking, installing
            self.status.setText(p.message)

    def _done(self, name: str) -> None:
        self.bar.setRange(0, 1000)
        self.bar.setValue(1000)
        self.status.setText(
            self.tr("Installed {name}. Everything now works offline.").format(name=name)
        )
        self.installed.emit(name)

    def _failed(self, message: str, cancelled: bool) -> None:
        self.bar.setRange(0, 1000)
        if cancelled:
            self.status.setText(self.tr("Stopped. Press Resume to continue where it stopped."))
            self.start_button.setText(self.tr("Resume"))
        else:
            self.status.setText(self.tr("Nothing was installed: {why}").format(why=message))
            self.start_button.setText(self.tr("Try again"))

    def _ended(self) -> None:
        if self.worker is not None:
            self.worker.deleteLater()
        self.worker = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self._describe()

    def running(self) -> bool:
        return self.worker is not None

    def done(self, result: int) -> None:  # closing: stop the transfer, wait for the thread
        if self.worker is not None:
            self.worker.cancel.set()
            self.worker.wait()
            self._ended()
        super().done(result)
