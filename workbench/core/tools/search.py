"""Hyperparameter search with Optuna: TPE sampling over ranges of any spec fields, pruning of
hopeless trials from their epoch curves, and studies kept in Optuna's storage.

A search space is a JSON document (`load_space`), checked with one-line errors that name the
entry::

    {"objective": "val_accuracy",          optional: val_accuracy (maximized) or val_loss
     "pruner": "median",                   optional: median, hyperband or none
     "startup_trials": 4,                  optional: random trials before TPE takes over
     "params": {
        "optim.lr":            {"type": "float", "low": 1e-4, "high": 0.1, "log": true},
        "optim.name":          {"type": "categorical", "choices": ["adam", "sgd"]},
        "model.layers[1].out": {"type": "int", "low": 32, "high": 512, "log": true}}}

Every trial is a run (its summary names the study and trial); its validation metric is
reported to Optuna after each epoch, and a pruned trial's trainer is stopped there. A study
lives in an RDB storage (SQLite in the runs folder by default, any SQLAlchemy URL), so a
search survives a crash and resumes, and several processes, on one machine or many, can work
one study: `trials` is how many finished (complete or pruned) trials the study should reach.
A trial left running by a process that died is failed and retried: at once when that process
ran on this machine, otherwise once its heartbeat is stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from workbench.core.data.cache import DatasetCache, DataSource
from workbench.core.fields import MISSING, read_field, set_field, shown
from workbench.core.store.runs import Run, RunError, RunStatus, RunStore, slug
from workbench.core.training.callbacks import Callback
from workbench.core.training.events import Event, RunFailed, RunFinished, RunStarted
from workbench.spec import ExperimentSpec, SpecError, check_name, from_dict
from workbench.spec.jsonfile import JSONFileError, read_json

try:
    import optuna
    from optuna.trial import TrialState
except ImportError as exc:  # an optional extra: the app and the command say how to get it
    raise ImportError("hyperparameter search needs Optuna: "
                      "pip install 'workbench[search]'") from exc

SPACE_VERSION = 1
Direction = Literal["maximize", "minimize"]
OBJECTIVES: dict[str, Direction] = {"val_accuracy": "maximize", "val_loss": "minimize"}
PRUNERS = ("median", "hyperband", "none")
KINDS = ("float", "int", "categorical")
DEFAULT_STARTUP = 4
MAX_STARTUP = 100_000  # as many as a study's trials may be
HEARTBEAT_S = 30  # how often a running trial says it is alive (RDB storages)
GRACE_S = 120  # silence after which another process fails and retries it
OPEN_ATTEMPTS = 5  # tries at opening a storage that other processes are creating
MAX_URL = 4096  # a storage URL's characters
CLAIM_TIMEOUT_S = 60  # the wait for another process's claim (held for milliseconds)
MAX_PARAMS = 64  # fields searched at once
MAX_CHOICES = 1_000  # a categorical range's choices (each is tried on the spec when checked)
MAX_SPACE_BYTES = 1 << 20  # a space file
CONNECT_TIMEOUT_S = 4  # a database server that does not answer (twice: with SSL, then without)
STATEMENT_TIMEOUT_S = 60  # a statement the server does not finish
SQLITE_BUSY_S = 60  # how long a process waits for another's write to an SQLite file
POLL_S = 2.0  # how often a process waiting for the study's last trials looks again
MAX_FAILED_IN_A_ROW = 5  # trials failing one after another end this process's search
_PARAM_KEYS = {"float": {"type", "low", "high", "log", "step"},
               "int": {"type", "low", "high", "log", "step"},
               "categorical": {"type", "choices"}}


class SearchError(ValueError):
    """A space, storage or study that cannot be used; one line naming what and why."""


# -- the space ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    path: str
    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.kind, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.path, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.path, int(self.low or 0), int(self.high or 0),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.path, float(self.low or 0.0), float(self.high or 0.0),
                                   step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        assert self.low is not None and self.high is not None
        if self.kind == "int" and not isinstance(value, int):
            return False
        if not self.low <= value <= self.high:
            return False
        if self.step is not None:
            k = (value - self.low) / self.step
            return abs(k - round(k)) < 1e-9
        return True


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]
    objective: str | None = None  # None: val_accuracy for classes, val_loss for regression
    pruner: str = "median"
    startup_trials: int = DEFAULT_STARTUP

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": SPACE_VERSION, "pruner": self.pruner,
                               "startup_trials": self.startup_trials,
                               "params": {p.path: p.to_dict() for p in self.params}}
        if self.objective is not None:
            out["objective"] = self.objective
        return out


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (
        isinstance(a, int | float) and isinstance(b, int | float)
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def _number(where: str, value: Any, *, integer: bool = False) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or not math.isfinite(value):
        raise SearchError(f"{where}: must be {'an integer' if integer else 'a number'}, "
                          f"got {value!r}")
    return value


def parse_space(raw: Any, spec: ExperimentSpec | None = None) -> SearchSpace:
    """A checked search space; with `spec`, every bound and choice is also tried on it, so a
    field that does not exist or a value it refuses is named before anything runs."""
    if not isinstance(raw, dict):
        raise SearchError(f"a search space must be a JSON object, got {type(raw).__name__}")
    known = {"version", "objective", "pruner", "startup_trials", "params"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SearchError(f"{unknown[0]}: unknown entry (known: {', '.join(sorted(known))})")
    version = raw.get("version", SPACE_VERSION)
    if version != SPACE_VERSION:
        raise SearchError(f"version: this Workbench reads search spaces of version "
                          f"{SPACE_VERSION}, got {version!r}")
    objective = raw.get("objective")
    if objective is not None and objective not in OBJECTIVES:
        raise SearchError(f"objective: must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    pruner = raw.get("pruner", "median")
    if pruner not in PRUNERS:
        raise SearchError(f"pruner: must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    startup = raw.get("startup_trials", DEFAULT_STARTUP)
    if isinstance(startup, bool) or not isinstance(startup, int) \
            or not 0 <= startup <= MAX_STARTUP:
        raise SearchError(f"startup_trials: must be an integer from 0 to {MAX_STARTUP}, "
                          f"got {startup!r}")
    params_raw = raw.get("params")
    if not isinstance(params_raw, dict) or not params_raw:
        raise SearchError("params: give at least one field to search, e.g. "
                          '{"optim.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": true}}')
    if len(params_raw) > MAX_PARAMS:
        raise SearchError(f"params: at most {MAX_PARAMS} fields, got {len(params_raw)}")
    params = tuple(_param(path, value) for path, value in params_raw.items())
    if spec is not None:
        for param in params:
            _try_on(spec, param)
    return SearchSpace(params, objective, pruner, startup)


def _param(path: Any, raw: Any) -> Param:
    where = f"params.{path}"
    if not isinstance(path, str) or not path.strip():
        raise SearchError(f"params: a field name must be text like optim.lr, got {path!r}")
    if not isinstance(raw, dict):
        raise SearchError(f"{where}: must be an object with a type, got {raw!r}")
    kind = raw.get("type")
    if kind not in KINDS:
        raise SearchError(f"{where}.type: must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(raw) - _PARAM_KEYS[kind])
    if unknown:
        raise SearchError(f"{where}.{unknown[0]}: not an entry of a {kind} range (entries: "
                          f"{', '.join(sorted(_PARAM_KEYS[kind]))})")
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SearchError(f"{where}.choices: must be a non-empty list, got "
                              f"{str(choices)[:60]}")
        if len(choices) > MAX_CHOICES:
            raise SearchError(f"{where}.choices: at most {MAX_CHOICES:,} choices, got "
                              f"{len(choices):,}")
        for c in choices:
            if not (c is None or isinstance(c, str | bool | int | float)):
                raise SearchError(f"{where}.choices: each choice must be text, a number, true, "
                                  f"false or null, got {c!r}")
        if len({json.dumps(c) for c in choices}) != len(choices):
            raise SearchError(f"{where}.choices: a choice is listed twice")
        return Param(path, kind, choices=tuple(choices))
    integer = kind == "int"
    for key in ("low", "high"):
        if key not in raw:
            raise SearchError(f"{where}.{key}: missing")
    low = _number(f"{where}.low", raw["low"], integer=integer)
    high = _number(f"{where}.high", raw["high"], integer=integer)
    if high < low:
        raise SearchError(f"{where}.high: must be >= low ({low}), got {high}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise SearchError(f"{where}.log: must be true or false, got {log!r}")
    if log and low <= 0:
        raise SearchError(f"{where}.low: a log range must start above 0, got {low}")
    step = raw.get("step")
    if step is not None:
        step = _number(f"{where}.step", step, integer=integer)
        if step <= 0:
            raise SearchError(f"{where}.step: must be > 0, got {step}")
        if log:
            raise SearchError(f"{where}.step: a log range takes no step")
    return Param(path, kind, low, high, log, step)


def _try_on(spec: ExperimentSpec, param: Param) -> None:
    values = param.choices if param.kind == "categorical" else (param.low, param.high)
    for value in values:
        try:
            set_field(spec, param.path, value)
        except SpecError as exc:
            raise SearchError(f"params.{param.path}: {value!r} does not make a valid "
                              f"experiment: {exc}") from None


def load_space(path: str | Path, spec: ExperimentSpec | None = None) -> SearchSpace:
    """A space file (a plain file of at most 1 MB: not a pipe, not a device), checked."""
    try:
        raw = read_json(path, max_bytes=MAX_SPACE_BYTES)
    except JSONFileError as exc:
        raise SearchError(f"{path}: {exc}") from None
    try:
        return parse_space(raw, spec)
    except SearchError as exc:
        raise SearchError(f"{path}: {exc}") from None


def apply_params(spec: ExperimentSpec, params: Mapping[str, Any]) -> ExperimentSpec:
    for path, value in params.items():
        spec = set_field(spec, path, value)
    return spec


def base_params(spec: ExperimentSpec, space: SearchSpace) -> dict[str, Any] | None:
    """The experiment's own values of the searched fields, when all lie in the space (the
    first trial of a new study runs them: the search starts from what the person has)."""
    out = {}
    for param in space.params:
        value = read_field(spec, param.path)
        if value is MISSING or not param.contains(value):
            return None
        out[param.path] = value
    return out


def shown_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Searched fields as Workbench shows them: a layer by the editor's number."""
    return {shown(path): value for path, value in params.items()}


