"""Why a run failed, in words a person can act on: a reason, a hint, and whether it is a bug.

Every exception that ends a run passes through `explain`. Only what no input can cause counts
as a bug in Workbench; everything else names the input, the device or the folder to fix.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

import torch

from workbench.core.data import DataError
from workbench.core.store.runs import RunError
from workbench.core.training.callbacks import RunAbort
from workbench.spec import SpecError

BUG_HINT = "this is likely a bug in Workbench; the run folder keeps what was saved"
# What a write can meet that is the folder's or the disk's fault, not a bug of Workbench.
# Each with what to do about it: the hint for a full disk is not the hint for a read-only one.
_SPACE = "free some disk space, or choose a runs folder on another disk"
_ACCESS = "choose a runs folder you can write to"
WRITE_ERRORS = {
    errno.ENOSPC: ("the disk is full", _SPACE),
    errno.EDQUOT: ("the disk quota is used up",
                   "free some of your quota, or choose a runs folder on another disk"),
    errno.EROFS: ("the folder is on a read-only file system", _ACCESS),
    errno.EACCES: ("permission denied", _ACCESS),
    errno.EPERM: ("permission denied", _ACCESS),
}
WRITE_KEPT = "; the run folder keeps what was saved before"
OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory",
               "not enough memory", "defaultcpuallocator")


@dataclass(frozen=True)
class Failure:
    reason: str
    hint: str
    bug: bool = False  # True: a fault of Workbench's, whose traceback belongs in the log


def setup_hint(exc: Exception) -> str:
    if isinstance(exc, SpecError):
        return "fix the experiment and try again"
    if isinstance(exc, DataError):
        return "check the dataset's files or folder"
    return "the run folder may be damaged; start a new run"


def explain(exc: BaseException) -> Failure:
    """A person-readable reason and hint for an exception that ended a run."""
    if isinstance(exc, RunAbort):
        return Failure(exc.reason, exc.hint)
    text = str(exc)
    if isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError) or any(
            marker in text.lower() for marker in OOM_MARKERS):
        return Failure("the device ran out of memory",
                       "lower the batch size, use a smaller network, or train on the CPU")
    if isinstance(exc, SpecError | DataError | RunError):
        return Failure(str(exc), setup_hint(exc))
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRORS:
        where = f"cannot write {exc.filename}: " if exc.filename else "cannot write: "
        reason, hint = WRITE_ERRORS[exc.errno]
        return Failure(where + reason, hint + WRITE_KEPT)
    if isinstance(exc, torch.distributed.DistError) or any(
            marker in text for marker in ("Connection reset by peer", "Connection closed by peer",
                                          "gloo/transport", "NCCL error")):
        return Failure("another rank of this distributed run died or stopped answering",
                       "look at that rank's output above; every rank was stopped and the run "
                       "marked failed")
    if type(exc).__name__ == "RankStopped":
        return Failure(text, "look at the other ranks' output above")
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted", "resume the run from its folder")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return Failure(f"{type(exc).__name__}: {first}" if first else type(exc).__name__, BUG_HINT,
                   bug=True)


__all__ = ["BUG_HINT", "WRITE_ERRORS", "Failure", "explain", "setup_hint"]
