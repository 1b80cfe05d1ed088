"""Copies of replaced file content under the state dir, the last N per file."""

from __future__ import annotations

import contextlib
import os
import time

from agent.host.system import write_file_atomic


def _is_stamp(name: str) -> bool:
    """A backup's file name: its UTC time, then nanoseconds so that names sort by age
    (``20261202T051500Z.123456789``)."""
    return (len(name) == 26 and name[8] == "T" and name[15:17] == "Z."
            and (name[:8] + name[9:15] + name[17:]).isdecimal())


class Backups:
    """Keeps the previous content of files trueup replaces or removes.

    A backup of ``/etc/nginx/nginx.conf`` lands in
    ``<state_dir>/backup/etc/nginx/nginx.conf/<UTC time>``, mode 0600, in folders
    made 0700; only the newest ``keep`` per file stay. A copy equal to the newest
    one is not made again, so a file that drifts the same way run after run does
    not push its other versions out.

    A backup is whole or absent: it is written to a temporary file, each short
    write continued, flushed to disk, then renamed into place. When that fails (a
    full disk, say) :meth:`save` raises OSError, saying what and why, and the
    caller must leave its file untouched.
    """

    def __init__(self, folder: str, keep: int = 5) -> None:
        self.folder = folder
        self.keep = keep

    def save(self, path: str, data: bytes, keep: int | None = None) -> str | None:
        """Store ``data``, the content ``path`` held; the backup's path (None: keep is 0).

        Raises OSError (with the errno of the cause) when the backup cannot be made.
        """
        keep = self.keep if keep is None else keep
        if keep <= 0:
            return None
        where = os.path.join(self.folder, os.path.abspath(path).lstrip("/"))
        try:
            _make_private_folders(where)
            kept = self.kept(where)
            if kept and _holds(os.path.join(where, kept[-1]), data):
                return os.path.join(where, kept[-1])
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            name = os.path.join(where, f"{stamp}.{time.time_ns() % 1_000_000_000:09d}")
            write_file_atomic(name, data)
            for stale in [*kept, os.path.basename(name)][:-keep]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(where, stale))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot back up {path} in {where}: "
                                     f"{exc.strerror or exc}") from None
        return name

    @staticmethod
    def kept(where: str) -> list[str]:
        """The backups in the folder ``where``, oldest first (not its subfolders: another
        file's backups, as /etc/x/y's beside /etc/x's)."""
        try:
            names = os.listdir(where)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _is_stamp(n)
                      and os.path.isfile(os.path.join(where, n)))


def _make_private_folders(where: str) -> None:
    """Make ``where`` and any missing folder above it, each 0700 whatever the umask."""
    missing = []
    folder = where
    while not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)
        os.chmod(folder, 0o700)


def _holds(name: str, data: bytes) -> bool:
    """Whether the backup ``name`` holds exactly ``data``."""
    try:
        if os.path.getsize(name) != len(data):
            return False
        with open(name, "rb") as fh:
            return fh.read() == data
    except OSError:
        return False