def objective_of(spec: ExperimentSpec, space: SearchSpace,
                 source: DataSource | None = None) -> str:
    """What the trials are scored by: the space's choice, else by the task (the data's
    description may read a file: not on the GUI thread)."""
    from workbench.core.data import DataError
    from workbench.core.data.cache import info_from

    if space.objective is not None:
        return space.objective
    try:
        info = info_from(source, spec.data)
    except DataError as exc:
        raise SearchError(str(exc)) from None
    return "val_accuracy" if info.num_classes > 0 else "val_loss"


# -- storage and studies ---------------------------------------------------------------------


def default_storage(runs: RunStore) -> str:
    runs.root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(runs.root / 'search.db').resolve()}"


_SECRET = re.compile(r"pass|pwd|secret|token|key|auth|cred", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+._-]{0,39}")


def _parsed(url: Any) -> Any | None:
    """SQLAlchemy's reading of a storage URL; None when it cannot read it."""
    if not isinstance(url, str):
        return None
    from sqlalchemy.engine import make_url

    try:
        return make_url(url)
    except Exception:  # ArgumentError, or a ValueError from a port that is not a number
        return None


def shown_url(url: str) -> str:
    """The storage URL as summaries, tables, messages and logs show it: without a password,
    whether in its `user:password@` part or its query (`?password=`, `sslpassword=`, a
    token or key); a URL SQLAlchemy cannot read shows only its scheme."""
    parsed = _parsed(url)
    if parsed is None:
        scheme = url.split("://", 1)[0] if isinstance(url, str) else ""
        return f"{scheme if _SCHEME.fullmatch(scheme) else '?'}://***"
    from urllib.parse import quote

    text = parsed.set(query={}).render_as_string(hide_password=True)
    pairs = []
    for key, value in parsed.query.items():
        for one in value if isinstance(value, tuple) else (value,):
            pairs.append(f"{quote(key)}={'***' if _SECRET.search(key) else quote(one)}")
    return text + ("?" + "&".join(pairs) if pairs else "")


