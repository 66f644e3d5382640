"""The window fits a laptop: at 1280x800 and 1366x768, with a trained run in every view, every
editor tab, training view and tool of the Tools menu (tools registered later included) opens
without the window outgrowing the screen, without the editors changing width, without a dialog
larger than the screen, and without a label, button, check box, tab, table header or tree item
whose text is cut off, nor a chart with a hidden scale factor, overlapping or cut tick labels, a
cut axis title or colour without a scale. A button in a scroll area lies within what the area
shows (an action below the fold is one a person misses), a disabled slider does not look live,
and at 1280x800 the Runs list shows at least eight rows. A tool that starts work when it opens
(the rate finder) is looked at once it is done.

A text counts as cut off when its font needs more room than its widget has (the style's size
hint for buttons, the font metrics for headers and placeholders, the view's size hint for a
tree's column); a text shortened with "…" passes only when the full text is its tooltip.
"""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractButton,
    QApplication,
    QCheckBox,
    QDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSlider,
    QStyle,
    QTabBar,
    QTabWidget,
    QTreeView,
    QWidget,
)

from workbench.gui.document import undo  # noqa: E402
from workbench.gui.shell.main_window import MainWindow  # noqa: E402
from workbench.gui.tools.registry import TOOLS  # noqa: E402
from workbench.gui.views.axes import chart_problems  # noqa: E402
from workbench.gui.widgets import dialogs  # noqa: E402
from workbench.gui.widgets.style import ACCENT, apply_style  # noqa: E402
from workbench.paths import resources_dir  # noqa: E402
from workbench.spec import from_dict  # noqa: E402
from workbench.spec import load as load_spec  # noqa: E402

SCREENS = ((1280, 800), (1366, 768))
CNN = load_spec(resources_dir() / "examples" / "mnist_small_cnn.json")
ELLIPSIS = "\u2026"
WAIT_MS = 120_000


# -- what counts as cut off ---------------------------------------------------------------------
def _name(widget: QWidget) -> str:
    path = []
    w: QWidget | None = widget
    while w is not None and len(path) < 4:
        path.append(type(w).__name__ + (f"#{w.objectName()}" if w.objectName() else ""))
        w = w.parentWidget()
    return " < ".join(path)


def _elided_with_tooltip(text: str, tooltip: str) -> bool:
    return text.rstrip().endswith(ELLIPSIS) and bool(tooltip) and \
        text.rstrip().rstrip(ELLIPSIS).strip() in tooltip


def _label_problem(label: QLabel) -> str | None:
    text = label.text()
    if not text or not label.pixmap().isNull() or label.width() <= 0 and label.height() <= 0:
        return None
    if _elided_with_tooltip(text, label.toolTip()):
        return None
    if label.wordWrap():
        if label.heightForWidth(label.width()) > label.height() + 1:
            return f"needs {label.heightForWidth(label.width())} px of height, has {label.height()}"
        if label.minimumSizeHint().width() > label.width() + 1:
            return f"a word needs {label.minimumSizeHint().width()} px, has {label.width()}"
        return None
    if label.sizeHint().width() > label.width() + 1:
        return f"needs {label.sizeHint().width()} px, has {label.width()}"
    return None


def _button_problem(button: QAbstractButton) -> str | None:
    if not button.text() or _elided_with_tooltip(button.text(), button.toolTip()):
        return None
    if button.sizeHint().width() > button.width() + 1:
        return f"needs {button.sizeHint().width()} px, has {button.width()}"
    return None


def _tab_problems(bar: QTabBar) -> list[str]:
    problems = []
    visible = bar.rect()
    for i in range(bar.count()):
        if not bar.isTabVisible(i):
            continue
        rect, hint = bar.tabRect(i), bar.tabSizeHint(i)
        text = bar.tabText(i)
        if rect.width() < hint.width() and text not in (bar.tabToolTip(i) or ""):
            problems.append(f"tab {text!r} is elided ({rect.width()} of {hint.width()} px)")
        elif rect.right() > visible.right() + 1 or rect.left() < visible.left() - 1:
            problems.append(f"tab {text!r} lies outside its bar (needs scrolling)")
    return problems


def _header_problems(header: QHeaderView) -> list[str]:
    model = header.model()
    if model is None or header.orientation() != Qt.Orientation.Horizontal:
        return []
    margin = header.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, header)
    fm = header.fontMetrics()
    problems = []
    for logical in range(header.count()):
        if header.isSectionHidden(logical) or header.sectionSize(logical) == 0:
            continue
        text = str(model.headerData(logical, Qt.Orientation.Horizontal) or "")
        needed = fm.horizontalAdvance(text) + 2 * margin
        if header.isSortIndicatorShown() and header.sortIndicatorSection() == logical:
            needed += fm.height()
        if text and header.sectionSize(logical) < needed:
            problems.append(f"header {text!r} needs {needed} px, has "
                            f"{header.sectionSize(logical)}")
    return problems


