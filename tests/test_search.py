"""Hyperparameter search on real small data: spaces checked in one line, trials as linked runs,
pruning that stops the trainer, studies that resume after a stop and after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from workbench import spec as specmod  # noqa: E402
from workbench.core.store.runs import Run, RunStore  # noqa: E402
from workbench.core.tools.search import (  # noqa: E402
    SearchError,
    SearchRunner,
    TrialEnded,
    TrialStarted,
    _Report,
    base_params,
    best_so_far,
    importances,
    load_space,
    parse_space,
    read_study,
)
from workbench.core.training.events import EpochEnded, RunFinished  # noqa: E402
from workbench.core.training.loop import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SPACE = {"params": {
    "optim.lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
    "optim.name": {"type": "categorical", "choices": ["adam", "sgd"]},
    "model.layers[0].out": {"type": "int", "low": 4, "high": 32, "log": True},
}, "startup_trials": 2}


def moons(**train) -> specmod.ExperimentSpec:
    return specmod.from_dict({
        "name": "moons-search",
        "data": {"name": "moons", "samples": 300, "noise": 0.15},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 32, "seed": 0, "device": "cpu", **train},
    })


def runner(tmp_path, trials, **kw) -> SearchRunner:
    kw.setdefault("storage", f"sqlite:///{tmp_path / 'study.db'}")
    kw.setdefault("study", "s")
    return SearchRunner(moons(), parse_space(SPACE), trials=trials,
                        runs=RunStore(tmp_path / "runs"), threads=1, sampler_seed=0, **kw)


def test_a_search_finds_and_links_its_trials_and_resumes(tmp_path):
    events = []
    result = runner(tmp_path, 4, on_event=events.append).run()
    assert result.best is not None and result.best.value > 0.8
    finished = [r for r in result.rows if r.state in ("complete", "pruned")]
    assert len(finished) == 4
    first = min(result.rows, key=lambda r: r.number)
    assert first.params == {"optim.lr": 0.01, "optim.name": "adam", "model.layers[0].out": 16}
    for row in finished:
        summary = Run(row.run_dir).summary()
        assert (summary["study"], summary["trial"]) == ("s", row.number)
        assert summary["search_params"] == row.params
        assert summary["search_state"] == row.state
        assert Run(row.run_dir).spec().optim.name == row.params["optim.name"]
    assert sum(isinstance(e, TrialStarted) for e in events) == 4
    assert sum(isinstance(e, TrialEnded) for e in events) == 4
    again = runner(tmp_path, 5).run()  # the same study: one more trial, not five
    assert len([r for r in again.rows if r.state in ("complete", "pruned")]) == 5
    view = read_study(f"sqlite:///{tmp_path / 'study.db'}", "s")
    assert view.direction == "maximize" and len(view.rows) == 5
    assert view.objective == "val_accuracy" and view.space == parse_space(SPACE)
    xs, ys = best_so_far(view.rows, view.direction)
    assert ys == sorted(ys)
    assert set(importances(f"sqlite:///{tmp_path / 'study.db'}", "s")) <= set(SPACE["params"])


@pytest.mark.parametrize("pruner", ["hyperband", "none"])
def test_the_other_pruners_and_a_loss_objective(tmp_path, pruner):
    space = parse_space({**SPACE, "pruner": pruner, "objective": "val_loss"})
    result = SearchRunner(moons(), space, trials=3, storage=f"sqlite:///{tmp_path / 's.db'}",
                          runs=RunStore(tmp_path / "runs"), threads=1, sampler_seed=0).run()
    assert result.direction == "minimize" and result.objective == "val_loss"
    assert sum(r.state in ("complete", "pruned") for r in result.rows) == 3
    assert result.best is not None and result.best.value == min(
        r.value for r in result.rows if r.state == "complete")


class _Judge:
    """An Optuna trial stand-in whose pruner gives up after the second epoch."""

    number = 0

    def __init__(self) -> None:
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return len(self.reports) >= 2

    def set_user_attr(self, *_args) -> None:
        pass


def test_a_pruned_trial_stops_its_trainer_after_that_epoch(tmp_path):
    judge = _Judge()
    report = _Report(judge, "val_accuracy", "s", "sqlite://", {})
    events = list(Trainer(moons(epochs=6), runs=RunStore(tmp_path), callbacks=[report],
                          threads=1).events())
    assert report.pruned
    assert [step for _, step in judge.reports] == [1, 2]
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [1, 2]
    assert isinstance(events[-1], RunFinished) and events[-1].stopped


def test_stop_from_another_thread_retries_the_trial_on_resume(tmp_path):
    r = runner(tmp_path, 3)
    started = []

    def on_event(event):
        if isinstance(event, EpochEnded) and not started:
            started.append(event)
            threading.Thread(target=r.stop).start()

    r.on_event = lambda e: on_event(getattr(e, "event", None))
    result = r.run()
    assert result.stopped
    assert [row.state for row in result.rows] == ["failed"]
    stopped = result.rows[0]
    assert "stopped" in stopped.error
    resumed = runner(tmp_path, 3).run()
    retried = [row for row in resumed.rows if row.number == 1][0]
    assert retried.params == stopped.params and retried.state in ("complete", "pruned")


def test_a_search_killed_mid_way_resumes_from_its_storage(tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(moons().to_json())
    space_path = tmp_path / "space.json"
    space_path.write_text(json.dumps(SPACE))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    cmd = [sys.executable, "-m", "workbench.cli", "search", str(spec_path), "--space",
           str(space_path), "--trials", "4", "--storage", storage, "--study", "k",
           "--runs-dir", str(tmp_path / "runs"), "--threads", "1", "--seed", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=env)
    killed_params = None
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("trial 2:"):
            killed_params = line.split(":", 1)[1].strip()
        if line.startswith("trial 2 runs in"):  # two trials done, the third training
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and killed_params
    rows = read_study(storage, "k").rows
    assert [r.state for r in rows] == ["complete", "complete", "running"]

    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["trials"].get("complete", 0) + result["trials"].get("pruned", 0) == 4
    assert result["trials"]["failed"] == 1
    assert f"trial 3: {killed_params}" in done.stderr  # the killed trial, run again
    rows = read_study(storage, "k").rows
    assert rows[0].run_dir and rows[1].run_dir  # the first two were kept, not redone
    finished = [r for r in rows if r.state in ("complete", "pruned")]
    # a recreated seeded sampler used to draw trial 1's settings again for trial 4
    assert len({json.dumps(r.params, sort_keys=True) for r in finished}) == len(finished)
    killed = Run(rows[2].run_dir).summary()  # replaced by trial 3, not "interrupted, resume"
    assert killed["search_state"] == "replaced" and killed["status"] == "failed"
    assert "runs trial 2's settings again" in killed["error"]


def test_a_resumed_seeded_search_does_not_draw_its_trials_again(tmp_path):
    """A recreated seeded sampler used to repeat its draws: the resumed search's first random
    trial had the settings of the first search's first random trial, and trained them again."""
    space = parse_space({**SPACE, "startup_trials": 10})  # every draw random, from the seed
    kw = {"storage": f"sqlite:///{tmp_path / 'seeded.db'}", "study": "seeded",
          "runs": RunStore(tmp_path / "runs"), "threads": 1, "sampler_seed": 0}
    SearchRunner(moons(), space, trials=2, **kw).run()
    result = SearchRunner(moons(), space, trials=4, **kw).run()
    finished = [r for r in result.rows if r.state in ("complete", "pruned")]
    assert len(finished) == 4
    assert len({json.dumps(r.params, sort_keys=True) for r in finished}) == 4


