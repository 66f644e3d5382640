"""Verified downloads from a local HTTP server: good and bad checksums, cancel, no leftovers."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.core.data import DataError, load_splits
from workbench.core.data import download as dl
from workbench.core.data.idx import FILES, write_idx
from workbench.spec import DataSpec


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        return


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def server(tmp_path):
    """(served folder, base URL) of an HTTP server on 127.0.0.1, stopped after the test."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def files_under(folder: Path) -> list[Path]:
    """The files left under `folder`, leaving out the download locks (empty files that stay)."""
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".lock"] \
        if folder.exists() else []


def test_good_checksum_downloads_with_progress(home, server):
    served, url = server
    (served / "blob.bin").write_bytes(bytes(range(256)) * 1000)
    calls: list[tuple[int, int]] = []
    dest = home / "cache" / "x" / "blob.bin"
    dl.download_file(url + "blob.bin", dest, md5(served / "blob.bin"),
                     progress=lambda done, total: calls.append((done, total)))
    assert dest.read_bytes() == (served / "blob.bin").read_bytes()
    assert calls[-1] == (256_000, 256_000) and len(calls) >= 3
    assert files_under(home) == [dest]


def test_bad_checksum_raises_and_leaves_nothing(home, server):
    served, url = server
    (served / "blob.bin").write_bytes(b"tampered" * 100)
    dest = home / "cache" / "x" / "blob.bin"
    with pytest.raises(DataError, match="checksum mismatch"):
        dl.download_file(url + "blob.bin", dest, "0" * 32)
    assert files_under(home) == []


def test_cancel_mid_download_leaves_nothing(home, server):
    served, url = server
    (served / "big.bin").write_bytes(b"\x01" * (dl.CHUNK * 5))
    cancel = threading.Event()
    dest = home / "cache" / "x" / "big.bin"
    with pytest.raises(DataError, match="download cancelled"):
        dl.download_file(url + "big.bin", dest, md5(served / "big.bin"),
                         progress=lambda done, total: cancel.set(), cancel=cancel)
    assert files_under(home) == []


def test_missing_file_on_server_is_a_data_error(home, server):
    _, url = server
    with pytest.raises(DataError, match="404"):
        dl.download_file(url + "nothing.gz", home / "cache" / "nothing.gz", "0" * 32)
    assert files_under(home) == []


