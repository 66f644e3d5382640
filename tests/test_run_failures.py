"""A run that fails keeps what a person needs: a bug's traceback in the log and in the run
folder, a failure recorded even when the folder cannot be written, one trainer per run, and
SIGINT/SIGTERM as a cooperative stop."""

import errno
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading

import pytest

from workbench import logs
from workbench import spec as specmod
from workbench.commands.train import StopOnSignal
from workbench.core.store import runs as runs_module
from workbench.core.store.runs import Run, RunStore
from workbench.core.training.callbacks import Callback
from workbench.core.training.events import RunFailed, RunFinished, RunStarted
from workbench.core.training.loop import Trainer

SPEC = {
    "name": "faulty",
    "data": {"name": "moons", "samples": 400, "noise": 0.15},
    "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                         {"type": "Linear", "out": 2}]},
    "optim": {"name": "adam", "lr": 0.02},
    "train": {"epochs": 3, "batch_size": 16, "seed": 0, "device": "cpu"},
}


def make_spec(**train):
    return specmod.from_dict({**SPEC, "train": {**SPEC["train"], **train}})


class Boom(Callback):
    """A real error inside the trainer, as a bug would raise one."""

    def on_epoch_end(self, trainer, record):
        self.explode(record["epoch"])

    @staticmethod
    def explode(epoch):
        raise ZeroDivisionError(f"a bug at epoch {epoch}")


@pytest.fixture
def log_file():
    """The log configured as the CLI does, into this test's home; unconfigured after."""
    path = logs.configure()
    yield path
    root = logging.getLogger(logs.LOGGER)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()


def test_a_bug_keeps_its_traceback_in_the_run_and_in_the_log(tmp_path, log_file):
    events = list(Trainer(make_spec(), runs=RunStore(tmp_path / "runs"),
                          callbacks=[Boom()]).events())
    failed = events[-1]
    assert isinstance(failed, RunFailed)
    assert failed.reason == "ZeroDivisionError: a bug at epoch 1"
    assert "bug" in failed.hint
    trace = Run(failed.run_dir).path / "traceback.txt"
    assert failed.details == str(trace)
    text = trace.read_text()
    assert text.startswith("Traceback") and "in explode" in text
    summary = Run(failed.run_dir).summary()
    assert summary["status"] == "failed" and summary["traceback"] == "traceback.txt"
    logged = log_file.read_text()
    assert "ZeroDivisionError: a bug at epoch 1" in logged and "in explode" in logged


def test_bad_input_is_not_called_a_bug_and_writes_no_traceback(tmp_path):
    spec = make_spec()
    spec.data.name = "csv"
    spec.data.path = str(tmp_path / "missing.csv")
    failed = list(Trainer(spec, runs=RunStore(tmp_path / "runs")).events())[-1]
    assert isinstance(failed, RunFailed) and failed.details is None
    assert "bug" not in failed.hint


class ReadOnlyAfter(Callback):
    """From the first epoch's end on, every write in the run store fails with `code`."""

    def __init__(self, monkeypatch, code):
        self.monkeypatch, self.code = monkeypatch, code

    def on_epoch_end(self, trainer, record):
        def refuse(path, *_args):
            raise OSError(self.code, os.strerror(self.code), str(path))

        for name in ("write_text_atomic", "write_bytes_atomic"):
            self.monkeypatch.setattr(runs_module, name, refuse)


@pytest.mark.parametrize("code, words, hint", [
    (errno.EROFS, "read-only", "choose a runs folder you can write to"),
    (errno.ENOSPC, "the disk is full", "free some disk space")])
def test_the_failure_handler_survives_a_folder_it_cannot_write(tmp_path, monkeypatch, code,
                                                               words, hint):
    events = list(Trainer(make_spec(), runs=RunStore(tmp_path / "runs"),
                          callbacks=[ReadOnlyAfter(monkeypatch, code)]).events())
    failed = events[-1]
    assert isinstance(failed, RunFailed)
    # the first write at epoch 1's end: its fork point, which comes before checkpoint.pt
    assert failed.reason.startswith("cannot write ") and "epoch-00001.pt" in failed.reason
    assert words in failed.reason and "bug" not in failed.hint
    # what to do depends on what went wrong: no "free some disk space" for a read-only folder
    assert failed.hint.startswith(hint) and ("disk space" in failed.hint) == (code == errno.ENOSPC)
    monkeypatch.undo()
    info = RunStore(tmp_path / "runs").list()[0]
    assert info.status == "interrupted"  # the summary said "running", and nobody holds it


def test_a_runs_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    def refuse(self, spec, **_kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.root))

    monkeypatch.setattr(RunStore, "create", refuse)
    failed = list(Trainer(make_spec(), runs=RunStore(tmp_path / "ro")).events())[-1]
    assert isinstance(failed, RunFailed) and failed.run_dir is None
    assert failed.reason == f"cannot write {tmp_path / 'ro'}: permission denied"


def test_two_trainers_on_one_run_the_second_is_refused(tmp_path):
    first = Trainer(make_spec(), runs=RunStore(tmp_path))
    events = first.events()
    started = next(events)
    assert isinstance(started, RunStarted)
    second = list(Trainer(resume=started.run_dir).events())
    assert len(second) == 1 and isinstance(second[0], RunFailed)
    assert f"is in use by process {os.getpid()} on host" in second[0].reason
    rest = list(events)
    assert isinstance(rest[-1], RunFinished)
    epochs = [r["epoch"] for r in Run(started.run_dir).metrics("epoch")]
    assert epochs == [1, 2, 3]
    assert Run(started.run_dir).summary()["status"] == "finished"


def test_resume_beside_a_live_trainer_is_refused_by_the_cli(tmp_path):
    first = Trainer(make_spec(), runs=RunStore(tmp_path))
    events = first.events()
    started = next(events)
    try:
        out = subprocess.run([sys.executable, "-m", "workbench", "resume", started.run_dir],
                             capture_output=True, text=True, timeout=300)
    finally:
        events.close()
    assert out.returncode == 2
    assert f"is in use by process {os.getpid()} on host" in out.stderr


def test_a_second_signal_exits_at_once(monkeypatch):
    class FakeTrainer:
        stops = 0

        def stop(self):
            self.stops += 1

    exits = []
    monkeypatch.setattr(os, "_exit", exits.append)
    trainer = FakeTrainer()
    with StopOnSignal(trainer) as stopper:
        stopper._handle(signal.SIGINT, None)
        assert trainer.stops == 1 and exits == [] and stopper.exit_code == 130
        stopper._handle(signal.SIGINT, None)
    assert exits == [130]


def _lines(stream, out):
    for line in stream:
        out.put(line)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_cli_run_cooperatively(tmp_path, sig, code):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "data": {**SPEC["data"], "samples": 4000},
                                "train": {**SPEC["train"], "epochs": 200, "batch_size": 8}}))
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(spec),
                             "--runs-dir", str(tmp_path / "runs"), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stderr, lines), daemon=True).start()
    try:
        while not lines.get(timeout=300).startswith("epoch 1:"):
            pass
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == code
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "stopped"
    run = Run(result["run_dir"])
    assert run.summary()["status"] == "stopped"
    assert run.load_checkpoint()["global_step"] > 0
    assert RunStore(tmp_path / "runs").list()[0].resumable