def _placeholder_problem(edit: QLineEdit) -> str | None:
    placeholder = edit.placeholderText()
    if edit.text() or not placeholder:
        return None
    margins = edit.textMargins()
    room = edit.contentsRect().width() - margins.left() - margins.right() - 8
    needed = edit.fontMetrics().horizontalAdvance(placeholder)
    return f"placeholder {placeholder!r} needs {needed} px, has {room}" if needed > room else None


def _scroll_problem(area: QScrollArea) -> str | None:
    """A scroll area that cannot scroll sideways must not hold something wider than itself."""
    content = area.widget()
    if content is None or area.horizontalScrollBarPolicy() != \
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff:
        return None
    if content.width() > area.viewport().width() + 1:
        return (f"content {content.width()} px wide in a {area.viewport().width()} px area "
                "that cannot scroll sideways: its right side is cut off")
    return None


def _hidden_buttons(area: QScrollArea) -> list[str]:
    """Buttons inside a scroll area that lie (partly) outside what it shows: below the fold,
    where a person does not look for the action. A page read top to bottom (Getting started,
    its `document` property set) keeps each step's button beside its step instead."""
    content, viewport = area.widget(), area.viewport()
    if content is None or not area.isVisible() or area.property("document"):
        return []
    shown = viewport.rect()
    problems = []
    for button in content.findChildren(QPushButton):
        if not button.isVisibleTo(content) or not button.text():
            continue
        top_left = button.mapTo(viewport, button.rect().topLeft())
        bottom_right = button.mapTo(viewport, button.rect().bottomRight())
        if not (shown.contains(top_left) and shown.contains(bottom_right)):
            problems.append(f"button {button.text()!r} lies outside what its scroll area "
                            f"shows ({top_left.y()}..{bottom_right.y()} of 0..{shown.height()})")
    return problems


def _tree_problems(view: QTreeView) -> list[str]:
    """A tree's column narrower than its items: their names are cut ("Convolu…")."""
    header = view.header()
    problems = []
    for column in range(header.count()):
        if header.isSectionHidden(column) or view.columnWidth(column) == 0:
            continue
        needed = view.sizeHintForColumn(column)
        if needed > view.columnWidth(column) + 1:
            problems.append(f"column {column} needs {needed} px for its items, has "
                            f"{view.columnWidth(column)}")
    return problems


def _live_looking(slider: QSlider) -> str | None:
    """A disabled slider drawn in the accent colour looks as if it moved."""
    if slider.isEnabled() or slider.width() <= 0:
        return None
    image = slider.grab().toImage()
    accent = QColor(ACCENT)
    blue = sum(1 for x in range(0, image.width(), 2) for y in range(0, image.height(), 2)
               if _near(image.pixelColor(x, y), accent))
    return f"disabled, but {blue} of its pixels are the accent blue" if blue > 4 else None


def _near(color: QColor, other: QColor) -> bool:
    return (abs(color.red() - other.red()) + abs(color.green() - other.green())
            + abs(color.blue() - other.blue())) < 60


def _charts_problem(view: pg.GraphicsLayoutWidget) -> str | None:
    """pyqtgraph lays its charts out at their minimum size even when the view is smaller, and
    the view then shows only part of them."""
    need = view.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize)
    if need.width() > view.width() + 1 or need.height() > view.height() + 1:
        return (f"charts need {need.width():.0f}x{need.height():.0f} px, the view has "
                f"{view.width()}x{view.height()}: they are cut off")
    return None


def clipped(root: QWidget) -> list[str]:
    """Every visible text under `root` that its widget cuts off, and every chart's axis that
    hides a scale factor, overlaps or cuts its tick labels or title, or colour without its
    scale (`views.axes.chart_problems`)."""
    problems = [f"{_name(root)}: {p}" for p in chart_problems(root)]
    for widget in [root, *root.findChildren(QWidget)]:
        if not widget.isVisible():
            continue
        found: list[str] = []
        if isinstance(widget, QLabel):
            found = [p for p in [_label_problem(widget)] if p]
        elif isinstance(widget, QPushButton | QCheckBox | QRadioButton):
            found = [p for p in [_button_problem(widget)] if p]
        elif isinstance(widget, QTabBar):
            found = _tab_problems(widget)
        elif isinstance(widget, QHeaderView):
            found = _header_problems(widget)
        elif isinstance(widget, QLineEdit):
            found = [p for p in [_placeholder_problem(widget)] if p]
        elif isinstance(widget, QScrollArea):
            found = [p for p in [_scroll_problem(widget)] if p] + _hidden_buttons(widget)
        elif isinstance(widget, QTreeView):
            found = _tree_problems(widget)
        elif isinstance(widget, QSlider):
            found = [p for p in [_live_looking(widget)] if p]
        elif isinstance(widget, pg.GraphicsLayoutWidget):
            found = [p for p in [_charts_problem(widget)] if p]
        problems += [f"{_name(widget)} {text_of(widget)!r}: {p}" for p in found]
    return problems


