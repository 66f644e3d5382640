"""The run store: one folder per run with the spec it ran, its metrics, checkpoints and summary.

    <runs dir>/<yyyymmdd-hhmmss>-<name>-<id>/
        spec.json        the experiment as it ran
        summary.json     status and headline figures (what `list` reads: listing stays fast)
        metrics.jsonl    one JSON object per line: {"kind": "epoch"|"step"|"test", ...}
        checkpoint.pt    the latest resumable state (model, optimizer, schedule, RNG)
        model.pt         the final weights (the best ones when early stopping restored them)

Every file is written atomically. A damaged folder is reported by `list`, never fatal.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from workbench import spec as specmod
from workbench.core.store.atomic import write_bytes_atomic, write_text_atomic
from workbench.paths import default_runs_dir
from workbench.spec import ExperimentSpec, SpecError


class RunError(ValueError):
    """A run folder or checkpoint that cannot be read; the message says which file and why."""


class RunStatus(StrEnum):
    """A run's `status` in its summary (stored as the plain string)."""

    CREATED = "created"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class RunInfo:
    path: Path
    summary: dict[str, Any]
    error: str | None = None  # set when the folder is damaged

    @property
    def name(self) -> str:
        return self.path.name


class Run:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # -- spec and summary --------------------------------------------------------------
    def spec(self) -> ExperimentSpec:
        try:
            return specmod.load(self.path / "spec.json")
        except SpecError as exc:
            raise RunError(f"{self.path / 'spec.json'}: {exc}") from exc

    def summary(self) -> dict[str, Any]:
        return _read_json(self.path / "summary.json")

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
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line after a crash
            if kind is None or record.get("kind") == kind:
                out.append(record)
        return out

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
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise RunError(f"{path}: damaged or truncated checkpoint ({exc.__class__.__name__})") \
                from exc

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self.save_state("checkpoint.pt", state)

    def load_checkpoint(self) -> dict[str, Any]:
        return self.load_state("checkpoint.pt")

    def save_model(self, state_dict: dict[str, Any]) -> None:
        self.save_state("model.pt", state_dict)

    def load_model_state(self) -> dict[str, Any]:
        return self.load_state("model.pt")


class RunStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()

    def create(self, spec: ExperimentSpec, *, parent: Path | None = None,
               **summary: Any) -> Run:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in spec.name)[:40] or "run"
        path = self.root / f"{stamp}-{slug}-{secrets.token_hex(3)}"
        path.mkdir(parents=True, exist_ok=False)
        run = Run(path)
        write_text_atomic(path / "spec.json", spec.to_json() + "\n")
        run.update_summary(name=spec.name, created=time.time(), status=RunStatus.CREATED,
                           dataset=spec.data.name, optimizer=spec.optim.name,
                           parent=str(parent) if parent else None, **summary)
        return run

    def list(self) -> list[RunInfo]:
        """Every run folder, newest first; a damaged one carries `error` instead of failing."""
        if not self.root.is_dir():
            return []
        infos = []
        for path in sorted(self.root.iterdir(), reverse=True):
            if not path.is_dir() or path.name.startswith("."):
                continue
            try:
                infos.append(RunInfo(path, Run(path).summary()))
            except RunError as exc:
                infos.append(RunInfo(path, {}, str(exc)))
        return infos


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RunError(f"{path}: missing") from exc
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: damaged ({exc})") from exc
    if not isinstance(value, dict):
        raise RunError(f"{path}: damaged (not a JSON object)")
    return value
