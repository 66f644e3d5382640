"""The one error the data layer raises, so callers catch a single type and show its message."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset that cannot be used; the one-line message names the file or field and why.

    Raised before anything is written, so bad input changes nothing.
    """