def text_of(widget: QWidget) -> str:
    text = getattr(widget, "text", None)
    return text()[:60] if callable(text) else ""


# -- driving the window -------------------------------------------------------------------------
class Inspector:
    """Looks at the window after each step: its size, the editors' width, clipped texts."""

    def __init__(self, window: MainWindow, size: tuple[int, int]) -> None:
        self.window = window
        self.size = size
        self.problems: list[str] = []
        self.dock_width: int | None = None
        self.seen = 0

    def settle(self) -> None:
        for _ in range(3):
            QApplication.processEvents()

    def check(self, where: str) -> None:
        self.settle()
        for top in QApplication.topLevelWidgets():
            if top.isVisible():
                top.grab()  # painted once: the charts' axes take the room their labels need
        self.settle()
        self.seen += 1
        win, (width, height) = self.window, self.size
        hint = win.minimumSizeHint()
        if hint.width() > width or hint.height() > height:
            self.problems.append(f"{where}: the window needs at least {hint.width()}x"
                                 f"{hint.height()}, more than the {width}x{height} screen")
        if (win.width(), win.height()) != (width, height):
            self.problems.append(f"{where}: the window grew to {win.width()}x{win.height()}")
        dock = win.editors_dock.width()
        if self.dock_width is None:
            self.dock_width = dock
        elif dock != self.dock_width:
            self.problems.append(f"{where}: the editors changed width from {self.dock_width} "
                                 f"to {dock} px")
        windows = [w for w in QApplication.topLevelWidgets()
                   if w is not win and w.isVisible() and isinstance(w, QDialog)]
        for dialog in windows:
            need, has = dialog.minimumSizeHint(), dialog.frameGeometry()
            if max(need.width(), has.width()) > width or max(need.height(), has.height()) > height:
                self.problems.append(
                    f"{where}: the dialog {dialog.windowTitle()!r} is {has.width()}x{has.height()}"
                    f" (at least {need.width()}x{need.height()}), more than the {width}x{height} "
                    "screen")
        found = [p for root in [win, *windows] for p in clipped(root)]
        if found:  # a result that came in during the settling re-lays out on the next turn
            self.settle()
            found = [p for root in [win, *windows] for p in clipped(root)]
        self.problems += [f"{where}: {p}" for p in found]

    def visit_tabs(self, root: QWidget, where: str) -> None:
        """Every page of every tab widget under `root`, nested ones too, checked in turn."""
        for tabs in root.findChildren(QTabWidget):
            if not tabs.isVisible() or tabs is self.window.center:
                continue
            original = tabs.currentIndex()
            for i in range(tabs.count()):
                if not tabs.isTabEnabled(i):
                    continue
                tabs.setCurrentIndex(i)
                here = f"{where} > {tabs.tabText(i)}"
                self.check(here)
                self.visit_tabs(tabs.widget(i), here)
            tabs.setCurrentIndex(original)


def _train(qtbot, window: MainWindow, spec_dict: dict) -> None:
    undo.push_spec(window.undo, window.model, from_dict(spec_dict), "layout test")
    panel = window.train_panel
    with qtbot.waitSignal(panel.runEnded, timeout=WAIT_MS):
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)


SPIRALS = {"name": "spirals", "data": {"name": "spirals", "samples": 300, "noise": 0.1},
           "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                                {"type": "Linear", "out": 2}]},
           "optim": {"name": "adam", "lr": 0.02},
           "train": {"epochs": 2, "batch_size": 32, "device": "cpu"}}
MNIST = {"name": "mnist-mlp", "data": {"name": "mnist_small", "val_fraction": 0.1},
         "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 32},
                              {"type": "ReLU"}, {"type": "Linear", "out": 10}]},
         "optim": {"name": "adam", "lr": 0.003},
         "train": {"epochs": 1, "batch_size": 128, "device": "cpu"}}


def _reject_modals(seen: list[str]) -> QTimer:
    """A modal dialog a tool opens is looked at and closed, never left blocking the test."""
    timer = QTimer()

    def close_modal() -> None:
        modal = QApplication.activeModalWidget()
        if isinstance(modal, QDialog):
            seen.extend(f"modal {modal.windowTitle()!r}: {p}" for p in clipped(modal))
            modal.reject()

    timer.timeout.connect(close_modal)
    timer.start(100)
    return timer


