"""Fetching a URL to a file, verified by sha256 before it is in place: one function per scheme.

:func:`fetch_to` streams the URL into a temporary sibling of the destination, hashing as
it goes; only when the sha256 is the declared one is the file given its mode and owner
and renamed into place. A wrong checksum, a failed request or a full disk leaves the
destination as it was and no temporary file behind.

Schemes live in :data:`FETCHERS` (``http``, ``https``, ``file``, ``s3``); a scheme is
one function that opens the URL as a binary stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from agent.errors import ResourceError
from agent.host.system import fsync_dir, temp_name, write_all

CHUNK = 1024 * 1024
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _http(url: str, timeout: float) -> BinaryIO:
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "trueup"})  # noqa: S310
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (scheme checked)


def _file(url: str, timeout: float) -> BinaryIO:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ResourceError(f"{url}: a file: URL names a local path (file:///path)")
    return open(unquote(parts.path), "rb")  # noqa: SIM115 (closed by the caller)


def _s3(url: str, timeout: float) -> BinaryIO:
    from agent.aws.objects import open_object
    from agent.errors import TrueupError, Unreachable

    try:
        return open_object(url)
    except (TrueupError, Unreachable) as exc:  # no such bucket or key, access denied, ...
        raise ResourceError(str(exc)) from None


FETCHERS: dict[str, Callable[[str, float], BinaryIO]] = {
    "http": _http, "https": _http, "file": _file, "s3": _s3,
}


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be fetched (to show at load time), or None."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "s3":  # the same reading as the fetch itself
        from agent.aws.objects import parse_s3_url
        from agent.errors import TrueupError

        try:
            parse_s3_url(url)
        except TrueupError as exc:
            return str(exc)
        return None
    if scheme in FETCHERS:
        return None
    return (f"{url!r} is not a URL trueup can fetch; use "
            f"{', '.join(s + '://' for s in FETCHERS)} (or an absolute path)")


def check_sha256(value: object) -> str | None:
    """Why ``value`` is not a sha256 (64 hex digits, lower case accepted in any case)."""
    if not isinstance(value, str) or not SHA256.match(value.lower()):
        return f"sha256 must be 64 hexadecimal digits, not {value!r}"
    return None


def file_sha256(path: str) -> str | None:
    """The sha256 of the regular file at ``path`` (never through a link), None if missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_to(url: str, path: str, sha256: str, mode: int = 0o644, uid: int = -1,
             gid: int = -1, timeout: float = 300) -> None:
    """Put the content of ``url`` at ``path`` if, and only if, its sha256 is ``sha256``.

    Raises ResourceError (what failed, and that ``path`` was left as it was).
    """
    why = check_url(url)
    if why:
        raise ResourceError(why)
    opener = FETCHERS[urlsplit(url).scheme.lower()]
    tmp = temp_name(path)
    digest = hashlib.sha256()
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with opener(url, timeout) as stream:
                for chunk in iter(lambda: stream.read(CHUNK), b""):
                    digest.update(chunk)
                    write_all(fd, chunk)
            got = digest.hexdigest()
            if got != sha256.lower():
                raise ResourceError(f"{url}: sha256 is {got}, not the declared {sha256.lower()}"
                                    f"; {path} left unchanged")
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except ResourceError:
        _remove(tmp)
        raise
    except FileNotFoundError as exc:
        _remove(tmp)
        missing = exc.filename if exc.filename != tmp else os.path.dirname(path)
        raise ResourceError(f"cannot fetch {url} to {path}: {missing} does not exist") from None
    except OSError as exc:  # URLError and HTTPError are OSErrors
        _remove(tmp)
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        if getattr(exc, "code", None):  # an HTTPError
            reason = f"HTTP {exc.code} {reason}"
        raise ResourceError(f"cannot fetch {url} to {path}: {reason}; {path} left "
                            "unchanged") from None
    except BaseException:
        _remove(tmp)
        raise
    fsync_dir(os.path.dirname(path))


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
