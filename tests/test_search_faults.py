"""Search under hostile input, faults and signals: no secret shown or stored, no unbounded wait
or read, one line for every refusal, listing that never writes, a cooperative stop, failed
trials that do not count, and a trial's value that is its kept model's."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from workbench import spec as specmod  # noqa: E402
from workbench.cli import main  # noqa: E402
from workbench.core.fields import read_field, set_field, shown  # noqa: E402
from workbench.core.store.runs import Run, RunStore  # noqa: E402
from workbench.core.tools.search import (  # noqa: E402
    SearchError,
    SearchRunner,
    list_studies,
    load_space,
    parse_space,
    read_study,
)
from workbench.spec import SpecError  # noqa: E402

SECRET = "Q2secretQ"
SPEC = {"name": "moons-search", "data": {"name": "moons", "samples": 300, "noise": 0.15},
        "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out": 2}]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 32, "seed": 0, "device": "cpu"}}
SPACE = {"params": {"optim.lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True}},
         "startup_trials": 2}


def files(tmp: Path, spec: dict = SPEC, space: dict = SPACE) -> tuple[str, str]:
    (tmp / "spec.json").write_text(json.dumps(spec))
    (tmp / "space.json").write_text(json.dumps(space))
    return str(tmp / "spec.json"), str(tmp / "space.json")


def status(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def within(seconds: float, work) -> object:
    """`work()`, failing (not hanging) when it does not end within `seconds`."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def test_a_password_anywhere_in_the_url_is_never_shown_or_stored(tmp_path, capsys):
    spec, space = files(tmp_path)
    runs = tmp_path / "runs"
    url = f"sqlite:///{tmp_path / 'qp3.db'}?password={SECRET}"
    assert main(["search", spec, "--space", space, "--trials", "1", "--storage", url,
                 "--runs-dir", str(runs), "--threads", "1"]) == 0
    seen = capsys.readouterr()
    assert main(["studies", "--storage", url]) == 0
    listed = capsys.readouterr()
    texts = [seen.out, seen.err, listed.out, listed.err]
    assert "password=***" in seen.out
    for bad in (f"postgresql+psycopg2://u@127.0.0.1:1/x?password={SECRET}",
                f"postgresql://u@127.0.0.1:1/x?sslpassword={SECRET}",
                f"postgresql://u:{SECRET}@127.0.0.1:5432x/x",
                f"mysql://u:{SECRET}@[::1/x"):
        for command in (["studies", "--storage", bad],
                        ["search", spec, "--space", space, "--trials", "1", "--storage", bad]):
            assert main(command) == 2
            texts.append(one_line(capsys))
    home = Path(os.environ["WORKBENCH_HOME"])
    for root in (tmp_path, home):
        for path in root.rglob("*"):
            texts.append(path.name)
            if path.is_file():
                texts.append(path.read_bytes().decode("utf-8", "replace"))
    assert not [t for t in texts if SECRET in t]


def test_a_server_that_never_answers_fails_in_seconds_in_one_line(tmp_path):
    pytest.importorskip("psycopg")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does), never speaks
    port = silent.getsockname()[1]
    try:
        done = subprocess.run([sys.executable, "-m", "workbench", "studies", "--storage",
                               f"postgresql://u:{SECRET}@127.0.0.1:{port}/x"],
                              capture_output=True, text=True, timeout=120)
    finally:
        silent.close()
    assert done.returncode == 2
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and "timeout" in err[0] and SECRET not in err[0]