def _secrets(url: str) -> list[str]:
    """The password and secret query values of a URL, for scrubbing a driver's message."""
    parsed = _parsed(url)
    if parsed is None:
        return [url]
    found = [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if _SECRET.search(key):
            found += list(value) if isinstance(value, tuple) else [value]
    return [str(s) for s in found if s]


def _scrub(text: str, url: str) -> str:
    from urllib.parse import quote

    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return text


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna's experimental-feature warnings are for library authors, not for the person."""
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", SAWarning)  # e.g. a query argument SQLite ignores
        yield


_PG_LOCK = 0x576F726B62656E63  # "Workbenc": the advisory lock of Workbench's claims


class _Storage(optuna.storages.RDBStorage):
    """An RDB storage whose trial claims and queue changes are exclusive across processes.

    Optuna claims a waiting (enqueued) trial by reading that it waits, then marking it running;
    a server database locks the row between the two, SQLite cannot, so two processes could both
    claim one trial and run it twice, the second failing at the end ("Cannot tell a COMPLETE
    trial", optuna issue 4621). On SQLite, claims and `exclusive()` sections hold a lock file
    beside the database; on PostgreSQL `exclusive()` holds an advisory lock of the server.
    Elsewhere `exclusive()` holds nothing: several processes may then end a study a trial or
    two past its count.
    """

    def __init__(self, url: str, *, claims: str | None, backend: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._claims = FileLock(claims, timeout=CLAIM_TIMEOUT_S) if claims else None
        self._backend = backend

    def exclusive(self) -> contextlib.AbstractContextManager[Any]:
        """No other Workbench process changes the study's queue meanwhile."""
        if self._claims is not None:
            return self._claims
        if self._backend == "postgresql":
            return self._advisory_lock()
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _advisory_lock(self) -> Iterator[None]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK})
                conn.commit()

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        if state != TrialState.RUNNING or self._claims is None:
            return super().set_trial_state_values(trial_id, state, values)
        with self._claims:
            return super().set_trial_state_values(trial_id, state, values)

    def close(self) -> None:
        """Let go of the database: its sessions and its engine's connections."""
        with contextlib.suppress(Exception):
            self.remove_session()
        self.engine.dispose()


def _sqlite_file(url: str) -> str | None:
    """The file of an SQLite URL (None for another database or an in-memory one)."""
    parsed = _parsed(url)
    if parsed is None or parsed.get_backend_name() != "sqlite":
        return None
    db = parsed.database
    if not db or db == ":memory:" or parsed.query.get("mode") == "memory":
        return None
    if parsed.query.get("uri") == "true" and db.startswith("file:"):  # an SQLite URI
        from urllib.parse import unquote

        db = unquote(db[len("file:"):].split("?", 1)[0]) or None
    return db


def _engine_kwargs(backend: str) -> dict[str, Any]:
    """Timeouts, so that a server that does not answer fails in seconds, never hangs."""
    if backend == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_S}}  # another process's write
    if backend == "postgresql":
        return {"connect_args": {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_S * 1000}",
            "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
            "keepalives_count": 3}}
    if backend in ("mysql", "mariadb"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S,
                                 "read_timeout": STATEMENT_TIMEOUT_S,
                                 "write_timeout": STATEMENT_TIMEOUT_S}}
    return {}


class _NoStudies(Exception):
    """A database without Optuna's tables: listing it finds nothing and writes nothing."""

    def __init__(self, empty: bool) -> None:
        self.empty = empty