def test_two_processes_work_one_new_study(tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(moons().to_json())
    space_path = tmp_path / "space.json"
    space_path.write_text(json.dumps(SPACE))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    cmd = [sys.executable, "-m", "workbench.cli", "search", str(spec_path), "--space",
           str(space_path), "--trials", "4", "--storage", storage, "--study", "shared",
           "--runs-dir", str(tmp_path / "runs"), "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-3000:] for _, err in outs]
    rows = read_study(storage, "shared").rows
    finished = [r for r in rows if r.state in ("complete", "pruned")]
    assert 4 <= len(finished) <= 5  # a process that began a trial before the 4th ended ends it
    assert sum(r.params == {"optim.lr": 0.01, "optim.name": "adam",
                            "model.layers[0].out": 16} for r in rows) == 1  # one baseline
    assert len({r.run_dir for r in finished}) == len(finished)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test asks without optimize
def test_only_the_trials_of_processes_known_dead_are_retried(tmp_path):
    """A new process retries the running trials whose process on this machine died, but not
    one whose owner has not written its process yet: failing that one made the owner's own
    result fail ("Cannot tell a FAIL trial", one process of two exited 1)."""
    import socket

    from optuna.trial import TrialState

    from workbench.core.tools.search import open_storage

    study = optuna.create_study(study_name="o", storage=open_storage(
        f"sqlite:///{tmp_path / 'o.db'}"))
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("host", socket.gethostname())  # as a process midway through its writes
    SearchRunner._retry_orphans(study)
    assert [t.state for t in study.trials] == [TrialState.RUNNING]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    trial.set_user_attr("pid", int(gone.stdout))  # a process that has ended
    SearchRunner._retry_orphans(study)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.WAITING]
    assert study.trials[1].system_attrs["fixed_params"] == study.trials[0].params  # again


CLAIM = """
import sys, time
import optuna
from workbench.core.tools.search import open_storage
study = optuna.load_study(study_name="q", storage=open_storage(sys.argv[1]))
while time.time() < float(sys.argv[2]):
    pass
claimed = []
while (trial := study._pop_waiting_trial_id()) is not None:
    claimed.append(trial)
print(*claimed)
"""


def test_processes_claim_each_queued_trial_once_on_sqlite(tmp_path):
    """SQLite cannot lock the row of a waiting trial: without the claim lock two processes
    both took one enqueued trial (26 of 100 twice in 5 tries here), and one failed at its end."""
    import time

    storage = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="q", storage=storage)
    for x in range(30):
        study.enqueue_trial({"x": x})
    start = str(time.time() + 5)  # past the imports: the processes claim at once
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM, storage, start], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    claimed = [trial for out, _ in outs for trial in out.split()]
    assert len(claimed) == len(set(claimed)) == 30


