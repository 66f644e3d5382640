"""Work stopped on request: what a core tool raises when its `cancel` event is set between
two steps (the app's Cancel, a command's Ctrl-C or SIGTERM).

It is not an error: the step in flight has ended, what was half-made has been removed (or
recorded as stopped), and running the same work again continues or redoes it. Importing this
loads nothing heavy.
"""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """The work stopped because it was asked to; the message says where it stopped."""


def check_cancel(cancel: threading.Event | None, where: str) -> None:
    """Raise Cancelled (saying `where`) when `cancel` is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(where)


__all__ = ["Cancelled", "check_cancel"]