def open_storage(url: str, *, read_only: bool = False) -> _Storage:
    """An RDB storage with timeouts, with heartbeats (stale trials of dead processes are
    retried) unless `read_only`, which writes nothing: not its tables, not another program's
    database (SQLite opens read-only; _NoStudies when Optuna's tables are not there)."""
    if not isinstance(url, str) or "://" not in url or len(url) > MAX_URL:
        shown = f"{shown_url(url[:60])[:60]!r}… ({len(url)} characters)" \
            if isinstance(url, str) and len(url) > 60 else repr(shown_url(url)
                                                                if isinstance(url, str)
                                                                and "://" in url else url)
        raise SearchError(f"--storage: must be a database URL such as sqlite:///search.db "
                          f"(at most {MAX_URL} characters), got {shown}")
    parsed = _parsed(url)
    if parsed is None:
        raise SearchError(f"--storage {shown_url(url)}: not a database URL SQLAlchemy can read "
                          "(sqlite:///search.db, postgresql://user@host/db)")
    backend = parsed.get_backend_name()
    claims: str | None = None
    target = url
    if backend == "sqlite":
        db = _sqlite_file(url)
        if db is None:
            raise SearchError(f"--storage {shown_url(url)}: an in-memory database ends with "
                              "the process and cannot be shared; give a file, e.g. "
                              "sqlite:///search.db")
        path = Path(db)
        if not path.parent.is_dir():
            raise SearchError(f"--storage: the folder {path.parent} does not exist")
        if read_only:
            from urllib.parse import quote

            target = f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true"
        else:
            if path.exists() and not path.is_file():
                raise SearchError(f"--storage: {path} is not a file")
            if not os.access(path.parent, os.W_OK) or (path.exists()
                                                       and not os.access(path, os.W_OK)):
                raise SearchError(f"--storage {shown_url(url)}: read-only; a search writes "
                                  "its trials there (`workbench studies` reads it)")
            claims = f"{path}.lock"
    kwargs = _engine_kwargs(backend)
    if read_only:
        _require_tables(target, kwargs, url)
    from sqlalchemy.exc import IntegrityError, OperationalError

    retried = (IntegrityError, OperationalError) if backend == "sqlite" else (IntegrityError,)
    for attempt in range(OPEN_ATTEMPTS):
        try:
            with _quiet():
                if read_only:
                    return _Storage(target, claims=None, backend=backend, engine_kwargs=kwargs,
                                    skip_table_creation=True)
                return _Storage(
                    target, claims=claims, backend=backend, engine_kwargs=kwargs,
                    heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=_retry_stale)
        except retried as exc:
            # Processes that start together race to create the tables or wait on a lock.
            if attempt + 1 < OPEN_ATTEMPTS:
                time.sleep(0.2 * (attempt + 1))
                continue
            error: Exception = exc
        except Exception as exc:  # a missing driver, a server that does not answer
            error = exc
        break
    raise SearchError(f"--storage {shown_url(url)}: cannot open it "
                      f"({_scrub(_first_line(error), url)})") from None


def _require_tables(target: str, kwargs: dict[str, Any], url: str) -> None:
    """Raise _NoStudies unless the database holds Optuna's tables; reads only."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(target, **kwargs)
        try:
            names = set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()
    except Exception as exc:
        raise SearchError(f"--storage {shown_url(url)}: cannot open it "
                          f"({_scrub(_first_line(exc), url)})") from None
    if not {"studies", "version_info"} <= names:
        raise _NoStudies(empty=not names)


@contextlib.contextmanager
def opened(url: str, *, read_only: bool = False) -> Iterator[_Storage]:
    """A storage for a `with` block, disposed of (its connections closed) at its end."""
    storage = open_storage(url, read_only=read_only)
    try:
        yield storage
    finally:
        storage.close()


def _first_line(exc: BaseException) -> str:
    """A database driver's error, on the one line a refusal has."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class StudyInfo:
    """One study of a storage, as a list shows it."""

    name: str
    direction: str
    objective: str | None  # None: a study not made by Workbench
    trials: int  # every trial, queued and failed ones included
    best: float | None
    started: str | None  # the first trial's start, "YYYY-MM-DD HH:MM"

    def line(self) -> str:
        best = f"best {self.objective or 'value'} {self.best:.4g}" if self.best is not None \
            else "none completed"
        since = f", since {self.started}" if self.started else ""
        return f"{self.trials} trials, {best}{since}"


def list_studies(url: str) -> list[StudyInfo]:
    """The studies in a storage, by name. Looking writes nothing: an SQLite file that does not
    exist holds none and is not made (the app lists the default storage when the Search tab
    opens), and a database without Optuna's tables is not given them."""
    db = _sqlite_file(url)
    if db is not None and not Path(db).is_file():
        return []
    try:
        with opened(url, read_only=True) as storage, _quiet():
            summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    except _NoStudies as exc:
        if exc.empty:
            return []
        raise SearchError(f"--storage {shown_url(url)}: holds no Optuna studies (another "
                          "program's database); nothing was changed") from None
    except SearchError:
        raise
    except Exception as exc:  # a database of something else: one line, not a traceback
        raise SearchError(f"--storage {shown_url(url)}: cannot list its studies "
                          f"({_scrub(_first_line(exc), url)})") from None
    found = []
    for summary in summaries:
        info = summary.user_attrs.get("workbench")
        objective = info.get("objective") if isinstance(info, dict) else None
        best = summary.best_trial.value if summary.best_trial is not None else None
        started = summary.datetime_start.strftime("%Y-%m-%d %H:%M") \
            if summary.datetime_start else None
        found.append(StudyInfo(summary.study_name, summary.direction.name.lower(),
                               objective if isinstance(objective, str) else None,
                               summary.n_trials, best, started))
    return sorted(found, key=lambda s: s.name)


