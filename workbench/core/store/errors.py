"""The errors of the run store, apart so that the lock and the store can share them."""

from __future__ import annotations


class RunError(ValueError):
    """A run folder or checkpoint that cannot be read; the message says which file and why."""


class RunInUse(RunError):
    """Another trainer (this process or another one, maybe on another host) holds the run."""
