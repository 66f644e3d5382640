"""The run store: one folder per run with the spec it ran, its metrics, checkpoints and summary.

    <runs dir>/<yyyymmdd-hhmmss>-<name>-<id>/
        spec.json        the experiment as it ran
        summary.json     status and headline figures (what `list` reads: listing stays fast)
        metrics.jsonl    one JSON object per line: {"kind": "epoch"|"step"|"test", ...}
        checkpoint.pt    the latest resumable state (model, optimizer, schedule, RNG)
        model.pt         the final weights (the best ones when early stopping restored them)
        traceback.txt    what went wrong, when a bug (not bad input) ended the run
        .lock            held by whoever trains the run (`locks.RunLock`)

Every file is written atomically; the temporary files a killed writer leaves (in the folder or
its sub-folders) are removed when the folder is next listed or trained. A damaged folder is
reported by `list`, never fatal. A run whose summary says "running" while nobody holds its lock
was interrupted (its process died): readers show it as `INTERRUPTED`, which is never written.

The store's own folders that are not runs (`comparisons/`, RESERVED) and links are never
listed as runs: a listing reads, probes and sweeps only real folders inside the store.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from workbench import spec as specmod
from workbench.core.store.atomic import (
    remove_stale_temps,
    unwritable,
    write_bytes_atomic,
    write_text_atomic,
)
from workbench.core.store.errors import RunError, RunInUse
from workbench.core.store.locks import RunLock, is_locked
from workbench.paths import default_runs_dir
from workbench.spec import ExperimentSpec, SpecError
from workbench.spec.jsonfile import JSONFileError, read_json, read_json_lines

MAX_SUMMARY_BYTES = 16 << 20  # a confusion matrix of a thousand classes fits
COMPARISONS = "comparisons"  # saved comparisons (core.tools.compare.files), beside the runs
RESERVED = frozenset({COMPARISONS})  # folders of the store that are not runs


def slug(name: str, limit: int = 40, fallback: str = "run", *, keep: str = "-_") -> str:
    """The file-safe form of a name, the one rule for every name Workbench makes from a
    person's text (run folders, saved comparisons, search studies, suggested file names):
    letters, digits and the characters in `keep`, anything else as "-", at most `limit`
    characters; `fallback` when nothing is left."""
    return "".join(c if c.isalnum() or c in keep else "-" for c in name)[:limit] or fallback


class RunStatus(StrEnum):
    """A run's `status` in its summary (stored as the plain string)."""

    CREATED = "created"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    # Shown, never stored: "running" on disk, but the process that ran it is gone.
    INTERRUPTED = "interrupted"


# The one rule of what can be resumed (the app, `workbench resume` and `workbench runs` all ask
# `why_not_resumable`): a run that ended before its last epoch, with a checkpoint to continue.
RESUMABLE = frozenset({RunStatus.STOPPED, RunStatus.INTERRUPTED, RunStatus.FAILED})
LIVE = frozenset({RunStatus.CREATED, RunStatus.RUNNING})
CHECKPOINT = "checkpoint.pt"


def why_not_resumable(path: Path, status: str | None, error: str | None = None) -> str | None:
    """Why the run at `path`, shown as `status`, cannot be resumed; None when it can.

    Stopped, interrupted or failed runs with a checkpoint continue from it; a finished run has
    nothing to continue (fork it to train further), a live one is training now.
    """
    if error is not None:
        return "the run folder is damaged"
    if status == RunStatus.FINISHED:
        return "it finished: nothing to resume (fork it to train on)"
    if status in LIVE:
        return "it is training now"
    if status not in RESUMABLE:
        return f"its status is {status!r}, not stopped, interrupted or failed"
    if not (path / CHECKPOINT).is_file():
        if status == RunStatus.INTERRUPTED:
            return ("it was interrupted before its first checkpoint, so it cannot be resumed; "
                    "train it again")
        return "it has no checkpoint to continue from"
    return None


