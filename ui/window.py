"""The main window: search field, refine control, filters, result grid, status bar; the
first-run view until a model pack and a folder are there.

The window holds an open :class:`~photosearch.library.Library` and never calls it on the GUI
thread: short engine calls go through :class:`Tasks`, searches through a
:class:`~photosearch.latest.LatestSearch`, indexing through the library's folder watcher.
Their answers come back as queued signals. Closing the window stops all of them, then closes
the library. The result grid is a :class:`~photosearch.ui.grid.ResultGrid`; the dialogs and
the viewer open through :class:`~photosearch.ui.window_dialogs.WindowDialogs`.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
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

from photosearch.errors import PhotosearchError
from photosearch.hints import REFINE_HINT
from photosearch.imaging import SUPPORTED_EXTENSIONS
from photosearch.latest import LatestSearch
from photosearch.library import Library
from photosearch.search import Query, Result, Results
from photosearch.ui import watch_words
from photosearch.ui.filters import FilterBar
from photosearch.ui.grid import ResultGrid
from photosearch.ui.indexing import IndexStatus
from photosearch.ui.library_info import LibraryInfo, gather_info
from photosearch.ui.results import ResultsModel
from photosearch.ui.state import State
from photosearch.ui.tasks import Tasks
from photosearch.ui.thumbnails import Thumbnails
from photosearch.ui.welcome import WelcomeView
from photosearch.ui.window_dialogs import WindowDialogs
from photosearch.watcher import FolderOffline, FolderOnline, PhotosIndexed, Ready, WatchEvent

log = logging.getLogger(__name__)

SEARCH_DELAY_MS = 250
REFRESH_AFTER_MS = 1500  # after the last batch of newly indexed photos, search again
DEFAULT_LIMIT = 1000
ZOOM = (64, 320, 160)  # smallest, largest, default thumbnail side


class MainWindow(WindowDialogs, QMainWindow):
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
        self._told_about_refining = False
        self._told_about_calibration = False
        self._same_query = False  # the list shown is the same query's (refined, or expanded)
        self.examples: tuple[str, ...] = ()  # queries the empty page offers (the demo's)
        self._closed = False
        self._paused = False
        self._typed_at = 0.0
        self.first_results_ms: float | None = None

        self.setWindowTitle(self.tr("photosearch"))
        self.setAcceptDrops(True)
        self._build()
        self._search_done.connect(self._on_results, Qt.ConnectionType.QueuedConnection)
        self._search_failed.connect(self._on_search_failed, Qt.ConnectionType.QueuedConnection)
        self._watch_event.connect(self._on_watch_event, Qt.ConnectionType.QueuedConnection)
        self._watch_progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self._restore()
        self.refresh_library()

    # -- building ----------------------------------------------------------------------------

    def _build(self) -> None:
        """The first-run view (page 0) and the search page (page 1), the status bar, menus."""
        self.stack = QStackedWidget()
        self.setCentralWidget(self.stack)
        self.stack.addWidget(self._build_welcome())
        page = QWidget()
        v = QVBoxLayout(page)
        v.addLayout(self._build_search_row())
        self.filter_bar = FilterBar()
        self.filter_bar.hide()
        self.filters_button.toggled.connect(self.filter_bar.setVisible)
        self.filter_bar.changed.connect(self._filters_changed)
        v.addWidget(self.filter_bar)
        v.addLayout(self._build_verdict_row())
        v.addWidget(self._build_results(), 1)
        self.stack.addWidget(page)
        self._build_status_bar()
        self._build_menus()
        self._show_empty(self.tr("Type a description to search your photos."))

    def _build_welcome(self) -> QWidget:
        self.welcome = WelcomeView()
        self.welcome.add_folder.connect(self.add_folder)
        self.welcome.import_pack.connect(self.import_pack)
        self.welcome.get_pack.connect(self.show_models)
        self.welcome.start.connect(self._start_searching)
        holder = QWidget()
        lay = QHBoxLayout(holder)
        lay.addWidget(self.welcome)
        return holder

    def _build_search_row(self) -> QHBoxLayout:
        """The search field (with its history), the example being searched by, the refine
        depth, the device in use and the filters switch."""
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
        self._refresh_results = QTimer(self, singleShot=True, interval=REFRESH_AFTER_MS)
        self._refresh_results.timeout.connect(self._search_again)
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
        self.sort = QComboBox()
        self.sort.addItem(self.tr("Best match first"), "relevance")
        self.sort.addItem(self.tr("Newest first"), "date")
        self.sort.setToolTip(self.tr("Order of the matches: by relevance, or by date taken"))
        self.sort.currentIndexChanged.connect(self._filters_changed)
        top.addWidget(self.sort)
        self.device_label = QLabel()
        top.addWidget(self.device_label)
        self.filters_button = QToolButton(text=self.tr("Filters"), checkable=True)
        top.addWidget(self.filters_button)
        return top

    def _build_verdict_row(self) -> QHBoxLayout:
        """Above the grid: "No good match for …" when nothing passes the relevance cut-off,
        and the switch that shows (or hides) the weaker matches below it."""
        row = QHBoxLayout()
        self.verdict = QLabel(wordWrap=True)
        self.verdict.hide()
        row.addWidget(self.verdict, 1)
        row.addStretch(0)  # with no verdict, the switch sits at the right
        self.weaker_button = QToolButton(checkable=True)
        self.weaker_button.setToolTip(
            self.tr("Photos below the relevance cut-off: less likely to be what you described")
        )
        self.weaker_button.toggled.connect(self._weaker_toggled)
        self.weaker_button.hide()
        row.addWidget(self.weaker_button)
        return row

    def _build_results(self) -> ResultGrid:
        self.grid = ResultGrid(self.model, self.thumbnails, ZOOM[2])
        self.view = self.grid.view
        self.grid.open_row.connect(self.open_viewer)
        self.grid.find_similar.connect(self.find_similar)
        self.grid.problem.connect(self.show_error)
        self.grid.message.connect(self.statusBar().showMessage)
        self.grid.empty.linkActivated.connect(self.try_example)
        return self.grid

    def _build_status_bar(self) -> None:
        """What was found, how indexing goes, and the thumbnail size."""
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
        self.zoom.valueChanged.connect(self.grid.set_zoom)
        bar.addPermanentWidget(self.zoom)
        self.zoom.setVisible(self.stack.currentIndex() == 1)  # thumbnails are on the search page
        self.stack.currentChanged.connect(lambda page: self.zoom.setVisible(page == 1))

    def _build_menus(self) -> None:
        menu = self.menuBar().addMenu(self.tr("&Library"))
        self._action(menu, self.tr("&Folders…"), self.show_folders, "Ctrl+L")
        self._action(menu, self.tr("&Model packs…"), self.show_models)
        settings = self._action(menu, self.tr("&Settings…"), self.show_settings)
        preferences = QKeySequence.keyBindings(QKeySequence.StandardKey.Preferences)
        settings.setShortcuts([*preferences, QKeySequence("Ctrl+,")])
        self._action(menu, self.tr("Files that could not be &read…"), self.show_unreadable)
        menu.addSeparator()
        self._action(menu, self.tr("&Quit"), self.close, QKeySequence.StandardKey.Quit)
        view = self.menuBar().addMenu(self.tr("&View"))
        self.scores_action = self._action(view, self.tr("Show &scores"), self._toggle_scores)
        self.scores_action.setCheckable(True)
        self._action(view, self.tr("&Filters"), self.filters_button.toggle, "Ctrl+Shift+F")
        self._action(view, self.tr("Find"), self._focus_search, QKeySequence.StandardKey.Find)
        help_menu = self.menuBar().addMenu(self.tr("&Help"))
        self._action(help_menu, self.tr("&Keyboard shortcuts"), self.show_shortcuts, "F1")
        self._action(help_menu, self.tr("&About photosearch"), self.show_about)
        clear = QAction(self.search_field)
        clear.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        clear.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        clear.triggered.connect(self._clear_search)
        self.search_field.addAction(clear)

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
        sort = self.sort.findData(self.state.get("sort", "relevance", str))
        self.sort.blockSignals(True)
        self.sort.setCurrentIndex(max(0, sort))
        self.sort.blockSignals(False)
        self._toggle_scores()
        self.search_field.setText(str(self.state.get("last_query", "") or ""))

    def _save(self) -> None:
        self.state.set("geometry", self.saveGeometry())
        self.state.set("zoom", self.zoom.value())
        self.state.set("show_scores", self.scores_action.isChecked())
        self.state.set("sort", self.sort.currentData())
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
            photos = self.info.indexed  # searchable ones (a plain name: lupdate needs it)
            text = self.tr("Type a description to search your %n photo(s).", "", photos)
            if self.examples:
                links = "<br>".join(
                    f'<a href="{i}">{html.escape(q)}</a>' for i, q in enumerate(self.examples)
                )
                text = html.escape(text) + "<br><br>" + self.tr("Try:") + "<br>" + links
            self._show_empty(text)

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
            if isinstance(event, PhotosIndexed) and wanted:
                # New photos may match: the same query again, once indexing pauses for a
                # moment; the list keeps its place (the chosen photo, the scroll position).
                self._refresh_results.start()

    # -- searching ---------------------------------------------------------------------------

    def _search_again(self) -> None:
        """The shown query once more (new photos were indexed), unless the user is typing."""
        if not self._debounce.isActive() and self.current_query() is not None:
            self.search_now()

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
            sort=str(self.sort.currentData()),
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
            self.verdict.hide()
            self.weaker_button.hide()
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
        self._same_query = (
            self.last_results is not None and self.last_results.query == results.query
        )
        if not self._same_query:
            self.weaker_button.blockSignals(True)  # a new query starts with its matches only
            self.weaker_button.setChecked(False)
            self.weaker_button.blockSignals(False)
        self.last_results = results
        self._show_rows()
        self.result_label.setText(self._describe(results))
        if results.device:
            self.device_label.setText(self.tr("on {device}").format(device=results.device))
        self.results_shown.emit(results)

    def _weaker_toggled(self) -> None:
        self._same_query = True
        self._show_rows()

    def _show_rows(self) -> None:
        """The results shown: the matches, and the weaker ones when asked for or when there
        is no match at all (then under "No good match for …"); every result when the pack has
        no calibration."""
        results = self.last_results
        if results is None:
            return
        weaker = [r for r in results if not r.match]
        matches = [r for r in results if r.match]
        none_good = bool(results.results) and not matches
        shown = results.results if none_good or self.weaker_button.isChecked() else matches
        self.verdict.setVisible(none_good)
        if none_good:
            self.verdict.setText(
                self.tr("No good match for “{text}”. The closest photos:").format(
                    text=results.query.text or self.tr("this example")
                )
            )
        self.weaker_button.setVisible(bool(weaker) and not none_good)
        self.weaker_button.setText(
            self.tr("Hide weaker matches")
            if self.weaker_button.isChecked()
            else self.tr("Show %n weaker match(es)", "", len(weaker))
        )
        if not self.grid.set_results(list(shown), keep_place=self._same_query):
            self._show_empty(
                self.tr("No photos match. Try other words, or clear the filters.")
                if self.filter_bar.filters()
                else self.tr("No photos match. Try describing it in other words.")
            )

    def _describe(self, results: Results) -> str:
        n = len(results)
        if results.threshold is None:
            text = self.tr("%n photo(s)", "", n)
        else:
            text = self.tr("%n match(es)", "", results.matches)
        ms = results.timing.total_ms
        if results.pending:
            text += self.tr(" · refining the top {k}…").format(k=results.rerank)
        elif results.refined:
            text += self.tr(" · top {k} refined · {ms:.0f} ms").format(k=results.rerank, ms=ms)
        else:
            text += self.tr(" · {ms:.0f} ms").format(ms=ms)
        if results.words_read:
            text += self.tr(" · too long: the model read the first {n} words").format(
                n=results.words_read
            )
        if results.note and results.query.text:  # an example search is never refined: no news
            text += f" · {results.note}"
        if results.calibration_note and not self._told_about_calibration:
            self._told_about_calibration = True
            self.statusBar().showMessage(
                self.tr(
                    "This model pack has no relevance calibration: photos are shown by rank, "
                    "without a match score or cut-off."
                ),
                30_000,
            )
        if not results.can_refine and not self._told_about_refining:
            self._told_about_refining = True  # once a session: the note above stays short
            self.statusBar().showMessage(REFINE_HINT, 30_000)
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
        self.grid.show_empty(text)

    # -- the grid ----------------------------------------------------------------------------

    def _toggle_scores(self) -> None:
        self.grid.show_scores(self.scores_action.isChecked())

    def set_examples(self, examples: Sequence[str]) -> None:
        """Queries the empty page offers as links (the demo's: its photos are coloured shapes,
        so it says what to type)."""
        self.examples = tuple(examples)
        if self.last_results is None and self.info.pack is not None:
            self._show_empty_state()

    def try_example(self, link: str) -> None:
        self.search_field.setText(self.examples[int(link)])
        self._entered()

    def _clear_search(self) -> None:
        """Esc in the search field: the text goes, and with it the results."""
        if self.search_field.text():
            self.search_field.clear()
            self.search_now()

    def show_shortcuts(self) -> None:
        rows = [
            (self.tr("Ctrl+F"), self.tr("Go to the search field")),
            (self.tr("Esc"), self.tr("Clear the search; close the viewer")),
            (self.tr("Enter"), self.tr("Search now; open the chosen photo")),
            (self.tr("Tab, arrows"), self.tr("Move into the results and through them")),
            (self.tr("Ctrl+Shift+F"), self.tr("Show or hide the filters")),
            (self.tr("Ctrl+L"), self.tr("Folders")),
            (self.tr("Ctrl+,"), self.tr("Settings")),
            (self.tr("F1"), self.tr("This list")),
            (self.tr("Ctrl+Q"), self.tr("Quit")),
        ]
        table = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
        QMessageBox.information(
            self, self.tr("Keyboard shortcuts"), f"<table cellspacing='6'>{table}</table>"
        )

    def show_about(self) -> None:
        from photosearch import __version__

        pack = self.info.pack or self.tr("none installed")
        QMessageBox.about(
            self,
            self.tr("About photosearch"),
            self.tr(
                "<h3>photosearch {version}</h3>"
                "<p>Finds photos on your own disks from a typed description. Everything runs "
                "on this computer; nothing is sent anywhere.</p>"
                "<p>Model pack: {pack}</p>"
                "<p>photosearch is MIT-licensed. It uses Qt for Python (LGPL 3), ONNX Runtime "
                "(MIT), FAISS (MIT), Pillow (MIT-CMU) and NumPy (BSD). Each model pack has its "
                "own licence: see <i>Library ▸ Model packs…</i>.</p>"
            ).format(version=__version__, pack=pack),
        )

    def _focus_search(self) -> None:
        self.search_field.setFocus()
        self.search_field.selectAll()

    def selected_result(self) -> Result | None:
        return self.grid.selected_result()

    def _context_menu(self, pos: QPoint) -> None:
        self.grid.context_menu(pos)

    def copy_path(self, result: Result) -> None:
        self.grid.copy_path(result)

    def copy_image(self, result: Result) -> None:
        self.grid.copy_image(result)

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
        self._refresh_results.stop()
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
