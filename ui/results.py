"""The result grid's model and delegate: a list model of search results, painted as
thumbnails with the file name under each (and its score on hover, or always as an option)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QUrl,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from photosearch.relevance import percent
from photosearch.search import Result
from photosearch.ui.thumbnails import Thumbnails, thumbnail_key

ResultRole = Qt.ItemDataRole.UserRole + 1
ThumbnailKeyRole = Qt.ItemDataRole.UserRole + 2

Index = QModelIndex | QPersistentModelIndex


def badge_text(result: Result) -> str:
    """What the score badge shows: the relevance as a percentage (the rank when the pack has
    no calibration), a tick when the reranker checked the photo."""
    label = f"#{result.rank}" if result.relevance is None else f"{percent(result.relevance)}%"
    return f"{label} ✓" if result.refined else label


class ResultsModel(QAbstractListModel):
    """Search results, best first. A refined list of the same photos reorders the rows in
    place (a layout change: views keep their selection and current item); any other list
    replaces them."""

    def __init__(self, thumbnails: Thumbnails, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self._rows: list[Result] = []
        self._keys: dict[int, str] = {}  # row → thumbnail key, filled as rows are shown
        self._rows_of: dict[str, int] = {}
        thumbnails.ready.connect(self._thumbnail_ready)

    # -- Qt's model interface --------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = index.row()
        result = self._rows[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return result.path.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n".join([str(result.path), self.describe(result)])
        if role == ResultRole:
            return result
        if role == ThumbnailKeyRole:
            return self._key(row)
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(self._key(row), result.path)
        return None

    def describe(self, result: Result) -> str:
        """The tooltip's second line: how relevant, and whether the reranker checked it."""
        if result.relevance is None:
            text = self.tr("rank {rank}").format(rank=result.rank)
        else:
            text = self.tr("relevance {percent}%").format(percent=percent(result.relevance))
            if not result.match:
                text += self.tr(" (a weaker match)")
        if result.refined:
            text += self.tr(" · ✓ refined: checked by the slower, more exact model")
        return text

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        """Results dragged out are their files (to a file manager, an editor, or back in)."""
        data = QMimeData()
        rows = sorted({i.row() for i in indexes if i.isValid()})
        data.setUrls([QUrl.fromLocalFile(str(self._rows[r].path)) for r in rows])
        return data

    # -- content ---------------------------------------------------------------------------

    @property
    def results(self) -> Sequence[Result]:
        return self._rows

    def result(self, row: int) -> Result | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, photo_id: int) -> int:
        for n, r in enumerate(self._rows):
            if r.photo_id == photo_id:
                return n
        return -1

    def set_results(self, rows: Sequence[Result], *, in_place: bool = True) -> bool:
        """Show ``rows``; returns True when they were the same photos reordered in place
        (only with ``in_place``: a new query's list is new, even of the same photos)."""
        rows = list(rows)
        old = [r.photo_id for r in self._rows]
        new = [r.photo_id for r in rows]
        if in_place and old and len(old) == len(new) and set(old) == set(new):
            self.layoutAboutToBeChanged.emit()
            where = {pid: n for n, pid in enumerate(new)}
            persistent = self.persistentIndexList()
            moved = [self.index(where[old[p.row()]], 0) for p in persistent]
            self._set(rows)
            self.changePersistentIndexList(persistent, moved)
            self.layoutChanged.emit()
            # Scores changed even where the order did not.
            if rows:
                self.dataChanged.emit(self.index(0), self.index(len(rows) - 1))
            return True
        self.beginResetModel()
        self.thumbnails.forget_pending()
        self._set(rows)
        self.endResetModel()
        return False

    def clear(self) -> None:
        self.set_results([])

    def _set(self, rows: list[Result]) -> None:
        self._rows = rows
        self._keys.clear()
        self._rows_of.clear()

    def _key(self, row: int) -> str:
        key = self._keys.get(row)
        if key is None:
            p = self._rows[row].photo
            key = thumbnail_key(p.path, p.size, p.mtime_ns)
            self._keys[row] = key
            self._rows_of[key] = row
        return key

    def _thumbnail_ready(self, key: str) -> None:
        row = self._rows_of.get(key)
        if row is not None and row < len(self._rows):
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ResultDelegate(QStyledItemDelegate):
    """Paints one result: its thumbnail (a quiet placeholder while it loads), the file name,
    and the score when hovered or when ``show_scores`` is on."""

    PAD = 6
    SCALED = 512  # thumbnails kept scaled to the current size: a few screens' worth

    def __init__(self, parent: QObject | None = None, side: int = 160) -> None:
        super().__init__(parent)
        self._side = side
        self.show_scores = False
        # Smooth scaling at every paint cost most of a frame; each thumbnail is scaled once
        # per size instead (least recently painted out first).
        self._scaled: OrderedDict[tuple[int, int], QPixmap] = OrderedDict()

    @property
    def side(self) -> int:
        return self._side

    @side.setter
    def side(self, value: int) -> None:
        if value != self._side:
            self._side = value
            self._scaled.clear()

    def _fitted(self, pixmap: QPixmap) -> QPixmap:
        key = (pixmap.cacheKey(), self._side)
        scaled = self._scaled.get(key)
        if scaled is None:
            scaled = pixmap.scaled(
                self._side,
                self._side,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            self._scaled[key] = scaled
            if len(self._scaled) > self.SCALED:
                self._scaled.popitem(last=False)
        else:
            self._scaled.move_to_end(key)
        return scaled

    #: Below this side a file name would shrink to a few letters: only the tooltip has it.
    NAMES_FROM = 96

    def cell_size(self, font: QFont) -> QSize:
        text = QFontMetrics(font).height() if self.side >= self.NAMES_FROM else 0
        return QSize(self.side + 2 * self.PAD, self.side + text + 3 * self.PAD)

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return self.cell_size(option.font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        painter.save()
        pal = option.palette
        rect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected:
            painter.fillRect(rect, pal.color(QPalette.ColorRole.Highlight))
        elif hovered:
            painter.fillRect(rect, pal.color(QPalette.ColorRole.AlternateBase))
        cell = self.cell_size(option.font)  # centred in its grid cell
        left = rect.x() + max(0, (rect.width() - cell.width()) // 2)
        box = QRect(left + self.PAD, rect.y() + self.PAD, self.side, self.side)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if pixmap is not None and not pixmap.isNull():
            fitted = self._fitted(pixmap)
            target = QRect(0, 0, fitted.width(), fitted.height())
            target.moveCenter(box.center())
            painter.drawPixmap(target.topLeft(), fitted)
        else:
            painter.fillRect(box, pal.color(QPalette.ColorRole.Midlight))
        text_rect = QRect(
            left + self.PAD,
            box.bottom() + self.PAD,
            self.side,
            rect.bottom() - box.bottom() - self.PAD,
        )
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.WindowText
        painter.setPen(pal.color(role))
        name = option.fontMetrics.elidedText(
            str(index.data(Qt.ItemDataRole.DisplayRole) or ""),
            Qt.TextElideMode.ElideMiddle,
            text_rect.width(),
        )
        if self.side >= self.NAMES_FROM:
            painter.drawText(
                text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, name
            )
        result = index.data(ResultRole)
        if result is not None and (self.show_scores or hovered):
            label = badge_text(result)
            font = QFont(option.font)
            if self.side < 128:  # a small thumbnail keeps most of itself visible
                font.setPointSizeF(font.pointSizeF() * 0.8)
            painter.setFont(font)
            metrics = QFontMetrics(font)
            width = metrics.horizontalAdvance(label) + 6
            badge = QRect(box.right() - width, box.y(), width, metrics.height() + 2)
            painter.fillRect(badge, QColor(0, 0, 0, 160))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, label)
        if option.state & QStyle.StateFlag.State_HasFocus:  # the current photo, always marked
            pen = painter.pen()
            painter.setPen(pal.color(QPalette.ColorRole.Highlight).darker(140))
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
            painter.setPen(pen)
        if result is not None and not result.photo.online:
            painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.tr("offline"))
        painter.restore()
