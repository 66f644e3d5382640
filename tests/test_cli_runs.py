"""A run named as `workbench runs` prints it: every command that takes a RUN accepts its name,
a unique start of it, its experiment's name, `latest` or its folder; anything else is one line,
exit 2. And `train --data-root` points a spec at a folder of dataset files."""

from __future__ import annotations

import json

import pytest
from test_cli import write_spec
from test_data_readers import write_mnist

from workbench.cli import main


@pytest.fixture
def store(tmp_path, capsys):
    """A run store holding two finished runs of one experiment."""
    runs = tmp_path / "runs"
    spec = write_spec(tmp_path)
    for seed in ("0", "1"):
        assert main(["train", str(spec), "--seed", seed, "--runs-dir", str(runs), "--quiet"]) == 0
    capsys.readouterr()
    return runs


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_runs_prints_each_runs_name_and_folder(store, capsys):
    assert main(["runs", "--runs-dir", str(store)]) == 0
    listing = capsys.readouterr().out
    for folder in store.iterdir():
        assert folder.name in listing and str(folder) in listing


def test_every_form_of_a_runs_name_reaches_it(store, tmp_path, capsys):
    newest, oldest = sorted(store.iterdir(), reverse=True)
    for name, expected in ((oldest.name, oldest), (str(oldest), oldest), ("latest", newest),
                           (oldest.name[:-2], oldest),
                           ("moons-logistic-regression", newest)):  # an experiment: its newest
        out = tmp_path / f"{expected.name}.onnx"
        assert main(["export", name, str(out), "--runs-dir", str(store), "--force"]) == 0, name
        assert out.is_file()
        capsys.readouterr()
    assert main(["prune", oldest.name, "--amount", "0.5", "--runs-dir", str(store)]) == 0
    assert _last_json(capsys)["pruned_from"] == str(oldest)


@pytest.mark.parametrize(("text", "says"), [
    ("2026", "matches 2 runs"),          # a prefix of both: ambiguous
    ("nope", "no run in"),
    ("x" * 5_000, "must be a run's name or folder"),
])
def test_a_name_that_names_no_single_run_is_one_line(store, capsys, text, says):
    names = sorted(p.name for p in store.iterdir())
    if text == "2026":
        text = names[0][:4]
    assert main(["prune", text, "--amount", "0.5", "--runs-dir", str(store)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
    assert sorted(p.name for p in store.iterdir()) == names  # nothing created


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    assert main(["resume", str(tmp_path), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_train_data_root_points_at_a_folder_of_idx_files(tmp_path, capsys):
    folder = tmp_path / "my-mnist"
    write_mnist(folder, n_train=120, n_test=40)
    spec = {"version": 1, "name": "offline", "data": {"name": "mnist", "val_fraction": 0.1},
            "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 10}]},
            "optim": {"name": "adam", "lr": 0.01},
            "train": {"epochs": 1, "batch_size": 32, "seed": 0}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    runs = tmp_path / "runs"
    assert main(["train", str(path), "--data-root", str(folder), "--runs-dir", str(runs),
                 "--quiet"]) == 0
    result = _last_json(capsys)
    stored = json.loads((tmp_path / "runs" / result["run_dir"].rsplit("/", 1)[-1]
                         / "spec.json").read_text())
    assert stored["data"]["root"] == str(folder)
    assert main(["train", str(path), "--data-root", str(tmp_path / "empty"), "--runs-dir",
                 str(runs), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--data-root" in err[0] and "not a folder" in err[0]