@dataclass(frozen=True)
class RunInfo:
    path: Path
    summary: dict[str, Any]
    error: str | None = None  # set when the folder is damaged

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str | None:
        """What the run is now (`summary["status"]` as the store shows it)."""
        return self.summary.get("status")

    @property
    def why_not_resumable(self) -> str | None:
        """Why the run cannot be resumed (`why_not_resumable`); None when it can."""
        return why_not_resumable(self.path, self.status, self.error)

    @property
    def resumable(self) -> bool:
        """Stopped, interrupted or failed, with a checkpoint to continue from."""
        return self.why_not_resumable is None


class Run:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # -- who trains it -------------------------------------------------------------------
    def lock(self) -> RunLock:
        """Take the run for training (RunInUse names whoever has it); temps a killed writer
        left are removed once it is ours."""
        lock = RunLock(self.path).acquire()
        remove_stale_temps(self.path, recursive=True)
        return lock

    def current_status(self) -> str | None:
        """The status as it is now: "interrupted" where the summary says "running" but the
        process that ran it is gone. Read-only: nothing is written."""
        return _shown_status(self.path, self.summary())

    def why_not_resumable(self) -> str | None:
        """Why the run cannot be resumed now (the store's one rule); None when it can."""
        try:
            status = self.current_status()
        except RunError as exc:
            return why_not_resumable(self.path, None, str(exc))
        return why_not_resumable(self.path, status)

    # -- spec and summary --------------------------------------------------------------
    def spec(self) -> ExperimentSpec:
        try:
            return specmod.load(self.path / "spec.json")
        except SpecError as exc:
            raise RunError(f"{self.path / 'spec.json'}: {exc}") from exc

    def summary(self) -> dict[str, Any]:
        return _read_summary(self.path / "summary.json")

    def update_summary(self, **values: Any) -> dict[str, Any]:
        try:
            summary = self.summary()
        except RunError:
            summary = {}
        summary.update(values)
        write_text_atomic(self.path / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary

    # -- metrics ----------------------------------------------------------------------
    def append_metrics(self, records: list[dict[str, Any]]) -> None:
        """Append lines; metrics are an append-only log, so a crash loses at most the tail."""
        if not records:
            return
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")

    def metrics(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The logged records (of one `kind`); torn or undecodable lines are skipped."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        try:
            records = read_json_lines(path)
        except JSONFileError as exc:
            raise RunError(f"{path}: {exc}") from None
        return [r for r in records if _record_ok(r) and (kind is None or r.get("kind") == kind)]

    def truncate_metrics(self, global_step: int) -> None:
        """Drop records past `global_step`, and the final test: a resumed run rewrites what
        followed its checkpoint."""
        kept = [r for r in self.metrics()
                if r.get("global_step", 0) <= global_step and r.get("kind") != "test"]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        write_text_atomic(self.path / "metrics.jsonl", text)

    # -- tensors ----------------------------------------------------------------------
    def save_state(self, name: str, state: dict[str, Any]) -> None:
        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        write_bytes_atomic(self.path / name, buf.getvalue())

    def load_state(self, name: str) -> dict[str, Any]:
        import torch

        path = self.path / name
        if not path.exists():
            raise RunError(f"{path}: no such file (was the run stopped before it saved?)")
        if not _plain_file(path):  # a pipe or a device would block or never end
            raise RunError(f"{path}: not a plain file")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise RunError(f"{path}: damaged or truncated checkpoint ({exc.__class__.__name__})") \
                from exc

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self.save_state(CHECKPOINT, state)

    def load_checkpoint(self) -> dict[str, Any]:
        return self.load_state(CHECKPOINT)

    def save_model(self, state_dict: dict[str, Any]) -> None:
        self.save_state("model.pt", state_dict)

    def load_model_state(self) -> dict[str, Any]:
        return self.load_state("model.pt")


class RunStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()

    def check(self) -> None:
        """RunError when the store's folder cannot hold runs: a file or a device where the
        folder should be, or under a file (it is made when the first run is stored)."""
        for place in (self.root, *self.root.parents):
            try:
                mode = place.stat().st_mode
            except (FileNotFoundError, NotADirectoryError):  # not there yet: look above
                continue
            except OSError as exc:
                raise RunError(f"{place}: cannot read the runs folder "
                               f"({exc.strerror or exc})") from None
            if stat.S_ISDIR(mode):
                return
            raise RunError(f"{place}: not a folder, so it cannot hold runs"
                           + ("" if place == self.root else f" (the runs folder is {self.root})"))

    def check_writable(self) -> None:
        """RunError, before anything is made, when no run can be stored here (a read-only
        file system, a folder without write permission); the folder is made when missing."""
        self.check()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problem: OSError | None = exc
        else:
            problem = unwritable(self.root)
        if problem is not None:
            raise RunError(f"{problem.filename or self.root}: cannot store runs there "
                           f"({_why(problem)}); choose a runs folder you can write to "
                           "(--runs-dir)")

    def create(self, spec: ExperimentSpec, *, parent: Path | None = None,
               **summary: Any) -> Run:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.root / f"{stamp}-{slug(spec.name, 40, 'run')}-{secrets.token_hex(3)}"
        path.mkdir(parents=True, exist_ok=False)
        run = Run(path)
        write_text_atomic(path / "spec.json", spec.to_json() + "\n")
        run.update_summary(name=spec.name, created=time.time(), status=RunStatus.CREATED,
                           dataset=spec.data.name, optimizer=spec.optim.name,
                           parent=str(parent) if parent else None, **summary)
        return run

    def list(self) -> list[RunInfo]:
        """Every run folder, newest first; a damaged one carries `error` instead of failing.

        Nothing when the store's folder is not there (or not a folder: `check` says so);
        RunError when it cannot be read. Links, hidden folders and the store's own folders
        (RESERVED) are not runs: nothing is read or written through them.
        """
        if not self.root.is_dir():
            return []
        infos = []
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name, reverse=True)
        except OSError as exc:
            raise RunError(f"{self.root}: cannot list the runs folder "
                           f"({exc.strerror or exc})") from None
        for entry in entries:
            if entry.name.startswith(".") or entry.name in RESERVED:
                continue
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue
            except OSError:
                continue
            path = Path(entry.path)
            try:
                summary = Run(path).summary()
            except RunError as exc:
                infos.append(RunInfo(path, {}, str(exc)))
                continue
            status = _shown_status(path, summary)
            if status != summary.get("status"):
                summary = {**summary, "status": status}
            if is_locked(path) is False:
                remove_stale_temps(path, recursive=True)
            infos.append(RunInfo(path, summary))
        return infos

    def delete(self, path: str | Path) -> None:
        """Remove one run folder of this store, for good.

        Refused (RunInUse) while anyone trains it: the run's lock is taken first and held
        while the folder is renamed to a hidden name, so no trainer can start on it halfway
        and `list` never shows a half-removed run; the hidden folder is then removed. Only a
        folder directly inside the store that holds a run's files is touched (RunError
        otherwise): a wrong path never removes anything else.
        """
        path = Path(path)
        root = self.root.resolve()
        if path.is_symlink() or path.resolve().parent != root or not path.is_dir() \
                or path.name.startswith("."):
            raise RunError(f"{path}: not a run folder of {self.root}")
        if not any((path / name).exists() for name in ("summary.json", "spec.json")):
            raise RunError(f"{path}: not a run folder (no summary.json or spec.json)")
        lock = RunLock(path).acquire(timeout=0)
        trash = root / f".deleted-{path.name}-{secrets.token_hex(3)}"
        try:
            os.rename(path, trash)
        except OSError as exc:
            raise RunError(f"{path}: cannot remove it ({exc.strerror or exc})") from exc
        finally:
            lock.release()
        _remove_tree(trash)
        _remove_tree_leftovers(root)


def _why(exc: OSError) -> str:
    """An OSError in words: "read-only file system", "permission denied"."""
    return (exc.strerror or str(exc)).lower()


def _plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return True  # the reader says why it cannot read it


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except OSError as exc:
        raise RunError(f"{path}: removed from the list, but not every file could be deleted "
                       f"({exc.strerror or exc})") from exc


def _remove_tree_leftovers(root: Path) -> None:
    """Hidden folders an earlier delete could not finish (a kill, a file in use)."""
    for left in root.glob(".deleted-*"):
        if left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)