def test_every_panel_and_tool_fits_a_laptop_screen(qtbot, monkeypatch):
    apply_style(QApplication.instance())
    said: list[str] = []
    for name in ("warn", "inform", "about"):
        monkeypatch.setattr(dialogs, name, lambda _p, _t, text: said.append(text))
    monkeypatch.setattr(dialogs, "ask", lambda *a, **k: dialogs.Button.No)
    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(*SCREENS[0])
    window.show()
    qtbot.waitExposed(window)
    if window.train_panel is None:
        with qtbot.waitSignal(window.trainPanelReady, timeout=WAIT_MS):
            pass
    modal_problems: list[str] = []
    watchdog = _reject_modals(modal_problems)

    _train(qtbot, window, SPIRALS)  # a 2-D run: the decision boundary and its mistakes
    _train(qtbot, window, MNIST)  # ten classes: the confusion matrix, the thumbnails
    run_dir = window.train_panel.last_end.run_dir
    qtbot.waitUntil(lambda: window.history.selected_path() == run_dir, timeout=WAIT_MS)
    run_dirs = [str(info.path) for info in window.runs.list()]

    tools_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    registered = {window.actions[t.key]: t.key for t in TOOLS}
    tool_actions = [a for a in tools_menu.actions() if a in registered and a.isEnabled()]
    assert len(tool_actions) >= 4, "the Tools menu lists its panels"

    problems: list[str] = []
    for size in SCREENS:
        window.resize(*size)
        inspector = Inspector(window, size)
        label = f"{size[0]}x{size[1]}"
        inspector.check(f"{label} start")
        tree = window.history.tree
        rows = tree.viewport().height() // max(1, tree.sizeHintForRow(0))
        if size == (1280, 800) and rows < 8:
            problems.append(f"{label}: the Runs list shows {rows} rows, fewer than eight")
        for i in range(window.editors.count()):
            window.editors.setCurrentIndex(i)
            here = f"{label} {window.editors.tabText(i)} editor"
            qtbot.waitUntil(lambda: not window.data_panel.is_loading(), timeout=WAIT_MS)
            inspector.check(here)
        window.editors.setCurrentIndex(0)  # a CNN's rows: the longest layer names
        undo.push_spec(window.undo, window.model, CNN, "layout test")
        inspector.check(f"{label} Model editor, the small CNN example")
        window.undo.undo()
        window.welcome.show()  # as on a first start
        inspector.check(f"{label} welcome")
        window.welcome.hide()
        for key, shown in (("getting_started", "guide"), ("shortcuts", "shortcuts")):
            window.actions[key].trigger()  # Help's windows
            inspector.check(f"{label} Help > {window.actions[key].text()}")
            window._help[shown].close()
        window.center.setCurrentWidget(window.train_panel)
        inspector.visit_tabs(window.train_panel, f"{label} Train")
        for action in tool_actions:
            action.trigger()
            tool = window.tools.get(registered[action])
            if tool is None:
                continue
            if hasattr(tool, "sessionReady"):  # Prune opens on the selected run: loading it
                qtbot.waitUntil(lambda t=tool: t.session is not None, timeout=WAIT_MS)
                tool.slider.setValue(50)  # the per-layer sliders, disabled while the scope
                qtbot.waitUntil(lambda t=tool: t.result is not None  # is global, show it
                                and t.result.config.amount == 0.5, timeout=WAIT_MS)
            if hasattr(tool, "overviewShown"):  # Inspect opens the selected run, a sample,
                qtbot.waitUntil(lambda t=tool: t.overview is not None  # and its class averages
                                and t.sample.insight is not None, timeout=WAIT_MS)
                if tool.classes.result is None:
                    tool.compute_classes()
                    qtbot.waitUntil(lambda t=tool: t.classes.result is not None,
                                    timeout=WAIT_MS)
            if hasattr(tool, "add_runs") and not tool.comparison.variants:
                with qtbot.waitSignal(tool.runsRead, timeout=WAIT_MS):
                    tool.add_runs(run_dirs)  # curves to draw, as "Add past runs…" gives
            if hasattr(tool, "is_running"):  # a tool that starts work when opened (the rate
                qtbot.waitUntil(lambda t=tool: not t.is_running(), timeout=WAIT_MS)  # finder)
            where = f"{label} {registered[action]}"
            inspector.check(where)
            inspector.visit_tabs(tool, where)
            if isinstance(tool, QDialog):
                tool.close()
        problems += inspector.problems
        assert inspector.seen >= 12

    watchdog.stop()
    window.undo.setClean()
    window.close()
    assert window.workspace.jobs.names() == []
    problems += modal_problems
    assert not problems, "\n".join(dict.fromkeys(problems))
