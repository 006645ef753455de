"""The main window: search field, refine control, filters, result grid, status bar; the
first-run view until a model pack and a folder are there.

The window holds an open :class:`~photosearch.library.Library` and never calls it on the GUI
thread: short engine calls go through :class:`Tasks`, searches through a
:class:`~photosearch.search.LatestSearch`, indexing through the library's folder watcher.
Their answers come back as queued signals. Closing the window stops all of them, then closes
the library.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from photosearch.errors import PackError, PhotosearchError
from photosearch.imaging import SUPPORTED_EXTENSIONS
from photosearch.library import Library, NoModelError
from photosearch.search import LatestSearch, Query, Result, Results
from photosearch.ui import watch_words
from photosearch.ui.filters import FilterBar
from photosearch.ui.folders import FoldersDialog
from photosearch.ui.indexing import IndexStatus, UnreadableDialog
from photosearch.ui.results import ResultDelegate, ResultsModel
from photosearch.ui.settings import SettingsDialog, SettingsValues
from photosearch.ui.state import State
from photosearch.ui.tasks import Tasks
from photosearch.ui.thumbnails import Thumbnails, trim_cache
from photosearch.ui.viewer import Viewer
from photosearch.ui.welcome import WelcomeView
from photosearch.watcher import FolderOffline, FolderOnline, PhotosIndexed, Ready, WatchEvent

log = logging.getLogger(__name__)

SEARCH_DELAY_MS = 250
DEFAULT_LIMIT = 1000
ZOOM = (64, 320, 160)  # smallest, largest, default thumbnail side


@dataclass
class LibraryInfo:
    """What the window shows about the library (gathered on a worker thread)."""

    pack: str | None = None
    problem: str | None = None
    folders: list[Path] = field(default_factory=list)
    photos: int = 0
    indexed: int = 0
    errors: int = 0
    device: str | None = None
    rerank_depth: int = 20


def gather_info(library: Library) -> LibraryInfo:
    info = LibraryInfo(folders=[f.path for f in library.folders()])
    try:
        pack = library.pack
    except (NoModelError, PackError) as e:
        info.problem = str(e)
        counts = library.counts()
    else:
        info.pack = pack.name
        counts = library.counts(pack.id)
        info.indexed = counts.get("indexed", 0)
        # Loading the text encoder and index here warms them for the first search.
        info.device = library.text_encoder.device
        _ = library.index
    info.photos, info.errors = counts["photos"], counts["errors"]
    info.rerank_depth = int(library.setting("rerank_depth"))
    return info


class MainWindow(QMainWindow):
    folders_changed = Signal()
    indexing_changed = Signal()
    #: a result list was shown (fast or refined): tests and the benchmark wait on it
    results_shown = Signal(object)
    library_refreshed = Signal(object)
    _search_done = Signal(int, object)
    _search_failed = Signal(int, object)
    _watch_event = Signal(object)
    _watch_progress = Signal(object)

    def __init__(self, library: Library, *, watch: bool = True) -> None:
        super().__init__()
        self.library = library
        self.state = State(library.paths.data)
        self.watch_folders = watch
        self.tasks = Tasks(self)
        self.thumbnails = Thumbnails(library.paths.cache / "thumbnails", self)
        self.model = ResultsModel(self.thumbnails, self)
        self.search_worker = LatestSearch(library.searcher)
        self.watcher = None
        self.info = LibraryInfo()
        self.last_results: Results | None = None
        self.indexing_active = False
        self.last_error: str | None = None
        self.dialogs: dict[str, QWidget] = {}
        self._generation = 0
        self._like: Path | None = None
        self._started = False
        self._closed = False
        self._paused = False
        self._copy_ticket = -1
        self._typed_at = 0.0
        self.first_results_ms: float | None = None

        self.setWindowTitle(self.tr("photosearch"))
        self.setAcceptDrops(True)
        self._build()
        self._search_done.connect(self._on_results, Qt.ConnectionType.QueuedConnection)
        self._search_failed.connect(self._on_search_failed, Qt.ConnectionType.QueuedConnection)
        self._watch_event.connect(self._on_watch_event, Qt.ConnectionType.QueuedConnection)
        self._watch_progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self.thumbnails.image_ready.connect(self._image_for_clipboard)
        self._restore()
        self.refresh_library()

    # -- building ----------------------------------------------------------------------------

    def _build(self) -> None:
        self.stack = QStackedWidget()
        self.setCentralWidget(self.stack)
        self.welcome = WelcomeView()
        self.welcome.add_folder.connect(self.add_folder)
        self.welcome.import_pack.connect(self.import_pack)
        self.welcome.get_pack.connect(self.show_models)
        self.welcome.start.connect(self._start_searching)
        holder = QWidget()
        lay = QHBoxLayout(holder)
        lay.addWidget(self.welcome)
        self.stack.addWidget(holder)

        page = QWidget()
        v = QVBoxLayout(page)
        top = QHBoxLayout()
        self.search_field = QLineEdit()
        self.search_field.setPlaceholderText(self.tr("Describe a photo…"))
        self.search_field.setClearButtonEnabled(True)
        font = self.search_field.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        self.search_field.setFont(font)
        self.search_field.setMinimumHeight(36)
        self.history = QCompleter(self.state.history(), self)
        self.history.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.search_field.setCompleter(self.history)
        self._debounce = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._debounce.timeout.connect(self.search_now)
        self.search_field.textEdited.connect(self._typed)
        self.search_field.returnPressed.connect(self._entered)
        top.addWidget(self.search_field, 1)
        self.like_button = QToolButton()
        self.like_button.setToolTip(self.tr("Searching by example: click to stop"))
        self.like_button.clicked.connect(lambda: self.search_like(None))
        self.like_button.hide()
        top.addWidget(self.like_button)
        top.addWidget(QLabel(self.tr("Refine top")))
        self.refine = QSpinBox(minimum=0, maximum=1000, value=20)
        self.refine.setSpecialValueText(self.tr("off"))
        self.refine.setToolTip(
            self.tr(
                "How many of the best matches the slower, more exact model re-reads "
                "(0 = fast results only)"
            )
        )
        self.refine.valueChanged.connect(self._refine_changed)
        top.addWidget(self.refine)
        self.device_label = QLabel()
        top.addWidget(self.device_label)
        self.filters_button = QToolButton(text=self.tr("Filters"), checkable=True)
        top.addWidget(self.filters_button)
        v.addLayout(top)
        self.filter_bar = FilterBar()
        self.filter_bar.hide()
        self.filters_button.toggled.connect(self.filter_bar.setVisible)
        self.filter_bar.changed.connect(self._filters_changed)
        v.addWidget(self.filter_bar)

        self.results_stack = QStackedWidget()
        self.view = QListView()
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.view.setMouseTracking(True)
        self.view.setDragEnabled(True)
        self.view.setDragDropMode(QListView.DragDropMode.DragOnly)
        self.view.setSpacing(2)
        self.view.setModel(self.model)
        self.delegate = ResultDelegate(self.view, side=ZOOM[2])
        self.view.setItemDelegate(self.delegate)
        self.view.activated.connect(lambda index: self.open_viewer(index.row()))
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.empty = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.empty.setMargin(40)
        self.results_stack.addWidget(self.view)
        self.results_stack.addWidget(self.empty)
        v.addWidget(self.results_stack, 1)
        self.stack.addWidget(page)

        bar = self.statusBar()
        self.result_label = QLabel()
        bar.addPermanentWidget(self.result_label, 1)
        self.index_status = IndexStatus()
        self.index_status.pause_toggled.connect(self.set_paused)
        self.index_status.show_errors.connect(self.show_unreadable)
        bar.addPermanentWidget(self.index_status)
        self.zoom = QSlider(Qt.Orientation.Horizontal, minimum=ZOOM[0], maximum=ZOOM[1])
        self.zoom.setValue(ZOOM[2])
        self.zoom.setMaximumWidth(120)
        self.zoom.setToolTip(self.tr("Thumbnail size"))
        self.zoom.valueChanged.connect(self.set_zoom)
        bar.addPermanentWidget(self.zoom)

        menu = self.menuBar().addMenu(self.tr("&Library"))
        self._action(menu, self.tr("&Folders…"), self.show_folders, "Ctrl+L")
        self._action(menu, self.tr("&Model packs…"), self.show_models)
        self._action(
            menu, self.tr("&Settings…"), self.show_settings, QKeySequence.StandardKey.Preferences
        )
        self._action(menu, self.tr("Files that could not be &read…"), self.show_unreadable)
        menu.addSeparator()
        self._action(menu, self.tr("&Quit"), self.close, QKeySequence.StandardKey.Quit)
        view = self.menuBar().addMenu(self.tr("&View"))
        self.scores_action = self._action(view, self.tr("Show &scores"), self._toggle_scores)
        self.scores_action.setCheckable(True)
        self._action(view, self.tr("&Filters"), self.filters_button.toggle, "Ctrl+Shift+F")
        self._action(view, self.tr("Find"), self._focus_search, QKeySequence.StandardKey.Find)
        self._show_empty(self.tr("Type a description to search your photos."))

    def _action(self, menu: QMenu, text: str, slot, shortcut=None) -> QAction:  # noqa: ANN001
        action = menu.addAction(text)
        action.triggered.connect(lambda _checked=False: slot())
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        return action

    def _restore(self) -> None:
        geometry = self.state.get("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 760)
        self.zoom.setValue(int(self.state.get("zoom", ZOOM[2], int)))
        self.scores_action.setChecked(self.state.get("show_scores", False, bool))
        self._toggle_scores()
        self.search_field.setText(str(self.state.get("last_query", "") or ""))

    def _save(self) -> None:
        self.state.set("geometry", self.saveGeometry())
        self.state.set("zoom", self.zoom.value())
        self.state.set("show_scores", self.scores_action.isChecked())
        self.state.set("last_query", self.search_field.text())
        self.state.sync()

    # -- the library -------------------------------------------------------------------------

    def refresh_library(self) -> None:
        self.tasks.run(lambda: gather_info(self.library), self._show_info, self._failed)

    def _show_info(self, info: LibraryInfo) -> None:
        first = self.info.pack is None and not self._started
        self.info = info
        self.welcome.show_state(info.pack, info.problem, info.folders)
        self.filter_bar.set_folders(info.folders)
        self.index_status.set_errors(info.errors)
        if info.device:
            self.device_label.setText(self.tr("on {device}").format(device=info.device))
        if first:
            self.refine.blockSignals(True)
            self.refine.setValue(info.rerank_depth)
            self.refine.blockSignals(False)
        ready = info.pack is not None and bool(info.folders)
        if ready and (self._started or info.photos > 0):
            self._start_searching()
        elif not ready:
            self.stack.setCurrentIndex(0)
        if ready and self.watch_folders and self.watcher is None:
            self.start_watching()
        if not self.model.rowCount() and self.last_results is None:
            self._show_empty_state()
        self.library_refreshed.emit(info)

    def _start_searching(self) -> None:
        was = self._started
        self._started = True
        self.stack.setCurrentIndex(1)
        self.search_field.setFocus()
        if not was and (self.search_field.text().strip() or self._like):
            self.search_now()

    def _show_empty_state(self) -> None:
        if self.info.photos == 0:
            self._show_empty(
                self.tr(
                    "No photos yet. Add a folder of photos (Library → Folders…); they can be "
                    "searched as soon as they are indexed."
                )
            )
        else:
            photos = self.info.photos  # (a plain name: lupdate reads nothing else as a count)
            self._show_empty(self.tr("Type a description to search your %n photo(s).", "", photos))

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, (PhotosearchError, OSError)):
            self.show_error(str(error))
        else:
            raise error  # a bug: the crash hook reports it

    def show_error(self, text: str) -> None:
        self.last_error = text
        if self.stack.currentIndex() == 0:
            self.welcome.show_problem(text)
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("photosearch"), text, parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def add_folder(self, path: Path) -> None:
        def done(_folder: object) -> None:
            self.folders_changed.emit()
            self.refresh_library()
            self.rescan()

        self.tasks.run(lambda: self.library.add_folder(path), done, self._failed)

    def remove_folder(self, path: Path) -> None:
        def done(_n: object) -> None:
            self.folders_changed.emit()
            self.refresh_library()
            if self.model.rowCount():
                self.search_now()

        self.tasks.run(lambda: self.library.remove_folder(path), done, self._failed)

    def import_pack(self, path: Path) -> None:
        self.welcome.show_problem(self.tr("Checking and installing the model pack…"))

        def done(_pack: object) -> None:
            self.welcome.show_problem("")
            self.refresh_library()

        self.tasks.run(lambda: self.library.import_pack(path), done, self._failed)

    # -- indexing ----------------------------------------------------------------------------

    def start_watching(self) -> None:
        if self.watcher is not None or self._closed:
            return
        self.watcher = True  # being started: not twice

        def start() -> object:
            w = self.library.watch(self._watch_event.emit, progress=self._watch_progress.emit)
            if self._paused:
                w.pause()
            return w

        def done(w: object) -> None:
            self.watcher = w

        def failed(e: BaseException) -> None:
            self.watcher = None
            self._failed(e)

        self.tasks.run(start, done, failed)

    def rescan(self) -> None:
        if self.watcher is None:
            if self.info.pack is not None:
                self.start_watching()
        elif self.watcher is not True:
            self.watcher.refresh()

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        if self.index_status.paused != paused:
            self.index_status.pause_button.setChecked(paused)
        if self.watcher not in (None, True):
            if paused:
                self.watcher.pause()
            else:
                self.watcher.resume()

    def _on_progress(self, p: object) -> None:
        active = p.total > 0 and p.done < p.total
        self.index_status.set_progress(p)
        if active != self.indexing_active:
            self.indexing_active = active
            self.indexing_changed.emit()

    def _on_watch_event(self, event: WatchEvent) -> None:
        self.statusBar().showMessage(watch_words.describe(event), 10_000)
        if isinstance(event, (Ready, PhotosIndexed, FolderOffline, FolderOnline)):
            if self.indexing_active:
                self.indexing_active = False
                self.index_status.set_idle()
                self.indexing_changed.emit()
            self.refresh_library()
            wanted = self.search_field.text().strip() or self._like
            if isinstance(event, PhotosIndexed) and wanted and not self.model.rowCount():
                self.search_now()

    # -- searching ---------------------------------------------------------------------------

    def _typed(self, _text: str) -> None:
        self._typed_at = time.perf_counter()
        self._debounce.start()

    def _entered(self) -> None:
        self.history.setModel(None)
        self.history = QCompleter(self.state.remember_query(self.search_field.text()), self)
        self.history.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.search_field.setCompleter(self.history)
        self.search_now()

    def _refine_changed(self, _k: int) -> None:
        if self.search_field.text().strip():
            self._debounce.start()

    def _filters_changed(self) -> None:
        if self.search_field.text().strip() or self._like:
            self.search_now()

    def search_like(self, path: Path | None) -> None:
        """Search by an example image (with the typed text, if any); None stops it."""
        self._like = path
        self.like_button.setVisible(path is not None)
        if path is not None:
            self.like_button.setText(self.tr("Like {name} ✕").format(name=path.name))
        self.search_now()

    def current_query(self) -> Query | None:
        text = self.search_field.text().strip()
        if not text and self._like is None:
            return None
        return Query(
            text=text,
            like=self._like,
            filters=self.filter_bar.filters(),
            n=int(self.state.get("result_limit", DEFAULT_LIMIT, int)),
            rerank=self.refine.value(),
        )

    def search_now(self) -> None:
        self._debounce.stop()
        self._generation += 1
        query = self.current_query()
        if query is None or self.info.pack is None:
            self.search_worker.cancel()
            self.last_results = None
            self.model.clear()
            self.result_label.setText("")
            self._show_empty_state()
            return
        gen = self._generation
        self._searched_at = self._typed_at or time.perf_counter()
        self._typed_at = 0.0
        self.result_label.setText(self.tr("Searching…"))
        self.search_worker.submit(
            query,
            lambda r, g=gen: self._search_done.emit(g, r),
            lambda e, g=gen: self._search_failed.emit(g, e),
        )

    def _on_results(self, gen: int, results: Results) -> None:
        if gen != self._generation or self._closed:
            return  # an older query's answer
        if self.first_results_ms is None:
            self.first_results_ms = (time.perf_counter() - self._searched_at) * 1000
        selection = self.view.selectionModel()
        chosen = {self.model.result(i.row()).photo_id for i in selection.selectedIndexes()}
        current = self.model.result(self.view.currentIndex().row())
        self.last_results = results
        reordered = self.model.set_results(results.results)
        if not reordered and self.model.rowCount():
            # A photo chosen before stays chosen; else the first is current, not selected.
            rows = [r for r in (self.model.row_of(pid) for pid in chosen) if r >= 0]
            cur = self.model.row_of(current.photo_id) if current else -1
            selection.setCurrentIndex(
                self.model.index(cur if cur >= 0 else (rows or [0])[0]),
                QItemSelectionModel.SelectionFlag.NoUpdate,
            )
            for r in rows:
                selection.select(self.model.index(r), QItemSelectionModel.SelectionFlag.Select)
        if self.model.rowCount():
            self.results_stack.setCurrentIndex(0)
        else:
            self._show_empty(
                self.tr("No photos match. Try other words, or clear the filters.")
                if self.filter_bar.filters()
                else self.tr("No photos match. Try describing it in other words.")
            )
        self.result_label.setText(self._describe(results))
        if results.device:
            self.device_label.setText(self.tr("on {device}").format(device=results.device))
        self.results_shown.emit(results)

    def _describe(self, results: Results) -> str:
        n = len(results)
        text = self.tr("%n photo(s)", "", n)
        ms = results.timing.total_ms
        if results.refined:
            text += self.tr(" · top {k} refined · {ms:.0f} ms").format(k=results.rerank, ms=ms)
        elif results.rerank > 0 and results.note is None:
            text += self.tr(" · refining the top {k}…").format(k=results.rerank)
        else:
            text += self.tr(" · {ms:.0f} ms").format(ms=ms)
        if results.note:
            text += f" · {results.note}"
        return text

    def _on_search_failed(self, gen: int, error: BaseException) -> None:
        if gen != self._generation:
            return
        self.model.clear()
        self.result_label.setText("")
        self._show_empty(self.tr("This search could not run: {reason}").format(reason=str(error)))
        if not isinstance(error, (PhotosearchError, OSError)):
            log.error("search failed", exc_info=error)

    def _show_empty(self, text: str) -> None:
        self.empty.setText(text)
        self.results_stack.setCurrentIndex(1)

    # -- the grid ----------------------------------------------------------------------------

    def set_zoom(self, side: int) -> None:
        self.delegate.side = side
        self.view.doItemsLayout()

    def _toggle_scores(self) -> None:
        self.delegate.show_scores = self.scores_action.isChecked()
        self.view.viewport().update()

    def _focus_search(self) -> None:
        self.search_field.setFocus()
        self.search_field.selectAll()

    def selected_result(self) -> Result | None:
        return self.model.result(self.view.currentIndex().row())

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

    def _context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        result = self.model.result(index.row()) if index.isValid() else None
        if result is None:
            return
        menu = QMenu(self)
        menu.addAction(self.tr("Open"), lambda: self.open_externally(result))
        menu.addAction(self.tr("Show in folder"), lambda: self.show_in_folder(result))
        menu.addSeparator()
        menu.addAction(self.tr("Copy path"), lambda: self.copy_path(result))
        menu.addAction(self.tr("Copy image"), lambda: self.copy_image(result))
        menu.addSeparator()
        menu.addAction(self.tr("Find similar photos"), lambda: self.find_similar(result))
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.view.viewport().mapToGlobal(pos))

    def open_externally(self, result: Result) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(result.path)))

    def show_in_folder(self, result: Result) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(result.path.parent)))

    def copy_path(self, result: Result) -> None:
        QGuiApplication.clipboard().setText(str(result.path))

    def copy_image(self, result: Result) -> None:
        self._copy_ticket = self.thumbnails.load_image(result.path, 8192)

    def _image_for_clipboard(self, ticket: int, image: QImage, problem: str) -> None:
        if ticket != self._copy_ticket:
            return
        if image.isNull():
            self.show_error(
                self.tr("The image could not be copied: {reason}").format(reason=problem)
            )
        else:
            QGuiApplication.clipboard().setImage(image)
            self.statusBar().showMessage(self.tr("Image copied"), 3000)

    def find_similar(self, result: Result) -> None:
        self.search_field.clear()
        self.search_like(result.path)

    # -- drag and drop: search by example ----------------------------------------------------

    @staticmethod
    def _dropped_image(event: QDragEnterEvent | QDropEvent) -> Path | None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                path = Path(url.toLocalFile())
                if path.suffix.lower() in SUPPORTED_EXTENSIONS and path.is_file():
                    return path
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.info.pack is not None and self._dropped_image(event) is not None:
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_image(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_image(event)
        if path is not None:
            event.acceptProposedAction()
            self._start_searching()
            self.search_like(path)

    # -- dialogs -----------------------------------------------------------------------------

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
        """Download, prepare or import a model pack (with progress, cancel and resume)."""
        from photosearch.ui.models_dialog import ModelsDialog

        def make() -> QWidget:
            dialog = ModelsDialog(self.library, self)
            dialog.installed.connect(lambda _name: self.refresh_library())
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
                    self.tr(
                        "Switching to {pack}: your photos are re-encoded in the background; "
                        "search keeps using the current model until then"
                    ).format(pack=new.pack),
                    15_000,
                )
            self.refresh_library()

        self.tasks.run(apply, applied, self._failed)

    # -- closing -----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop searching and indexing (what was committed is kept), save the window's state,
        close the library. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._save()
        self._debounce.stop()
        self.statusBar().clearMessage()  # stops its timer
        watcher = self.watcher
        if watcher not in (None, True):
            watcher.stop()  # first: a dialog's install may be waiting for its indexing pass
        for dialog in list(self.dialogs.values()):
            dialog.close()
        self.search_worker.close()
        self.tasks.close()
        self.thumbnails.close()
        self.library.close()  # also stops a watcher still being started

    def sizeHint(self) -> QSize:
        return QSize(1100, 760)


__all__ = ["MainWindow", "QModelIndex"]
