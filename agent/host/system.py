"""The one seam between trueup and the host: reads, writes, account lookups and processes.

A :class:`System` is rooted: ``System()`` is this machine (root "/"), and
``System(root=tmp)`` maps every absolute path it is given under ``tmp``, reads
users and groups from ``<root>/etc/passwd`` and ``<root>/etc/group``, and runs
commands through an injected ``runner`` (a test double such as
X
("/etc/cron.d"), never paths of this machine, so one kind works on both.

Every command is an argv list; nothing here builds a shell string.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Mapping, Sequence

from agent.errors import ResourceError
from agent.model import FrozenRecord

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Protocol

# Searched by which() under a rooted System, and under "/" when PATH is unset
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Completed(FrozenRecord):
    """A finished command: its argv, exit status and captured output."""

    __slots__ = ("argv", "returncode", "stdout", "stderr")

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class UserEntry(FrozenRecord):
    """One account of the host's user database (a passwd line)."""

    __slots__ = ("name", "uid", "gid", "home", "shell")


class GroupEntry(FrozenRecord):
    """One group of the host's group database (a group line)."""

    __slots__ = ("name", "gid", "members")


if TYPE_CHECKING:  # a type for checkers only: typing is not imported at run time
    class CommandRunner(Protocol):
        """Runs one argv and returns what happened (``System(runner=...)``)."""

        def __call__(self, argv: list[str], *, cwd: str | None,
                     env: Mapping[str, str] | None, user: str | None,
                     timeout: float | None, input: str | None) -> Completed: ...


def lookup_uid(owner: str | int | None) -> int:
    """A user name or number → uid on this machine; -1 (leave alone) for None."""
    return System().uid(owner)


def lookup_gid(group: str | int | None) -> int:
    """A group name or number → gid on this machine; -1 (leave alone) for None."""
    return System().gid(group)


