"""The Runs list: the hub of the app. Every run of the store, newest first (a damaged run is
listed as damaged, never fatal), kept current by a `RunFeed` without a Refresh button, the
selection kept across updates and in view. Runs that share a name say what tells them apart
(`run_rules.run_labels`, the pickers' rule too). Selecting a run plots its stored curves (read
off the GUI thread). Its actions, from the buttons below the list, their More menu, the
context menu and the Delete key, work on the selected run: open it in the editor, prune,
export, compress, add it to the comparison, resume, fork, show its folder, delete it. An
action that does not apply to the run is disabled, and its tooltip says why.

The list does what needs no window itself (show the folder, delete); the rest it asks of the
window through a signal carrying the run folder.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.store.errors import RunError
from workbench.core.store.metrics import MetricSeries, read_series
from workbench.core.store.runs import Run, RunInfo, RunStatus, RunStore
from workbench.core.training.outcome import stored_warnings
from workbench.gui.run_rules import result_text, run_labels, why_not
from workbench.gui.shell.help_views import plain
from workbench.gui.shell.presenter import list_actions
from workbench.gui.threads.run_feed import RunFeed
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.registry import TOOLS, ToolEntry
from workbench.gui.views.axes import plot_widget
from workbench.gui.widgets import dialogs
from workbench.gui.widgets.style import ACCENT, ERROR, SUSPECT, legend_html, series_color

_COLUMNS = ("Run", "Status", "Data", "Optimizer", "Result", "When")
DEFAULT_ROWS = 8  # the rows the list shows on a first start (a laptop screen included)
VAL_COLOR = series_color(1)  # beside the training loss's ACCENT, the first series colour


def show_folder(path: str) -> bool:
    """Open a folder in the desktop's file manager (tests replace this)."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


