"""The one seam between trueup and the host: processes and file-system writes.

Every command is an argv list; nothing here builds a shell string. Resources read
the host with plain ``os`` calls (stat, read) and change it only through
:class:`System`, so a test can swap it for a recording double.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from agent.errors import ResourceError


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished command: its argv, exit status and captured output."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def lookup_uid(owner: str | int | None) -> int:
    """A user name or number → uid; -1 (leave alone) for None."""
    return _lookup_id(owner, "pwd", "getpwnam", "pw_uid", "user")


def lookup_gid(group: str | int | None) -> int:
    """A group name or number → gid; -1 (leave alone) for None."""
    return _lookup_id(group, "grp", "getgrnam", "gr_gid", "group")


def _lookup_id(value: str | int | None, module: str, getter: str, field: str, what: str) -> int:
    if value is None:
        return -1
    if isinstance(value, int) or value.isdigit():
        return int(value)
    import importlib

    try:
        return getattr(getattr(importlib.import_module(module), getter)(value), field)
    except KeyError:
        raise ResourceError(f"no such {what} {value!r}") from None


class System:
    """Runs commands and makes atomic changes to the local host."""

    def __init__(self) -> None:
        self._unsynced: set[str] = set()  # folders whose new entries are not yet on disk
        self._new_files = False  # files created without their own fsync

    def flush(self) -> None:
        """Make this run's writes durable: new files and each folder written, once."""
        if self._new_files:
            os.sync()  # one flush for every created file, instead of one fsync each
            self._new_files = False
        for folder in sorted(self._unsynced):
            _fsync_dir(folder)
        self._unsynced.clear()

    def run(self, argv: Sequence[str], *, cwd: str | None = None,
            env: Mapping[str, str] | None = None, user: str | None = None,
            timeout: float | None = None, input: str | None = None) -> Completed:
        """Run ``argv`` (a list, never a shell string) and capture its output.

        The command leads a session (and process group) of its own. When it outlives
        ``timeout``, or anything interrupts the wait (a signal's exception), its whole
        group is stopped (:func:`_stop_group`) before the error goes on.
        """
        import subprocess

        argv = [str(a) for a in argv]
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update({str(k): str(v) for k, v in env.items()})
        kwargs: dict = {}
        if user is not None:
            kwargs["user"] = user
            kwargs["extra_groups"] = []
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=full_env, text=True,
                                    stdin=subprocess.PIPE if input is not None
                                    else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True, **kwargs)
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            raise ResourceError(f"cannot run {argv[0]}: {exc.strerror}") from None
        except (KeyError, ValueError, OSError) as exc:
            raise ResourceError(f"cannot run {argv[0]}: {exc}") from None
        with proc:
            try:
                stdout, stderr = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                _stop_group(proc.pid, proc.wait)  # a session leader's pid is its group's id
                raise ResourceError(f"{argv[0]} timed out after {timeout:g}s") from None
            except BaseException:
                _stop_group(proc.pid, proc.wait)
                raise
        return Completed(argv, proc.returncode, stdout, stderr)

    # --- file system -------------------------------------------------------------

    def atomic_write(self, path: str, data: bytes, mode: int, uid: int = -1,
                     gid: int = -1, verify: Callable[[str], None] | None = None,
                     replacing: bool = True) -> None:
        """Replace ``path`` with ``data`` so readers see the old or the new file, never part.

        The temporary file lives in the same folder, gets its mode and owner
        before it becomes visible, is fsync'ed, then renamed over the target.
        ``verify(temp_path)`` may raise to refuse the new content: the target
        is then left as it was.

        Replacing a file fsyncs the new content before the rename, so a power
        loss leaves the old content or the new, never an empty file. A file that
        did not exist (``replacing=False``) has nothing to lose: its data is
        flushed with all others by :meth:`flush` at the end of the run.
        """
        # A fixed name (runs hold the run lock): a run killed mid-write leaves at most
        # this file, which the next run's check reports and its apply replaces.
        folder = os.path.dirname(path)
        tmp = temp_name(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if replacing:
                os.fsync(fd)
            else:
                self._new_files = True
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        os.close(fd)
        try:
            if verify is not None:
                verify(tmp)
            os.rename(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        self._unsynced.add(folder)

    def atomic_symlink(self, target: str, path: str) -> None:
        """Point the symbolic link ``path`` at ``target``, replacing what is there."""
        self._atomic_link(os.symlink, target, path)

    def atomic_hardlink(self, target: str, path: str) -> None:
        """Make ``path`` a hard link to ``target``, replacing what is there."""
        self._atomic_link(os.link, target, path)

    def _atomic_link(self, make: Callable[[str, str], None], target: str, path: str) -> None:
        tmp = temp_name(path)
        _unlink_quietly(tmp)
        make(target, tmp)
        try:
            os.rename(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        self._unsynced.add(os.path.dirname(path))

    def mkdir(self, path: str, mode: int, uid: int = -1, gid: int = -1) -> None:
        os.mkdir(path, mode)
        os.chmod(path, mode)  # mkdir's mode is masked by the umask
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(path, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(path, uid, gid, follow_symlinks=False)

    def remove(self, path: str) -> None:
        os.unlink(path)

    def remove_leftover(self, path: str) -> None:
        """Remove the temporary sibling a killed run may have left beside ``path``."""
        _unlink_quietly(temp_name(path))

    def rmdir(self, path: str, recursive: bool = False) -> None:
        if recursive:
            import shutil

            shutil.rmtree(path)
        else:
            os.rmdir(path)


def _stop_group(pgid: int, wait: Callable[[float | None], object], grace: float = 2.0) -> None:
    """Stop process group ``pgid``: SIGTERM, then SIGKILL to whatever is left after
    ``grace`` seconds. ``wait(timeout)`` reaps the group's leader (``Popen.wait``)."""
    import signal
    import subprocess
    import time

    deadline = time.monotonic() + grace
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        wait(max(0.0, deadline - time.monotonic()))
    while time.monotonic() < deadline:
        try:  # the leader is gone; its children may still be finishing
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    wait(None)


def temp_name(path: str) -> str:
    """The temporary sibling an atomic write or link of ``path`` goes through."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.trueup-new")


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
