"""A CSV's target as the person means it: a quantity or categories (`data.target`), guessed
from the column when not declared, with the guess explained, and a mismatched last layer that
offers both readings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import spec as specmod
from workbench.core.data.cache import DatasetCache
from workbench.core.data.errors import DataError
from workbench.core.data.loading import dataset_info
from workbench.core.data.tables import guess_target, read_csv
from workbench.core.model import check
from workbench.core.store.runs import Run, RunStore
from workbench.core.tools.trained import load_trained
from workbench.core.training.events import RunFinished
from workbench.core.training.loop import Trainer
from workbench.paths import resources_dir
from workbench.spec import DataSpec, LayerSpec, SpecError

DIABETES = resources_dir() / "datasets" / "diabetes" / "diabetes.csv"


def diabetes_as_floats(tmp_path: Path) -> Path:
    """The diabetes CSV with its targets written `151.0`, as a spreadsheet may write them."""
    lines = DIABETES.read_text().splitlines()
    out = [lines[0]] + [f"{line.rsplit(',', 1)[0]},{float(line.rsplit(',', 1)[1]):.1f}"
                        for line in lines[1:]]
    path = tmp_path / "diabetes-floats.csv"
    path.write_text("\n".join(out) + "\n")
    return path


def test_the_bundled_diabetes_set_is_442_rows_of_whole_number_targets():
    table = read_csv(DIABETES)
    assert table.features.shape == (442, 10)
    assert table.feature_names == ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5",
                                   "s6")
    assert table.target.distinct == 214 and table.target.numeric
    assert (table.labels == table.labels.round()).all()
    about = " ".join((DIABETES.parent / "README.md").read_text().split())
    assert "Bradley Efron" in about and "Tibshirani (2004), \"Least Angle Regression\"" in about
    assert "BSD 3-Clause licence" in about


@pytest.mark.parametrize("floats", [False, True])
def test_many_distinct_whole_numbers_are_guessed_a_quantity_and_say_why(tmp_path, floats):
    path = diabetes_as_floats(tmp_path) if floats else DIABETES
    info = dataset_info(DataSpec(name="csv", path=str(path)))
    assert info.num_classes == 0 and info.class_names == ()
    target = info.target
    assert (target.column, target.declared, target.kind, target.guess) == (
        "progression", "auto", "quantity", "quantity")
    assert target.reason.startswith("214 distinct whole numbers (25 to 346): more than 20 "
                                    "values, read as a quantity")
    assert info.feature_names[0] == "age"


def test_few_values_or_text_are_guessed_categories():
    kind, why = guess_target([str(k % 10) for k in range(200)])
    assert kind == "category" and why.startswith("10 distinct whole numbers (0 to 9): few")
    kind, why = guess_target(["cat", "dog", "cat", "1.5"])
    assert kind == "category" and why.startswith("it holds text ('cat')")
    kind, _ = guess_target([f"{k / 7:.3f}" for k in range(100)])
    assert kind == "quantity"


def test_a_declared_reading_wins_over_the_guess(tmp_path):
    classes = dataset_info(DataSpec(name="csv", path=str(DIABETES), target="category"))
    assert classes.num_classes == 214 and classes.class_names[:3] == ("25", "31", "37")
    assert (classes.target.kind, classes.target.guess) == ("category", "quantity")
    path = tmp_path / "digits.csv"
    path.write_text("a,label\n" + "".join(f"{k},{k % 3}\n" for k in range(30)))
    number = read_csv(path, target="quantity")
    assert number.class_names == () and number.labels.shape == (30, 1)
    assert number.labels[:4, 0].tolist() == [0.0, 1.0, 2.0, 0.0]
    text = tmp_path / "text.csv"
    text.write_text("a,label\n1,yes\n2,no\n3,maybe\n")
    with pytest.raises(DataError, match=r"text.csv: row 2, column 'label': 'yes' is not a "
                                        r"number, and data.target reads the column as a "
                                        r"quantity; set data.target to category"):
        read_csv(text, target="quantity")


def test_the_spec_field_is_checked_and_old_specs_read_auto():
    spec = specmod.from_dict({"data": {"name": "csv", "path": "t.csv", "target": "quantity"}})
    assert spec.data.target == "quantity"
    assert specmod.from_json(spec.to_json()).data.target == "quantity"
    old = specmod.from_dict({"version": 1, "data": {"name": "csv", "path": "t.csv"}})
    assert old.data.target == "auto"
    with pytest.raises(SpecError, match=r"data.target: must be one of auto, quantity, "
                                        r"category, got 'number'"):
        specmod.from_dict({"data": {"name": "csv", "path": "t.csv", "target": "number"}})
    with pytest.raises(SpecError, match=r"data.target: only a CSV file's target can be "
                                        r"declared; moons's is fixed: set it to auto"):
        specmod.from_dict({"data": {"name": "moons", "target": "quantity"}})
    assert old.with_value("data.target", "category").data.target == "category"


def test_a_mismatched_last_layer_offers_both_readings():
    few = dataset_info(DataSpec(name="csv", path=str(DIABETES), target="category"))
    one = [LayerSpec("Linear", {"out": 1})]
    with pytest.raises(SpecError) as caught:
        check(one, few.input_shape, few.num_classes, target=few.target)
    assert str(caught.value) == (
        "model.layers[0], layer 1 (Linear): the network ends with shape 1 but the dataset has "
        "214 classes (the column 'progression' read as categories); make the last Linear's "
        "out 214 to treat them as 214 classes, or set data.target to quantity to predict a "
        "number")
    many = dataset_info(DataSpec(name="csv", path=str(DIABETES)))
    with pytest.raises(SpecError, match=r"ends with shape 214 but the dataset has a quantity "
                                        r"to predict \(1 output: the column 'progression' "
                                        r"read as a number\); make the last Linear's out 1 to "
                                        r"predict a number, or set data.target to category to "
                                        r"treat its 214 values as 214 classes"):
        check([LayerSpec("Linear", {"out": 214})], many.input_shape, many.num_classes,
              target=many.target)
    check(one, many.input_shape, many.num_classes, target=many.target)  # fits


def test_the_dataset_cache_keeps_each_reading_apart():
    cache = DatasetCache()
    auto = cache.info(DataSpec(name="csv", path=str(DIABETES)))
    classes = cache.info(DataSpec(name="csv", path=str(DIABETES), target="category"))
    assert (auto.num_classes, classes.num_classes) == (0, 214)
    splits = cache.splits(DataSpec(name="csv", path=str(DIABETES), target="category"), 0)
    assert splits.info.num_classes == 214 and splits.train_y.dtype.is_floating_point is False


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def test_train_sets_the_target_from_the_command_line(tmp_path):
    path = tmp_path / "diabetes.json"
    path.write_text(json.dumps({
        "name": "diabetes", "data": {"name": "csv", "path": str(DIABETES)},
        "model": {"layers": [{"type": "Linear", "out": 1}]}, "optim": {"name": "gd", "lr": 0.2},
        "train": {"epochs": 2, "device": "cpu", "checkpoint_every": 0}}))
    runs = ["--runs-dir", str(tmp_path / "runs")]
    done = run_cli("train", str(path), "--quiet", "--set", "data.target=category", *runs,
                   cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "workbench: error: model.layers[0], layer 1 (Linear): the network ends with shape 1 "
        "but the dataset has 214 classes (the column 'progression' read as categories); make "
        "the last Linear's out 214 to treat them as 214 classes, or set data.target to "
        "quantity to predict a number"]
    done = run_cli("train", str(path), "--quiet", "--set", "data.target=sometimes", *runs,
                   cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "data.target: must be one of auto, quantity, category" in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    done = run_cli("train", str(path), "--quiet", "--set", "data.target=quantity", *runs,
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert "test_mse" in result and Run(Path(result["run_dir"])).spec().data.target == \
        "quantity"


def test_a_run_trained_under_the_old_reading_still_loads(tmp_path):
    """Before data.target, 214 distinct whole numbers were read as 214 classes; such a run's
    spec says nothing (auto), and its summary says it classified. It loads as it trained."""
    raw = {"name": "old", "data": {"name": "csv", "path": str(DIABETES), "target": "category"},
           "model": {"layers": [{"type": "Linear", "out": 214}]},
           "optim": {"name": "adam", "lr": 0.01},
           "train": {"epochs": 1, "device": "cpu", "checkpoint_every": 0}}
    events = list(Trainer(specmod.from_dict(raw), runs=RunStore(tmp_path)).events())
    assert isinstance(events[-1], RunFinished)
    folder = Path(events[-1].run_dir)
    stored = json.loads((folder / "spec.json").read_text())
    del stored["data"]["target"]  # as a run of an older Workbench wrote it
    (folder / "spec.json").write_text(json.dumps(stored))
    loaded = load_trained(folder)
    assert loaded.splits.info.num_classes == 214
    assert loaded.spec.data.target == "category"


def test_the_exported_script_reads_the_target_as_the_run_did(tmp_path):
    """The standalone script carries the guess: it retrains the diabetes regression bit for
    bit without Workbench."""
    from test_export_script import assert_same_run, export, retrain

    events = list(Trainer(specmod.from_dict({
        "name": "diabetes", "data": {"name": "csv", "path": str(DIABETES)},
        "model": {"layers": [{"type": "Linear", "out": 8}, {"type": "Tanh"},
                             {"type": "Linear", "out": 1}]},
        "optim": {"name": "adam", "lr": 0.05},
        "train": {"epochs": 2, "batch_size": 32, "device": "cpu"}}),
        runs=RunStore(tmp_path / "runs")).events())
    assert isinstance(events[-1], RunFinished)
    done = retrain(export(events[-1].run_dir, tmp_path / "diabetes.py"), tmp_path, "--train",
                   "--out", "d.pt")
    assert_same_run(events[-1].run_dir, done, tmp_path / "d.pt")
