"""The Compress view and the Export dialog's quantization, driven through their buttons on
small trained runs, with screenshots; the Tools menu opens the view on the selected run."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from prune_fixtures import MLP, train_run  # noqa: E402
from PySide6.QtCore import QPointF, Qt, Signal  # noqa: E402
from PySide6.QtWidgets import QApplication, QLabel  # noqa: E402

from workbench.core.store.runs import Run  # noqa: E402
from workbench.core.tools.prune import PruneConfig, PruneSession  # noqa: E402
from workbench.core.tools.prune_apply import create_pruned_run  # noqa: E402
from workbench.core.workspace import Workspace  # noqa: E402
from workbench.gui.tools.compress.panel import CompressPanel  # noqa: E402
from workbench.gui.tools.export.dialog import ExportDialog  # noqa: E402
from workbench.spec import from_dict  # noqa: E402

SHOTS = Path(__file__).resolve().parent.parent / "screenshots"
LONG = 600_000  # ms: exports and quantizations on a busy 2-core machine


@pytest.fixture(scope="module")
def family(tmp_path_factory) -> tuple[str, str, Workspace]:
    root = tmp_path_factory.mktemp("compress-gui")
    workspace = Workspace(root)
    run_dir = train_run(root, MLP, epochs=2)
    child = create_pruned_run(PruneSession(run_dir, source=workspace),
                              PruneConfig(0.5, structured=True), runs=workspace.runs)
    return run_dir, child.run_dir, workspace


def _shot(widget, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    widget.grab().save(str(SHOTS / name))


def _open(qtbot, workspace: Workspace, run_dir: str) -> CompressPanel:
    panel = CompressPanel(workspace)
    qtbot.addWidget(panel)
    panel.resize(1200, 760)
    panel.show()
    qtbot.waitExposed(panel)
    with qtbot.waitSignal(panel.frontierShown, timeout=60_000):
        panel.set_run(run_dir)
    return panel


def _click_point(qtbot, panel: CompressPanel, index: int) -> None:
    """A real mouse click on the point of variant `index`, on the plot as a person sees it:
    painted once (its axes take the width their labels need) and laid out again."""
    panel.plot.grab()
    QApplication.processEvents()
    spot = next(s for s in panel.scatter.points() if s.data() == index)
    view = panel.plot.getPlotItem().vb
    scene = view.mapViewToScene(QPointF(spot.pos().x(), spot.pos().y()))
    pos = panel.plot.mapFromScene(scene)
    qtbot.mouseMove(panel.plot.viewport(), pos)
    qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_measure_draws_the_front_and_a_click_exports(qtbot, family, tmp_path):
    run_dir, child_dir, workspace = family
    panel = _open(qtbot, workspace, run_dir)
    assert panel.picker.currentData() == run_dir
    with qtbot.waitSignal(panel.frontierShown, timeout=LONG,
                          check_params_cb=lambda variants: len(variants) >= 4):
        qtbot.mouseClick(panel.measure_button, Qt.MouseButton.LeftButton)
    kinds = {(Path(v.run_dir).name, v.kind) for v in panel.variants}
    assert kinds == {(Path(run_dir).name, "fp32"), (Path(run_dir).name, "int8-dynamic"),
                     (Path(child_dir).name, "fp32"), (Path(child_dir).name, "int8-dynamic")}
    assert len(panel.scatter.points()) == 4
    front = panel.front
    assert front and front[0].measured.bytes == min(v.measured.bytes for v in panel.variants)
    xs, _ = panel.front_curve.getData()
    assert len(xs) == len(front)
    smallest = panel.variants.index(front[0])
    tip = panel.frontier.tip(0, 0, smallest)
    assert "KB" in tip and "test accuracy" in tip
    qtbot.waitUntil(lambda: not panel.busy(), timeout=60_000)
    with qtbot.waitSignal(panel.variantSelected, timeout=10_000) as chosen:
        _click_point(qtbot, panel, smallest)
    assert chosen.args[0] is panel.variants[smallest]
    assert "Pareto front" in panel.details.text() and panel.export_button.isEnabled()
    _shot(panel, "compress_frontier.png")
    panel.axis.setCurrentIndex(1)
    assert panel.plot.getAxis("bottom").labelText.startswith("latency at batch 1")
    panel.axis.setCurrentIndex(0)
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    dialog = panel.export_dialog
    assert isinstance(dialog, ExportDialog) and dialog.run_dir == panel.selected.run_dir
    assert dialog.quantize.currentData() == "dynamic"
    dialog.path_edit.setText(str(tmp_path / "chosen.onnx"))
    with qtbot.waitSignal(dialog.exported, timeout=LONG):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "chosen.onnx").is_file()
    text = dialog.status.text()
    assert "Verified" in text and "int8-dynamic" in text and "smaller than float32" in text
    qtbot.waitUntil(lambda: dialog.export_button.isEnabled(), timeout=10_000)
    _shot(dialog, "export_dialog_quantized.png")
    dialog.close()
    panel.shutdown()
    assert not panel.busy()


def test_find_the_smallest_through_the_buttons(qtbot, family):
    run_dir, _, workspace = family
    panel = _open(qtbot, workspace, run_dir)
    panel.max_drop.setValue(2.0)
    panel.epochs.setValue(0)
    with qtbot.waitSignal(panel.targetDone, timeout=LONG) as done:
        qtbot.mouseClick(panel.target_button, Qt.MouseButton.LeftButton)
        assert panel.stop_button.isEnabled() and not panel.measure_button.isEnabled()
    result = done.args[0]
    assert result.best is not None and not result.stopped
    assert panel.selected is not None and panel.selected.run_dir == result.best.run_dir
    log = panel.log.toPlainText()
    assert "sweep" in log and "probe" in log and "Smallest within 2 points" in log
    probes = [s for s in result.steps if s.action == "probe" and s.run_dir]
    assert probes and all(Run(Path(s.run_dir)).summary()["parent"] == run_dir for s in probes)
    assert {v.run_dir for v in panel.variants} >= {s.run_dir for s in probes}
    _shot(panel, "compress_target.png")
    with qtbot.waitSignal(panel.targetDone, timeout=LONG) as stopped:
        qtbot.mouseClick(panel.target_button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert stopped.args[0].stopped
    qtbot.waitUntil(lambda: not panel.busy(), timeout=60_000)
    assert panel.target_button.isEnabled()
    panel.shutdown()


def test_value_ranges_tab_shows_each_layer(qtbot, family):
    run_dir, _, workspace = family
    panel = _open(qtbot, workspace, run_dir)
    panel.tabs.setCurrentIndex(1)
    page = panel.ranges_page
    page.samples.setValue(64)
    with qtbot.waitSignal(panel.rangesShown, timeout=120_000) as shown:
        qtbot.mouseClick(page.ranges_button, Qt.MouseButton.LeftButton)
    ranges = shown.args[0]
    assert page.range_table.rowCount() == len(ranges)
    assert {r.label for r in ranges} >= {"2 Linear", "3 ReLU", "6 Linear"}  # as the editor
    assert page.layer.count() == len({r.label for r in ranges})
    page.range_table.setCurrentCell(3, 0)
    assert page.layer.currentText() == ranges[3].label
    bars = [i for i in page.hist.getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    assert bars
    _shot(panel, "compress_ranges.png")
    panel.shutdown()


def test_panel_says_why_a_run_cannot_be_measured(qtbot, tmp_path):
    workspace = Workspace(tmp_path)
    spec_run = workspace.runs.create(from_dict({"name": "never-trained", "data": {"name": "moons"},
                                       "model": {"layers": [{"type": "Linear", "out": 2}]}}))
    spec_run.update_summary(status="finished")
    panel = _open(qtbot, workspace, str(spec_run.path))
    assert "Not measured yet" in panel.status.text()
    qtbot.mouseClick(panel.measure_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "no trained weights" in panel.status.text(), timeout=60_000)
    qtbot.waitUntil(lambda: not panel.busy(), timeout=10_000)
    panel.shutdown()


class _FakeTrainPanel(QLabel):
    runStarted = Signal(object)
    runEnded = Signal(object)
    inspectRequested = Signal(str, int)

    def __init__(self, get_spec, runs, parent=None) -> None:
        super().__init__("training panel", parent)

    def set_blocked(self, reason):
        return None

    def is_running(self):
        return False

    def stop_and_wait(self):
        return None

    def show_run(self, run_dir):
        return True


def test_tools_menu_opens_compress_on_the_selected_run(qtbot, family, monkeypatch):
    from workbench.gui.shell.main_window import MainWindow
    from workbench.gui.widgets import dialogs

    monkeypatch.setattr(dialogs, "ask", lambda *a, **k: dialogs.Button.Discard)
    run_dir, child_dir, workspace = family
    window = MainWindow(workspace=workspace, train_panel_factory=_FakeTrainPanel)
    qtbot.addWidget(window)
    if window.train_panel is None:
        with qtbot.waitSignal(window.trainPanelReady, timeout=120_000):
            pass
    window.history.select(child_dir)  # once the Runs list shows it: it follows the store
    qtbot.waitUntil(lambda: window.history.selected_path() == child_dir, timeout=20_000)
    action = window.actions["compress"]
    assert action.isEnabled() and action.text().replace("&", "") == "Compress…"
    action.trigger()
    panel = window.center.currentWidget()
    assert isinstance(panel, CompressPanel)
    qtbot.waitUntil(lambda: panel.run_dir == child_dir, timeout=60_000)
    window._close_tool_tab(window.center.indexOf(panel))
    assert not panel.busy()
    window.close()
