"""What PyTorch keeps for the whole process, and its one owner while jobs overlap.

A run's random streams are its own (`streams.py`), but PyTorch has no per-run form of two
settings: the CPU thread count (`torch.set_num_threads` sets MKL's count for the process and
the default of every thread) and the CUDA switches (TF32, cuDNN's autotuner). When each run
set them and put back what it found, two overlapping runs put them back out of order (TF32
could stay on for a later float32 MLP), and a run starting beside another changed the count
the other was running with, and with it the order of its sums.

So one owner, `PROCESS`, counts who holds them: the first job to arrive sets the value it
asks for, every job that arrives while it runs trains with that value (and is told so when it
asked for another: `Share.note`, which runs keep in their summary and `RunStarted`), and the
last to leave puts back what the first found. Nothing is changed under a running job.
`ProcessSettings.note` says what is in force while several jobs share it, for the app to show.

Importing this module loads no torch (the workspace holds the owner before torch is loaded).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Share(Generic[T]):
    """What a job got: the value in force while it runs, and a note when it asked for
    another."""

    value: T
    note: str | None = None


class _Shared(Generic[T]):
    """One process-wide setting, held by a count of jobs; see the module."""

    def __init__(self, read: Callable[[], T], write: Callable[[T], None]) -> None:
        self._read = read
        self._write = write
        self.holders = 0
        self.in_force: T | None = None
        self._found: T | None = None

    def join(self, wanted: Callable[[T], T]) -> tuple[T, T]:
        """(the value in force, the value this job wanted); `wanted` maps what the process
        had before any job to what this job asks for. Call under the owner's lock."""
        if self.holders == 0:
            self._found = self._read()
            self.in_force = wanted(self._found)
            self._write(self.in_force)
        self.holders += 1
        assert self.in_force is not None and self._found is not None
        return self.in_force, wanted(self._found)

    def leave(self) -> None:
        self.holders -= 1
        if self.holders == 0:
            assert self._found is not None
            self._write(self._found)
            self.in_force = self._found = None


class ProcessSettings:
    """The owner of the process-wide settings jobs train with; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: _Shared[int] = _Shared(_get_threads, _set_threads)
        self._backends: _Shared[dict[str, Any]] = _Shared(_get_backends, _set_backends)

    @contextlib.contextmanager
    def threads(self, wanted: int) -> Iterator[Share[int]]:
        """Train with `wanted` CPU threads, or with the count other jobs train with now."""
        with self._lock:
            value, _ = self._threads.join(lambda found: wanted)
            _set_threads(value)  # this thread's own count too (OpenMP keeps one per thread)
        note = None
        if value != wanted:
            note = (f"{_plural(value, 'CPU thread')} instead of {wanted}: other jobs in this "
                    "process train with that count, which is set for the whole process")
        try:
            yield Share(value, note)
        finally:
            with self._lock:
                self._threads.leave()

    @contextlib.contextmanager
    def backends(self, wanted: dict[str, Any]) -> Iterator[Share[dict[str, Any]]]:
        """Train with the CUDA switches `wanted` (names of `backends.current_settings`; the
        others as the process had them), or with those in force while other jobs run."""
        with self._lock:
            value, asked = self._backends.join(lambda found: {**found, **wanted})
        note = None
        if value != asked:
            differ = ", ".join(f"{k} {value[k]}" for k in sorted(value) if value[k] != asked[k])
            note = (f"the CUDA switches another job set are in force ({differ}): they are set "
                    "for the whole process")
        try:
            yield Share(value, note)
        finally:
            with self._lock:
                self._backends.leave()

    @property
    def note(self) -> str | None:
        """What several jobs share now, in words (None while at most one job holds it)."""
        with self._lock:
            jobs = max(self._threads.holders, self._backends.holders)
            if jobs < 2:
                return None
            parts = [f"{jobs} jobs share this process"]
            if self._threads.in_force is not None:
                parts.append(f"each with {_plural(self._threads.in_force, 'CPU thread')}")
            backends = self._backends.in_force
            if backends and self._backends.holders > 1:
                parts.append("TF32 on" if "tf32" in backends.values() else "TF32 off")
            return ", ".join(parts)

    @property
    def jobs(self) -> int:
        """How many jobs hold the settings now."""
        with self._lock:
            return max(self._threads.holders, self._backends.holders)


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _get_threads() -> int:
    import torch

    return torch.get_num_threads()


def _set_threads(n: int) -> None:
    """Set for the calling thread and MKL's whole pool: with the same value while jobs run
    (each job's thread takes it), so nothing changes under them."""
    import torch

    torch.set_num_threads(n)


def _get_backends() -> dict[str, Any]:
    from workbench.core.training.backends import current_settings

    return current_settings()


def _set_backends(values: dict[str, Any]) -> None:
    from workbench.core.training.backends import apply_settings

    apply_settings(values)


PROCESS = ProcessSettings()


@contextlib.contextmanager
def backends_for(model: Any, device: Any) -> Iterator[dict[str, Any]]:
    """Yields the CUDA switches in force for `model` on `device` while the block runs (those
    another job set, when one is training), put back after (`backends.backend_settings`).
    A CPU run takes no part: nothing it computes depends on them."""
    from workbench.core.training.backends import backend_settings

    if device.type != "cuda":
        yield {}
        return
    with PROCESS.backends(backend_settings(model, device)) as share:
        yield share.value


__all__ = ["PROCESS", "ProcessSettings", "Share", "backends_for"]
