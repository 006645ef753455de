"""The result grid: the photos found, as thumbnails, or a line saying why there are none; its
context menu opens a photo, shows its folder, copies its path or image, or finds photos like it.

Its words keep the ``MainWindow`` context they had when the window built the grid itself, so
the translators' template and the translations made from it stay as they are.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QItemSelectionModel, QPoint, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage
from PySide6.QtWidgets import QLabel, QListView, QMenu, QStackedWidget, QWidget

from photosearch.search import Result
from photosearch.ui.results import ResultDelegate, ResultsModel
from photosearch.ui.thumbnails import Thumbnails

translate = QCoreApplication.translate

COPY_SIDE = 8192  # "Copy image" copies the photo itself, up to this side


class ResultGrid(QStackedWidget):
    """The grid (page 0) or the empty-state line (page 1) over one :class:`ResultsModel`."""

    open_row = Signal(int)  # a photo was activated (Enter, double click)
    find_similar = Signal(object)  # the Result to search by example
    problem = Signal(str)  # something went wrong that the user should read
    message = Signal(str, int)  # a status-bar note and how long it shows (ms)

    def __init__(
        self, model: ResultsModel, thumbnails: Thumbnails, side: int, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.thumbnails = thumbnails
        self._copy_ticket = -1
        self.view = self._make_view(side)
        self.empty = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.empty.setMargin(40)
        self.addWidget(self.view)
        self.addWidget(self.empty)
        thumbnails.image_ready.connect(self._image_for_clipboard)

    def _make_view(self, side: int) -> QListView:
        view = QListView()
        view.setViewMode(QListView.ViewMode.IconMode)
        view.setResizeMode(QListView.ResizeMode.Adjust)
        view.setMovement(QListView.Movement.Static)
        view.setUniformItemSizes(True)
        view.setLayoutMode(QListView.LayoutMode.Batched)
        view.setBatchSize(500)
        view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        view.setMouseTracking(True)
        view.setDragEnabled(True)
        view.setDragDropMode(QListView.DragDropMode.DragOnly)
        view.setSpacing(2)
        view.setModel(self.model)
        self.delegate = ResultDelegate(view, side=side)
        view.setItemDelegate(self.delegate)
        view.activated.connect(lambda index: self.open_row.emit(index.row()))
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self.context_menu)
        return view

    # -- what it shows -----------------------------------------------------------------------

    def show_empty(self, text: str) -> None:
        self.empty.setText(text)
        self.setCurrentIndex(1)

    def set_results(self, results: list[Result], *, keep_place: bool = True) -> bool:
        """Show ``results`` (False: there are none, the caller says why). With ``keep_place``
        (the same query's list, refined or expanded) a photo chosen before stays chosen and
        current; a new query's list starts at its first photo, current, not selected."""
        selection = self.view.selectionModel()
        chosen = {self.model.result(i.row()).photo_id for i in selection.selectedIndexes()}
        current = self.model.result(self.view.currentIndex().row())
        if not keep_place:
            chosen, current = set(), None
            selection.clearSelection()
        scrolled = self.view.verticalScrollBar().value()
        reordered = self.model.set_results(results, in_place=keep_place)
        if not reordered and self.model.rowCount():
            rows = [r for r in (self.model.row_of(pid) for pid in chosen) if r >= 0]
            cur = self.model.row_of(current.photo_id) if current else -1
            selection.setCurrentIndex(
                self.model.index(cur if cur >= 0 else (rows or [0])[0]),
                QItemSelectionModel.SelectionFlag.NoUpdate,
            )
            for r in rows:
                selection.select(self.model.index(r), QItemSelectionModel.SelectionFlag.Select)
        if not self.model.rowCount():
            return False
        self.setCurrentIndex(0)
        if keep_place:  # the same query's list: it does not jump under the user
            self.view.doItemsLayout()
            self.view.verticalScrollBar().setValue(scrolled)
            if self.view.currentIndex().isValid():  # (batched layout: the chosen one in view)
                self.view.scrollTo(self.view.currentIndex())
        else:
            self.view.scrollToTop()
        return True

    def set_zoom(self, side: int) -> None:
        self.delegate.side = side
        self._fit_columns()
        self.view.doItemsLayout()

    def _fit_columns(self) -> None:
        """Cells as wide as the view shares out: the columns fill it, no blank strip at the
        right (the delegate centres each photo in its cell)."""
        cell = self.delegate.cell_size(self.view.font())
        spacing = self.view.spacing()
        width = max(1, self.view.viewport().width())
        columns = max(1, width // (cell.width() + 2 * spacing))
        extra = (width - columns * (cell.width() + 2 * spacing)) // columns
        self.view.setGridSize(
            QSize(cell.width() + 2 * spacing + max(0, extra), cell.height() + 2 * spacing)
        )

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt's name
        super().resizeEvent(event)
        self._fit_columns()

    def show_scores(self, shown: bool) -> None:
        self.delegate.show_scores = shown
        self.view.viewport().update()

    def selected_result(self) -> Result | None:
        return self.model.result(self.view.currentIndex().row())

    # -- what can be done with a photo -------------------------------------------------------

    def context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        result = self.model.result(index.row()) if index.isValid() else None
        if result is None:
            return
        menu = QMenu(self)
        menu.addAction(translate("MainWindow", "Open"), lambda: self.open_externally(result))
        menu.addAction(
            translate("MainWindow", "Show in folder"), lambda: self.show_in_folder(result)
        )
        menu.addSeparator()
        menu.addAction(translate("MainWindow", "Copy path"), lambda: self.copy_path(result))
        menu.addAction(translate("MainWindow", "Copy image"), lambda: self.copy_image(result))
        menu.addSeparator()
        menu.addAction(
            translate("MainWindow", "Find similar photos"), lambda: self.find_similar.emit(result)
        )
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.view.viewport().mapToGlobal(pos))

    def open_externally(self, result: Result) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(result.path)))

    def show_in_folder(self, result: Result) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(result.path.parent)))

    def copy_path(self, result: Result) -> None:
        QGuiApplication.clipboard().setText(str(result.path))

    def copy_image(self, result: Result) -> None:
        """Load the photo off the GUI thread; it reaches the clipboard when it is ready."""
        self._copy_ticket = self.thumbnails.load_image(result.path, COPY_SIDE)

    def _image_for_clipboard(self, ticket: int, image: QImage, problem: str) -> None:
        if ticket != self._copy_ticket:
            return
        if image.isNull():
            self.problem.emit(
                translate("MainWindow", "The image could not be copied: {reason}").format(
                    reason=problem
                )
            )
        else:
            QGuiApplication.clipboard().setImage(image)
            self.message.emit(translate("MainWindow", "Image copied"), 3000)