def default_study_name(spec: ExperimentSpec, space: SearchSpace) -> str:
    digest = hashlib.sha256(json.dumps([_identity(spec), space.to_dict()], sort_keys=True)
                            .encode()).hexdigest()[:8]
    return f"{slug(spec.name, 40, 'search')}-{digest}"


def _identity(spec: ExperimentSpec) -> dict[str, Any]:
    """What makes two searches the same search: the spec, less what differs between the
    machines sharing it (the device, where the data lies)."""
    d = spec.to_dict()
    d["train"].pop("device", None)
    d["data"].pop("root", None)
    return d


def same_experiment(a: ExperimentSpec, b: ExperimentSpec) -> bool:
    """Whether a study of `a` can be continued from `b` (the device may differ)."""
    return _identity(a) == _identity(b)


# -- trials ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRow:
    """One trial as the table shows it."""

    number: int
    state: str  # running, complete, pruned, failed, waiting
    value: float | None
    params: dict[str, Any]
    run_dir: str | None = None
    epochs: int = 0
    error: str | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_of(trial: optuna.trial.FrozenTrial) -> TrialRow:
    state = {TrialState.RUNNING: "running", TrialState.COMPLETE: "complete",
             TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
             TrialState.WAITING: "waiting"}[trial.state]
    value = trial.value if trial.state == TrialState.COMPLETE else None
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        # where it was cut: the model its run keeps
        value = trial.intermediate_values[max(trial.intermediate_values)]
    seconds = (trial.duration.total_seconds() if trial.duration is not None else None)
    return TrialRow(trial.number, state, value, dict(trial.params),
                    trial.user_attrs.get("run_dir"), len(trial.intermediate_values),
                    trial.user_attrs.get("error"), seconds)


@dataclass(frozen=True)
class StudyOpened:
    """Emitted first: the study and the trials it already has (a resumed search)."""

    name: str
    storage: str  # shown without its password
    objective: str
    direction: str
    target: int
    rows: tuple[TrialRow, ...]


@dataclass(frozen=True)
class TrialStarted:
    number: int
    params: dict[str, Any]


@dataclass(frozen=True)
class TrialEvent:
    """A training event of the trial in flight."""

    number: int
    event: Event


@dataclass(frozen=True)
class TrialEnded:
    row: TrialRow


SearchEvent = StudyOpened | TrialStarted | TrialEvent | TrialEnded


@dataclass
class SearchResult:
    study: str
    storage: str
    objective: str
    direction: str
    rows: list[TrialRow] = field(default_factory=list)
    stopped: bool = False
    gave_up: str | None = None  # why this process ended before the study's count

    @property
    def best(self) -> TrialRow | None:
        done = [r for r in self.rows if r.state == "complete" and r.value is not None]
        if not done:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda r: r.value)  # type: ignore[arg-type, return-value]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row.state] = out.get(row.state, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"study": self.study, "storage": self.storage, "objective": self.objective,
                "direction": self.direction, "trials": self.counts(),
                "stopped": self.stopped, "gave_up": self.gave_up,
                "best": None if best is None else {
                    "number": best.number, "value": best.value, "params": best.params,
                    "run_dir": best.run_dir}}


class _TrialFailed(Exception):
    """A trial whose run failed (diverged, a spec its values make invalid): FAIL, go on."""


class _Stopped(Exception):
    """The person stopped the search; the trial in flight is retried on resume."""


class _Report(Callback):
    """Reports each epoch's validation metric to Optuna and stops the trainer once the
    pruner says the trial is hopeless."""

    def __init__(self, trial: optuna.Trial, objective: str, study: str, storage: str,
                 params: dict[str, Any]) -> None:
        self.trial, self.objective = trial, objective
        self.study, self.storage, self.params = study, storage, params
        self.pruned = False
        self.values: list[float] = []

    def link(self, run_dir: str) -> None:
        """Tie the trial and its run together (as soon as the run folder exists)."""
        if run_dir:
            self.trial.set_user_attr("run_dir", run_dir)
            Run(Path(run_dir)).update_summary(study=self.study, storage=self.storage,
                                              trial=self.trial.number,
                                              search_params=self.params)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        value = record.get(self.objective)
        if value is None or not math.isfinite(value):
            return
        self.values.append(value)
        self.trial.report(value, int(record["epoch"]))
        if self.trial.should_prune():
            self.pruned = True
            trainer.request_stop()