class System:
    """The host, seen from ``root`` ("/": this machine): reads, atomic writes, commands.

    Paths given to every method are the host's absolute paths; :meth:`path` says
    where one lives on this machine. ``runner`` runs commands instead of a
    subprocess (required to run anything under a root other than "/").
    """

    def __init__(self, root: str = "/", runner: CommandRunner | None = None) -> None:
        self.root = os.path.abspath(root)
        self.runner = runner
        self._unsynced: set[str] = set()  # folders whose new entries are not yet on disk
        self._new_files = False  # files created without their own fsync

    def path(self, path: str) -> str:
        """Where the host's absolute ``path`` is on this machine."""
        if self.root == "/":
            return path
        if not os.path.isabs(path):
            raise ValueError(f"host paths are absolute, not {path!r}")
        return os.path.join(self.root, os.path.normpath(path).lstrip("/"))

    def flush(self) -> None:
        """Make this run's writes durable: new files and each folder written, once.

        Created files were not fsync'ed one by one: each file system that holds a
        folder written this run is flushed with one ``syncfs`` (see
        :func:`sync_filesystems`), and no other file system is. Without created
        files, each folder written is fsync'ed.
        """
        folders = sorted(self._unsynced)
        if self._new_files:
            sync_filesystems(folders)
            self._new_files = False
        else:
            for folder in folders:
                fsync_dir(folder)
        self._unsynced.clear()

    # --- processes -----------------------------------------------------------------

    def run(self, argv: Sequence[str], *, cwd: str | None = None,
            env: Mapping[str, str] | None = None, user: str | None = None,
            timeout: float | None = None, input: str | None = None) -> Completed:
        """Run ``argv`` (a list, never a shell string) on the host and capture its output.

        The command leads a session (and process group) of its own. When it outlives
        ``timeout``, or anything interrupts the wait (a signal's exception), its whole
        group is stopped (:func:`_stop_group`) before the error goes on.
        """
        argv = [str(a) for a in argv]
        if self.runner is not None:
            return self.runner(argv, cwd=cwd, env=env, user=user, timeout=timeout, input=input)
        if self.root != "/":
            raise ResourceError(f"cannot run {argv[0]}: the host at {self.root} has no runner")
        import subprocess

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

    def which(self, command: str) -> str | None:
        """The host path of ``command`` found on the search path, or None."""
        import shutil

        if self.root == "/":
            return shutil.which(command, path=os.environ.get("PATH") or DEFAULT_PATH)
        if "/" in command:
            found = shutil.which(self.path(command))
            return command if found else None
        for folder in DEFAULT_PATH.split(":"):
            if shutil.which(command, path=self.path(folder)):
                return f"{folder}/{command}"
        return None

    # --- reading ---------------------------------------------------------------------

    def stat(self, path: str) -> os.stat_result:
        return os.stat(self.path(path))

    def lstat(self, path: str) -> os.stat_result:
        return os.lstat(self.path(path))

    def read(self, path: str) -> bytes:
        with open(self.path(path), "rb") as fh:
            return fh.read()

    def exists(self, path: str) -> bool:
        """Whether anything (even a dangling link) is at ``path``."""
        return os.path.lexists(self.path(path))

    def isdir(self, path: str) -> bool:
        return os.path.isdir(self.path(path))

    def listdir(self, path: str) -> list[str]:
        return os.listdir(self.path(path))

    # --- users and groups --------------------------------------------------------------

    def user(self, name: str) -> UserEntry | None:
        """The host's account ``name`` (pwd on "/", else ``<root>/etc/passwd``), or None."""
        if self.root == "/":
            import pwd

            try:
                pw = pwd.getpwnam(name)
            except KeyError:
                return None
            return UserEntry(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir, pw.pw_shell)
        for fields in self._database("/etc/passwd", 7):
            if fields[0] == name:
                return UserEntry(name, int(fields[2]), int(fields[3]), fields[5], fields[6])
        return None

    def group(self, name: str) -> GroupEntry | None:
        """The host's group ``name`` (grp on "/", else ``<root>/etc/group``), or None."""
        if self.root == "/":
            import grp

            try:
                gr = grp.getgrnam(name)
            except KeyError:
                return None
            return GroupEntry(gr.gr_name, gr.gr_gid, tuple(gr.gr_mem))
        for fields in self._database("/etc/group", 4):
            if fields[0] == name:
                return GroupEntry(name, int(fields[2]), tuple(filter(None, fields[3].split(","))))
        return None

    def _database(self, path: str, width: int) -> list[list[str]]:
        try:
            text = self.read(path).decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        rows = []
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) == width and fields[0] and not line.startswith(("#", "+", "-")):
                rows.append(fields)
        return rows

    def uid(self, owner: str | int | None) -> int:
        """A user name or number → uid; -1 (leave alone) for None."""
        return _number(owner, self.user, "user", "uid")

    def gid(self, group: str | int | None) -> int:
        """A group name or number → gid; -1 (leave alone) for None."""
        return _number(group, self.group, "group", "gid")

    # --- file system -------------------------------------------------------------

    def atomic_write(self, path: str, data: bytes, mode: int, uid: int = -1,
                     gid: int = -1, verify: Callable[[str], None] | None = None,
                     replacing: bool = True) -> None:
        """Replace ``path`` with ``data`` so readers see the old or the new file, never part.

        The temporary file lives in the same folder, gets its mode and owner
        before it becomes visible, is fsync'ed, then renamed over the target.
        ``verify(temp_path)`` may raise to refuse the new content: the target
        is then left as it was. (``temp_path`` is where the file is on this machine.)

        Replacing a file fsyncs the new content before the rename, so a power
        loss leaves the old content or the new, never an empty file. A file that
        did not exist (``replacing=False``) has nothing to lose: its data is
        flushed with all others by :meth:`flush` at the end of the run (or
        fsync'ed here where the host has no ``syncfs``).
        """
        # A fixed name (runs hold the run lock): a run killed mid-write leaves at most
        # this file, which the next run's check reports and its apply replaces.
        path = self.path(path)
        folder = os.path.dirname(path)
        tmp = temp_name(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            write_all(fd, data)
            if replacing or _syncfs() is None:
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
        """Point the symbolic link ``path`` at ``target`` (kept as written), replacing what
        is there."""
        self._atomic_link(os.symlink, target, self.path(path))

    def atomic_hardlink(self, target: str, path: str) -> None:
        """Make ``path`` a hard link to ``target``, replacing what is there."""
        self._atomic_link(os.link, self.path(target), self.path(path))

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
        path = self.path(path)
        os.mkdir(path, mode)
        os.chmod(path, mode)  # mkdir's mode is masked by the umask
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(self.path(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(self.path(path), uid, gid, follow_symlinks=False)

    def remove(self, path: str) -> None:
        os.unlink(self.path(path))

    def remove_leftover(self, path: str) -> None:
        """Remove the temporary sibling a killed run may have left beside ``path``."""
        _unlink_quietly(temp_name(self.path(path)))

    def rmdir(self, path: str, recursive: bool = False) -> None:
        if recursive:
            import shutil

            shutil.rmtree(self.path(path))
        else:
            os.rmdir(self.path(path))


MAX_ID = 2**32 - 2  # the largest uid or gid (2**32 - 1 is -1: "leave alone")


def _number(value: str | int | None, lookup: Callable[[str], Any], what: str, attr: str) -> int:
    if value is None:
        return -1
    if isinstance(value, int) or value.isdigit():
        number = int(value)
        if not 0 <= number <= MAX_ID:
            raise ResourceError(f"{what} id {value} is out of range (0-{MAX_ID})")
        return number
    entry = lookup(value)
    if entry is None:
        raise ResourceError(f"no such {what} {value!r}")
    return int(getattr(entry, attr))


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


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, looping over short writes.

    Raises:
        OSError: the disk is full (ENOSPC), or a write made no progress.
    """
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, f"short write: {len(view)} bytes not written")
        view = view[written:]


def write_file_atomic(path: str, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Replace ``path`` with ``data``, whole: trueup's own files (records, backups, reports).

    The data goes to a temporary sibling with ``mode``, is written completely and
    fsync'ed, then renamed over ``path``, and the folder is fsync'ed. Readers see
    the old file or the new one; a failure (a full disk, a short write) raises
    OSError, removes the temporary file and leaves ``path`` as it was. With
    ``durable=False`` nothing is fsync'ed: still whole and atomic, but a power loss
    may take the newest copy back (fit for records rewritten every run, such as the
    run report, where two fsyncs would double a no-op run's time).
    """
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        try:
            os.fchmod(fd, mode)  # os.open's mode is masked by the umask
            write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:
        fsync_dir(folder)


def fsync_dir(folder: str) -> None:
    """Make the entries of ``folder`` durable (best effort: some file systems refuse)."""
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


def sync_filesystems(folders: Sequence[str]) -> None:
    """Flush the file systems that hold ``folders``, each once, and no other.

    One ``syncfs`` per device (``st_dev``), through a descriptor of a folder on it.
    Where ``syncfs`` is missing the folders are fsync'ed one by one (files then get
    their own fsync as they are written, see :meth:`System.atomic_write`); where it
    fails (a write-back error), so are they, as the best that can still be done.
    """
    by_device: dict[int, list[str]] = {}
    for folder in folders:
        try:
            by_device.setdefault(os.stat(folder).st_dev, []).append(folder)
        except OSError:
            continue
    syncfs = _syncfs()
    for group in by_device.values():
        if syncfs is None or not _syncfs_through(syncfs, group[0]):
            for folder in group:
                fsync_dir(folder)


def sync_tree(root: str) -> None:
    """Make every file and folder under ``root`` durable, before ``root`` is published.

    One ``syncfs`` of its file system; where there is none, an fsync of each file
    and folder under ``root``.
    """
    syncfs = _syncfs()
    if syncfs is not None and _syncfs_through(syncfs, root):
        return
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:  # a symlink (ELOOP): its folder's fsync keeps it
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)


def _syncfs_through(syncfs: Callable[[int], int], folder: str) -> bool:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        return syncfs(fd) == 0
    finally:
        os.close(fd)


_UNSET: Any = object()
_SYNCFS: Callable[[int], int] | None = _UNSET


def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs(fd)`` (Linux), or None where there is none; looked up once."""
    global _SYNCFS
    if _SYNCFS is _UNSET:
        try:
            import ctypes

            found = ctypes.CDLL(None, use_errno=True).syncfs
            found.argtypes = [ctypes.c_int]
            found.restype = ctypes.c_int
            _SYNCFS = found
        except (ImportError, OSError, AttributeError):
            _SYNCFS = None
    return _SYNCFS
