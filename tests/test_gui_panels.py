"""The data panel (loading off the GUI thread, counts, images, failures), the optimizer panel
(relevant fields, the learning-rate preview) and screenshots of the editors."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtGui import QUndoStack  # noqa: E402

from workbench.core.workspace import Workspace  # noqa: E402
from workbench.gui.document.experiment_model import ExperimentModel  # noqa: E402
from workbench.gui.editors.data_panel import DataPanel  # noqa: E402
from workbench.gui.editors.model_editor import ModelEditor, templates  # noqa: E402
from workbench.gui.editors.optim_panel import OptimPanel  # noqa: E402
from workbench.spec import DataSpec, ExperimentSpec  # noqa: E402

SHOTS = Path(__file__).resolve().parent.parent / "screenshots"


@pytest.fixture(autouse=True)
def _styled(qapp):
    from workbench.gui.widgets.style import apply_style

    apply_style(qapp)


def _shot(widget, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    assert widget.grab().save(str(SHOTS / name))


def _data_panel(qtbot, name: str, **data) -> DataPanel:
    spec = ExperimentSpec()
    spec.data.name = name
    for key, value in data.items():
        setattr(spec.data, key, value)
    panel = DataPanel(ExperimentModel(spec), QUndoStack(), Workspace(), auto_load=False)
    qtbot.addWidget(panel)
    panel.resize(1000, 660)
    return panel


def _load(qtbot, panel: DataPanel) -> None:
    with qtbot.waitSignal(panel.loaded, timeout=60_000):
        panel.load()
    panel.shutdown()
    assert not panel.is_loading()


def test_data_panel_loads_a_2d_set(qtbot):
    panel = _data_panel(qtbot, "moons", samples=400)
    panel.show()
    _load(qtbot, panel)
    counts = panel.class_counts()
    assert len(counts) == 2 and sum(counts) == len(panel.splits.train_x) == 280
    assert "train 280 · val 40 · test 80" in panel.data_view.summary.text()
    assert panel.data_view.views.currentIndex() == 0  # the scatter
    assert len(panel.data_view.scatter_items) == 2
    _shot(panel, "data_panel_moons.png")


def test_data_panel_reloads_when_an_option_changes(qtbot):
    spec = ExperimentSpec()
    spec.data.name = "circles"
    model = ExperimentModel(spec)
    stack = QUndoStack()
    panel = DataPanel(model, stack, Workspace())
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.loaded, timeout=60_000):
        panel.samples.setValue(200)  # an edit: one undo step, and a fresh load
    panel.shutdown()
    assert model.live.data.samples == 200 and stack.count() == 1
    assert sum(panel.class_counts()) == 140


def test_data_panel_loads_mnist_small_with_images_and_augmentation(qtbot):
    panel = _data_panel(qtbot, "mnist_small")
    panel.show()
    _load(qtbot, panel)
    assert panel.class_counts() and len(panel.class_counts()) == 10
    assert sum(panel.class_counts()) == 4500
    assert len(panel.data_view.grid.images) == 32
    assert panel.data_view.views.currentIndex() == 1
    assert panel.data_view.augment_grid.images == []  # no augmentation yet
    panel.binder.write("data.augment.crop_pad", 3)
    assert len(panel.data_view.augment_grid.images) == 16  # 8 originals over 8 augmented
    _shot(panel, "data_panel_mnist_small.png")


def test_data_panel_reports_a_failed_load(qtbot, tmp_path):
    panel = _data_panel(qtbot, "csv", path=str(tmp_path / "missing.csv"))
    with qtbot.waitSignal(panel.failed, timeout=60_000) as blocker:
        panel.load()
    panel.shutdown()
    assert "missing.csv" in blocker.args[0]
    assert "missing.csv" in panel.status.text() and panel.splits is None


def test_data_panel_shows_only_relevant_options(qtbot):
    panel = _data_panel(qtbot, "spirals")
    assert panel.form.isRowVisible(panel.samples)
    assert not panel.form.isRowVisible(panel.rows["path"])
    panel.binder.write("data.name", "csv")
    assert panel.form.isRowVisible(panel.rows["path"])
    assert not panel.form.isRowVisible(panel.samples)
    panel.binder.write("data.name", "mnist")
    assert panel.load_button.text() == "Download and load"
    panel.shutdown()


def test_optimizer_panel_shows_relevant_fields_and_previews_the_rate(qtbot):
    spec = ExperimentSpec()
    spec.train.epochs = 10
    model = ExperimentModel(spec)
    stack = QUndoStack()
    panel = OptimPanel(model, stack)
    qtbot.addWidget(panel)
    panel.resize(860, 660)
    assert {"betas", "eps"} <= panel.visible_fields()
    assert "momentum" not in panel.visible_fields()
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("momentum"))
    assert model.live.optim.name == "momentum"
    assert "momentum" in panel.visible_fields() and "betas" not in panel.visible_fields()

    flat = list(panel.curve_xy[1])
    assert max(flat) == min(flat) == spec.optim.lr
    panel.schedule.setCurrentIndex(panel.schedule.findData("step"))
    panel.step_size.setValue(3)
    stepped = list(panel.curve_xy[1])
    assert stepped != flat and stepped[-1] < stepped[0]
    assert {"step_size", "gamma"} <= panel.visible_fields()
    panel.warmup.setValue(2.0)
    assert panel.curve_xy[1][0] < 0.1 * spec.optim.lr  # warm-up starts low
    panel.beta1.setValue(0.8)
    assert model.live.optim.betas == (0.8, 0.999)
    stack.undo()
    assert model.live.optim.betas == (0.9, 0.999) and panel.beta1.value() == 0.9
    panel.clip_on.setChecked(True)
    assert model.live.regularization.grad_clip == 1.0
    stack.undo()
    assert model.live.regularization.grad_clip is None and not panel.clip_on.isChecked()
    panel.show()
    _shot(panel, "optimizer_panel.png")


def test_model_editor_screenshot_small_cnn(qtbot):
    spec = ExperimentSpec()
    spec.data.name = "mnist_small"
    spec.model.layers = templates(10)["Small CNN"]
    editor = ModelEditor(ExperimentModel(spec), QUndoStack(), Workspace())
    qtbot.addWidget(editor)
    editor.resize(760, 700)
    editor.show()
    assert editor.problem is None
    _shot(editor, "model_editor_small_cnn.png")


def test_optimizer_preview_takes_dataset_sizes_from_the_catalogue():
    from workbench.gui.editors.model_presenter import catalogue_shape
    from workbench.gui.editors.optim_presenter import lr_preview

    def train_size(**data) -> int:
        spec = ExperimentSpec()
        spec.data = DataSpec(**data)
        return lr_preview(spec, catalogue_shape(spec.data)).train_size

    assert train_size(name="mnist_small", val_fraction=0.1) == 4500
    assert train_size(name="cifar10", val_fraction=0.2) == 40_000
    assert train_size(name="moons", samples=400) == 280  # as loaded above


def test_data_preview_never_passes_old_data_off_as_new(qtbot, monkeypatch):
    """Switching the dataset empties the preview until the new one is loaded; a failed load
    (offline) says what to do and shows nothing old; an option of the same dataset greys the
    preview until it has reloaded."""
    import socket

    from workbench.core.data import download

    spec = ExperimentSpec()
    spec.data.name = "spirals"
    panel = DataPanel(ExperimentModel(spec), QUndoStack(), Workspace())
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitUntil(lambda: panel.splits is not None, timeout=60_000)
    assert not panel.data_view.body.isHidden() and "2 classes" in panel.data_view.summary.text()

    panel.binder.write("data.name", "mnist")  # a download: nothing loads by itself
    assert panel.data_view.body.isHidden() and "2 classes" not in panel.data_view.summary.text()
    assert "Download and load" in panel.data_view.summary.text()
    with socket.socket() as s:  # a port nothing listens on: no network
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv(download.MIRROR_ENV, f"http://127.0.0.1:{closed}/")
    with qtbot.waitSignal(panel.failed, timeout=60_000):
        panel.load()
    assert "no internet" in panel.status.text() and "*-ubyte.gz" in panel.status.text()
    view = panel.data_view
    assert "could not be loaded" in view.summary.text() and view.body.isHidden()
    browse = panel.browse_buttons[0]
    assert browse.text() == "Browse…" and browse.isVisible()

    with qtbot.waitSignal(panel.loaded, timeout=60_000):
        panel.binder.write("data.name", "moons")
    assert not panel.data_view.body.isHidden() and not panel.data_view.stale_effect.isEnabled()
    panel.binder.write("data.noise", 0.3)  # the same set, changed: greyed until reloaded
    assert panel.data_view.stale_effect.isEnabled() and not panel.data_view.body.isHidden()
    qtbot.waitUntil(lambda: not panel.data_view.stale_effect.isEnabled(), timeout=60_000)
    panel.shutdown()