def test_space_files_and_ranges_are_bounded(tmp_path):
    spec = specmod.from_dict(SPEC)
    huge = {"params": {"optim.lr": {"type": "categorical",
                                    "choices": [1e-3 + i * 1e-9 for i in range(1_000_000)]}}}
    with pytest.raises(SearchError, match="at most 1,000 choices, got 1,000,000"):
        within(60, lambda: parse_space(huge, spec))  # each choice was a whole spec: 40 min
    many = {"params": {f"optim.x{i}": {"type": "float", "low": 0, "high": 1}
                       for i in range(65)}}
    with pytest.raises(SearchError, match="params: at most 64 fields"):
        parse_space(many)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({**SPACE, "pad": "x" * (1 << 20)}))
    with pytest.raises(SearchError, match="too large"):
        load_space(big)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for special in (fifo, Path("/dev/zero")):  # one blocked forever, one ran out of memory
        with pytest.raises(SearchError, match="not a plain file"):
            within(30, lambda p=special: load_space(p))


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_search_cooperatively_and_its_trial_runs_again(tmp_path, sig, code):
    spec, space = files(tmp_path, {**SPEC, "train": {**SPEC["train"], "epochs": 400,
                                                     "batch_size": 8}})
    storage = f"sqlite:///{tmp_path / 's.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "search", spec, "--space",
                             space, "--trials", "3", "--storage", storage, "--study", "s",
                             "--runs-dir", str(tmp_path / "runs"), "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("trial 0 runs in"):
                break
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == code, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["stopped"] is True and result["trials"] == {"failed": 1}
    assert "runs again when the search is resumed" in err
    study = optuna.load_study(study_name="s", storage=storage)
    cut, retry = study.trials
    assert "stopped" in cut.user_attrs["error"]
    assert retry.state == optuna.trial.TrialState.WAITING
    assert retry.system_attrs["fixed_params"] == cut.params
    assert Run(cut.user_attrs["run_dir"]).summary()["status"] == "stopped"


