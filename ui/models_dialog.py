"""The model dialog: the installed packs (which serves, size, languages, refine, verified; use,
remove, import a folder or zip), and getting a new one in one click: a ready model from the
curated catalogue (no torch needed), a pack prepared from open_clip weights when the export
tools are installed, or any repository or web address; with progress, Cancel, and Resume to
continue where it stopped.

The work runs on a QThread (:class:`AcquireWorker`) that only emits signals; the dialog never
blocks and, when closed, stops the transfer (what arrived is kept) and waits for the thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from photosearch import acquire
from photosearch.errors import DownloadCancelled, PhotosearchError
from photosearch.ui.indexing import duration
from photosearch.ui.installed_packs import InstalledPacks

log = logging.getLogger(__name__)

OTHER = "other"  # the choice whose target the person types


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


class AcquireWorker(QThread):
    """Runs one download, preparation or import; reports through signals only (queued)."""

    progressed = Signal(object)  # acquire.Progress
    finished_ok = Signal(str)  # the installed pack's name
    failed = Signal(str, bool)  # message, whether it was a cancel (resumable)

    def __init__(self, library: Any, job: str, target: str, parent: QObject | None = None):
        super().__init__(parent)
        self.library = library
        self.job = job  # "download" | "prepare" | "import"
        self.target = target  # a catalogue name, a repository or URL, or a path
        self.cancel = threading.Event()

    def _work(self) -> Any:
        if self.job == "prepare":
            return acquire.prepare(
                self.library, self.target, progress=self.progressed.emit, cancel=self.cancel
            )
        if self.job == "import":
            self.progressed.emit(acquire.Progress("verify", f"checking {self.target}"))
            return acquire.install(self.library, self.target)
        return acquire.download_pack(
            self.library, self.target, progress=self.progressed.emit, cancel=self.cancel
        )

    def run(self) -> None:
        try:
            pack = self._work()
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
    """The installed packs and getting another. ``installed`` carries a new pack's folder name
    once it is in; ``changed`` says the packs changed in any way (a switch, a removal)."""

    installed = Signal(str)
    changed = Signal()

    def __init__(self, library: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.worker: AcquireWorker | None = None
        self.export_problem = acquire.export_extra_problem()
        self.setWindowTitle(self.tr("Model packs"))
        box = QVBoxLayout(self)
        self.intro = QLabel(wordWrap=True)
        box.addWidget(self.intro)
        self._build_installed(box)
        self._build_choices(box)
        self._build_progress(box)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        box.addWidget(close)
        self.choice.currentIndexChanged.connect(self._chosen)
        self._refresh()

    def _chosen(self) -> None:
        """Another choice: what was said about the last one's job no longer applies."""
        self.start_button.setText(self.tr("Install"))
        self.status.setText("")
        self.bar.setVisible(False)
        self._describe()

    def _build_installed(self, box: QVBoxLayout) -> None:
        group = QGroupBox(self.tr("Installed"))
        inner = QVBoxLayout(group)
        # The window's task thread, where it has one: switching or removing a pack waits for
        # an indexing run in progress and deletes a folder of a GB, never on the GUI thread.
        self.packs = InstalledPacks(self.library, tasks=getattr(self.parent(), "tasks", None))
        self.packs.changed.connect(self._refresh)
        self.packs.changed.connect(self.changed)
        self.import_folder_button = QPushButton(self.tr("Import folder…"))
        self.import_folder_button.clicked.connect(self.import_folder)
        self.import_zip_button = QPushButton(self.tr("Import zip…"))
        self.import_zip_button.clicked.connect(self.import_zip)
        self.packs.buttons.addWidget(self.import_folder_button)
        self.packs.buttons.addWidget(self.import_zip_button)
        inner.addWidget(self.packs)
        box.addWidget(group)

    def _build_choices(self, box: QVBoxLayout) -> None:
        """The catalogue: ready models first (the recommended one selected), then what can be
        prepared (offered only with the export tools), then any other source."""
        group = QGroupBox(self.tr("Get a model"))
        inner = QVBoxLayout(group)
        self.choice = QComboBox()
        for r in acquire.READY:
            self.choice.addItem(r.title, ("download", r.name))
        for c in acquire.CATALOGUE:
            self.choice.addItem(
                self.tr("Prepare: {title}").format(title=c.title), ("prepare", c.name)
            )
            if self.export_problem is not None:  # shown, so the choice is known, but not offered
                item = self.choice.model().item(self.choice.count() - 1)
                item.setEnabled(False)
        self.choice.addItem(
            self.tr("Another pack: a Hugging Face repository or web address"), (OTHER, "")
        )
        inner.addWidget(self.choice)
        self.source = QLineEdit(placeholderText=self.tr("owner/name on Hugging Face, or https://…"))
        inner.addWidget(self.source)
        self.about = QLabel(wordWrap=True)
        self.about.setOpenExternalLinks(False)
        inner.addWidget(self.about)
        row = QHBoxLayout()
        self.start_button = QPushButton(self.tr("Install"))
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.clicked.connect(self.stop)
        self.cancel_button.setEnabled(False)
        row.addStretch()
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        inner.addLayout(row)
        box.addWidget(group)

    def _build_progress(self, box: QVBoxLayout) -> None:
        """Shown once something starts: no empty bar before then."""
        self.status = QLabel(wordWrap=True)
        box.addWidget(self.status)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setVisible(False)
        box.addWidget(self.bar)

    def _refresh(self) -> None:
        self.packs.refresh()
        if self.packs.rows:
            self.intro.setText(
                self.tr("Search uses the active pack. Add another, switch, or remove one here.")
            )
        else:
            self.intro.setText(
                self.tr(
                    "photosearch needs a model pack to understand photos. Choose one below: it "
                    "is downloaded once, after that everything works offline."
                )
            )
        self._describe()

    def _describe(self) -> None:
        job, name = self.choice.currentData() or (OTHER, "")
        idle = self.worker is None
        self.source.setVisible(job == OTHER)
        self.source.setEnabled(idle)
        self.choice.setEnabled(idle)
        self.packs.setEnabled(idle)
        have = {r.name for r in self.packs.rows}
        if job == "download":
            self.about.setText(self._ready_text(acquire.ready_model(name)))
        elif job == "prepare":
            self.about.setText(self._prepare_text(acquire.choice(name)))
        else:
            self.about.setText(
                self.tr("A pack exported by photosearch (its manifest.json is checked).")
            )
        there = job != OTHER and name in have
        if there:
            self.start_button.setText(self.tr("Installed"))
        elif self.start_button.text() == self.tr("Installed"):
            self.start_button.setText(self.tr("Install"))
        self.start_button.setEnabled(idle and not there)

    def _ready_text(self, r: acquire.Ready) -> str:
        return self.tr(
            "About {size} MB to download from {source}.\nSpeed: {speed}\nQuality: {quality}\n"
            "Languages: {languages}\nLicence: {licence}\nRefine: no. This model searches "
            "fast only; refining the top results needs a reranker, which packs prepared here "
            "carry (pip install 'photosearch[export]', then Prepare)."
        ).format(
            size=f"{r.download_mb:,}",
            source=r.source,
            speed=r.speed,
            quality=r.quality,
            languages=r.languages,
            licence=r.licence,
        )

    def _prepare_text(self, c: acquire.Choice) -> str:
        text = self.tr(
            "About {download} MB to download, {size} MB installed; exported here.\n"
            "Speed: {speed}\nQuality: {quality}\nLanguages: English\nRefine: yes"
        ).format(
            download=f"{c.download_mb:,}", size=f"{c.pack_mb:,}", speed=c.speed, quality=c.quality
        )
        if self.export_problem is not None:
            text += "\n" + self.tr(
                "Needs the export tools, which this installation does not have "
                "(pip install 'photosearch[export]')."
            )
        return text

    def import_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Import a model pack folder"))
        if path:
            self.start("import", path)

    def import_zip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Import a zipped model pack"), "", self.tr("Zip files (*.zip)")
        )
        if path:
            self.start("import", path)

    # -- the job ---------------------------------------------------------------------------

    def start(self, job: str | None = None, target: str | None = None) -> None:
        """Start (or resume) the chosen job; ``job``/``target`` override the form."""
        if self.worker is not None:
            return
        if job is None:
            job, target = self.choice.currentData() or (OTHER, "")
            if job == OTHER:
                job, target = "download", self.source.text().strip()
        if not target:
            self.source.setFocus()
            self.status.setText(self.tr("Type a Hugging Face repository or a web address."))
            return
        self.worker = AcquireWorker(self.library, job, target, self)
        self.worker.progressed.connect(self._progress)
        self.worker.finished_ok.connect(self._done)
        self.worker.failed.connect(self._failed)
        self.worker.finished.connect(self._ended)
        self.cancel_button.setEnabled(job != "import")
        self.bar.setRange(0, 0)  # busy until the first byte counts
        self.bar.setVisible(True)
        self.status.setText(self.tr("Starting…"))
        self._describe()
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
        self.changed.emit()

    def _failed(self, message: str, cancelled: bool) -> None:
        self.bar.setRange(0, 1000)
        if cancelled:
            self.status.setText(self.tr("Stopped. Press Resume to continue where it stopped."))
            self.start_button.setText(self.tr("Resume"))
        else:
            self.bar.setVisible(False)
            said = "nothing was installed" in message.lower()  # the engine said it already
            self.status.setText(
                message[:1].upper() + message[1:]
                if said
                else self.tr("Nothing was installed: {why}").format(why=message)
            )
            self.start_button.setText(self.tr("Try again"))

    def _ended(self) -> None:
        if self.worker is not None:
            self.worker.deleteLater()
        self.worker = None
        self.cancel_button.setEnabled(False)
        self._refresh()

    def running(self) -> bool:
        return self.worker is not None

    def done(self, result: int) -> None:  # closing: stop the transfer, wait for the thread
        if self.worker is not None:
            self.worker.cancel.set()
            self.worker.wait()
            self._ended()
        super().done(result)
