"""download() of the official CIFAR archives (npsnn.datasets.download): never touches the
network in tests; offline failure is fast and helpful, the MD5 is checked, nothing partial
is kept."""
import hashlib
import importlib
import io
import socket
import time

import pytest

from npsnn.datasets import download

# the module: the package attribute npsnn.datasets.download is the function
fetch = importlib.import_module("npsnn.datasets.download")


def _offline(host, timeout):
    raise socket.gaierror(-2, "Name or service not known")


class _FakeResponse(io.BytesIO):
    headers: dict = {}


def test_download_offline_fails_fast_with_advice(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "_resolve", _offline)
    monkeypatch.setattr(fetch, "_urlopen", lambda *a, **k: pytest.fail("no network in tests"))
    with pytest.raises(ConnectionError, match=r"no network.*--data.*"
                                              r"cifar10-jpeg-binary\.tar\.gz") as info:
        download("cifar10", root=tmp_path)
    assert "c58f30108f718f92721af3b95e74349a" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_download_hanging_dns_times_out(tmp_path, monkeypatch):
    def slow(*args, **kwargs):
        time.sleep(3)
        raise socket.gaierror(-2, "slow")
    monkeypatch.setattr(fetch.socket, "getaddrinfo", slow)
    monkeypatch.setattr(fetch, "_urlopen", lambda *a, **k: pytest.fail("no network in tests"))
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match="took more than 0.2 s"):
        download("cifar100", root=tmp_path, format="binary", timeout=0.2)
    assert time.perf_counter() - t0 < 2


def test_download_checks_md5_and_writes_atomically(tmp_path, monkeypatch):
    payload = b"pretend this is cifar-10-binary.tar.gz"
    monkeypatch.setattr(fetch, "_resolve", lambda host, timeout: None)
    monkeypatch.setattr(fetch, "_urlopen", lambda url, timeout: _FakeResponse(payload))
    with pytest.raises(ValueError, match="arrived with MD5 .* not the published "
                                         "c32a1d4ab5d03f1284b67883e8d87530.*Nothing was kept"):
        download("cifar10", root=tmp_path, format="binary", progress=False)
    assert list(tmp_path.iterdir()) == []                 # no partial or temporary file
    monkeypatch.setitem(fetch.MD5, "cifar-10-binary.tar.gz", hashlib.md5(payload).hexdigest())
    path = download("cifar10", root=tmp_path, format="binary", progress=False)
    assert path == tmp_path / "cifar-10-binary.tar.gz" and path.read_bytes() == payload
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    monkeypatch.setattr(fetch, "_urlopen", lambda *a, **k: pytest.fail("should reuse"))
    assert download("cifar10", root=tmp_path, format="binary", progress=False) == path


class _EndlessResponse:
    """A server that never stops sending (and may announce a size)."""

    def __init__(self, announced=None):
        self.headers = {} if announced is None else {"Content-Length": str(announced)}
        self.sent = 0

    def read(self, n):
        self.sent += n
        return bytes(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("announced", [None, 5 << 20])
def test_download_stops_at_the_file_limit_and_keeps_nothing(tmp_path, monkeypatch, announced):
    from npsnn.io import limits
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 3 << 20)
    response = _EndlessResponse(announced)
    monkeypatch.setattr(fetch, "_resolve", lambda host, timeout: None)
    monkeypatch.setattr(fetch, "_urlopen", lambda url, timeout: response)
    with pytest.raises(limits.LimitError, match=r"download: https://.* would take "
                                                r"(4\.0|5\.0) MiB.*MAX_FILE_BYTES"):
        download("cifar10", root=tmp_path, progress=False)
    assert response.sent <= 4 << 20
    assert list(tmp_path.iterdir()) == []


def test_download_bad_arguments():
    with pytest.raises(ValueError, match="download expected name"):
        download("mnist")
    with pytest.raises(ValueError, match="download expected format"):
        download("cifar10", format="jpeg")
