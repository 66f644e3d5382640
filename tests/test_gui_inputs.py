"""The app's fields take their ranges from the spec's bounds: whatever a person types, the
experiment stays one the validator accepts; the model editor shows the memory estimate."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QUndoStack  # noqa: E402
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox  # noqa: E402

from workbench import spec as specmod  # noqa: E402
from workbench.core.memory import DeviceMemory  # noqa: E402
from workbench.core.workspace import Workspace  # noqa: E402
from workbench.gui.document.experiment_model import ExperimentModel  # noqa: E402
from workbench.gui.editors import model_presenter  # noqa: E402
from workbench.gui.editors.data_panel import DataPanel  # noqa: E402
from workbench.gui.editors.model_editor import ModelEditor, templates  # noqa: E402
from workbench.gui.editors.optim_panel import OptimPanel  # noqa: E402
from workbench.spec import BOUNDS, ExperimentSpec, LayerSpec  # noqa: E402
from workbench.spec.layers import CATALOGUE  # noqa: E402


@pytest.fixture
def panels(qtbot):
    model, stack = ExperimentModel(ExperimentSpec()), QUndoStack()
    optim = OptimPanel(model, stack)
    data = DataPanel(model, stack, Workspace(), auto_load=False)
    for panel in (optim, data):
        qtbot.addWidget(panel)
    yield model, optim, data
    data.shutdown()


def test_every_spec_number_has_editors_whose_range_is_its_bound(panels):
    _model, optim, data = panels
    editors = {**optim.binder.editors, **data.binder.editors}
    assert set(BOUNDS) <= set(editors), set(BOUNDS) - set(editors)
    for path, bound in BOUNDS.items():
        for box in editors[path]:
            assert isinstance(box, QSpinBox | QDoubleSpinBox), path
            assert (box.minimum(), box.maximum()) == (bound.lo, bound.hi), path
            assert isinstance(box, QSpinBox) == bound.integer, path


def test_layer_editors_take_their_parameters_bounds(qtbot):
    spec = ExperimentSpec()
    spec.data.name = "mnist_small"
    spec.model.layers = [LayerSpec(name) for name in CATALOGUE]
    editor = ModelEditor(ExperimentModel(spec), QUndoStack(), Workspace())
    qtbot.addWidget(editor)
    checked = 0
    for row in editor.rows:
        for p in row.ltype.params:
            box = row.editors[p.name]
            if p.kind is bool:
                continue
            low = p.lo - 1 if p.optional else p.lo  # one below the bound: "auto"
            assert (box.minimum(), box.maximum()) == (low, p.hi), (row.ltype.name, p.name)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize(
    ("attr", "typed"),
    [("seed", "99999999999999999999"), ("epochs", "1000000000"), ("batch_size", "-5"),
     ("lr", "1e30"), ("lr", "0"), ("lr", "nan"), ("warmup", "1e9"), ("patience_stop", "0")],
)
def test_typing_absurd_values_leaves_a_valid_experiment(qtbot, panels, attr, typed):
    model, optim, _data = panels
    box = getattr(optim, attr)
    box.setEnabled(True)
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), typed)
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)
    box.clearFocus()
    specmod.validate(model.live)  # nothing out of bounds got through
    assert box.minimum() <= box.value() <= box.maximum()


def test_the_editor_shows_the_memory_estimate_and_refuses_what_cannot_fit(qtbot, monkeypatch):
    spec = ExperimentSpec()
    spec.data.name = "mnist_small"
    spec.model.layers = templates(10)["Small CNN"]
    model = ExperimentModel(spec)
    editor = ModelEditor(model, QUndoStack(), Workspace())
    qtbot.addWidget(editor)
    assert editor.memory is not None and editor.memory_problem is None
    text = editor.memory_label.text()
    assert text.startswith("Memory to train: about ") and "the CPU has" in text
    monkeypatch.setattr(model_presenter, "cpu_memory", lambda: DeviceMemory("the CPU", 200 * 2**20))
    model.set_value("train.batch_size", 4096)  # the activations of 4,096 images do not fit
    assert editor.memory_problem is not None
    assert editor.memory_problem.startswith("the experiment needs about")
    assert "the CPU has 200 MB available" in editor.memory_problem
    assert editor.status.text().startswith("⚠ the experiment needs about")
    model.set_value("train.batch_size", 8)
    assert editor.memory_problem is None