def _shown_status(path: Path, summary: dict[str, Any]) -> str | None:
    """INTERRUPTED for a "running" run nobody holds. The summary is read again once the lock
    is seen free: a trainer writes its last status before it lets go, so a run that just ended
    is never mistaken for an interrupted one."""
    status = summary.get("status")
    if status != RunStatus.RUNNING or is_locked(path) is not False:
        return status
    try:
        status = Run(path).summary().get("status")
    except RunError:
        return status
    return RunStatus.INTERRUPTED if status == RunStatus.RUNNING else status


_NUMBER = (int, float)
# What the readers of a summary rely on (None is allowed for each); a value of another type
# marks the folder damaged instead of failing in whatever shows it.
SUMMARY_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("status", "name", "dataset", "optimizer", "device", "error", "hint",
                     "parent", "pruned_from", "step_note"), (str,)),
    **dict.fromkeys(("created", "seconds", "test_accuracy", "test_loss", "test_mse",
                     "val_accuracy", "val_loss", "best_val_accuracy"), _NUMBER),
    **dict.fromkeys(("epochs_done", "num_params", "world_size"), (int,)),
    "early_stopped": (bool,),
    "confusion": (list,),
    "class_names": (list,),
}


# Numbers of a metrics record; a record whose numbers are not numbers is skipped like a torn one.
RECORD_NUMBERS = frozenset({
    "epoch", "step", "steps_per_epoch", "global_step", "total_steps", "train_loss",
    "train_accuracy", "val_loss", "val_accuracy", "lr", "grad_norm", "samples_per_sec",
    "epoch_seconds", "elapsed", "eta", "loss", "accuracy"})


