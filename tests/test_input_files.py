"""Hostile data and run files: each is one line naming the file (and row, column or field)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from workbench import spec as specmod
from workbench.cli import main
from workbench.core.data import DataError, dataset_info, load_splits
from workbench.core.store.runs import Run, RunError, RunStore
from workbench.core.tools.compare import Comparison, load_comparison, save_comparison
from workbench.spec import DataSpec, SpecError


def small_spec(**train):
    return specmod.from_dict({"data": {"name": "moons", "samples": 100},
                              "model": {"layers": [{"type": "Linear", "out": 2}]},
                              "train": {"epochs": 1, **train}})


# -- images -------------------------------------------------------------------------------

def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.new("L", (8, 8), 3).save(tmp_path / cls / "0.png")
    Image.new("1", (6000, 6000)).save(tmp_path / "b" / "bomb.png")  # 36 Mpx in a few KB
    assert (tmp_path / "b" / "bomb.png").stat().st_size < 100_000
    data = DataSpec(name="image_folder", path=str(tmp_path))
    with pytest.raises(DataError) as err:
        dataset_info(data)
    assert "bomb.png: the image is 6,000 x 6,000 pixels, more than the 25,000,000" in str(err.value)
    with pytest.raises(DataError, match="bomb.png"):
        load_splits(data, seed=0)


def test_pillows_own_bomb_error_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # so PIL itself refuses at 2x that
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.new("L", (8, 8), 3).save(tmp_path / cls / "0.png")
    with pytest.raises(DataError, match=r"0.png: not a readable image \(Image size"):
        dataset_info(DataSpec(name="image_folder", path=str(tmp_path)))


# -- CSV ------------------------------------------------------------------------------------

def test_a_csv_value_beyond_float32_is_refused_naming_row_and_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y,label\n1,2,a\n3,1e300,b\n5,6,a\n")
    with pytest.raises(DataError, match=r"t.csv: row 3, column 'y': '1e300' is too large "
                                        r"\(beyond ±1e\+30\)"):
        dataset_info(DataSpec(name="csv", path=str(path)))


def test_a_huge_regression_target_is_refused(tmp_path):
    rows = "".join(f"{i},{i * 0.37}\n" for i in range(40))
    path = tmp_path / "r.csv"
    path.write_text("x,target\n" + rows + "1,1e20\n")
    with pytest.raises(DataError, match=r"row 42, column 'target': '1e20' is too large"):
        load_splits(DataSpec(name="csv", path=str(path)), seed=0)


def test_a_csv_path_that_is_not_a_plain_file_is_refused_unread(tmp_path):
    import os

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # reading it would wait forever, as /dev/zero would never end
    for path in (fifo, tmp_path):
        with pytest.raises(DataError, match="not a plain file"):
            dataset_info(DataSpec(name="csv", path=str(path)))


def test_a_label_column_of_ids_is_not_thousands_of_classes(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("x,name\n" + "".join(f"{i},id{i}\n" for i in range(1500)))
    with pytest.raises(DataError, match=r"holds 1,500 different labels; at most 1,000"):
        dataset_info(DataSpec(name="csv", path=str(path)))


# -- run folders --------------------------------------------------------------------------

def test_an_undecodable_metrics_line_is_skipped_like_a_torn_one(tmp_path):
    run = Run(tmp_path)
    run.append_metrics([{"kind": "epoch", "epoch": 1, "global_step": 5}])
    with open(tmp_path / "metrics.jsonl", "ab") as f:
        f.write(b'{"kind": "epoch", "epoch": 2\xff}\n')
        f.write(b'[1, 2]\n{"kind": "epoch", "epoch": "two"}\n{"kind": 5}\n')
        f.write(b'{"kind": "epoch", "epoch": ' + b"[" * 5000 + b"\n")
        f.write(b'{"kind": "epoch", "epoch": 3, "global_step": 15, "val_loss": NaN}\n')
    records = run.metrics("epoch")
    assert [r["epoch"] for r in records] == [1, 3]
    run.truncate_metrics(10)
    assert [r["epoch"] for r in run.metrics()] == [1]


@pytest.mark.parametrize(
    ("summary", "says"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b'{"status": ["finished"]}', "status is list, not str"),
        (b'{"epochs_done": "3"}', "epochs_done is str, not int"),
        (b'{"seconds": true}', "seconds is bool"),
        (b'{"confusion": [[1, 2], [3]]}', "confusion is not a square table"),
        (b'{"class_names": [1, 2]}', "class_names holds something that is not text"),
        (b"[" * 100_000, "nested more than 32 levels"),
        (b"7", "not a JSON object"),
    ],
    ids=["bytes", "status", "epochs", "seconds", "confusion", "names", "deep", "number"],
)
def test_a_damaged_summary_is_one_line_in_runs(tmp_path, capsys, summary, says):
    run = RunStore(tmp_path).create(small_spec())
    (run.path / "summary.json").write_bytes(summary)
    with pytest.raises(RunError, match=says):
        run.summary()
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "damaged" in out and says.split()[0] in out


@pytest.mark.parametrize("command", ["resume", "prune"])
@pytest.mark.parametrize("spec_bytes", [b"\xff{", b'{"train": {"seed": 1e999}}',
                                        b'{"model": {"layers": [{"type": {}}]}}'],
                         ids=["bytes", "number", "type"])
def test_a_damaged_spec_in_a_run_folder_is_one_line(tmp_path, capsys, command, spec_bytes):
    run = RunStore(tmp_path).create(small_spec())
    run.save_checkpoint({"x": 1})
    run.save_model({"x": 1})
    (run.path / "spec.json").write_bytes(spec_bytes)
    argv = [command, str(run.path)] + (["--amount", "0.5"] if command == "prune" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("workbench: error: ") and "spec.json" in err[0]


def test_weights_that_are_not_a_table_are_refused(tmp_path, capsys):
    run = RunStore(tmp_path).create(small_spec())
    run.save_model([1, 2, 3])  # a list, not a state dict
    assert main(["prune", str(run.path), "--amount", "0.5"]) == 2
    assert "model.pt: damaged (not a table of named weights)" in capsys.readouterr().err


# -- comparisons --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xef\xbb\xbf" + b"[" * 50_000, "nested more than 32 levels"),
        (b'{"variants": [], "target_accuracy": NaN}', "holds NaN"),
        (b'{"variants": [{"label": "a", "spec": {}, "run_dir": 5}]}',
         "variants[0].run_dir: must be text"),
        (b'{"variants": [{"label": "a", "spec": 3}]}', "variants[0].spec: a spec must be"),
        (b'{"variants": [], "name": {"x": 1}}', "name: must be text"),
        (b"\x00\x01", "not valid JSON"),
    ],
    ids=["deep", "nan", "run_dir", "spec", "name", "bytes"],
)
def test_hostile_comparison_files_are_one_spec_error(tmp_path, data, says):
    path = tmp_path / "c.json"
    path.write_bytes(data)
    with pytest.raises(SpecError) as err:
        load_comparison(path)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_comparison_round_trips_with_a_bom(tmp_path):
    path = save_comparison(Comparison("c", []), RunStore(tmp_path))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_comparison(path).name == "c"


def test_summary_and_metrics_files_keep_nan_that_training_logs(tmp_path):
    run = Run(tmp_path)
    run.update_summary(status="failed", val_loss=float("nan"))
    assert run.summary()["status"] == "failed"
    json.loads((tmp_path / "summary.json").read_text())  # Python's own reader agrees


# -- MNIST-style folders: the same one line in every command ----------------------------------

def _idx_header(ndim: int, *dims: int) -> bytes:
    import struct

    return struct.pack(f">HBB{ndim}I", 0, 0x08, ndim, *dims)


def _damage(kind: str, folder):
    """A folder of the four IDX files with one damaged as a person (or a disk) may."""
    import gzip
    import os

    from test_data_readers import write_mnist

    from workbench.core.data.idx import FILES

    write_mnist(folder, n_train=40, n_test=20)
    images = folder / (FILES["train_images"] + ".gz")
    labels = folder / (FILES["train_labels"] + ".gz")
    if kind == "fifo":
        images.unlink()
        os.mkfifo(images)  # reading it would wait forever
    elif kind == "device":
        images.unlink()
        images.symlink_to("/dev/zero")  # reading it would never end
    elif kind == "empty":
        images.write_bytes(b"")
    elif kind == "truncated":
        images.write_bytes(images.read_bytes()[:200])
    elif kind == "billion":  # a header claiming 10^9 labels over 40 bytes
        labels.write_bytes(gzip.compress(_idx_header(1, 10**9) + b"\0" * 40))
    elif kind == "overflow":  # 2^22 * 2^21 * 2^21 wraps int64 to 0: it passed the check
        images.write_bytes(gzip.compress(_idx_header(3, 2**22, 2**21, 2**21)))
    return {"fifo": "not a plain file", "device": "not a plain file",
            "empty": "too short to be an IDX file", "truncated": "not a complete gzip file",
            "billion": "the header says 1,000,000,000 bytes of data, more than the",
            "overflow": "more than the 268,435,456 this reader takes"}[kind]


KINDS = ["fifo", "device", "empty", "truncated", "billion", "overflow"]


@pytest.mark.parametrize("kind", ["fifo", "device", "billion", "overflow"])
def test_a_damaged_idx_file_is_one_data_error(tmp_path, kind):
    says = _damage(kind, tmp_path)
    with pytest.raises(DataError, match=says):
        load_splits(DataSpec(name="mnist", root=str(tmp_path)), seed=0)


def _mnist_spec(tmp_path, root) -> str:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({
        "name": "offline", "data": {"name": "mnist", "root": str(root)},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 10}]},
        "train": {"epochs": 1, "batch_size": 16, "device": "cpu"}}))
    return str(path)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["train", "lr-find", "compare"])
def test_a_damaged_mnist_folder_is_one_line_exit_2_in_every_command(tmp_path, capsys, kind,
                                                                    command):
    """`train` said it over several lines with exit 1 (a bug for the overflow), lr-find in a
    58-line traceback, compare failed every variant and saved the comparison."""
    folder = tmp_path / "mnist"
    says = _damage(kind, folder)
    runs = tmp_path / "runs"
    argv = {"train": ["train", _mnist_spec(tmp_path, folder), "--quiet"],
            "lr-find": ["lr-find", _mnist_spec(tmp_path, folder), "--steps", "10"],
            "compare": ["compare", _mnist_spec(tmp_path, folder), "--vary",
                        "optim.lr=0.1,0.01", "--quiet"]}[command]
    assert main([*argv, "--runs-dir", str(runs)] if command != "lr-find" else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("workbench: error: ") and says in err[0], err
    assert not runs.exists()  # nothing was made


def test_a_run_whose_data_folder_was_damaged_is_one_line_in_its_tools(tmp_path, capsys):
    from test_data_readers import write_mnist

    folder = tmp_path / "mnist"
    write_mnist(folder, n_train=40, n_test=20)
    runs = tmp_path / "runs"
    assert main(["train", _mnist_spec(tmp_path, folder), "--runs-dir", str(runs),
                 "--quiet"]) == 0
    capsys.readouterr()
    says = _damage("overflow", folder)
    for argv in (["export", "latest", str(tmp_path / "m.onnx")],
                 ["prune", "latest", "--amount", "0.5"],
                 ["fork", "latest", "--epoch", "1", "--set", "train.epochs=2"],
                 ["compress", "latest"]):
        assert main([*argv, "--runs-dir", str(runs)]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], (argv, err)
    assert len(list(runs.iterdir())) == 1 and not (tmp_path / "m.onnx").exists()


def test_a_checkpoint_that_is_not_a_plain_file_is_refused_unread(tmp_path):
    import os

    run = RunStore(tmp_path).create(small_spec())
    os.mkfifo(run.path / "checkpoint.pt")  # torch.load would wait on it forever
    with pytest.raises(RunError, match="checkpoint.pt: not a plain file"):
        run.load_checkpoint()
