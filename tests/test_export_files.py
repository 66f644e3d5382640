"""Export writes only what it was asked to, at the opset it reports, fails in one line on a
folder it cannot write, and leaves the process's output, warnings and loggers alone."""

from __future__ import annotations

import errno
import json
import logging
import sys
import threading
import warnings

import pytest
from prune_fixtures import MOONS, train_run

from workbench.cli import main
from workbench.core.store import atomic
from workbench.core.store.runs import RunStore
from workbench.core.tools.export import ExportError, export_run, file_opset
from workbench.core.workspace import Workspace


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    return train_run(tmp_path_factory.mktemp("runs"), MOONS,
                     data={"name": "moons", "samples": 300}, batch_size=32)


def test_files_beside_the_named_one_are_never_overwritten_unasked(run_dir, tmp_path, capsys):
    out = tmp_path / "out.onnx"
    (tmp_path / "out.py").write_text("my own script")
    with pytest.raises(ExportError, match=r"out\.py already exists and would be overwritten"):
        export_run(run_dir, out)
    assert not out.exists() and (tmp_path / "out.py").read_text() == "my own script"
    assert not (tmp_path / "out.safetensors").exists()
    assert main(["export", run_dir, str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out.py already exists" in err and "--force" in err
    assert (tmp_path / "out.py").read_text() == "my own script"
    assert main(["export", run_dir, str(out), "--force"]) == 0
    assert "RECIPE = json.loads(" in (tmp_path / "out.py").read_text()
    assert main(["export", run_dir, str(out), "--no-script", "--no-weights"]) == 0  # named


@pytest.mark.parametrize("opset", [13, 15, 18])
def test_the_file_has_the_opset_that_is_reported(run_dir, tmp_path, opset):
    result = export_run(run_dir, tmp_path / "m.onnx", opset=opset, weights=False,
                        script=False)
    assert result.opset == opset == file_opset(tmp_path / "m.onnx")
    assert result.opset_asked == opset and result.note is None


def test_opset_zero_is_refused_not_replaced(run_dir, tmp_path, capsys):
    assert main(["export", run_dir, str(tmp_path / "m.onnx"), "--opset", "0"]) == 2
    assert "opset must be between 13 and 21, got 0" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_export_onto_a_folder_or_into_a_read_only_one_is_one_line(run_dir, tmp_path, capsys,
                                                                  monkeypatch):
    (tmp_path / "taken.onnx").mkdir()
    assert main(["export", run_dir, str(tmp_path / "taken.onnx")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "w.py").mkdir()
    with pytest.raises(ExportError, match=r"w\.py is a folder"):
        export_run(run_dir, tmp_path / "w.onnx")

    def read_only(*_args, **kw):
        raise PermissionError(errno.EROFS, "Read-only file system", kw.get("dir"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    assert main(["export", run_dir, str(tmp_path / "ro.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err and "Read-only file system" in err


def test_prune_into_a_read_only_runs_folder_is_one_line(run_dir, tmp_path, capsys,
                                                        monkeypatch):
    def read_only(self, spec, **_kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.root))

    monkeypatch.setattr(RunStore, "create", read_only)
    code = main(["prune", run_dir, "--amount", "0.5", "--runs-dir", str(tmp_path / "ro")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1] == (f"workbench: error: cannot write {tmp_path / 'ro'}:"
                                            " permission denied; the pruned run was not stored")


def test_export_on_a_thread_leaves_process_wide_state_alone(run_dir, tmp_path):
    """Another thread (the app's GUI) must never see stdout, stderr, the warning filters or a
    logger level change while an export runs on a worker thread."""
    onnx_log = logging.getLogger("torch.onnx")
    before = (sys.stdout, sys.stderr, list(warnings.filters), onnx_log.level)
    seen = set()
    done = threading.Event()
    errors = []

    def work():
        try:
            export_run(run_dir, tmp_path / "t.onnx", opset=13)
        except Exception as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=work)
    thread.start()
    while not done.wait(0.001):
        seen.add((id(sys.stdout), id(sys.stderr), len(warnings.filters), onnx_log.level))
    thread.join(timeout=600)
    assert not errors
    assert seen <= {(id(before[0]), id(before[1]), len(before[2]), before[3])}
    assert list(warnings.filters) == before[2]


def test_the_export_dialog_asks_before_overwriting(qtbot, run_dir, tmp_path, monkeypatch):
    from workbench.gui.tools.export.dialog import ExportDialog
    from workbench.gui.widgets import dialogs

    (tmp_path / "d.safetensors").write_bytes(b"mine")
    asked = []

    def answer(parent, title, text, *args):
        asked.append(text)
        return answers.pop(0)

    answers = [dialogs.Button.No, dialogs.Button.Yes]
    monkeypatch.setattr(dialogs, "ask", answer)
    dialog = ExportDialog(run_dir, Workspace(tmp_path / "workspace"))
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(tmp_path / "d.onnx"))
    dialog.export_button.click()
    assert len(asked) == 1 and "d.safetensors" in asked[0]
    assert (tmp_path / "d.safetensors").read_bytes() == b"mine"
    assert not (tmp_path / "d.onnx").exists() and "Not exported" in dialog.status.text()
    with qtbot.waitSignal(dialog.exported, timeout=300_000):
        dialog.export_button.click()
    dialog.shutdown()
    assert (tmp_path / "d.safetensors").read_bytes() != b"mine"
    assert json.loads(json.dumps(dialog.result.to_dict()))["opset"] == 18


def test_the_export_dialog_shows_what_the_export_writes(qtbot, run_dir, tmp_path):
    """The weights-and-script box is ticked exactly when those files are written: a float32
    export writes them as ticked (or not), an int8 export writes its ONNX file alone, and the
    box says so (it showed ticked, greyed, for an int8 export that wrote neither)."""
    pytest.importorskip("onnxruntime")
    from workbench.gui.tools.export.dialog import ExportDialog

    dialog = ExportDialog(run_dir, Workspace(tmp_path / "workspace"))
    qtbot.addWidget(dialog)
    extras = dialog.extras

    def export(folder: str) -> set[str]:
        out = tmp_path / folder
        out.mkdir()
        dialog.path_edit.setText(str(out / "m.onnx"))
        dialog._on_quantize()  # the file name follows the quantization, as it does when picked
        failed: list[str] = []
        dialog.exportFailed.connect(failed.append)
        dialog.export_button.click()
        qtbot.waitUntil(dialog.export_button.isEnabled, timeout=300_000)
        dialog.exportFailed.disconnect(failed.append)
        assert not failed, failed
        return {p.name for p in out.iterdir()}

    assert extras.isChecked() and extras.isEnabled()
    assert export("float") == {"m.onnx", "m.safetensors", "m.py"}
    extras.click()  # unticked by the person: the ONNX file alone
    assert not extras.isChecked()
    assert export("float-alone") == {"m.onnx"}
    extras.click()
    dialog.quantize.setCurrentIndex(dialog.quantize.findData("dynamic"))
    assert not extras.isChecked() and not extras.isEnabled()  # shown as it will be written
    assert "only its ONNX file" in extras.toolTip()
    dialog.max_drop.setValue(dialog.max_drop.maximum())  # a tiny net: int8 costs it a point
    assert export("int8") == {"m.int8-dynamic.onnx"}
    dialog.quantize.setCurrentIndex(dialog.quantize.findData(None))
    assert extras.isChecked() and extras.isEnabled()  # the person's choice comes back
    dialog.shutdown()
