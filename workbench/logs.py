"""The log: stdlib `logging` to a rotating file in the per-user folder, set up once by whoever
starts the process (the CLI or the app); every module logs through `logging.getLogger(__name__)`.

A real error (a bug, not bad input) keeps its traceback here, so that "the details are in the
log" points at something. `workbench --verbose` copies the log, and other libraries' records,
to stderr (one handler on the root logger, so each record shows once). Without it the commands
keep other libraries' warnings and log lines off stderr, and a library that configures the
root logger (onnxruntime's quantization calls `logging.basicConfig`) finds it configured, so
Workbench's own records never reach stderr through it (`quiet_other_libraries`).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import warnings
from pathlib import Path

from workbench.paths import user_data_dir

LOGGER = "workbench"
MAX_BYTES = 1_000_000
BACKUPS = 3
_configured = False
# Libraries whose log lines a command's user has no use for (torch.onnx's "torchvision is not
# installed", onnxruntime's and Optuna's progress): errors only, unless --verbose. torch resets
# its registered loggers when it is imported, so for those the TORCH_LOGS setting says it, and
# the level of an unregistered logger between them and the noisy ones holds.
OTHER_LIBRARIES = ("torch.onnx", "torch.onnx._internal", "torch._export", "torch.export",
                   "onnxscript", "onnx", "onnxruntime", "optuna", "alembic", "sqlalchemy", "PIL")
TORCH_QUIET = "-onnx,-export"
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
    top = logging.getLogger()
    for logger in (root, top):
        for handler in list(logger.handlers):
            if isinstance(handler, _FileHandler | _StderrHandler):
                logger.removeHandler(handler)
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
    if verbose:  # on the root logger: ours and other libraries' records, each once
        stderr = _StderrHandler(sys.stderr)
        stderr.setFormatter(formatter)
        top.addHandler(stderr)
    return written


def quiet_other_libraries() -> None:
    """For a command run without --verbose, on its main thread before its work begins: other
    libraries' warnings are ignored and their loggers show errors only; the root logger gets
    a handler that drops everything, so a library calling `logging.basicConfig` adds none.
    Process-wide: never in the app, where other threads run."""
    warnings.simplefilter("ignore")
    os.environ.setdefault("TORCH_LOGS", TORCH_QUIET)
    top = logging.getLogger()
    if not any(isinstance(h, logging.NullHandler) for h in top.handlers):
        top.addHandler(logging.NullHandler())
    for name in OTHER_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)


def ensure_configured() -> Path | None:
    """`configure()` unless the process already did (the app started by the CLI)."""
    return current_log() if _configured else configure()


__all__ = ["configure", "current_log", "ensure_configured", "log_path", "quiet_other_libraries"]
