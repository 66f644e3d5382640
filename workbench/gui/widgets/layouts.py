"""Layouts that fit a laptop screen: a row of editors that wraps when narrow, groups that stand
in two columns when there is room and in one when there is not, a scroll area that only ever
scrolls down, a label that elides with its full text as its tooltip, and a placeholder line
that stands in for a chart until it has data.

A panel's minimum width is what the window's minimum width is made of: these keep each panel's
minimum to what one column needs, so that every panel and tool fits 1280x800 side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QLayout,
    QLayoutItem,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QTableWidget,
    QVBoxLayout,
    QWidget,
    QWidgetItem,
)


class FlowLayout(QLayout):
    """Items left to right, wrapping to a new line when the width runs out (Qt's flow layout
    example); its height follows its width."""

    def __init__(self, parent: QWidget | None = None, *, spacing: int = 4,
                 line_spacing: int = 2) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self._line_spacing = line_spacing
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 - Qt override
        self._items.append(item)

    def add_group(self, *widgets: QWidget) -> None:
        """Widgets that stay on one line together (a parameter's name and its editor)."""
        group = QWidget()
        row = _row(group)
        for widget in widgets:
            row.addWidget(widget)
        self.addWidget(group)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 - Qt override
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 - Qt override
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802 - Qt override
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802 - Qt override
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        width = sum(i.sizeHint().width() for i in self._items)
        width += self._spacing * max(0, len(self._items) - 1)
        height = max((i.sizeHint().height() for i in self._items), default=0)
        return QSize(width, height)

    def minimumSize(self) -> QSize:  # noqa: N802 - Qt override
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        return size

    def _place(self, rect: QRect, *, move: bool) -> int:
        x, y, line_height = rect.x(), rect.y(), 0
        for item in self._items:
            if isinstance(item, QWidgetItem) and item.widget().isHidden():
                continue
            hint = item.sizeHint()
            if x > rect.x() and x + hint.width() > rect.right() + 1:
                x = rect.x()
                y += line_height + self._line_spacing
                line_height = 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._spacing
            line_height = max(line_height, hint.height())
        return y + line_height - rect.y()


def _row(parent: QWidget) -> QLayout:
    from PySide6.QtWidgets import QHBoxLayout

    row = QHBoxLayout(parent)
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(3)
    return row


class Columns(QWidget):
    """Widgets in two columns (filled row by row) when the width allows both at their preferred
    widths, else in one; the minimum width is one column's."""

    def __init__(self, widgets: Sequence[QWidget], *, spacing: int = 10,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.widgets = list(widgets)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(spacing)
        self.columns = 0
        self._arrange(1)

    def two_column_width(self) -> int:
        """The width from which the widgets stand in two columns."""
        widest = max((w.sizeHint().width() for w in self.widgets), default=0)
        margins = self.grid.contentsMargins()
        return 2 * widest + self.grid.horizontalSpacing() + margins.left() + margins.right()

    def _arrange(self, columns: int) -> None:
        if columns == self.columns:
            return
        self.columns = columns
        for widget in self.widgets:
            self.grid.removeWidget(widget)
        for i, widget in enumerate(self.widgets):
            self.grid.addWidget(widget, i // columns, i % columns)
        for c in range(2):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        margins = self.grid.contentsMargins()
        widest = max((w.minimumSizeHint().width() for w in self.widgets), default=0)
        return QSize(widest + margins.left() + margins.right(), super().minimumSizeHint().height())

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        self._arrange(2 if self.width() >= self.two_column_width() else 1)
        super().resizeEvent(event)  # type: ignore[arg-type]


class VerticalScroll(QScrollArea):
    """A frameless area that scrolls down and never sideways. Its content takes the area's
    width (down to its own minimum) and the area's height, or the least height its layout
    needs at that width when that is more: it scrolls only when the content's minimum does not
    fit, where Qt's own resizable area scrolls as soon as the content's preferred height does
    not."""

    def __init__(self, content: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(False)  # sized by `_fit`
        self.setWidget(content)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(content.minimumSizeHint().width()
                             + self.verticalScrollBar().sizeHint().width())
        content.installEventFilter(self)
        self._fit()

    def content_height(self, width: int) -> int:
        """The least height the content needs at `width` (its wrapped lines included)."""
        content = self.widget()
        layout = content.layout()
        if layout is not None and layout.hasHeightForWidth():
            return layout.totalMinimumHeightForWidth(width)
        return content.minimumSizeHint().height()

    def _fit(self) -> None:
        content = self.widget()
        if content is None:
            return
        viewport = self.viewport().size()
        width = max(viewport.width(), content.minimumSizeHint().width())
        height = max(viewport.height(), self.content_height(width))
        if content.size() != QSize(width, height):
            content.resize(width, height)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._fit()
        return super().eventFilter(watched, event)

    def viewportEvent(self, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Resize:  # the area, or its scroll bar came or went
            self._fit()
        return super().viewportEvent(event)


def vertical_scroll(content: QWidget) -> QScrollArea:
    """`content` in a `VerticalScroll`: it scrolls down, never sideways."""
    return VerticalScroll(content)


def scroll_above(content: QWidget, *footer: QWidget | QLayout) -> QWidget:
    """A column: `content` scrolls down on a short screen, and the `footer` (the buttons that
    act, and what they say) stays below it, always in view: an action below the fold is one
    a person misses."""
    column = QWidget()
    layout = QVBoxLayout(column)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(vertical_scroll(content), 1)
    for part in footer:
        if isinstance(part, QLayout):
            layout.addLayout(part)
        else:
            layout.addWidget(part)
    return column


class ElidedLabel(QLabel):
    """One line of plain text, cut with "…" when it does not fit; the full text is its tooltip
    then, so nothing is lost."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full_text = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.set_text(text)

    def set_text(self, text: str) -> None:
        self.full_text = text
        self._elide()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = super().sizeHint()
        return QSize(self.fontMetrics().horizontalAdvance(self.full_text) + 4, hint.height())

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width()
        shown = self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight, width)
        if shown != self.text():
            self.setText(shown)
        self.setToolTip(self.full_text if shown != self.full_text else "")


class Placeholder(QStackedWidget):
    """A view that stands in a line of text ("no data yet: …") until it has something to
    show, instead of empty axes."""

    def __init__(self, content: QWidget, message: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.content = content
        self.message = QLabel(message)
        self.message.setObjectName("hint")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.addWidget(self.message)
        self.addWidget(content)

    def show_content(self, shown: bool, message: str | None = None) -> None:
        if message is not None:
            self.message.setText(message)
        self.setCurrentWidget(self.content if shown else self.message)

    @property
    def showing_content(self) -> bool:
        return self.currentWidget() is self.content


def fit_table_width(table: QTableWidget) -> None:
    """Size a small table's columns to their contents (cell widgets included) and make it at
    least that wide, so no name in it is cut off; the last column takes what is left."""
    header = table.horizontalHeader()
    total = 0
    for column in range(table.columnCount()):
        widest = header.sectionSizeHint(column)
        for row in range(table.rowCount()):
            widget = table.cellWidget(row, column)
            if widget is not None:
                wanted = min(widget.sizeHint().width(), widget.maximumWidth())  # a fixed width
                widest = max(widest, wanted + 8)
        table.setColumnWidth(column, widest)
        total += widest
    header.setStretchLastSection(True)
    table.setMinimumWidth(total + 2 * table.frameWidth())