class RunHistory(QWidget):
    """The Runs list. Emits `openRequested(run_dir)`, `resumeRequested(run_dir)` and
    `toolRequested(key, run_dir)` (a tool of the registry on the run) for what the window
    does; `listed(infos)` after an update (the first listing too: `listed_once` says the
    store's runs are known)."""

    openRequested = Signal(str)  # a run folder
    resumeRequested = Signal(str)
    toolRequested = Signal(str, str)  # a tool's key, a run folder
    deleted = Signal(str)
    listed = Signal(object)  # list[RunInfo], after the list shows them

    def __init__(self, runs: RunStore, parent: QWidget | None = None, *, jobs: Any = None,
                 busy: Callable[[], set[str]] | None = None,
                 tools: Sequence[ToolEntry] = TOOLS) -> None:
        super().__init__(parent)
        self.runs = runs
        self.offers = {a.key: a for a in list_actions(tools)}
        self.infos: list[RunInfo] = []
        self.listed_once = False  # the store has been listed: `infos` is what it holds
        self.busy = busy or set  # run folders the app is working on (never deleted)
        self.tasks = Tasks(self, jobs)
        self.feed = RunFeed(runs, self, jobs=jobs)
        self.feed.listed.connect(self._fill)
        self._wanted: str | None = None  # a run to select once a listing names it
        self._plotted: tuple[str, Any] | None = None
        self.tree = QTreeWidget()
        self.tree.setObjectName("runs")
        self.tree.setHeaderLabels(list(_COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.itemDoubleClicked.connect(lambda *_: self.open_selected())
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.actions: dict[str, QAction] = {}
        for key, offer in self.offers.items():
            action = QAction(offer.text, self)
            action.triggered.connect(lambda *_, k=key: self.trigger(k))
            self.actions[key] = action
        delete = self.actions["delete"]  # the Delete key, while the list has the focus
        delete.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        delete.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.tree.addAction(delete)
        self.menu = QMenu(self)  # the context menu and the More button's menu
        self.menu.setToolTipsVisible(True)
        primary = [a.key for a in self.offers.values() if a.primary]
        more = [a.key for a in self.offers.values() if not a.primary]
        for key in self.offers:
            if key in (more[0], "folder"):  # the buttons' actions, the tools', the files'
                self.menu.addSeparator()
            self.menu.addAction(self.actions[key])
        self.more_menu = QMenu(self)
        self.more_menu.setToolTipsVisible(True)
        for key in more:
            self.more_menu.addAction(self.actions[key])
        self.buttons: dict[str, QPushButton] = {}
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        for key in primary:
            button = QPushButton(self.actions[key].text())
            button.clicked.connect(self.actions[key].trigger)
            self.buttons[key] = button
            buttons.addWidget(button)
        self.more_button = QPushButton("More")
        self.more_button.setToolTip(", ".join(
            [plain(self.offers[more[0]].text)] + [plain(self.offers[k].text).lower()
                                                   for k in more[1:]]))
        self.more_button.setMenu(self.more_menu)
        buttons.addWidget(self.more_button)
        buttons.addStretch(1)
        self.open_button = self.buttons["open"]
        self.note = QLabel("")
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.plot = plot_widget()
        self.plot.setMinimumWidth(240)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "loss")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(False, False)
        self.plot_legend = QLabel(legend_html([(ACCENT, "training loss", True),
                                               (VAL_COLOR, "validation loss", True)]))
        self.plot_legend.setObjectName("hint")
        plot_box = QWidget()
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        plot_layout.setSpacing(0)
        plot_layout.addWidget(self.plot_legend)  # above the curves, never over them
        plot_layout.addWidget(self.plot, 1)
        self.plot_box = plot_box
        left = QVBoxLayout()
        self._left = left
        left.addWidget(self.tree, 1)
        left.addLayout(buttons)
        left.addWidget(self.note)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(left, 3)
        layout.addWidget(plot_box, 2)
        self._update_actions()
        self.feed.start()

    # -- the list ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """List the store again now (off the GUI thread); `listed` when it shows a change."""
        self.feed.refresh()

    def _current_changed(self, *_: Any) -> None:
        self._wanted = None  # the person chose: a run asked for earlier no longer counts
        self._show_selected()

    def _fill(self, infos: list[RunInfo]) -> None:
        paths = [str(i.path) for i in infos]
        asked = self._wanted if self._wanted in set(paths) else None
        selected = asked or self.selected_path()
        # the selected run stays in view when it was (or was just asked for); a person who
        # scrolled away from it keeps their place
        keep_in_view = asked is not None or self._in_view(self.tree.currentItem())
        scroll = self.tree.verticalScrollBar().value()
        self.tree.blockSignals(True)
        changed = self._sync_rows(infos, run_labels(infos))
        current = None
        for index, path in enumerate(paths):
            if path == selected:
                current = self.tree.topLevelItem(index)
                self.tree.setCurrentItem(current)
                if self._wanted == selected:
                    self._wanted = None
        self.tree.blockSignals(False)
        if changed:
            for col in range(len(_COLUMNS)):
                self.tree.resizeColumnToContents(col)
        self.tree.verticalScrollBar().setValue(scroll)
        if current is not None and keep_in_view:
            self.tree.scrollToItem(current, QAbstractItemView.ScrollHint.EnsureVisible)
        self.infos = infos
        self._show_selected()
        self.listed_once = True
        self.listed.emit(infos)

    def _sync_rows(self, infos: list[RunInfo], labels: list[str]) -> bool:
        """Make the rows say `infos`, touching only what changed: a run made or deleted is a
        row inserted or taken out, a run whose info changed is rewritten in place (the
        listing shares an unchanged run's info), and only runs that changed order rebuild the
        list. Rebuilding a list of 200 runs took 45-75 ms of the GUI thread each time a run
        training beside it changed. True when a row's text changed."""
        tree = self.tree
        rows = {tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole): tree.topLevelItem(i)
                for i in range(tree.topLevelItemCount())}
        wanted = {str(i.path) for i in infos}
        if [p for p in rows if p in wanted] != [str(i.path) for i in infos
                                                 if str(i.path) in rows]:
            tree.clear()  # runs that changed order
            rows = {}
        before = {str(i.path): i for i in self.infos}
        changed = False
        for path in [p for p in rows if p not in wanted]:
            tree.takeTopLevelItem(tree.indexOfTopLevelItem(rows.pop(path)))
            changed = True
        for index, (info, label) in enumerate(zip(infos, labels, strict=True)):
            item = rows.get(str(info.path))
            if item is None:
                tree.insertTopLevelItem(index, self._item(info, label))
                changed = True
                continue
            if before.get(str(info.path)) is info and item.text(0) == label:
                continue
            fresh = self._item(info, label)
            for col in range(len(_COLUMNS)):
                if item.text(col) != fresh.text(col):
                    item.setText(col, fresh.text(col))
                    changed = True
                item.setToolTip(col, fresh.toolTip(col))
                item.setForeground(col, fresh.foreground(col))
        return changed

    def _in_view(self, item: QTreeWidgetItem | None) -> bool:
        """Whether the row of `item` shows in the list's visible area."""
        if item is None:
            return False
        rect = self.tree.visualItemRect(item)
        return rect.isValid() and self.tree.viewport().rect().intersects(rect)

    def row_height(self) -> int:
        """The height of one row of the list, in pixels."""
        probe = QTreeWidgetItem(["probe"])
        self.tree.addTopLevelItem(probe)
        height = self.tree.sizeHintForRow(self.tree.indexOfTopLevelItem(probe))
        self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(probe))
        return height

    def rows_shown(self) -> int:
        """How many whole rows the list's visible area holds now."""
        return self.tree.viewport().height() // max(1, self.row_height())

    def default_height(self, rows: int = DEFAULT_ROWS) -> int:
        """The height this widget needs to show `rows` rows of runs (the dock's first size)."""
        tree = (rows * self.row_height() + self.tree.header().sizeHint().height()
                + 2 * self.tree.frameWidth() + 2)
        margins = self.layout().contentsMargins()
        rest = self._left.sizeHint().height() - self.tree.sizeHint().height()
        return tree + max(0, rest) + margins.top() + margins.bottom()

    def _item(self, info: RunInfo, label: str) -> QTreeWidgetItem:
        s = info.summary
        when = time.strftime("%d %b %H:%M", time.localtime(s["created"])) \
            if isinstance(s.get("created"), int | float) else ""
        status = "damaged" if info.error else str(s.get("status", ""))
        item = QTreeWidgetItem([label, status, str(s.get("dataset", "")),
                                str(s.get("optimizer", "")), result_text(s), when])
        item.setData(0, Qt.ItemDataRole.UserRole, str(info.path))
        item.setToolTip(0, str(info.path))
        warnings = stored_warnings(s) if not info.error else []
        if warnings:  # it ended, but did not learn: say so where the result is
            item.setText(4, f"\u26a0 {item.text(4)} (suspect)")
            item.setForeground(4, QBrush(QColor(SUSPECT)))
            item.setToolTip(4, "\n".join(f"{w.message}; try: {w.hint}" for w in warnings))
        if info.error:
            for col in range(len(_COLUMNS)):
                item.setForeground(col, QBrush(QColor(ERROR)))
                item.setToolTip(col, info.error)
        elif info.status == RunStatus.INTERRUPTED:
            item.setToolTip(1, "Its process ended without saying how (killed, or the "
                               "machine stopped). " + (
                                   "Resume continues it from its last checkpoint."
                                   if info.resumable else
                                   "It had no checkpoint yet, so it cannot be resumed."))
        return item

    def selected_path(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def selected_info(self) -> RunInfo | None:
        path = self.selected_path()
        return next((i for i in self.infos if str(i.path) == path), None)

    def select(self, run_dir: str) -> None:
        """Select a run; one the list does not show yet is selected once it does."""
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == str(run_dir):
                self.tree.setCurrentItem(item)
                self.tree.scrollToItem(item, QAbstractItemView.ScrollHint.EnsureVisible)
                self._wanted = None
                return
        self._wanted = str(run_dir)
        self.refresh()

    # -- actions ----------------------------------------------------------------------------
    def why_not(self, key: str) -> str | None:
        """Why action `key` does not apply to the selected run now (None: it does)."""
        info = self.selected_info()
        reason = why_not(key, info, self.offers[key].needs)
        if reason is None and key == "delete" and info is not None \
                and str(info.path) in self.busy():
            reason = "the app is working on it: stop or close what uses it first"
        return reason

    def _update_actions(self) -> None:
        for key, offer in self.offers.items():
            tip = offer.tip
            reason = self.why_not(key)
            action = self.actions[key]
            action.setEnabled(reason is None)
            action.setToolTip(tip if reason is None else f"{tip}: not now, {reason}")
            button = self.buttons.get(key)
            if button is not None:  # a disabled button still shows why in its tooltip
                button.setEnabled(reason is None)
                button.setToolTip(action.toolTip())

    def _context_menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        if item is not None:
            self.tree.setCurrentItem(item)
        self._update_actions()
        self.menu.popup(self.tree.viewport().mapToGlobal(pos))

    def trigger(self, key: str) -> bool:
        """Do action `key` on the selected run; False when it does not apply."""
        info = self.selected_info()
        if info is None or self.why_not(key) is not None:
            return False
        path = str(info.path)
        if key == "folder":
            return show_folder(path)
        if key == "delete":
            return self.delete_selected()
        if key == "open":
            self.openRequested.emit(path)
        elif key == "resume":
            self.resumeRequested.emit(path)
        else:
            self.toolRequested.emit(key, path)
        return True

    def open_selected(self) -> None:
        self.trigger("open")

    def delete_selected(self) -> bool:
        """Ask, then remove the selected run (off the GUI thread); a run in use is refused."""
        info = self.selected_info()
        reason = self.why_not("delete")
        if info is None:
            return False
        name = info.summary.get("name", info.name)
        if reason is not None:
            dialogs.warn(self, "Cannot delete the run", f"{name} cannot be deleted: {reason}.")
            return False
        answer = dialogs.ask(self, "Delete the run?",
                             f"Delete {name} ({info.name}) and every file in its folder?\n\n"
                             f"{info.path}\n\nThis cannot be undone.")
        if answer != dialogs.Button.Yes:
            return False
        runs, path = self.runs, info.path
        self.tasks.start("delete", lambda _report, _cancel: runs.delete(path),
                         done=lambda _: self._deleted(str(path)),
                         failed=lambda message: self._delete_failed(name, message),
                         expected=(RunError,))
        return True

    def _deleted(self, path: str) -> None:
        self.note.setText(f"Deleted {Path(path).name}")
        self.deleted.emit(path)
        self.refresh()

    def _delete_failed(self, name: str, message: str) -> None:
        dialogs.warn(self, "Cannot delete the run", f"{name} was not deleted: {message}")
        self.refresh()

    # -- the selected run's curves ----------------------------------------------------------
    def _show_selected(self) -> None:
        info = self.selected_info()
        self._update_actions()
        self.plot_box.setVisible(info is not None and info.error is None)
        if info is None:
            self.plot.clear()
            self._plotted = None
            self.note.setText(f"{len(self.infos)} runs in {self.runs.root}")
            return
        if info.error:
            self.note.setText(f"Damaged: {info.error}")
            return
        self.note.setText(info.summary.get("error") or "")
        key = (str(info.path), info.summary)
        if key == self._plotted:
            return  # the same run, unchanged: its curves are drawn
        self._plotted = key
        path = info.path
        self.tasks.start("plot", lambda _report, _cancel: read_series(Run(path)),
                         done=self._plot, expected=(RunError, OSError))

    def _plot(self, series: MetricSeries) -> None:
        self.plot.clear()
        epochs: list[float] = []
        values: list[float] = []
        for key, color in (("train_loss", ACCENT), ("val_loss", VAL_COLOR)):
            xs, ys = series.points("epochs", "epoch", key)
            if len(xs):  # a dot per epoch, so a run of one epoch shows too
                self.plot.plot(xs, ys, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=5,
                               symbolBrush=color, symbolPen=None)
                epochs.extend(float(x) for x in xs)
                values.extend(float(y) for y in ys if math.isfinite(y))
        self._fit_range(epochs, values)

    def shutdown(self) -> None:
        """Stop following the store; wait for every listing, plot and delete in flight."""
        self.feed.shutdown()
        self.tasks.shutdown()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()  # shown on its own (a test, `python -m`): its threads end with it
        super().closeEvent(event)

    def _fit_range(self, epochs: list[float], values: list[float]) -> None:
        """Epochs from 0 to the last, the loss from 0 to its largest: a short run keeps
        sensible axes instead of pyqtgraph's band around a single point."""
        if not epochs or not values:
            self.plot.setXRange(0, 1)
            self.plot.setYRange(0, 1)
            return
        last = max(1.0, max(epochs))
        self.plot.setXRange(-0.04 * last, 1.04 * last, padding=0)  # room for the dots
        top = max(values)
        self.plot.setYRange(0, top * 1.1 if top > 0 else 1.0, padding=0)


def _sample() -> None:
    import sys

    from PySide6.QtWidgets import QApplication

    from workbench.gui.demo import show_alone
    from workbench.gui.widgets.style import apply_style

    app = QApplication.instance() or QApplication(sys.argv)
    apply_style(app)
    history = RunHistory(RunStore())
    sys.exit(show_alone(history, (900, 300)))


if __name__ == "__main__":
    _sample()
