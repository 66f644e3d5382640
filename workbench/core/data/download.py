"""Cached, verified downloads of the standard datasets, with progress and cancel.

Files land in `user_cache_dir()/datasets/<name>/`. Each is streamed to a temporary name in
that folder, its MD5 checked against the published sum, and only then renamed into place: a
failed, cancelled or corrupted download leaves nothing behind, and a file present in the
cache has been verified. Checksums are torchvision's (MNIST family) and the CIFAR authors'
page (the binary archive, which torchvision does not use).

One process at a time downloads or extracts a dataset: `ensure_downloaded` holds a file lock
(`.<name>.lock` beside its folder) while it checks, fetches and extracts, so two apps, the CLI
beside the app, or the ranks of a distributed run never fetch or extract one archive twice;
whoever waited finds the files in place.

Base URLs are in `MIRRORS` (tried in order). The environment variable WORKBENCH_DATA_MIRROR
replaces them all: `http://host/data/` fetches `http://host/data/<file>`; a `{name}` in it
is replaced by the dataset name, for a mirror holding several sets.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import shutil
import socket
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from workbench.core.data import cifar
from workbench.core.data.errors import DataError, OfflineError
from workbench.core.store.atomic import umask, write_atomic
from workbench.paths import user_cache_dir

Progress = Callable[[int, int], None]
CHUNK = 64 * 1024
TIMEOUT_S = 30
MIRROR_ENV = "WORKBENCH_DATA_MIRROR"

MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "http://yann.lecun.com/exdb/mnist/"),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "kmnist": ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}

# file name -> MD5 of the file as served
RESOURCES: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "kmnist": {
        "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
    },
    "cifar10": {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
}
CIFAR_MEMBER = re.compile(r"^cifar-10-batches-bin/((data_batch_[1-5]|test_batch)\.bin"
                          r"|batches\.meta\.txt)$")


def cache_dir(name: str) -> Path:
    return user_cache_dir() / "datasets" / name


def base_urls(name: str) -> tuple[str, ...]:
    override = os.environ.get(MIRROR_ENV)
    if override:
        return (override.replace("{name}", name),)
    return MIRRORS[name]


def _join(base: str, filename: str) -> str:
    return base + filename if base.endswith("/") else f"{base}/{filename}"


def download_file(url: str, dest: Path, md5: str, *, progress: Progress | None = None,
                  cancel: threading.Event | None = None) -> Path:
    """Stream `url` to `dest` through a temporary file, verify its MD5, rename it into place.

    progress(bytes done, total bytes or 0 when the server does not say). Raises DataError on
    a network error, a checksum mismatch or cancel; nothing is left at `dest` or beside it.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.md5()
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~umask())  # the user's umask, not mkstemp's 0600
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
            except (urllib.error.URLError, OSError) as exc:
                if _unreachable(exc):
                    raise Unreachable(f"cannot reach {urllib.parse.urlsplit(url).netloc}: "
                                      f"{getattr(exc, 'reason', exc)}") from exc
                raise DataError(f"download of {url} failed: {exc}") from exc
            with response:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                while True:
                    if cancel is not None and cancel.is_set():
                        raise DataError("download cancelled")
                    try:
                        chunk = response.read(CHUNK)
                    except OSError as exc:
                        raise DataError(f"download of {url} failed: {exc}") from exc
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
            if total and done != total:
                raise DataError(f"download of {url} stopped at {done} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5:
            raise DataError(f"{dest.name}: checksum mismatch (MD5 {digest.hexdigest()}, "
                            f"expected {md5}); the file was not kept")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def fetch(name: str, filename: str, md5: str, *, progress: Progress | None = None,
          cancel: threading.Event | None = None) -> Path:
    """One verified file of a dataset in the cache, downloaded from the first mirror that works.

    A checksum mismatch is final (a wrong file is not a network hiccup); other errors try
    the next mirror.
    """
    dest = cache_dir(name) / filename
    if dest.is_file():
        return dest
    errors: list[DataError] = []
    for base in base_urls(name):
        try:
            return download_file(_join(base, filename), dest, md5, progress=progress,
                                 cancel=cancel)
        except DataError as exc:
            if cancel is not None and cancel.is_set() or "checksum" in str(exc):
                raise
            errors.append(exc)
    if errors and all(isinstance(e, Unreachable) for e in errors):
        raise OfflineError(name, str(errors[-1]))
    raise DataError("; ".join(str(e) for e in errors))


class Unreachable(DataError):
    """No connection to a download server (no network, no name lookup, refused)."""


def _unreachable(exc: BaseException) -> bool:
    """A network that is not there, as opposed to a server that answered with an error."""
    if isinstance(exc, urllib.error.HTTPError):
        return False
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, socket.gaierror | ConnectionError | TimeoutError) or (
        isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH,
                                                         errno.ECONNREFUSED))


