"""Reading the files a run is made of: regular files only, never blocking, never unbounded.

Recipe files, run lists, attributes files, node files (``--attributes``), sources under
a recipe's files/ and templates under its templates/ are read through
:func:`read_bytes`. Symbolic links are followed; what they lead to must be a regular
file no larger than its limit. Anything else is refused with a message saying what it
is, before a byte is read: a FIFO would block the run, a device (``files/x ->
/dev/zero``) would never end, a folder or a symbolic link loop cannot be read.

The limits, in one place (whole MiB):

======================  ==========  =====================================================
MAX_TEXT_BYTES          1 MiB       recipe.yml, attributes.yml, runlist files, node files
MAX_SOURCE_BYTES        16 MiB      a file under files/ or a template under templates/
======================  ==========  =====================================================
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

MiB = 1024 * 1024
MAX_TEXT_BYTES = 1 * MiB
MAX_SOURCE_BYTES = 16 * MiB

# O_NONBLOCK: should a FIFO replace the file between the stat and the open, opening it
# returns at once instead of waiting for a writer (and fstat then refuses it).
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class NotRegular(Exception):
    """The path is no regular file, or too large to read; the message says what it is.

    The message reads after the path: ``<path>: is a FIFO (named pipe), expected a
    regular file``.
    """


def read_bytes(path: str, limit: int) -> bytes:
    """The content of the regular file at ``path``, at most ``limit`` bytes.

    Raises NotRegular for a folder, FIFO, device, socket or symbolic link loop, and for
    a file over ``limit``; other OSErrors (FileNotFoundError, PermissionError …) as
    ``open`` raises them.
    """
    try:
        _check(os.stat(path), limit)  # before opening: opening a device can act on it
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegular("is a symbolic link loop, expected a regular file") from None
        if exc.errno == errno.EISDIR:
            raise NotRegular(_kind(stat.S_IFDIR)) from None
        raise
    with open(fd, "rb") as fh:
        _check(os.fstat(fd), limit)  # what was opened, should it have been swapped
        data = fh.read(limit + 1)  # a file that grows (or lies about its size) stops here
    if len(data) > limit:
        raise NotRegular(_too_large(f"more than {limit} bytes", limit))
    return data


def read_text(path: str, limit: int) -> str:
    """:func:`read_bytes` as UTF-8 text, line ends made ``\\n`` (as ``open(path).read()``).

    Raises UnicodeDecodeError for bytes that are not UTF-8.
    """
    text = read_bytes(path, limit).decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _check(st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(_kind(st.st_mode))
    if st.st_size > limit:
        raise NotRegular(_too_large(f"{st.st_size} bytes", limit))


def _kind(mode: int) -> str:
    what = ("a directory" if stat.S_ISDIR(mode) else
            "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
            "a character device" if stat.S_ISCHR(mode) else
            "a block device" if stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    return f"is {what}, expected a regular file"


def _too_large(size: str, limit: int) -> str:
    return f"is too large: {size} (the limit is {limit // MiB} MiB)"


def sha256(data: bytes = b"") -> Any:
    """A ``hashlib.sha256`` object of ``data``, from CPython's built-in SHA-256 module when
    there is one: ``hashlib`` loads OpenSSL, which costs more than a short run's work."""
    try:
        from _sha2 import sha256 as new  # Python 3.12 and later
    except ImportError:
        try:
            from _sha256 import sha256 as new  # Python 3.11
        except ImportError:  # a build without the built-in hashes
            from hashlib import sha256 as new
    return new(data)
