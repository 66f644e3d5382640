"""Saved comparisons: JSON files under `<runs root>/comparisons/`, which reopen from the stored
runs' metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

from workbench.core.store.atomic import write_text_atomic
from workbench.core.store.runs import COMPARISONS, RunStore, slug
from workbench.core.tools.compare.variants import Comparison
from workbench.spec import ExperimentSpec, SpecError
from workbench.spec.jsonfile import JSONFileError, read_json

MAX_COMPARISON_BYTES = 16 << 20  # each variant holds its spec: thousands of variants fit


def comparisons_dir(runs: RunStore) -> Path:
    return runs.root / COMPARISONS  # a folder of the store that its listing never takes for a run


def save_comparison(comparison: Comparison, runs: RunStore, path: Path | None = None) -> Path:
    """Write the comparison as JSON (atomically); by default `<runs>/comparisons/<name>.json`."""
    if path is None:
        path = comparisons_dir(runs) / f"{slug(comparison.name, 60, 'comparison')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(comparison.to_dict(), indent=2) + "\n")
    return path


def load_comparison(path: str | Path) -> Comparison:
    """Read a saved comparison; SpecError with the file and field on bad input."""
    path = Path(path)
    try:
        raw = read_json(path, max_bytes=MAX_COMPARISON_BYTES)
    except JSONFileError as exc:
        raise SpecError("", f"{path}: {exc}") from None
    try:
        return Comparison.from_dict(raw)
    except SpecError as exc:
        raise SpecError("", f"{path}: {exc}") from None


def list_comparisons(runs: RunStore) -> list[Path]:
    folder = comparisons_dir(runs)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)


def default_name(spec: ExperimentSpec) -> str:
    return f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
