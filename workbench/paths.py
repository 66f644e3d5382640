"""Where Workbench keeps things: bundled resources, the run store, the download cache.

`WORKBENCH_HOME` moves everything per-user under one folder (tests use it so they never
touch the user's real data).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs


def resources_dir() -> Path:
    """The bundled resources: beside the package in a source tree, inside a frozen app, or
    inside an installed wheel (as `workbench/resources`)."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    here = Path(__file__).resolve().parent
    source_tree = here.parent / "resources"
    return source_tree if source_tree.is_dir() else here / "resources"


def user_data_dir() -> Path:
    home = os.environ.get("WORKBENCH_HOME")
    return Path(home) if home else Path(platformdirs.user_data_dir("workbench", appauthor=False))


def user_cache_dir() -> Path:
    home = os.environ.get("WORKBENCH_HOME")
    if home:
        return Path(home) / "cache"
    return Path(platformdirs.user_cache_dir("workbench", appauthor=False))


def default_runs_dir() -> Path:
    return user_data_dir() / "runs"


def is_frozen() -> bool:
    """True inside the packaged app (PyInstaller), where `sys.executable` is Workbench itself
    and `python -m` does not exist."""
    return bool(getattr(sys, "frozen", False))


def self_command() -> list[str]:
    """The command line that starts this Workbench again (`workbench` then its arguments):
    the packaged executable, or this Python with `-m workbench`."""
    return [sys.executable] if is_frozen() else [sys.executable, "-m", "workbench"]
