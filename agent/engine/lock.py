"""One run at a time: an exclusive lock file under the state dir."""

from __future__ import annotations

import fcntl
import os
import time

from agent.errors import LockBusy


class RunLock:
    """``with RunLock(path, timeout):`` holds the lock or raises LockBusy after ``timeout`` s.

    The kernel drops the lock when the process dies, so a killed run never
    leaves a stale lock behind. The file records the holder's pid for messages.
    """

    def __init__(self, path: str, timeout: float = 0.0) -> None:
        self.path = path
        self.timeout = timeout
        self.fd = -1

    def __enter__(self) -> RunLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    os.close(self.fd)
                    self.fd = -1
                    raise LockBusy(f"another trueup run holds {self.path}{holder}") from None
                time.sleep(0.1)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def _holder(self) -> str:
        try:
            pid = os.pread(self.fd, 32, 0).decode().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid else ""

    def __exit__(self, *exc: object) -> None:
        if self.fd != -1:
            os.close(self.fd)
            self.fd = -1