def test_an_in_memory_or_read_only_sqlite_storage_is_one_line(tmp_path, capsys):
    spec, space = files(tmp_path)
    for url in ("sqlite://", "sqlite:///:memory:"):
        for command in (["studies"], ["search", spec, "--space", space, "--trials", "1"]):
            assert main([*command, "--storage", url]) == 2
            assert "an in-memory database ends with the process" in one_line(capsys)
    db = tmp_path / "ro.db"
    assert main(["search", spec, "--space", space, "--trials", "1", "--storage",
                 f"sqlite:///{db}", "--runs-dir", str(tmp_path / "runs")]) == 0
    capsys.readouterr()
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    assert main(["search", spec, "--space", space, "--trials", "2", "--storage", read_only,
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "attempt to write a readonly database" in one_line(capsys)
    assert main(["studies", "--storage", read_only]) == 0  # reading needs no writing
    assert "1 trials" in capsys.readouterr().out


def test_listing_another_programs_database_writes_nothing(tmp_path, capsys):
    db = tmp_path / "theirs.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO notes (text) VALUES ('mine')")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    assert main(["studies", "--storage", f"sqlite:///{db}"]) == 2
    assert "holds no Optuna studies" in one_line(capsys)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # 12 tables were added
    assert [p.name for p in tmp_path.glob("theirs.db*")] == ["theirs.db"]  # no lock, journal
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert list_studies(f"sqlite:///{empty}") == []
    with sqlite3.connect(empty) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_failed_trials_do_not_count_and_five_in_a_row_end_the_search(tmp_path, capsys):
    """Two settings in all, three trials asked: the third draw can only repeat one, which is
    not trained again; it fails, does not count, and five such end the search (exit 1). The
    search used to train the repeat and count it."""
    space = {"params": {"optim.lr": {"type": "categorical", "choices": [0.01, 0.05]}},
             "startup_trials": 2}
    spec, space_path = files(tmp_path, space=space)
    assert main(["search", spec, "--space", space_path, "--trials", "3", "--storage",
                 f"sqlite:///{tmp_path / 's.db'}", "--runs-dir", str(tmp_path / "runs"),
                 "--threads", "1"]) == 1
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    assert result["trials"]["complete"] == 2 and result["trials"]["failed"] >= 5
    assert result["gave_up"].startswith("5 trials in a row failed (the last: the same "
                                        "settings as trial")
    assert "workbench: search ended: 5 trials in a row failed" in out.err


def test_a_trials_value_is_the_value_of_the_model_it_keeps(tmp_path):
    """The stored model is the last epoch's; the value used to be the best epoch's."""
    spec = specmod.from_dict({**SPEC, "optim": {"name": "sgd", "lr": 1.5},
                              "train": {**SPEC["train"], "epochs": 8}})
    space = parse_space({"params": {"optim.lr": {"type": "float", "low": 0.5, "high": 3.0}},
                         "objective": "val_loss", "pruner": "none", "startup_trials": 5})
    result = SearchRunner(spec, space, trials=4, storage=f"sqlite:///{tmp_path / 's.db'}",
                          runs=RunStore(tmp_path / "runs"), threads=1, sampler_seed=1).run()
    rows = [r for r in result.rows if r.state == "complete"]
    assert len(rows) == 4
    best_epoch_differs = 0
    for row in rows:
        run = Run(row.run_dir)
        assert row.value == run.summary()["val_loss"]
        losses = [r["val_loss"] for r in run.metrics("epoch")]
        best_epoch_differs += min(losses) < losses[-1]
    assert best_epoch_differs  # the case that used to report a model the run does not keep


def test_storages_are_let_go(tmp_path):
    """Reading a study opens its database and closes it again (engines used to stay open)."""
    db = tmp_path / "s.db"
    SearchRunner(specmod.from_dict(SPEC), parse_space(SPACE), trials=1,
                 storage=f"sqlite:///{db}", study="s", runs=RunStore(tmp_path / "runs"),
                 threads=1).run()

    def open_fds() -> int:
        fds = Path("/proc/self/fd")
        count = 0
        for fd in fds.iterdir():
            try:
                count += os.readlink(fd) == str(db)
            except OSError:
                continue
        return count

    for _ in range(5):
        read_study(f"sqlite:///{db}", "s")
        list_studies(f"sqlite:///{db}")
    assert open_fds() == 0


def test_layers_are_named_as_the_editor_numbers_them():
    spec = specmod.from_dict(SPEC)
    assert set_field(spec, "model.layer3.out", 3) == set_field(spec, "model.layers[2].out", 3)
    assert read_field(spec, "model.layer1.out") == 16
    assert shown("model.layers[0].out") == "model.layer1.out" == shown("model.layer1.out")
    with pytest.raises(SpecError, match="model.layer4.out: no layer 4 \\(the network has 3\\)"):
        set_field(spec, "model.layer4.out", 3)
    with pytest.raises(SpecError, match="numbered from 1"):
        set_field(spec, "model.layer0.out", 3)
    space = parse_space({"params": {"model.layer1.out": {"type": "int", "low": 4, "high": 32},
                                    "model.layers[0].out": {"type": "int", "low": 4,
                                                            "high": 8}}})
    assert [p.path for p in space.params] == ["model.layer1.out", "model.layers[0].out"]


def test_the_search_command_shows_layers_as_the_editor_numbers_them(tmp_path, capsys):
    old_form = {"params": {"model.layers[0].out": {"type": "int", "low": 4, "high": 32}},
                "startup_trials": 1}
    spec, space = files(tmp_path, space=old_form)  # a space file of before: still read
    assert main(["search", spec, "--space", space, "--trials", "1", "--runs-dir",
                 str(tmp_path / "runs"), "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "trial 0: model.layer1.out=16" in err and "layers[0]" not in err
    assert main(["compare", spec, "--vary", "model.layer1.out=4,8", "--runs-dir",
                 str(tmp_path / "runs"), "--quiet"]) == 0


@pytest.mark.parametrize("orig, retried", [
    (pytest.importorskip("psycopg").errors.DuplicateTable("relation exists"), True),
    (pytest.importorskip("psycopg").errors.UniqueViolation("pg_type key"), True),
    (pytest.importorskip("psycopg").errors.InsufficientPrivilege("no"), False),
])
def test_processes_that_create_the_tables_together_retry_only_that_race(tmp_path, monkeypatch,
                                                                        orig, retried):
    """Three searches that start on a fresh PostgreSQL database race to create Optuna's tables;
    the loser's "already exists" is retried (CI saw one exit 2), any other refusal is not."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    from workbench.core.tools import search

    calls: list[int] = []
    real = search._Storage

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            kind = IntegrityError if orig.sqlstate == "23505" else ProgrammingError
            raise kind("CREATE TABLE studies", {}, orig)
        return real(*args, **kwargs)

    monkeypatch.setattr(search, "_Storage", racing)
    monkeypatch.setattr(search.time, "sleep", lambda _s: None)
    url = f"sqlite:///{tmp_path / 's.db'}"
    if retried:
        with search.opened(url) as storage:
            assert storage.get_all_studies() == []
        assert len(calls) == 2
    else:
        with pytest.raises(SearchError, match="cannot open it"):
            search.open_storage(url)
        assert len(calls) == 1