def _extract_cifar(archive: Path, dest: Path) -> None:
    """Extract only the batch files, by their base names: no path from the archive is trusted."""
    found = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                match = CIFAR_MEMBER.match(member.name)
                if not match or not member.isfile():
                    continue
                source = tar.extractfile(member)
                if source is None:
                    continue
                with source:
                    write_atomic(dest / match.group(1),
                                 functools.partial(shutil.copyfileobj, source))
                found.add(match.group(1))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{archive}: cannot extract ({exc})") from exc
    missing = sorted({f"{s}.bin" for s in (*cifar.TRAIN, cifar.TEST)} - found)
    if missing:
        raise DataError(f"{archive}: the archive lacks {', '.join(missing)}")


LOCK_POLL_S = 0.25


def ensure_downloaded(name: str, *, progress: Progress | None = None,
                      cancel: threading.Event | None = None) -> Path:
    """The cache folder of a downloadable dataset, downloading what is missing.

    The folder then holds what the readers expect: the 4 IDX .gz files, or CIFAR-10's
    `cifar-10-batches-bin/` (its archive is deleted once extracted). Waits (cancellably) while
    another process downloads the same dataset.
    """
    if name not in RESOURCES:
        raise DataError(f"data.name: {name!r} cannot be downloaded "
                        f"(downloadable: {', '.join(RESOURCES)})")
    folder = cache_dir(name)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{folder.parent}: cannot create the download cache "
                        f"({exc.strerror or exc})") from exc
    lock = FileLock(str(folder.parent / f".{name}.lock"), thread_local=False)
    while True:
        if cancel is not None and cancel.is_set():
            raise DataError("download cancelled")
        try:
            lock.acquire(timeout=LOCK_POLL_S)
            break
        except Timeout:
            continue
        except OSError as exc:
            raise DataError(f"{folder.parent}: cannot lock the download cache "
                            f"({exc.strerror or exc})") from exc
    try:
        return _ensure(name, folder, progress, cancel)
    finally:
        lock.release()


def _ensure(name: str, folder: Path, progress: Progress | None,
            cancel: threading.Event | None) -> Path:
    """What ensure_downloaded does once it holds the dataset's lock."""
    if name == "cifar10":
        batches = folder / cifar.BIN_FOLDER
        expected = [batches / f"{s}.bin" for s in (*cifar.TRAIN, cifar.TEST)]
        if all(p.is_file() for p in expected):
            return folder
        ((filename, md5),) = RESOURCES[name].items()
        archive = fetch(name, filename, md5, progress=progress, cancel=cancel)
        _extract_cifar(archive, batches)
        archive.unlink()
        return folder
    for filename, md5 in RESOURCES[name].items():
        fetch(name, filename, md5, progress=progress, cancel=cancel)
    return folder


__all__ = ["MIRRORS", "MIRROR_ENV", "RESOURCES", "cache_dir", "download_file",
           "ensure_downloaded", "fetch"]