class SearchRunner:
    """Runs (or resumes) one study until it has `trials` finished (complete or pruned)
    trials; `stop()` from any thread ends the trial in flight (retried on resume) and the
    search.

    The count is exact with several processes on SQLite or PostgreSQL: a process takes a
    trial only while the finished and running trials are fewer than `trials` (under the
    storage's exclusive lock), and when the last ones are running elsewhere it waits for them,
    retrying any whose process died. Failed trials do not count; `MAX_FAILED_IN_A_ROW` of them
    one after another end this process's search (`SearchResult.gave_up`). Settings that a
    finished or running trial already has are not trained again (that draw fails, "the same
    settings as trial N"). With a sampler seed, each trial's draws come from the seed and the
    trial's number, so a resumed or shared study never repeats an earlier trial's draws.
    """

    def __init__(self, spec: ExperimentSpec, space: SearchSpace, *, trials: int,
                 storage: str | None = None, study: str | None = None,
                 runs: RunStore | None = None, source: DataSource | None = None,
                 threads: int | None = None,
                 on_event: Callable[[SearchEvent], None] | None = None,
                 sampler_seed: int | None = None) -> None:
        if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= 100_000:
            raise SearchError(f"--trials: must be an integer from 1 to 100000, got {trials!r}")
        if study is not None:
            try:
                check_name(study, "--study")  # a name the app's list and the CLI show on a line
            except SpecError as exc:
                raise SearchError(str(exc)) from None
        self.space = parse_space(space.to_dict(), spec)
        self.spec = spec
        self.trials = trials
        self.runs = runs or RunStore()
        self.url = storage or default_storage(self.runs)
        self.storage_shown = shown_url(self.url)
        self.study_name = study or default_study_name(spec, self.space)
        self.threads = threads
        self.source: DataSource = source or DatasetCache()  # trials share the loaded data
        self.on_event = on_event or (lambda _e: None)
        self.sampler_seed = sampler_seed
        if spec.data.val_fraction <= 0:
            raise SearchError("data.val_fraction: a search scores trials on the validation "
                              "split; give it a fraction above 0")
        self.objective = self.space.objective or "val_accuracy"  # settled by `open`
        self.direction: Direction = OBJECTIVES[self.objective]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._trainer: Any = None
        self._slot = contextlib.ExitStack()
        self._last: TrialState | None = None
        self.study: optuna.Study | None = None
        self.storage: _Storage | None = None

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._trainer is not None:
                self._trainer.stop()

    # -- the study ---------------------------------------------------------------------------
    def open(self) -> optuna.Study:
        """Create the study, or load it when it exists and searches the same spec and space."""
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported here
        self.objective = objective_of(self.spec, self.space, self.source)
        self.direction = OBJECTIVES[self.objective]
        self.close()
        storage = self.storage = open_storage(self.url)
        try:
            with _quiet():
                study = optuna.create_study(storage=storage, sampler=self._sampler(None),
                                            pruner=self._pruner(), study_name=self.study_name,
                                            direction=self.direction, load_if_exists=True)
        except ValueError as exc:  # the study exists with another direction
            raise SearchError(f"--study {self.study_name}: {exc}") from None
        mine = {"spec": _identity(self.spec), "space": self.space.to_dict(),
                "objective": self.objective}
        with storage.exclusive():  # processes opening a new study together enqueue one baseline
            theirs = study.user_attrs.get("workbench")
            if theirs is None and not study.trials:
                study.set_user_attr("workbench", mine)
                base = base_params(self.spec, self.space)
                if base is not None:
                    study.enqueue_trial(base, user_attrs={"baseline": True}, skip_if_exists=True)
            elif not _same_search(theirs, mine):
                raise SearchError(f"--study {self.study_name}: this study in "
                                  f"{self.storage_shown} searches another experiment or space; "
                                  "give those files, or name a new study")
            self._retry_orphans(study)
        self.study = study
        return study

    def close(self) -> None:
        """Let go of the storage (its connections); `run` does it at its end."""
        self._release_slot()
        if self.storage is not None:
            self.storage.close()
            self.storage = None

    def _sampler(self, number: int | None) -> optuna.samplers.BaseSampler:
        """TPE; seeded, the draws of trial `number` come from the seed and the number, so a
        resumed search does not draw its earlier trials' settings again."""
        seed = self.sampler_seed
        if seed is not None and number is not None:
            digest = hashlib.sha256(f"{seed}:{number}".encode()).digest()
            seed = int.from_bytes(digest[:4], "big")
        return optuna.samplers.TPESampler(n_startup_trials=self.space.startup_trials, seed=seed)

    def _pruner(self) -> optuna.pruners.BasePruner:
        if self.space.pruner == "median":  # judged from epoch 2, against the startup trials
            return optuna.pruners.MedianPruner(
                n_startup_trials=max(1, self.space.startup_trials), n_warmup_steps=2)
        if self.space.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1,
                                                  max_resource=self.spec.train.epochs)
        return optuna.pruners.NopPruner()

    @staticmethod
    def _retry_orphans(study: optuna.Study) -> None:
        """Fail and requeue the running trials of processes on this machine that died; their
        runs are marked replaced.

        A trial that names no process yet is left alone: its owner may be between claiming it
        and writing who it is (failing it then made the owner's own result fail, "Cannot tell
        a FAIL trial"); the heartbeat retries it if that owner died.
        """
        host = socket.gethostname()
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            attrs = trial.user_attrs
            pid = attrs.get("pid")
            if attrs.get("host") != host or not isinstance(pid, int) or _alive(pid):
                continue
            try:
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            except Exception:  # another process got there first
                continue
            study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
            _replaced(attrs.get("run_dir"), trial.number)

    def finished(self) -> int:
        assert self.study is not None
        return len(self.study.get_trials(deepcopy=False,
                                         states=(TrialState.COMPLETE, TrialState.PRUNED)))

    def rows(self) -> list[TrialRow]:
        assert self.study is not None
        return [row_of(t) for t in self.study.get_trials(deepcopy=False)
                if t.state != TrialState.WAITING]

    # -- running -----------------------------------------------------------------------------
    def run(self) -> SearchResult:
        """Work the study to its count (or until stopped); the storage is let go at the end.
        A database that fails on the way (read-only, gone) is a SearchError in one line."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return self._run()
        except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, SQLAlchemyError) else exc
            raise SearchError(f"--storage {self.storage_shown}: "
                              f"{_scrub(_first_line(cause), self.url)}") from None
        finally:
            self.close()

    def _run(self) -> SearchResult:
        study = self.open()
        self.on_event(StudyOpened(self.study_name, self.storage_shown, self.objective,
                                  self.direction, self.trials, tuple(self.rows())))
        result = SearchResult(self.study_name, self.storage_shown, self.objective,
                              self.direction)
        failed_in_a_row = 0
        while not self._stop.is_set():
            slot = self._take_slot(study)
            if slot is None:
                break
            if not slot:  # the last trials run elsewhere: wait for them (or their retries)
                self._stop.wait(POLL_S)
                continue
            self._last = None
            try:
                with _quiet():
                    study.optimize(self._objective, n_trials=1, catch=(_TrialFailed,),
                                   callbacks=[self._ended])
            except _Stopped:
                result.stopped = True
                break
            finally:
                self._release_slot()
            failed_in_a_row = failed_in_a_row + 1 if self._last == TrialState.FAIL else 0
            if failed_in_a_row >= MAX_FAILED_IN_A_ROW:
                last = study.trials[-1].user_attrs.get("error") if study.trials else None
                result.gave_up = (f"{failed_in_a_row} trials in a row failed"
                                  + (f" (the last: {last})" if last else ""))
                break
        result.stopped = result.stopped or self._stop.is_set()
        result.rows = self.rows()
        return result

    def _take_slot(self, study: optuna.Study) -> bool | None:
        """Whether to run a trial now (True, holding the storage's exclusive lock until the
        trial is taken), to wait (False), or to end (None: the study has its count)."""
        assert self.storage is not None
        self._slot.enter_context(self.storage.exclusive())
        go = False
        try:
            self._retry_orphans(study)
            with _quiet():
                optuna.storages.fail_stale_trials(study)  # other machines' dead processes
            finished = self.finished()
            if finished >= self.trials:
                return None
            running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
            go = finished + running < self.trials
            return go
        finally:
            if not go:
                self._release_slot()

    def _release_slot(self) -> None:
        self._slot.close()

    def _ended(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._last = trial.state
        self.on_event(TrialEnded(row_of(trial)))

    def _objective(self, trial: optuna.Trial) -> float:
        self._release_slot()  # the trial is ours: others may take theirs
        if self._stop.is_set():
            raise _Stopped
        trial.set_user_attr("pid", os.getpid())  # before the host: see _retry_orphans
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("direction", self.direction)
        assert self.study is not None
        if self.sampler_seed is not None:
            self.study.sampler = self._sampler(trial.number)
        params = {p.path: p.suggest(trial) for p in self.space.params}
        self.on_event(TrialStarted(trial.number, params))
        twin = self._same_as(trial.number, params)
        if twin is not None:
            error = f"the same settings as trial {twin}, which ran them"
            trial.set_user_attr("error", error)
            raise _TrialFailed(error)
        try:
            spec = apply_params(self.spec, params).with_value(
                "name", f"{self.spec.name} trial {trial.number}")
        except SpecError as exc:
            trial.set_user_attr("error", str(exc))
            raise _TrialFailed(str(exc)) from None
        report = _Report(trial, self.objective, self.study_name, self.storage_shown, params)
        end = self._train(trial.number, spec, report)
        if self._stop.is_set():
            if isinstance(end, RunFinished) and end.run_dir:
                _mark(end.run_dir, "stopped")
            trial.set_user_attr("error", "stopped by the person; retried on resume")
            self.study.enqueue_trial(params, user_attrs={"retry_of": trial.number})
            self.on_event(TrialEnded(_stopped_row(trial, params, report)))
            raise _Stopped
        if isinstance(end, RunFailed) or end is None:
            reason = end.reason if end is not None else "the run ended without a result"
            trial.set_user_attr("error", reason)
            raise _TrialFailed(reason)
        if report.pruned:
            _mark(end.run_dir, "pruned")
            raise optuna.TrialPruned
        value = _kept_value(end, self.objective, report)
        if value is None:
            trial.set_user_attr("error", f"no {self.objective} was measured")
            raise _TrialFailed(f"no {self.objective} was measured")
        _mark(end.run_dir, "complete")
        return value

    def _same_as(self, number: int, params: dict[str, Any]) -> int | None:
        """An earlier trial, finished or running, with these very settings."""
        assert self.study is not None
        for other in self.study.get_trials(deepcopy=False, states=(
                TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)):
            if other.number != number and other.params == params:
                return other.number
        return None

    def _train(self, number: int, spec: ExperimentSpec,
               report: _Report) -> RunFinished | RunFailed | None:
        from workbench.core.training.loop import Trainer

        trainer = Trainer(spec, runs=self.runs, source=self.source, callbacks=[report],
                          threads=self.threads)
        with self._lock:
            self._trainer = trainer
            if self._stop.is_set():
                trainer.stop()
        end: RunFinished | RunFailed | None = None
        try:
            for event in trainer.events():
                if isinstance(event, RunStarted):
                    report.link(event.run_dir)
                elif isinstance(event, RunFinished | RunFailed):
                    end = event
                self.on_event(TrialEvent(number, event))
        finally:
            with self._lock:
                self._trainer = None
        return end


def _kept_value(end: RunFinished, objective: str, report: _Report) -> float | None:
    """The trial's value: the objective of the model its run keeps, which is the last
    epoch's (measured on the stored weights), not the best epoch's."""
    value = end.summary.get(objective)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return report.values[-1] if report.values else None


def _stopped_row(trial: optuna.Trial, params: dict[str, Any], report: _Report) -> TrialRow:
    return TrialRow(trial.number, "failed", None, params, None, len(report.values),
                    "stopped by the person; retried on resume")


def _same_search(theirs: Any, mine: dict[str, Any]) -> bool:
    """Whether a stored study searches what `mine` does: its spec (a study kept before the
    data root was left out of the identity included) and its space, read the same way."""
    if not isinstance(theirs, dict) or theirs.get("objective") != mine["objective"]:
        return False
    spec = theirs.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("data"), dict):
        spec = {**spec, "data": {k: v for k, v in spec["data"].items() if k != "root"}}
    try:
        space = parse_space(theirs.get("space")).to_dict()
    except SearchError:
        return False
    return spec == mine["spec"] and space == mine["space"]


def _retry_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A trial whose process went silent (another machine's, dead): run it again, and mark
    its run replaced."""
    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)(study, trial)
    _replaced(trial.user_attrs.get("run_dir"), trial.number)