@pytest.mark.parametrize("raw, message", [
    ([], "a search space must be a JSON object"),
    ({"params": {}}, "params: give at least one field"),
    ({"params": {"optim.lr": {"low": 1, "high": 2}}}, r"params.optim.lr.type: must be one of"),
    ({"params": {"optim.lr": {"type": "float", "low": 0.1, "high": 0.01}}},
     r"params.optim.lr.high: must be >= low"),
    ({"params": {"optim.lr": {"type": "float", "low": 0, "high": 1, "log": True}}},
     r"params.optim.lr.low: a log range must start above 0"),
    ({"params": {"train.epochs": {"type": "int", "low": 1.5, "high": 4}}},
     r"params.train.epochs.low: must be an integer"),
    ({"params": {"optim.name": {"type": "categorical", "choices": []}}},
     r"params.optim.name.choices: must be a non-empty list"),
    ({"params": {"optim.name": {"type": "categorical", "choices": ["adam", "adam"]}}},
     "a choice is listed twice"),
    ({"params": {"optim.lr": {"type": "float", "low": 0.1, "high": 1, "lo": 3}}},
     r"params.optim.lr.lo: not an entry of a float range"),
    ({"params": {"optim.lr": {"type": "float", "low": 1e-3, "high": 1}},
      "startup_trials": 100_001}, "startup_trials: must be an integer from 0 to 100000"),
    ({"params": {"optim.lr": {"type": "float", "low": 1e-3, "high": 1}}, "pruner": "x"},
     "pruner: must be one of median, hyperband, none"),
    ({"params": {"optim.lr": {"type": "float", "low": 1e-3, "high": 1}}, "objective": "acc"},
     "objective: must be one of val_accuracy, val_loss"),
    ({"params": {"optim.nope": {"type": "float", "low": 1e-3, "high": 1}}},
     r"params.optim.nope: 0.001 does not make a valid experiment: optim.nope: no such field"),
    ({"params": {"optim.name": {"type": "categorical", "choices": ["adam", "lion"]}}},
     r"params.optim.name: 'lion' does not make a valid experiment"),
    ({"params": {"model.layers[7].out": {"type": "int", "low": 2, "high": 8}}},
     r"params.model.layers\[7\].out: 2 does not make a valid experiment"),
])
def test_bad_spaces_are_one_line_errors(raw, message):
    with pytest.raises(SearchError, match=message) as info:
        parse_space(raw, moons())
    assert "\n" not in str(info.value)


