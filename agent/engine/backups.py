"""Copies of replaced file content under the state dir, the last N per file."""

from __future__ import annotations

import os
import time

from agent.host.system import write_file_atomic


class Backups:
    """Keeps the previous content of files trueup replaces or removes.

    A backup of ``/etc/nginx/nginx.conf`` lands in
    ``<state_dir>/backup/etc/nginx/nginx.conf/<UTC time>``, mode 0600; only the
    newest ``keep`` per file stay.
    """

    def __init__(self, folder: str, keep: int = 5) -> None:
        self.folder = folder
        self.keep = keep

    def save(self, path: str, data: bytes, keep: int | None = None) -> str | None:
        keep = self.keep if keep is None else keep
        if keep <= 0:
            return None
        where = os.path.join(self.folder, os.path.abspath(path).lstrip("/"))
        os.makedirs(where, mode=0o700, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        name = os.path.join(where, f"{stamp}.{time.time_ns() % 1_000_000_000:09d}")
        write_file_atomic(name, data)
        old = sorted(os.listdir(where))
        for stale in old[:-keep]:
            os.unlink(os.path.join(where, stale))
        return name