def _mark(run_dir: str | None, state: str) -> None:
    if run_dir:  # the trial's outcome is in the study whether this works or not
        with contextlib.suppress(RunError, OSError):
            Run(Path(run_dir)).update_summary(search_state=state)


def _replaced(run_dir: str | None, number: int) -> None:
    """The run of a trial whose process died: the study runs its settings again in a new
    trial, so this run is not one to resume."""
    if run_dir:
        with contextlib.suppress(RunError, OSError):
            run = Run(Path(run_dir))
            if run.summary().get("status") == RunStatus.RUNNING:
                run.update_summary(
                    status=RunStatus.FAILED, search_state="replaced",
                    error=f"its search process died; the study runs trial {number}'s "
                          "settings again in a new trial",
                    hint="open the study's newer trial instead of resuming this run")


def _alive(pid: Any) -> bool:
    """Whether process `pid` of this machine still runs (a zombie, dead but not yet reaped
    by its parent, does not)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    return True


# -- reading a study -------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyView:
    """A stored study as the app shows it (no runner needed)."""

    name: str
    direction: str
    objective: str | None
    space: SearchSpace | None  # None: a study not made by Workbench
    rows: list[TrialRow]
    experiment: ExperimentSpec | None = None  # what it searches; None: not made by Workbench


def read_study(url: str, study: str) -> StudyView:
    """A stored study's trials and what it searches; SearchError when it is not there. Reads
    only, and lets go of the storage."""
    try:
        with opened(url, read_only=True) as storage:
            try:
                s = optuna.load_study(study_name=study, storage=storage)
            except KeyError:
                raise SearchError(f"--study {study}: no such study in {shown_url(url)}"
                                  ) from None
            info = s.user_attrs.get("workbench") or {}
            rows = [row_of(t) for t in s.get_trials(deepcopy=False)
                    if t.state != TrialState.WAITING]
            direction = s.direction.name.lower()
    except _NoStudies:
        raise SearchError(f"--study {study}: no such study in {shown_url(url)}") from None
    try:
        space = parse_space(info["space"]) if "space" in info else None
    except SearchError:
        space = None
    try:
        experiment = from_dict(info["spec"]) if "spec" in info else None
    except SpecError:  # written by another version of Workbench
        experiment = None
    return StudyView(study, direction, info.get("objective"), space, rows, experiment)


def importances(url: str, study: str) -> dict[str, float]:
    """Each searched field's share of the objective's variance (fANOVA); empty until two
    trials have completed with different values."""
    try:
        with opened(url, read_only=True) as storage:
            s = optuna.load_study(study_name=study, storage=storage)
            complete = s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if len(complete) < 2 or len({t.value for t in complete}) < 2:
                return {}
            try:
                with _quiet():
                    return dict(optuna.importance.get_param_importances(s))
            except (RuntimeError, ValueError):  # too few distinct parameter values to tell
                return {}
    except _NoStudies:
        return {}


def best_so_far(rows: list[TrialRow], direction: str) -> tuple[list[int], list[float]]:
    """The best value after each completed trial, in trial order."""
    xs: list[int] = []
    ys: list[float] = []
    best: float | None = None
    for row in sorted(rows, key=lambda r: r.number):
        if row.state != "complete" or row.value is None:
            continue
        if best is None or (row.value > best if direction == "maximize" else row.value < best):
            best = row.value
        xs.append(row.number)
        ys.append(best)
    return xs, ys


__all__ = ["OBJECTIVES", "PRUNERS", "Param", "SearchError", "SearchEvent", "SearchResult",
           "SearchRunner", "SearchSpace", "StudyInfo", "StudyOpened", "StudyView", "TrialEnded",
           "TrialEvent", "TrialRow", "TrialStarted", "apply_params", "base_params",
           "best_so_far", "default_storage", "default_study_name", "importances", "load_space",
           "list_studies", "objective_of", "opened", "parse_space", "read_study",
           "same_experiment", "shown_params", "shown_url"]
