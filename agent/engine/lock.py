"""One run at a time: an exclusive lock file under the state dir."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from agent.errors import LockBusy, TrueupError


class RunLock:
    """``with RunLock(path, timeout):`` holds the lock or raises LockBusy after ``timeout`` s.

    The kernel drops the lock when the process dies, so a killed run never
    leaves a stale lock behind. The file records the holder's pid for messages.

    The lock is opened without following a symbolic link, and must be a regular
    file with one name: a link (or a hard link) named run.lock would otherwise
    make trueup truncate whatever it points at. That, a folder in its place, or a
    state dir trueup cannot write (read-only, immutable) raises TrueupError with
    one line saying so, before the run changes anything.
    """

    def __init__(self, path: str, timeout: float = 0.0) -> None:
        self.path = path
        self.timeout = timeout
        self.fd = -1

    def __enter__(self) -> RunLock:
        self.fd = self._open()
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
        pid = f"{os.getpid()}\n".encode()
        os.pwrite(self.fd, pid, 0)  # in place: truncating to 0 first frees and allocates a block
        if os.fstat(self.fd).st_size > len(pid):
            os.ftruncate(self.fd, len(pid))
        return self

    def _open(self) -> int:
        """The lock file's descriptor, or TrueupError saying why it cannot be used."""
        path = self.path
        folder = os.path.dirname(path) or "."
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise TrueupError(_unusable(path, folder, exc)) from None
        st = os.fstat(fd)
        problem = ""
        if not stat.S_ISREG(st.st_mode):
            problem = f"the run lock {path} is not a regular file; remove it"
        elif st.st_nlink != 1:
            problem = (f"the run lock {path} has {st.st_nlink} names (a hard link to another "
                       "file); remove it")
        elif not os.access(folder, os.W_OK):
            problem = (f"the state dir {folder} is not writable (read-only, or immutable: "
                       f"lsattr -d {folder}); trueup keeps its lock, reports and backups there")
        if problem:
            os.close(fd)
            raise TrueupError(problem)
        return fd

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


def _unusable(path: str, folder: str, exc: OSError) -> str:
    """Why the lock file ``path`` could not be opened, in one line."""
    if exc.errno == errno.ELOOP:
        return f"{path} is a symbolic link; trueup never follows one to its run lock (remove it)"
    if exc.errno == errno.EISDIR:
        return f"{path} is a directory, not trueup's run lock; remove it"
    if exc.errno == errno.ENOENT:
        return f"cannot create the run lock {path}: the state dir {folder} does not exist"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and not os.access(folder,
                                                                               os.W_OK):
        return (f"cannot open the run lock {path}: {exc.strerror}; the state dir {folder} is "
                f"not writable (read-only, or immutable: lsattr -d {folder})")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot open the run lock {path}: {exc.strerror} (see ls -l and lsattr {path})"
    return f"cannot open the run lock {path}: {exc.strerror}"
