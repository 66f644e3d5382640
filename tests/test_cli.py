"""The `workbench` command as a script would use it: exit codes, one-line errors, last-line JSON."""

import json
import subprocess
import sys

import pytest

from workbench.cli import main
from workbench.paths import resources_dir


def write_spec(tmp_path, example="moons_logistic", **train):
    spec = json.loads((resources_dir() / "examples" / f"{example}.json").read_text())
    spec["train"].update({"epochs": 2, **train})
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_train_prints_json_last_and_stores_the_run(tmp_path, capsys):
    spec = write_spec(tmp_path)
    code = main(["train", str(spec), "--epochs", "3", "--runs-dir", str(tmp_path / "runs"),
                 "--quiet"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    for key in ("run_dir", "test_accuracy", "test_loss", "val_accuracy", "epochs", "seconds",
                "device"):
        assert key in result
    assert result["epochs"] == 3
    assert result["test_accuracy"] > 0.7
    assert (tmp_path / "runs").is_dir()
    assert main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 0
    listing = capsys.readouterr().out
    assert "finished" in listing and "moons" in listing


def test_bad_spec_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "data": {"name": "moons"},
                               "model": {"layers": [{"type": "Linear", "out": -2}]}}))
    assert main(["train", str(bad), "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert ("model.layers[0].out, layer 1 (Linear): must be a whole number from 1 to 65,536, "
            "got -2") in err[0]


def test_bad_argument_is_one_line_exit_2(tmp_path, capsys):
    spec = write_spec(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(spec), "--epochs", "zero"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--epochs" in err[0]


def test_missing_spec_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_failed_run_exits_1_with_reason(tmp_path, capsys):
    spec = json.loads(write_spec(tmp_path, "sine_regression").read_text())
    spec["optim"] = {"name": "sgd", "lr": 1e6}
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(spec))
    assert main(["train", str(path), "--runs-dir", str(tmp_path / "r"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "hint:" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["status"] == "failed"


def test_runs_lists_damaged_folders(tmp_path, capsys):
    (tmp_path / "20260101-000000-broken-abc").mkdir()
    (tmp_path / "20260101-000000-broken-abc" / "summary.json").write_text("{ torn")
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert "damaged" in capsys.readouterr().out


def test_version():
    out = subprocess.run([sys.executable, "-m", "workbench", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("workbench ")


def test_core_imports_no_qt():
    code = ("import sys, workbench.spec, workbench.core.training.loop, workbench.core.data, "
            "workbench.core.store.runs, workbench.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'pyqtgraph', 'shiboken6') or m.startswith('workbench.gui')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_linter_contract():
    lint = subprocess.run(["lint-imports"], capture_output=True, text=True,
                          cwd=resources_dir().parent)
    assert lint.returncode == 0, lint.stdout[-2000:]


def test_shape_error_is_refused_before_running(tmp_path, capsys):
    spec = json.loads(write_spec(tmp_path).read_text())
    spec["model"]["layers"] = [{"type": "Linear", "out": 5}]
    path = tmp_path / "shape.json"
    path.write_text(json.dumps(spec))
    assert main(["train", str(path), "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.layers[0]" in err[0] and "2 classes" in err[0]
    assert not (tmp_path / "r").exists()


def test_the_command_line_starts_without_torch():
    """`workbench --version`, `--help` and the app's start do not pay for importing PyTorch."""
    code = ("import sys; from workbench.cli import build_parser; build_parser(); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, "building the parser imported torch"


def test_every_package_is_listed_for_the_wheel():
    """pyproject lists packages by hand (resources/ maps to workbench.resources): keep it whole."""
    import tomllib

    root = resources_dir().parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(root).parts)
             for p in (root / "workbench").rglob("__init__.py")}
    assert found | {"workbench.resources"} == listed
