"""Fetch an official CIFAR archive and check its published MD5 (needs network; fails fast
and helpfully without it).

``download("cifar10", root="data")`` -> ``data/cifar-10-python.tar.gz``, ready for
:func:`npsnn.datasets.load_cifar` or ``--data``. :data:`URLS` and :data:`MD5` are the
official addresses and sums (https://www.cs.toronto.edu/~kriz/cifar.html). The file is
written atomically and kept only if its MD5 matches; an archive already there with the
right MD5 is reused.
"""
from __future__ import annotations

import hashlib
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .._checks import expect_choice
from ..io import limits
from ..io.files import atomic_write

__all__ = ["download", "MD5", "URLS", "ARCHIVES"]


# Published MD5 sums of the official archives (https://www.cs.toronto.edu/~kriz/cifar.html).
BASE_URL = "https://www.cs.toronto.edu/~kriz/"
ARCHIVES = {
    ("cifar10", "python"): "cifar-10-python.tar.gz",
    ("cifar10", "binary"): "cifar-10-binary.tar.gz",
    ("cifar100", "python"): "cifar-100-python.tar.gz",
    ("cifar100", "binary"): "cifar-100-binary.tar.gz",
}
MD5 = {
    "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
    "cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85",
    "cifar-100-binary.tar.gz": "03b5dce01913d631647c71ecec9e9cb8",
}
URLS = {key: BASE_URL + name for key, name in ARCHIVES.items()}


_urlopen = urllib.request.urlopen          # module attributes so tests can replace them


def _resolve(host: str, timeout: float) -> None:
    """Resolve ``host`` within ``timeout`` s (getaddrinfo itself has no timeout)."""
    result: list = []

    def work():
        try:
            result.append(socket.getaddrinfo(host, 443))
        except OSError as e:
            result.append(e)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if not result:
        raise TimeoutError(f"resolving {host} took more than {timeout:g} s")
    if isinstance(result[0], Exception):
        raise result[0]


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(name: str = "cifar10", root="data", format: str = "python", *,
             timeout: float = 10.0, progress: bool = True) -> Path:
    """Fetch an official CIFAR archive into ``root`` and check its published MD5.

    name: ``"cifar10"`` or ``"cifar100"``; format: ``"python"`` or ``"binary"``.
    Returns the archive's path (pass it to :func:`load_cifar` or ``--data``). An archive
    already in ``root`` with the right MD5 is reused. The file is written atomically and
    kept only if its MD5 matches. Without network this fails within ``timeout`` seconds
    with a ``ConnectionError`` that says how to use local files instead.
    """
    expect_choice("download", "name", name, ("cifar10", "cifar100"))
    expect_choice("download", "format", format, ("python", "binary"))
    filename = ARCHIVES[(name, format)]
    url, expected = URLS[(name, format)], MD5[filename]
    dest = Path(root) / filename
    if dest.is_file():
        if _md5(dest) == expected:
            return dest
        print(f"download: {dest} exists but its MD5 is not the published {expected}; "
              f"downloading it again")
    try:
        _resolve(urllib.parse.urlsplit(url).hostname, timeout)
        response = _urlopen(url, timeout=timeout)
    except (OSError, urllib.error.URLError) as e:
        raise ConnectionError(
            f"download: cannot reach {url} ({type(e).__name__}: {e}); this machine seems to "
            f"have no network. Use local files instead: pass --data (or the path argument "
            f"of load_cifar) an official CIFAR archive or its extracted folder copied here by "
            f"other means ({filename}, MD5 {expected}), or the CIFAR-10 copy in the official "
            f"binary layout, e.g. --data ../shared/data/cifar10-jpeg-binary.tar.gz") from None
    md5 = hashlib.md5()
    limit = limits.MAX_FILE_BYTES
    try:
        with response, atomic_write(dest) as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            if total is not None:
                limits.check_bytes(f"download: {url}", total, "MAX_FILE_BYTES")
            bar = None
            if progress:
                from tqdm import tqdm
                bar = tqdm(total=total, unit="B", unit_scale=True, desc=filename)
            received = 0
            for chunk in iter(lambda: response.read(1 << 20), b""):
                received += len(chunk)
                if received > limit:       # a server that never stops: nothing is kept
                    limits.check_bytes(f"download: {url}", received, "MAX_FILE_BYTES")
                md5.update(chunk)
                f.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
            if md5.hexdigest() != expected:
                # raising inside atomic_write deletes the temporary file: nothing is kept
                raise ValueError(
                    f"download: {url} arrived with MD5 {md5.hexdigest()}, not the published "
                    f"{expected}; the transfer was corrupted or the file changed. Nothing "
                    f"was kept; try again")
    except (OSError, urllib.error.URLError) as e:
        raise ConnectionError(f"download: the transfer of {url} failed ({e}); nothing was "
                              f"kept; try again, or use local files with --data") from None
    return dest
