"""The Inspect tool: what a trained network learned and why it answers as it does, on the run's
own data (loaded as every tool loads it, from the workspace's cache).

Four pages: *Layers* (the first layer's weights as images or as a table by feature; for a 2-D
set every unit's output over the plane, as TensorFlow Playground draws its neurons), *Sample*
(any test sample, or a misclassified one: its answer, attribution maps with their colour
scales and how to read each, the probabilities and every layer's output), *Classes* (each
class's average attribution) and *Equation* (a network with no hidden layer, in the data's own
units). A page that does not apply to the run is greyed, its tooltip saying why.

Everything is computed on the panel's worker (`gui/threads/tasks.py`): opening a run, a
sample, the class averages. A newer request cancels the one before, and what a cancelled or
stale task returns is dropped; closing the tab stops them all.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.workspace import Workspace
from workbench.gui.threads.run_feed import RunCombo, RunFeed
from workbench.gui.threads.tasks import Tasks
from workbench.gui.tools.inspect.pages import ClassesPage, EquationPage, LayersPage
from workbench.gui.tools.inspect.presenter import (
    NO_RUN,
    Overview,
    classes_work,
    expected_errors,
    open_overview,
    page_reasons,
    run_text,
    sample_work,
)
from workbench.gui.tools.inspect.sample_page import SamplePage
from workbench.gui.tools.registry import Tool, ToolHost
from workbench.gui.widgets.layouts import vertical_scroll
from workbench.gui.widgets.style import ALERT

TITLES = {"layers": "Layers", "sample": "Sample", "classes": "Classes",
          "equation": "Equation"}


class InspectPanel(Tool, QWidget):
    """Inspect a run of the workspace: `set_run(run_dir, sample=N)` or the run picker (which
    follows `feed`, the Runs list's, when given). `overviewShown(Overview)`,
    `sampleShown(SampleInsight)` and `classesShown(ClassAttribution)` once each is drawn."""

    overviewShown = Signal(object)
    sampleShown = Signal(object)
    classesShown = Signal(object)
    failed = Signal(str)

    def __init__(self, workspace: Workspace, parent: QWidget | None = None, *,
                 feed: RunFeed | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.overview: Overview | None = None
        self.tasks = Tasks(self, workspace.jobs)  # kinds: open, sample, classes
        self._chosen: str | None = None  # the run opened or opening
        self._wanted_sample: int | None = None
        self._build()
        if feed is not None:
            self.picker.follow(feed)
        else:
            self.picker.refresh()

    # -- the tool protocol -----------------------------------------------------------------
    @classmethod
    def open_tool(cls, host: ToolHost, run_dir: str | None, **options: Any) -> InspectPanel:
        panel = cls(host.workspace, host.parent_widget(), feed=host.run_feed())
        if run_dir is not None:
            panel.set_run(run_dir, sample=options.get("sample"))
        return panel

    def show_run(self, run_dir: str, **options: Any) -> None:
        sample = options.get("sample")
        if str(run_dir) == self._chosen and sample is not None:
            self.show_sample(int(sample), focus=True)  # the run is open (or opening)
        else:
            self.set_run(run_dir, sample=sample)

    def working_on(self) -> str | None:
        return self._chosen

    def shutdown(self) -> None:
        """Cancel every task and wait for its thread (the tab or the window closes)."""
        self.tasks.shutdown()
        self.picker.shutdown()

    def busy(self) -> bool:
        return self.tasks.is_running() or self.tasks.threads() > 0

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Run"))
        self.picker = RunCombo(self.workspace.runs, jobs=self.workspace.jobs)
        self.picker.runChosen.connect(self.set_run)
        self.picker.offered.connect(self._offered)
        top.addWidget(self.picker, 1)
        self.status = QLabel(NO_RUN)
        self.status.setWordWrap(True)
        self.layers = LayersPage()
        self.sample = SamplePage()
        self.sample.sampleRequested.connect(self._sample_requested)
        self.classes = ClassesPage()
        self.equation = EquationPage()
        self.pages = {"layers": self.layers, "sample": self.sample, "classes": self.classes,
                      "equation": self.equation}
        self.tabs = QTabWidget()
        self.scrolls: dict[str, QWidget] = {}
        for key, page in self.pages.items():
            scroll = vertical_scroll(page)  # a page scrolls down rather than outgrow the tab
            self.scrolls[key] = scroll
            self.tabs.addTab(scroll, TITLES[key])
        self.tabs.currentChanged.connect(self._tab_changed)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        self._enable_pages(None)

    def page(self, key: str) -> int:
        return self.tabs.indexOf(self.scrolls[key])

    def _enable_pages(self, reasons: dict[str, str | None] | None) -> None:
        """Grey the pages that do not apply (None: a run is opening, every page waits for it),
        keeping the page shown when it still applies (Qt would move to another by itself)."""
        current = self.tabs.currentIndex()
        self.tabs.blockSignals(True)
        for key in self.pages:
            reason = None if reasons is None else reasons.get(key)
            index = self.page(key)
            self.tabs.setTabEnabled(index, reason is None)
            self.tabs.setTabToolTip(index, "" if reason is None else f"Not for this run: "
                                                                      f"{reason}")
        if not self.tabs.isTabEnabled(current):
            current = next((self.page(k) for k in self.pages
                            if self.tabs.isTabEnabled(self.page(k))), 0)
        self.tabs.setCurrentIndex(current)
        self.tabs.blockSignals(False)

    # -- the run --------------------------------------------------------------------------
    def run_dir(self) -> str | None:
        return self._chosen

    def set_run(self, run_dir: str, sample: int | None = None) -> None:
        """Open `run_dir` (off the GUI thread), then show `sample` (default: the first
        misclassified test sample, else sample 0)."""
        self.tasks.cancel()
        self.picker.set_run(run_dir)
        self._chosen = str(run_dir)
        self._wanted_sample = None if sample is None else int(sample)
        self.overview = None
        for page in (self.layers, self.sample, self.classes, self.equation):
            page.clear()
        self._enable_pages(None)
        self.status.setText(f"Opening {html.escape(Path(run_dir).name)}…")
        workspace = self.workspace
        path = str(run_dir)
        self.tasks.start("open", lambda emit, cancel: open_overview(workspace, path, emit,
                                                                    cancel),
                         partial=self._opening, done=self._on_overview,
                         failed=self._on_failed, expected=expected_errors())

    def _offered(self) -> None:
        """Opened before any run could be inspected: the first that can, once listed."""
        if self._chosen is None and self.picker.run_dir() is not None:
            self.set_run(self.picker.run_dir())

    def _opening(self, step: str) -> None:
        self.status.setText(f"Opening {html.escape(Path(self._chosen or '').name)}: "
                            f"{html.escape(str(step))}…")

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"<span style='color:{ALERT}'>Cannot inspect this run: "
                            f"{html.escape(message)}</span>")
        self.failed.emit(message)

    def _on_overview(self, ov: Overview) -> None:
        self.overview = ov
        reasons = page_reasons(ov)
        self._enable_pages(reasons)
        self.status.setText(run_text(ov))
        self.layers.set_overview(ov, reasons["layers"])
        self.sample.set_overview(ov)
        self.equation.set_overview(ov)
        self.overviewShown.emit(ov)
        wanted = self._wanted_sample
        if reasons["sample"] is None:
            first_wrong = ov.predictions.misclassified(limit=1)
            index = wanted if wanted is not None else (first_wrong[0][0] if first_wrong else 0)
            self.show_sample(index, focus=wanted is not None)
        self._tab_changed(self.tabs.currentIndex())

    # -- a sample -------------------------------------------------------------------------
    def show_sample(self, index: int, target: int | None = None, *,
                    focus: bool = False) -> None:
        """Explain test sample `index` (toward class `target`, else the answer); `focus`
        brings the Sample page to the front."""
        self._wanted_sample = index
        ov = self.overview
        if ov is None:
            return  # shown once the run is open
        if not 0 <= index < ov.test_size:
            self.sample.answer.setText(f"Test sample {index}: the test split has "
                                       f"{ov.test_size:,} samples, numbered 0 to "
                                       f"{ov.test_size - 1:,}.")
            return
        self.sample.select(index)
        if focus:
            self.tabs.setCurrentIndex(self.page("sample"))
        inspection = ov.inspection
        self.tasks.start("sample", lambda _emit, cancel: sample_work(inspection, index, target,
                                                                     cancel),
                         done=self._on_sample, failed=self._sample_failed,
                         expected=expected_errors())

    def _sample_requested(self, index: int, target: Any) -> None:
        self.show_sample(index, target)

    def _on_sample(self, insight: Any) -> None:
        self.sample.show_insight(insight)
        self.sampleShown.emit(insight)

    def _sample_failed(self, message: str) -> None:
        self.sample.answer.setText(f"Cannot explain this sample: {message}")

    # -- the class averages -----------------------------------------------------------------
    def _tab_changed(self, index: int) -> None:
        if index == self.page("classes") and self.overview is not None \
                and self.classes.result is None and not self.tasks.is_running("classes") \
                and self.tabs.isTabEnabled(index):
            self.compute_classes()

    def compute_classes(self) -> None:
        ov = self.overview
        if ov is None:
            return
        inspection = ov.inspection
        self.classes.working()
        self.tasks.start("classes", lambda emit, cancel: classes_work(inspection, emit, cancel),
                         partial=lambda p: self.classes.working(*p), done=self._on_classes,
                         failed=self.classes.failed, expected=expected_errors())

    def _on_classes(self, view: Any) -> None:
        if self.overview is None:
            return
        self.classes.show_result(view, self.overview)
        self.classesShown.emit(view)


def _sample() -> None:
    """Open the tool alone on a freshly trained sample run (`python -m
    workbench.gui.tools.inspect.panel`)."""
    import pyqtgraph as pg

    from workbench.gui.demo import demo_workspace, sample_run, show_alone
    from workbench.gui.widgets.style import apply_style

    app = pg.mkQApp("Inspect")
    apply_style(app)
    workspace = demo_workspace()
    run_dir = sys.argv[1] if len(sys.argv) > 1 else sample_run(workspace.runs)
    panel = InspectPanel(workspace)
    panel.set_run(run_dir)
    sys.exit(show_alone(panel, (900, 720)))


if __name__ == "__main__":
    _sample()