def test_mnist_downloads_from_mirror_env_then_loads_from_cache(home, server, monkeypatch):
    served, url = server
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("test", 10)):
        write_idx(served / f"{FILES[f'{split}_images']}.gz",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(served / f"{FILES[f'{split}_labels']}.gz", np.arange(n, dtype=np.uint8) % 10)
    sums = {p.name: md5(p) for p in served.iterdir()}
    monkeypatch.setitem(dl.RESOURCES, "mnist", sums)
    monkeypatch.setenv(dl.MIRROR_ENV, url)
    seen: list[tuple[int, int]] = []
    splits = load_splits(DataSpec(name="mnist", val_fraction=0.25), seed=0,
                         progress=lambda done, total: seen.append((done, total)))
    assert splits.train_x.shape == (15, 1, 28, 28) and splits.test_x.shape == (10, 1, 28, 28)
    assert seen
    cached = sorted(p.name for p in files_under(home / "cache" / "datasets" / "mnist"))
    assert cached == sorted(sums)
    for p in served.iterdir():
        p.unlink()  # the second load must not need the server
    again = load_splits(DataSpec(name="mnist", val_fraction=0.25), seed=0)
    assert np.array_equal(again.train_x.numpy(), splits.train_x.numpy())


def test_mnist_bad_checksum_leaves_cache_empty(home, server, monkeypatch):
    served, url = server
    write_idx(served / f"{FILES['train_images']}.gz", np.zeros((2, 28, 28), np.uint8))
    monkeypatch.setitem(dl.RESOURCES, "mnist", {f"{FILES['train_images']}.gz": "f" * 32})
    monkeypatch.setenv(dl.MIRROR_ENV, url)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_splits(DataSpec(name="mnist"), seed=0)
    assert files_under(home) == []


def test_cifar_archive_is_verified_and_only_batches_extracted(home, server, monkeypatch):
    import io
    import tarfile

    served, url = server
    archive = served / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        names = [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]
        for i, name in enumerate(names):
            record = np.concatenate([[i % 10], np.full(3072, i, np.uint8)]).astype(np.uint8)
            data = np.tile(record, 2).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        evil = tarfile.TarInfo("../../escaped.bin")
        evil.size = 3
        tar.addfile(evil, io.BytesIO(b"bad"))
    monkeypatch.setitem(dl.RESOURCES, "cifar10", {archive.name: md5(archive)})
    monkeypatch.setitem(dl.MIRRORS, "cifar10", (url,))
    splits = load_splits(DataSpec(name="cifar10", val_fraction=0.0), seed=0)
    assert splits.train_x.shape == (10, 3, 32, 32) and splits.test_x.shape == (2, 3, 32, 32)
    folder = home / "cache" / "datasets" / "cifar10"
    assert sorted(p.name for p in files_under(folder)) == sorted(names)
    assert not list(home.parent.rglob("escaped.bin"))


def test_not_downloadable():
    with pytest.raises(DataError, match="cannot be downloaded"):
        dl.ensure_downloaded("mnist_small")


class _SlowCountingHandler(_QuietHandler):
    """Serves slowly (so two clients overlap) and counts the requests per path."""

    counts: dict[str, int] = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).counts[self.path] = type(self).counts.get(self.path, 0) + 1
        time.sleep(1.0)
        super().do_GET()


def test_two_processes_download_and_extract_an_archive_once(home, tmp_path, monkeypatch):
    """Two processes (two apps, or two ranks) ask for CIFAR-10 at once: one downloads and
    extracts it, the other waits for the lock and finds the files."""
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i, name in enumerate([f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]):
            data = np.concatenate([[i % 10], np.full(3072, i, np.uint8)]).astype(np.uint8)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = data.size
            tar.addfile(info, io.BytesIO(data.tobytes()))
    _SlowCountingHandler.counts = {}
    handler = functools.partial(_SlowCountingHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    code = textwrap.dedent(f"""
        import sys
        from workbench.core.data import download as dl
        dl.RESOURCES["cifar10"] = {{"cifar-10-binary.tar.gz": {md5(archive)!r}}}
        dl.MIRRORS["cifar10"] = ("http://127.0.0.1:{httpd.server_address[1]}/",)
        folder = dl.ensure_downloaded("cifar10")
        print(sorted(p.name for p in (folder / "cifar-10-batches-bin").iterdir()))
    """)
    try:
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert "test_batch.bin" in out
    assert _SlowCountingHandler.counts == {"/cifar-10-binary.tar.gz": 1}


def _closed_port() -> int:
    """A local port nothing listens on (connecting to it is refused at once)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("mirror", ["refused", "no-such-host"])
def test_offline_download_says_what_to_do(home, monkeypatch, mirror):
    """No network: the message says so and points at the files to use instead, not a raw
    urlopen error; nothing is left in the cache."""
    base = (f"http://127.0.0.1:{_closed_port()}/" if mirror == "refused"
            else "http://no-such-host.invalid/")
    monkeypatch.setenv(dl.MIRROR_ENV, base)
    with pytest.raises(DataError) as err:
        load_splits(DataSpec(name="mnist"), seed=0)
    message = str(err.value)
    assert message.startswith("no internet (cannot reach ")
    assert ("point data.root (--data-root, or the app's Folder field) at the four "
            "*-ubyte.gz files") in message
    assert "urlopen error" not in message
    assert not files_under(dl.cache_dir("mnist"))
    with pytest.raises(DataError, match="cifar-10-batches-bin"):
        load_splits(DataSpec(name="cifar10"), seed=0)
