"""The log: stdlib `logging` to a rotating file in the per-user folder, set up once by whoever
starts the process (the CLI or the app); every module logs through `logging.getLogger(__name__)`.

A real error (a bug, not bad input) keeps its traceback here, so that "the details are in the
log" points at something. `workbench --verbose` copies the log to stderr.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from workbench.paths import user_data_dir

LOGGER = "workbench"
MAX_BYTES = 1_000_000
BACKUPS = 3
_configured = False
FORMAT = "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"


class _FileHandler(logging.handlers.RotatingFileHandler):
    """Ours, so that configuring again finds and replaces it instead of adding another."""


class _StderrHandler(logging.StreamHandler):
    """`--verbose`: the same records on stderr."""


def log_path() -> Path:
    """Where the log goes for the current per-user folder (`WORKBENCH_HOME` moves it)."""
    return user_data_dir() / "logs" / "workbench.log"


def current_log() -> Path | None:
    """The file the log is being written to, or None when logging was not set up (a library
    use of the core) or the folder could not be written."""
    for handler in logging.getLogger(LOGGER).handlers:
        if isinstance(handler, _FileHandler):
            return Path(handler.baseFilename)
    return None


def configure(*, verbose: bool = False) -> Path | None:
    """Send Workbench's log to the rotating file (and to stderr when `verbose`); returns the
    file, or None when it cannot be written (the reason goes to stderr once, nothing fails).

    Safe to call again: the handlers are replaced, not added (tests change the home folder).
    """
    global _configured
    _configured = True
    root = logging.getLogger(LOGGER)
    for handler in list(root.handlers):
        if isinstance(handler, _FileHandler | _StderrHandler):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    formatter = logging.Formatter(FORMAT)
    path = log_path()
    written: Path | None = path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = _FileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                    encoding="utf-8", delay=True)
    except OSError as exc:
        sys.stderr.write(f"workbench: no log file ({path}: {exc.strerror or exc})\n")
        written = None
    else:
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    if verbose:
        stderr = _StderrHandler(sys.stderr)
        stderr.setFormatter(formatter)
        root.addHandler(stderr)
    return written


def ensure_configured() -> Path | None:
    """`configure()` unless the process already did (the app started by the CLI)."""
    return current_log() if _configured else configure()


__all__ = ["configure", "current_log", "ensure_configured", "log_path"]
