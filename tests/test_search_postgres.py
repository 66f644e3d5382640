"""Search shared by processes on a real PostgreSQL server, started for this test run from the
`initdb`/`pg_ctl` on the PATH (as the `postgres` user when the tests run as root, as the
server refuses root): three `workbench search` processes on one study reach exactly the count
asked, train no configuration twice, run a killed process's trial again once, and never show
or store the password."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_nodes import free_port

optuna = pytest.importorskip("optuna")
pytest.importorskip("psycopg", reason="the [postgres] extra (psycopg) is not installed")

SECRET = "Pg5ecret-Zq9"
LIMIT_S = 600
SPEC = {
    "name": "pg-search",
    "data": {"name": "moons", "samples": 600, "noise": 0.15},
    "model": {"layers": [{"type": "Linear", "out": 16}, {"type": "ReLU"},
                         {"type": "Linear", "out": 2}]},
    "optim": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 10, "batch_size": 16, "seed": 0, "device": "cpu"},
}
SPACE = {"params": {"optim.lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
                    "model.layer1.out": {"type": "int", "low": 4, "high": 32}},
         "startup_trials": 2, "pruner": "none"}


def _runner() -> list[str] | None:
    """How to run the server's programs: as ourselves, or as `postgres` when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--"]
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
    return None


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server on a free localhost port for this module; its URL (password)."""
    as_user = _runner()
    missing = [tool for tool in ("initdb", "pg_ctl") if shutil.which(tool) is None]
    if missing or as_user is None:
        pytest.skip(f"no PostgreSQL server to start: {', '.join(missing)} not on the PATH"
                    if missing else "tests run as root and there is no postgres user to run "
                                    "the server as (it refuses root)")
    folder = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    pwfile = folder / "pw"
    pwfile.write_text(SECRET + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    data, port = folder / "data", free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120,
                              cwd=folder)
        if done.returncode != 0:
            pytest.skip(f"PostgreSQL did not start: {' '.join(cmd[:1])}: "
                        f"{(done.stderr or done.stdout).strip()[-300:]}")

    run("initdb", "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
        f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync")
    run("pg_ctl", "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
        "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
              "-c max_connections=60", "start")
    try:
        yield f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, "pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=120, cwd=folder)
        shutil.rmtree(folder, ignore_errors=True)


def _search(tmp: Path, name: str, url: str, trials: int) -> tuple[subprocess.Popen, Path, Path]:
    out, err = tmp / f"{name}.out", tmp / f"{name}.err"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", "search", str(tmp / "spec.json"), "--space",
             str(tmp / "space.json"), "--trials", str(trials), "--storage", url, "--study",
             "shared", "--runs-dir", str(tmp / "runs"), "--threads", "1"],
            stdout=o, stderr=e, text=True)
    return proc, out, err


def test_three_processes_share_a_study_on_postgresql(tmp_path, postgres):
    from workbench.core.tools.search import read_study

    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    trials = 7
    procs = [_search(tmp_path, f"p{i}", postgres, trials) for i in range(3)]
    victim, _, victim_err = procs[0]
    killed = None
    deadline = time.monotonic() + LIMIT_S
    try:
        while killed is None and time.monotonic() < deadline:
            assert victim.poll() is None, victim_err.read_text()[-3000:]
            for line in victim_err.read_text().splitlines():
                if " runs in " in line:  # its trial is training: kill the process mid-trial
                    killed = int(line.split()[1])
                    victim.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.05)
        assert killed is not None, "the first process never began a trial"
        codes = [proc.wait(timeout=LIMIT_S) for proc, _, _ in procs[1:]]
    finally:
        for proc, _, _ in procs:
            if proc.poll() is None:
                proc.kill()
    victim.wait(timeout=60)
    outs = [(out.read_text(), err.read_text()) for _, out, err in procs]
    assert codes == [0, 0], [err[-3000:] for _, err in outs[1:]]

    rows = read_study(postgres, "shared").rows
    finished = [r for r in rows if r.state in ("complete", "pruned")]
    assert len(finished) == trials  # exactly the count asked, not a trial more
    settings = [json.dumps(r.params, sort_keys=True) for r in finished]
    assert len(set(settings)) == len(settings)  # no configuration trained twice
    (cut,) = [r for r in rows if r.number == killed]
    assert cut.state == "failed"
    again = [r for r in rows if r.params == cut.params and r.number != killed]
    assert len(again) == 1 and again[0].state in ("complete", "pruned")  # run again, once

    texts = [text for pair in outs for text in pair]
    home = Path(os.environ["WORKBENCH_HOME"])
    for root in (tmp_path, home):
        for path in root.rglob("*"):
            assert SECRET not in path.name
            if path.is_file():
                texts.append(path.read_bytes().decode("utf-8", "replace"))
    assert all(SECRET not in text for text in texts)
    assert any("postgres:***@127.0.0.1" in text for text in texts)


def test_listing_and_reading_a_postgresql_study_write_nothing(tmp_path, postgres):
    """`studies` on a database that holds no study says so and creates no table."""
    import sqlalchemy

    from workbench.core.tools.search import list_studies

    engine = sqlalchemy.create_engine(postgres, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("CREATE DATABASE other"))
    finally:
        engine.dispose()
    other = postgres.rsplit("/", 1)[0] + "/other"
    assert list_studies(other) == []
    engine = sqlalchemy.create_engine(other)
    try:
        assert sqlalchemy.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
