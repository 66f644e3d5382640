"""A guard against PySide6 6.12's reference-count leak on None and True under Python < 3.12.

PySide6 6.12.0 returns `None` from void methods (`setText`, `processEvents`, `postEvent`,
`QTimer.start`...) and `True` from `Signal.emit` without taking a reference. From Python 3.12
on those objects are immortal and nothing happens; on 3.11 every such call takes one
reference away, and after some thousands of calls the interpreter aborts with
"Fatal Python error: none_dealloc" (or bool_dealloc). A training session makes such calls
continuously, so without this guard the app dies after a while.

The guard gives None, True and False a very large reference count once, which is what 3.12
does by design; the objects are static and never freed, so the extra count changes nothing
else. It does nothing on Python 3.12 and later.
"""

from __future__ import annotations

import ctypes
import sys

_HEADROOM = 1 << 40  # far more calls than a process makes, far below Py_ssize_t's limit
_applied = False


def apply() -> bool:
    """Make None, True and False effectively immortal on Python < 3.12; True if it acted."""
    global _applied
    if _applied or sys.version_info >= (3, 12):
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _HEADROOM
    _applied = True
    return True


__all__ = ["apply"]
