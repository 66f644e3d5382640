"""The experiment model, its undo commands (with a bare QUndoStack) and the layer stack editor."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QDropEvent, QUndoStack  # noqa: E402

from workbench.core.workspace import Workspace  # noqa: E402
from workbench.gui.document import undo  # noqa: E402
from workbench.gui.document.experiment_model import ExperimentModel  # noqa: E402
from workbench.gui.editors.model_editor import LAYER_MIME, ModelEditor, templates  # noqa: E402
from workbench.spec import ExperimentSpec, LayerSpec  # noqa: E402


def _spec(data: str = "moons", layers: list[LayerSpec] | None = None) -> ExperimentSpec:
    spec = ExperimentSpec()
    spec.data.name = data
    spec.model.layers = layers if layers is not None else [LayerSpec("Linear", {"out": 2})]
    return spec


# -- the model and its commands, no widgets ----------------------------------------------------

def test_model_emits_only_real_changes(qtbot):
    model = ExperimentModel(_spec())
    seen: list[tuple[str, object]] = []
    model.valueChanged.connect(lambda path, value: seen.append((path, value)))
    assert model.set_value("optim.lr", 0.01)
    assert not model.set_value("optim.lr", 0.01)
    assert not model.set_layer_param(0, "out", 2)  # already 2
    assert not model.set_layer_param(0, "bias", True)  # the default, not stored
    assert model.set_value("data.augment.hflip", True)
    assert seen == [("optim.lr", 0.01), ("data.augment.hflip", True)]
    with pytest.raises(KeyError):
        model.set_value("optim.nope", 1)


def test_commands_with_a_bare_undo_stack(qtbot):
    model = ExperimentModel(_spec())
    stack = QUndoStack()
    original = model.spec().to_dict()

    assert undo.push_value(stack, model, "optim.lr", 0.1)
    assert undo.push_value(stack, model, "optim.lr", 0.2)  # merges with the one before
    assert not undo.push_value(stack, model, "optim.lr", 0.2)  # no change, no command
    undo.push_insert(stack, model, 0, LayerSpec("Flatten"))
    undo.push_insert(stack, model, 1, LayerSpec("Linear", {"out": 8}))
    undo.push_duplicate(stack, model, 1)
    assert undo.push_layer_param(stack, model, 2, "out", 4)
    assert undo.push_move(stack, model, 3, 0)
    undo.push_remove(stack, model, 1)
    assert [layer.type for layer in model.live.model.layers] == ["Linear", "Linear", "Linear"]
    assert model.live.optim.lr == 0.2
    after = model.spec().to_dict()
    assert stack.count() == 7  # the two lr edits are one step

    while stack.canUndo():
        stack.undo()
    assert model.spec().to_dict() == original
    while stack.canRedo():
        stack.redo()
    assert model.spec().to_dict() == after


def test_replace_spec_is_one_undo_step(qtbot):
    model = ExperimentModel(_spec())
    stack = QUndoStack()
    other = _spec("spirals", templates(2)["MLP"])
    assert undo.push_spec(stack, model, other, "Open run")
    assert model.live.data.name == "spirals"
    stack.undo()
    assert model.spec().to_dict() == _spec().to_dict()


# -- the editor ---------------------------------------------------------------------------------

@pytest.fixture
def editor(qtbot):
    model = ExperimentModel(_spec(layers=[]))
    stack = QUndoStack()
    widget = ModelEditor(model, stack, Workspace())
    qtbot.addWidget(widget)
    widget.resize(900, 520)
    yield widget
    widget.shutdown()


def _click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_build_a_stack_with_the_palette_and_parameter_editors(qtbot, editor):
    model, stack = editor.model, editor.undo
    assert editor.problem  # an empty stack cannot train
    for name in ("Linear", "ReLU", "Linear"):
        editor.palette_tree.select_type(name)
        _click(qtbot, editor.buttons["add"])
    assert [layer.type for layer in model.live.model.layers] == ["Linear", "ReLU", "Linear"]
    # the last Linear has 64 outputs: the two-class dataset needs 2
    assert "2 classes" in editor.problem
    editor.rows[2].editors["out"].setValue(2)
    assert model.live.model.layers[2].params["out"] == 2
    assert editor.problem is None
    editor.rows[0].editors["out"].setValue(32)
    assert editor.rows[0].shape.text() == "32"
    assert editor.rows[0].params.text() == f"{2 * 32 + 32}"
    assert editor.report.total_params == (2 * 32 + 32) + (32 * 2 + 2)
    assert "parameters" in editor.totals.text()

    stack.undo()  # the 32 back to 64
    assert editor.rows[0].editors["out"].value() == 64
    assert model.live.model.layers[0].params.get("out", 64) == 64
    stack.redo()
    assert editor.rows[0].editors["out"].value() == 32


def test_shape_error_marks_the_row_and_is_fixed_and_undone(qtbot, editor):
    model, stack = editor.model, editor.undo
    editor.palette_tree.select_type("Linear")
    _click(qtbot, editor.buttons["add"])
    editor.rows[0].editors["out"].setValue(2)
    assert editor.problem is None
    editor.list.setCurrentRow(0)
    editor.palette_tree.select_type("Conv2d")
    _click(qtbot, editor.buttons["insert"])  # a convolution before a flat input: wrong
    bad = editor.rows[0]
    assert model.live.model.layers[0].type == "Conv2d"
    assert bad.property("error") is True
    assert "image input" in bad.toolTip()
    assert editor.problem.startswith("model.layers[0]")
    assert editor.rows[1].property("error") is False

    editor.list.setCurrentRow(0)
    _click(qtbot, editor.buttons["remove"])
    assert editor.problem is None
    stack.undo()
    assert editor.rows[0].property("error") is True
    stack.redo()
    assert editor.problem is None and len(editor.rows) == 1


def test_duplicate_move_and_keys(qtbot, editor):
    model = editor.model
    model.set_layers([LayerSpec("Flatten"), LayerSpec("Linear", {"out": 2})])
    editor.list.setCurrentRow(1)
    _click(qtbot, editor.buttons["duplicate"])
    assert [x.type for x in model.live.model.layers] == ["Flatten", "Linear", "Linear"]
    assert editor.selected_index() == 2
    _click(qtbot, editor.buttons["up"])
    _click(qtbot, editor.buttons["up"])
    assert [x.type for x in model.live.model.layers] == ["Linear", "Flatten", "Linear"]
    assert editor.selected_index() == 0
    editor.show()
    editor.list.setFocus()
    qtbot.keyClick(editor.list, Qt.Key.Key_Delete)
    assert [x.type for x in model.live.model.layers] == ["Flatten", "Linear"]
    editor.list.setCurrentRow(0)
    qtbot.keyClick(editor.list, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert [x.type for x in model.live.model.layers] == ["Linear", "Flatten"]
    qtbot.keyClick(editor.list, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert [x.type for x in model.live.model.layers] == ["Linear", "Flatten", "Flatten"]


def test_drag_from_palette_and_reorder_by_drop(qtbot, editor):
    model = editor.model
    model.set_layers([LayerSpec("Flatten"), LayerSpec("Linear", {"out": 2})])
    editor.show()
    qtbot.waitExposed(editor)
    data = QMimeData()
    data.setData(LAYER_MIME, b"Dropout")
    below_all = QPointF(20, editor.list.viewport().height() - 5)
    event = QDropEvent(below_all, Qt.DropAction.CopyAction, data,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    editor.list.dropEvent(event)
    assert [x.type for x in model.live.model.layers] == ["Flatten", "Linear", "Dropout"]
    # a drop moves nothing by itself: the editor asks the model, the rows follow
    editor.list.moveRequested.emit(2, 0)
    assert [x.type for x in model.live.model.layers] == ["Dropout", "Flatten", "Linear"]
    assert [row.title.text() for row in editor.rows] == ["Dropout", "Flatten", "Linear"]
    editor.undo.undo()
    assert [x.type for x in model.live.model.layers] == ["Flatten", "Linear", "Dropout"]


def test_template_fits_the_dataset(qtbot, editor):
    editor.model.set_value("data.name", "mnist_small")
    editor.apply_template("Small CNN")
    assert editor.problem is None
    assert editor.report.output_shape == (10,)
    editor.apply_template("Logistic regression")
    assert editor.report.total_params == 28 * 28 * 10 + 10
    editor.undo.undo()
    assert len(editor.rows) == 11


def test_a_csv_is_read_once_off_the_gui_thread_and_edits_stay_arithmetic(qtbot, editor,
                                                                          tmp_path, monkeypatch):
    """The editor asks the workspace for a file's description on a task; layer edits after
    that never read the file again (they are arithmetic), and a new file is read afresh."""
    import threading

    from workbench.core.data import loading

    csv = tmp_path / "t.csv"
    csv.write_text("a,b,c,label\n" + "".join(f"{i},{i % 3},{i % 5},{i % 4}\n"
                                               for i in range(40)))
    reads: list[int] = []
    real = loading.dataset_info

    def counting(data):
        reads.append(threading.get_ident())
        return real(data)

    monkeypatch.setattr(loading, "dataset_info", counting)
    model = editor.model
    model.set_value("data.name", "csv")
    model.set_value("data.path", str(csv))
    assert editor.problem and "reading" in editor.problem  # Train waits for the file
    qtbot.waitUntil(lambda: editor.report is not None, timeout=30_000)
    assert editor.input_label.text().startswith("Input: 3 features · 4 classes")
    assert reads and threading.get_ident() not in reads
    editor.add_layer("Linear")
    editor.set_param(0, "out", 4)
    editor.set_param(0, "out", 7)
    assert len(reads) == 1 and editor.report.output_shape == (7,)
    other = tmp_path / "u.csv"
    other.write_text("x,label\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    model.set_value("data.path", str(other))
    qtbot.waitUntil(lambda: editor.input_label.text().startswith("Input: 1 feature "),
                    timeout=30_000)
    assert len(reads) == 2
    model.set_value("data.path", str(tmp_path / "missing.csv"))
    qtbot.waitUntil(lambda: "missing.csv" in (editor.problem or ""), timeout=30_000)
