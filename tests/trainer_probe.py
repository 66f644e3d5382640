"""Test helper: whether a trainer thread is parked in its pause wait (read from the stacks)."""

import sys


def parked_in_pause() -> bool:
    """True when some thread is blocked in `Trainer._events`' pause wait."""
    for frame in sys._current_frames().values():
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            frame = frame.f_back
        if names and names[0] == "wait" and "_events" in names:
            return True
    return False
