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


def test_every_exported_file_follows_the_umask(run_dir, tmp_path):
    """`model.safetensors` was written 0600 (safetensors replaces the file it is given)
    while the other files followed the umask."""
    import os
    import stat

    old = os.umask(0o027)
    atomic._umask = None  # read afresh: the process umask the test set
    try:
        result = export_run(run_dir, tmp_path / "m.onnx")
    finally:
        os.umask(old)
        atomic._umask = None
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"m.onnx": 0o640, "m.safetensors": 0o640, "m.py": 0o640}
    assert len(result.files) == 2


def test_a_long_legal_name_exports_or_is_refused_naming_the_limit(run_dir, tmp_path, capsys):
    """A 250-character name is legal; its sibling (.safetensors, 257) and its temp (264) are
    not, and export crashed."""
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / ("x" * 245 + ".onnx")
    assert main(["export", run_dir, str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "257 bytes, more than the 255" in err[0], err
    assert list(folder.iterdir()) == []
    assert main(["export", run_dir, str(out), "--no-weights", "--no-script"]) == 0
    assert [p.name for p in folder.iterdir()] == [out.name]
    assert main(["export", run_dir, str(folder / ("y" * 252 + ".onnx"))]) == 2
    assert "more than the 255" in capsys.readouterr().err


def test_a_quantized_export_of_a_run_in_a_read_only_store_writes_the_file_and_says_so(
        run_dir, tmp_path, capsys, monkeypatch):
    """The run's compression record cannot be written (a read-only store): a PermissionError
    traceback; now the file is written and a note says the record was not."""
    from workbench.core.tools import variants

    def read_only(path, _text):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(variants, "write_text_atomic", read_only)
    out = tmp_path / "q.onnx"
    assert main(["export", run_dir, str(out), "--quantize", "fp16"]) == 0
    err = capsys.readouterr().err
    notes = [ln for ln in err.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and "not kept" in notes[0] and "permission denied" in notes[0].lower()
    assert "Traceback" not in err and out.is_file()


def test_compress_of_a_run_in_a_read_only_store_is_one_line(run_dir, tmp_path, capsys,
                                                            monkeypatch):
    import os
    import shutil

    copy = tmp_path / "store" / "run"
    shutil.copytree(run_dir, copy)
    real = os.mkdir

    def read_only(path, *args, **kw):
        if str(path).startswith(str(copy)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(os, "mkdir", read_only)
    assert main(["compress", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "read-only file system" in err[0].lower(), err
    assert "free some disk space" not in err[0]
