"""The Prune panel and the Export dialog on a real trained run, with screenshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from prune_fixtures import MLP, train_run

from workbench.core.workspace import Workspace
from workbench.gui.tools.export.dialog import ExportDialog
from workbench.gui.tools.prune.panel import PrunePanel

SHOTS = Path(__file__).resolve().parent.parent / "screenshots"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    return train_run(tmp_path_factory.mktemp("runs"), MLP)


def _shot(widget, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    widget.grab().save(str(SHOTS / name))


def test_slider_changes_the_shown_accuracy_and_sweep_fills_plot(qtbot, run_dir, tmp_path):
    panel = PrunePanel(Workspace(tmp_path))
    qtbot.addWidget(panel)
    panel.resize(900, 950)
    panel.show()
    with qtbot.waitSignal(panel.sessionReady, timeout=60000):
        panel.set_run(run_dir)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=30000)
    first = panel.readout.text()
    with qtbot.waitSignal(panel.evaluated, timeout=30000,
                          check_params_cb=lambda r: r.config.amount == 0.95):
        panel.set_amount(95)
    assert panel.result.sparsity == pytest.approx(0.95, abs=1e-3)
    assert panel.readout.text() != first
    assert panel.result.val_accuracy < panel.session.baseline.val_accuracy
    assert panel.table.item(0, 3).text().endswith("%")
    with qtbot.waitSignal(panel.sensitivityDone, timeout=60000):
        panel.start_sensitivity()
    assert set(panel.sensitivity.points) == {1, 3, 5, None}
    assert all(len(v) == 12 for v in panel.sensitivity.points.values())
    with qtbot.waitSignal(panel.evaluated, timeout=30000,
                          check_params_cb=lambda r: r.config.amount == 0.6):
        panel.set_amount(60)
    _shot(panel, "prune_panel.png")
    panel.shutdown()


def test_structured_per_layer_and_create_run(qtbot, run_dir, tmp_path):
    panel = PrunePanel(Workspace(tmp_path))
    qtbot.addWidget(panel)
    panel.resize(900, 950)
    with qtbot.waitSignal(panel.sessionReady, timeout=60000):
        panel.set_run(run_dir)
    panel.kind.setCurrentIndex(1)
    panel.scope.setCurrentIndex(1)
    assert not panel._layer_sliders[5].isEnabled()
    with qtbot.waitSignal(panel.evaluated, timeout=30000,
                          check_params_cb=lambda r: r.config.per_layer == {1: 0.5, 3: 0.5}):
        panel.set_amount(50)
    units = {s.index: s.units_after for s in panel.result.layers}
    assert units == {1: 16, 3: 8, 5: 10}
    panel.epochs.setValue(0)
    with qtbot.waitSignal(panel.runCreated, timeout=60000) as created:
        panel.create_run()
    qtbot.waitUntil(lambda: panel.apply_button.isEnabled(), timeout=30000)
    assert Path(created.args[0]).parent == tmp_path
    assert "New run" in panel.apply_status.text()
    _shot(panel, "prune_panel_structured.png")
    panel.shutdown()


def test_panel_says_why_a_run_cannot_be_pruned(qtbot, tmp_path):
    panel = PrunePanel(Workspace(tmp_path))
    qtbot.addWidget(panel)
    panel.set_run(str(tmp_path / "missing"))
    qtbot.waitUntil(lambda: "Cannot prune" in panel.run_label.text(), timeout=30000)
    panel.shutdown()
    assert not panel.busy()


def test_export_dialog_shows_the_verification(qtbot, run_dir, tmp_path):
    dialog = ExportDialog(run_dir, Workspace(tmp_path))
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(tmp_path / "m.onnx"))
    dialog.show()
    with qtbot.waitSignal(dialog.exported, timeout=120000):
        dialog.export_button.click()
    assert "Verified" in dialog.status.text() and "batch 37" in dialog.status.text()
    assert (tmp_path / "m.onnx").is_file()
    qtbot.waitUntil(lambda: dialog.export_button.isEnabled(), timeout=10000)
    _shot(dialog, "export_dialog.png")
    dialog.shutdown()


def test_export_dialog_reports_failure(qtbot, tmp_path):
    dialog = ExportDialog(str(tmp_path / "nothing"), Workspace(tmp_path))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.exportFailed, timeout=30000) as failed:
        dialog.start_export()
    assert "not a run folder" in failed.args[0]
    assert "Export failed" in dialog.status.text()
    dialog.shutdown()


def test_moves_are_evaluated_at_once_and_a_drag_only_at_its_last_position(qtbot, run_dir,
                                                                          tmp_path):
    """No debounce: a move starts its evaluation on the next turn of the event loop; the
    moves made while one runs are evaluated once, at the latest position, when it ends."""
    panel = PrunePanel(Workspace(tmp_path))
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.sessionReady, timeout=60000):
        panel.set_run(run_dir)
    qtbot.waitUntil(lambda: panel.result is not None and not panel.busy(), timeout=30000)
    seen: list[float] = []
    panel.evaluated.connect(lambda r: seen.append(r.config.amount))
    held = panel.session._lock  # holding it keeps the first evaluation running
    held.acquire()
    try:
        panel.slider.setValue(10)
        assert panel._coalesce.isActive() and panel._coalesce.interval() == 0
        qtbot.waitUntil(lambda: panel.tasks.is_running("evaluate"), timeout=5000)
        for percent in range(11, 31):  # a drag while it runs
            panel.slider.setValue(percent)
            qtbot.waitUntil(lambda: not panel._coalesce.isActive(), timeout=5000)
    finally:
        held.release()
    qtbot.waitUntil(lambda: seen[-1:] == [0.3] and not panel.busy(), timeout=30000)
    assert seen == [0.1, 0.3]
    panel.shutdown()