def _record_ok(record: dict[str, Any]) -> bool:
    return isinstance(record.get("kind"), str) and all(
        value is None or (isinstance(value, _NUMBER) and not isinstance(value, bool))
        for key, value in record.items() if key in RECORD_NUMBERS)


def _summary_problem(summary: dict[str, Any]) -> str | None:
    for key, types in SUMMARY_TYPES.items():
        value = summary.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            return f"{key} is {type(value).__name__}, not {' or '.join(t.__name__ for t in types)}"
    names = summary.get("class_names")
    if names is not None and not all(isinstance(n, str) for n in names):
        return "class_names holds something that is not text"
    confusion = summary.get("confusion")
    if confusion is not None and not all(
            isinstance(row, list) and len(row) == len(confusion)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row)
            for row in confusion):
        return "confusion is not a square table of counts"
    return None


def _read_summary(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise RunError(f"{path}: missing")
    try:
        value = read_json(path, max_bytes=MAX_SUMMARY_BYTES, allow_nan=True)
    except JSONFileError as exc:
        raise RunError(f"{path}: damaged ({exc})") from None
    if not isinstance(value, dict):
        raise RunError(f"{path}: damaged (not a JSON object)")
    problem = _summary_problem(value)
    if problem:
        raise RunError(f"{path}: damaged ({problem})")
    return value


__all__ = ["COMPARISONS", "LIVE", "RESERVED", "RESUMABLE", "Run", "RunError", "RunInUse",
           "RunInfo", "RunStatus", "RunStore", "slug", "why_not_resumable"]