def test_space_files_and_the_baseline(tmp_path):
    path = tmp_path / "space.json"
    path.write_text("{ nope")
    with pytest.raises(SearchError, match="not valid JSON"):
        load_space(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(SearchError, match="not UTF-8"):
        load_space(path)
    space = parse_space(SPACE)
    assert base_params(moons(), space) == {"optim.lr": 0.01, "optim.name": "adam",
                                           "model.layers[0].out": 16}
    assert base_params(moons().with_value("optim.lr", 0.9), space) is None  # out of range


def test_a_study_of_another_space_or_a_bad_storage_is_refused(tmp_path):
    runner(tmp_path, 1).run()
    other = dict(SPACE, params={"optim.lr": {"type": "float", "low": 1e-4, "high": 1.0}})
    with pytest.raises(SearchError, match="searches another experiment or space"):
        SearchRunner(moons(), parse_space(other), trials=1, storage=f"sqlite:///{tmp_path}/"
                     "study.db", study="s", runs=RunStore(tmp_path / "runs")).open()
    with pytest.raises(SearchError, match="--storage: must be a database URL"):
        runner(tmp_path, 1, storage="study.db").run()
    with pytest.raises(SearchError, match="does not exist"):
        runner(tmp_path, 1, storage=f"sqlite:///{tmp_path}/missing/x.db").run()
    with pytest.raises(SearchError, match="--trials"):
        runner(tmp_path, 0)
    with pytest.raises(SearchError, match=r"at most 4096 characters\), got 'sqlite:///x+'… "
                                          r"\(5010 characters\)"):
        runner(tmp_path, 1, storage="sqlite:///" + "x" * 5000).run()
    for bad, message in (("", "must not be empty"), ("a\nb", "must be one line"),
                         ("s" * 201, "must be at most 200 characters")):
        with pytest.raises(SearchError, match=f"--study: {message}"):
            runner(tmp_path, 1, study=bad)


def test_the_search_command_prints_the_best_trial_last(tmp_path, capsys):
    from workbench.cli import main

    spec_path = tmp_path / "spec.json"
    spec_path.write_text(moons().to_json())
    space_path = tmp_path / "space.json"
    space_path.write_text(json.dumps(SPACE))
    code = main(["search", str(spec_path), "--space", str(space_path), "--trials", "2",
                 "--runs-dir", str(tmp_path / "runs"), "--threads", "1"])
    assert code == 0
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    assert result["best"]["value"] > 0.5 and result["objective"] == "val_accuracy"
    assert (tmp_path / "runs" / "search.db").is_file()  # the default storage
    assert "trial 0:" in out.err and "best: trial" in out.err
    assert main(["studies", "--runs-dir", str(tmp_path / "runs")]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith("1 study in sqlite:///") and len(listed) == 2
    assert listed[1].startswith(result["study"]) and "2 trials, best val_accuracy" in listed[1]
    space_path.write_text(json.dumps({"params": {"optim.lr": {"type": "float"}}}))
    assert main(["search", str(spec_path), "--space", str(space_path), "--trials", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "params.optim.lr.low: missing" in err[0]


def test_the_studies_command_on_no_storage_and_on_a_broken_one(tmp_path, capsys):
    from workbench.cli import main

    assert main(["studies", "--runs-dir", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.startswith("no studies in sqlite:///")
    assert not (tmp_path / "runs" / "search.db").exists()  # looking made no database
    (tmp_path / "junk.db").write_text("not a database")
    assert main(["studies", "--storage", f"sqlite:///{tmp_path / 'junk.db'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot open it" in err[0]
