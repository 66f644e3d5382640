"""The one error the data layer raises, so callers catch a single type and show its message."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset that cannot be used; the one-line message names the file or field and why.

    Raised before anything is written, so bad input changes nothing.
    """


DATA_ROOT_NAME = "Folder (data.root)"  # the app's Data tab field; the CLI says --data-root


class OfflineError(DataError):
    """A dataset that could not be downloaded for want of a network: the message says to
    point data.root at the files, named the way the caller's person sets it."""

    def __init__(self, dataset: str, detail: str, root_name: str = DATA_ROOT_NAME) -> None:
        self.dataset, self.detail, self.root_name = dataset, detail, root_name
        files = ("a folder holding cifar-10-batches-bin (from cifar-10-binary.tar.gz)"
                 if dataset == "cifar10" else "the four *-ubyte.gz files")
        super().__init__(f"no internet ({detail}): point {root_name} at {files}, or connect "
                         "and try again")

    def worded(self, root_name: str) -> OfflineError:
        """The same error, naming `root_name` (e.g. "--data-root (data.root)")."""
        return OfflineError(self.dataset, self.detail, root_name)
