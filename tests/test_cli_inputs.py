"""Every numeric flag of the CLI is bounded when it is parsed: exit 2, one line naming the flag."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main
from workbench.commands import prune as prune_command
from workbench.paths import resources_dir


@pytest.fixture
def spec_path(tmp_path):
    spec = json.loads((resources_dir() / "examples" / "moons_logistic.json").read_text())
    spec["train"]["epochs"] = 1
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


def one_line_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--epochs", "0", "a whole number from 1 to 100,000"),
        ("--epochs", "1e9", "a whole number from 1 to 100,000"),
        ("--epochs", "9" * 5000, "a whole number from 1 to 100,000"),
        ("--seed", str(2**63), "a whole number from 0 to 2,147,483,647"),
        ("--seed", "-1", "a whole number from 0 to 2,147,483,647"),
        ("--device", "cuda:abc", "must be auto, cpu, cuda or cuda:N"),
        ("--device", "tpu", "must be auto, cpu, cuda or cuda:N"),
        ("--threads", "0", "a whole number from 1 to 1,024"),
        ("--threads", "100000", "a whole number from 1 to 1,024"),
        ("--nproc", "-3", "a whole number from 1 to 1,024"),
        ("--master-port", "70000", "a whole number from 1 to 65,535"),
        ("--node-rank", "nan", "a whole number from 0 to 1,023"),
    ],
)
def test_train_flags(capsys, spec_path, flag, value, says):
    line = one_line_exit_2(capsys, ["train", spec_path, flag, value])
    assert f"argument {flag}" in line and says in line and len(line) < 250


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--amount", "1", "a number from 0 to 0.99"),
        ("--amount", "-0.1", "a number from 0 to 0.99"),
        ("--amount", "nan", "a number from 0 to 0.99"),
        ("--lr", "0", "a number from 1e-12 to 1,000,000"),
        ("--lr", "nan", "a number from 1e-12 to 1,000,000"),
        ("--lr", "-1", "a number from 1e-12 to 1,000,000"),
        ("--lr", "inf", "a number from 1e-12 to 1,000,000"),
        ("--finetune", "-2", "a whole number from 0 to 100,000"),
        ("--finetune", "2.5", "a whole number from 0 to 100,000"),
    ],
)
def test_prune_flags(capsys, tmp_path, flag, value, says):
    argv = ["prune", str(tmp_path), "--amount", "0.5", flag, value]
    line = one_line_exit_2(capsys, argv)
    assert f"argument {flag}" in line and says in line


def test_the_prune_amount_bound_is_the_cores():
    from workbench.core.tools.prune import MAX_AMOUNT

    assert prune_command.AMOUNT.hi == MAX_AMOUNT


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--target", "1.5"], "argument --target: must be a number from 0 to 1"),
        (["--side-by-side", "0"], "argument --side-by-side: must be a whole number from 1 to 64"),
        (["--epochs", "-1"], "argument --epochs"),
        (["--device", "cuda:x"], "argument --device"),
    ],
)
def test_compare_flags(capsys, spec_path, flags, says):
    line = one_line_exit_2(capsys, ["compare", spec_path, "--vary", "optim.name=sgd", *flags])
    assert says in line


@pytest.mark.parametrize(
    ("vary", "says"),
    [
        ("optim.lr=0.1,0", "optim.lr: must be a number from 1e-12"),
        ("optim.lr=NaN", "optim.lr: must be a number from 1e-12"),
        ("optim.lr=" + "[" * 100_000, "optim.lr: must be a number from 1e-12"),
        ("train.seed=" + "9" * 5000, "train.seed: must be a whole number"),
        ("train.epochs=1e9", "train.epochs: must be a whole number from 1 to 100,000"),
        ("model.layers[0].out=1000000000", "must be a whole number from 1 to 65,536"),
        ("optim.name=nesterov:momentum=0", "optim.momentum: Nesterov momentum needs"),
        ("train.device=tpu", "train.device: must be auto, cpu, cuda or cuda:N"),
    ],
)
def test_compare_vary_values_go_through_spec_validation(capsys, tmp_path, spec_path, vary,
                                                          says):
    code = main(["compare", spec_path, "--vary", vary, "--runs-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("workbench: error: ") and says in err[0] and len(err[0]) < 300


def test_prune_with_a_bad_rate_in_the_core_changes_nothing(tmp_path):
    """The app calls the core directly: a rate of 0 is refused before a run is created."""
    from prune_fixtures import MOONS, train_run

    from workbench.core.store.runs import RunStore
    from workbench.core.tools.prune import PruneConfig, PruneError, PruneSession
    from workbench.core.tools.prune_apply import create_pruned_run

    run_dir = train_run(tmp_path / "runs", MOONS, data={"name": "moons", "samples": 300})
    session = PruneSession(run_dir)
    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    for lr in (0.0, float("nan"), -1.0):
        with pytest.raises(PruneError, match="fine-tuning: optim.lr: must be a number from 1e-12"):
            create_pruned_run(session, PruneConfig(amount=0.5), runs=RunStore(tmp_path / "runs"),
                              finetune_epochs=1, lr=lr)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == before


# -- one exit status per kind of ending, across commands --------------------------------------

def test_the_exit_statuses_are_one_table():
    from workbench.commands.common import Exit

    assert [int(e) for e in Exit] == [0, 1, 2, 130, 141, 143]


def _offline_spec(tmp_path) -> str:
    path = tmp_path / "offline.json"
    path.write_text(json.dumps({
        "name": "offline", "data": {"name": "mnist"},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "out": 10}]},
        "train": {"epochs": 1, "device": "cpu"}}))
    return str(path)


@pytest.mark.parametrize("command", ["train", "lr-find", "compare"])
def test_the_same_offline_failure_is_the_same_exit_in_every_command(tmp_path, capsys,
                                                                    monkeypatch, command):
    """No network for a download: `train` exited 1 over several lines, `lr-find` 2 in one."""
    import socket

    from workbench.core.data import download

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connections are refused
    monkeypatch.setenv(download.MIRROR_ENV, f"http://127.0.0.1:{port}/")
    spec = _offline_spec(tmp_path)
    runs = ["--runs-dir", str(tmp_path / "runs")]
    argv = {"train": ["train", spec, "--quiet", *runs], "lr-find": ["lr-find", spec],
            "compare": ["compare", spec, "--vary", "optim.lr=0.1,0.01", "--quiet", *runs]}
    assert main(argv[command]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no internet" in err[0] and "--data-root" in err[0], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["runs", "train", "export", "prune", "resume"])
@pytest.mark.parametrize("where", ["/dev/null", "file", "under-a-file"])
def test_a_runs_folder_that_cannot_be_a_folder_is_refused_in_one_line(tmp_path, capsys,
                                                                      spec_path, command,
                                                                      where):
    """`--runs-dir /dev/null` was "a bug in Workbench"; `runs --runs-dir /etc/hostname` said
    "no runs" and exited 0."""
    file = tmp_path / "hostname"
    file.write_text("host\n")
    runs_dir = {"/dev/null": "/dev/null", "file": str(file),
                "under-a-file": str(file / "runs")}[where]
    argv = {"runs": ["runs"], "train": ["train", spec_path, "--quiet"],
            "export": ["export", "latest", str(tmp_path / "m.onnx")],
            "prune": ["prune", "latest", "--amount", "0.5"],
            "resume": ["resume", "latest"]}[command]
    assert main([*argv, "--runs-dir", runs_dir]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0] and "bug" not in err[0], err
    assert file.read_text() == "host\n"


# -- the output's reader goes away, other libraries' noise ------------------------------------

@pytest.mark.parametrize("args", [["runs"], ["runs", "--json"]], ids=["runs", "json"])
def test_a_closed_pipe_ends_a_command_without_a_traceback(tmp_path, args):
    """`workbench runs | head -1` ended in a BrokenPipeError traceback."""
    import subprocess
    import sys

    from workbench.core.store.runs import RunStore
    from workbench.spec import from_dict

    store = RunStore(tmp_path / "runs")
    for _ in range(3):
        store.create(from_dict({"data": {"name": "moons"},
                                "model": {"layers": [{"type": "Linear", "out": 2}]}}))
    proc = subprocess.Popen([sys.executable, "-m", "workbench", *args, "--runs-dir",
                             str(store.root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before a line is written
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141  # 128 + SIGPIPE: the output was cut


def test_compress_says_only_its_own_lines_without_verbose(tmp_path):
    """It printed 20 "torchvision is not installed" lines, FutureWarnings and `INFO:workbench`
    lines (onnxruntime's quantization calls `logging.basicConfig`)."""
    import subprocess
    import sys

    from prune_fixtures import MOONS, train_run

    run_dir = train_run(tmp_path / "runs", MOONS, data={"name": "moons", "samples": 300})
    done = subprocess.run([sys.executable, "-m", "workbench", "compress", run_dir,
                           "--quantize", "static", "--calibration", "64", "--per-channel", "no"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("variant ") and lines[-1].startswith("Pareto set"), lines
    assert len(lines) == 4, lines  # the table's head, two variants, the Pareto set
