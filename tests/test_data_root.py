"""`--data-root` on every command that reads an experiment's data (train, compare, lr-find,
search; and through `--nproc`, tests/test_nodes.py), and an offline dataset's message naming
the way the person sets the folder: `--data-root` in the CLI, the Folder field in the app."""

from __future__ import annotations

import json

import pytest
from test_data_readers import write_mnist
from test_nodes import free_port

from workbench.cli import main
from workbench.core.data import download as dl
from workbench.core.data.errors import DataError
from workbench.core.workspace import Workspace
from workbench.spec import DataSpec

SPEC = {"version": 1, "name": "offline", "data": {"name": "mnist", "val_fraction": 0.2},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 10}]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 1, "batch_size": 32, "seed": 0, "device": "cpu"}}


@pytest.fixture
def offline(monkeypatch):
    """Downloads go to a local port nothing listens on: refused at once, as offline."""
    monkeypatch.setenv(dl.MIRROR_ENV, f"http://127.0.0.1:{free_port()}/")


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "my-mnist"
    write_mnist(folder, n_train=120, n_test=40)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    return spec, folder


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_compare_and_lr_find_take_data_root(tmp_path, capsys, offline, files):
    spec, folder = files
    runs = str(tmp_path / "runs")
    assert main(["compare", str(spec), "--vary", "optim.lr=0.01,0.02", "--data-root",
                 str(folder), "--runs-dir", runs, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["lr-find", str(spec), "--steps", "20", "--data-root", str(folder)]) == 0
    assert "suggested_lr" in last_json(capsys)
    for command in (["compare", str(spec), "--vary", "optim.lr=0.1,0.2"], ["lr-find", str(spec)]):
        assert main([*command, "--data-root", str(tmp_path / "none")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--data-root" in err[0] and "is not a folder" in err[0]


def test_search_takes_data_root(tmp_path, capsys, offline, files):
    pytest.importorskip("optuna")
    spec, folder = files
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"params": {"optim.lr": {"type": "float", "low": 1e-3,
                                                         "high": 0.1, "log": True}}}))
    assert main(["search", str(spec), "--space", str(space), "--trials", "1", "--data-root",
                 str(folder), "--runs-dir", str(tmp_path / "runs"), "--threads", "1"]) == 0
    assert last_json(capsys)["best"]["value"] is not None


def test_an_offline_dataset_names_data_root_in_the_cli(tmp_path, capsys, offline, files):
    spec, _ = files
    # refused before a run was made (Exit.BAD_INPUT), as every command refuses it
    assert main(["train", str(spec), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "point --data-root (data.root) at the four *-ubyte.gz files" in err
    assert "Folder" not in err


def test_the_app_workspace_still_names_the_folder_field(offline):
    with pytest.raises(DataError) as info:
        Workspace().splits(DataSpec(name="mnist"), 0)
    assert "point Folder (data.root) at the four *-ubyte.gz files" in str(info.value)
