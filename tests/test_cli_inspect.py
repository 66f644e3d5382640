"""`workbench inspect` and `workbench report` from the command line: a good run, a run name
that names nothing, a run that failed with no model, and bad flags, each in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from prune_fixtures import train_run

from workbench.core.store.runs import RunStore
from workbench.spec import from_dict

TABLE_LAYERS = [{"type": "Linear", "out": 6}, {"type": "ReLU"}, {"type": "Linear", "out": 3}]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A store with a trained CSV classifier whose names would be markup or mathtext, and a
    run that failed before it saved a model."""
    root = tmp_path_factory.mktemp("store")
    table = root / "hostile.csv"
    rows = ["$x$ <b>,width $\\frac{1}{2}$,label"]
    for k in range(150):
        a, b = (k * 37 % 101) / 10, (k * 53 % 97) / 10
        label = ["$\\alpha$", "<i>b</i>", "c & d"][int(a + b) % 3]
        rows.append(f"{a},{b},{label}")
    table.write_text("\n".join(rows) + "\n")
    train_run(root / "runs", TABLE_LAYERS, data={"name": "csv", "path": str(table)},
              epochs=3, lr=0.05, batch_size=16, name="table")
    failed = RunStore(root / "runs").create(from_dict({"name": "broken"}))
    failed.update_summary(status="failed", error="the loss became nan at epoch 1, step 2",
                          hint="lower the learning rate")
    return root / "runs"


def test_inspect_writes_the_pictures_and_their_numbers(runs, tmp_path):
    done = cli("inspect", "table", "--runs-dir", str(runs), "--out", str(tmp_path / "out"),
               "--sample", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(result["files"]) == sorted(
        ["first-layer.png", "neurons.png", "sample-3.png", "sample-3-activations.png",
         "classes.png", "inspect.json"])
    doc = json.loads((tmp_path / "out" / "inspect.json").read_text())
    assert doc["class_names"] == ["$\\alpha$", "<i>b</i>", "c & d"]
    assert doc["first_layer"]["features"] == ["$x$ <b>", "width $\\frac{1}{2}$"]
    assert doc["samples"][0]["index"] == 3 == result["samples"][0]["index"]
    assert set(doc["samples"][0]["probabilities"]) == set(doc["class_names"])
    assert f"wrote {tmp_path / 'out' / 'classes.png'}" in done.stderr


def test_inspect_of_a_linear_model_prints_its_equation(tmp_path):
    line = tmp_path / "line.csv"
    line.write_text("x,y\n" + "".join(f"{x},{3 * x + 2}\n" for x in range(0, 101)))
    from workbench.core.training.loop import Trainer

    *_, finished = Trainer(from_dict({
        "name": "line", "data": {"name": "csv", "path": str(line)},
        "model": {"layers": [{"type": "Linear", "out": 1}]}, "optim": {"name": "gd", "lr": 0.5},
        "train": {"epochs": 50, "device": "cpu", "checkpoint_every": 0}}),
        runs=RunStore(tmp_path / "runs")).events()
    run = finished.run_dir
    done = cli("inspect", run, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["out"] == str(Path(run) / "inspect")
    assert result["equation"] == ["y = 3·x + 2"]
    assert "equation (in the data's own units):\n  y = 3·x + 2\n" in done.stderr


@pytest.mark.parametrize("args, says", [
    (["no-such-run"], "workbench: error: 'no-such-run': no run in "),
    (["broken"], "has no trained weights (model.pt); the run is failed (the loss became nan "
                 "at epoch 1, step 2)"),
    (["table", "--sample", "45"], "workbench: error: --sample 45: the test split has 30 "
                                  "samples, numbered 0 to 29"),
    (["table", "--sample", "-1"], "argument --sample: must be a whole number from 0 to "),
    (["table", "--per-class", "0"], "argument --per-class: must be a whole number from 1 "),
])
def test_inspect_refuses_bad_input_in_one_line(runs, tmp_path, args, says):
    done = cli("inspect", *args, "--runs-dir", str(runs), cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if not line.startswith("inspect: ")]
    assert len(lines) == 1 and says in lines[0], done.stderr


def test_inspect_out_must_be_a_folder(runs, tmp_path):
    (tmp_path / "taken").write_text("a file")
    done = cli("inspect", "table", "--runs-dir", str(runs), "--out", str(tmp_path / "taken"),
               cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"workbench: error: --out: {tmp_path / 'taken'} is a file, " \
                                  "not a folder"
    assert (tmp_path / "taken").read_text() == "a file"


def test_report_writes_one_page(runs, tmp_path):
    done = cli("report", "table", "--runs-dir", str(runs), "--out", str(tmp_path / "r.html"),
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert result["report"] == str(tmp_path / "r.html")
    assert result["bytes"] == len(page.encode("utf-8"))
    assert page.count("<img ") == len(result["pictures"]) >= 5
    assert "<i>b</i>" not in page and "<b>," not in page  # names stay inside pictures


def test_report_of_a_failed_run_says_why_and_a_bad_name_is_one_line(runs, tmp_path):
    done = cli("report", "broken", "--runs-dir", str(runs), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    page = Path(result["report"]).read_text(encoding="utf-8")
    assert Path(result["report"]).parent.parent == runs
    assert "The run failed:" in page and "the loss became nan at epoch 1, step 2" in page
    assert result["notes"][0].startswith("no Inspect pictures: ")
    done = cli("report", "nothing-here", "--runs-dir", str(runs), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("workbench: error: 'nothing-here': no run in ")
    done = cli("report", "table", "--runs-dir", str(runs), "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"workbench: error: --out: {tmp_path} is a folder; name the " \
                                  "HTML file to write"
