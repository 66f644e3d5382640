"""Spec files on disk: the one way a spec is saved."""

from __future__ import annotations

from pathlib import Path

from workbench.core.store.atomic import write_text_atomic
from workbench.spec import ExperimentSpec


def save_spec(spec: ExperimentSpec, path: str | Path) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of either."""
    write_text_atomic(Path(path), spec.to_json() + "\n")
