"""The one seam between trueup and the host: processes and file-system writes.

Every command is an argv list; nothing here builds a shell string. Resources read
the host with plain ``os`` calls (stat, read) and change it only through
:class:`System`, so a test can swap it for a recording double.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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

    def run(self, argv: Sequence[str], *, cwd: str | None = None,
            env: Mapping[str, str] | None = None, user: str | None = None,
            timeout: float | None = None, input: str | None = None) -> Completed:
        """Run ``argv`` (a list, never a shell string) and capture its output."""
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
            proc = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True,
                                  timeout=timeout, input=input,
                                  stdin=None if input is not None else subprocess.DEVNULL,
                                  check=False, **kwargs)
        except subprocess.TimeoutExpired:
            raise ResourceError(f"{argv[0]} timed out after {timeout:g}s") from None
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            raise ResourceError(f"cannot run {argv[0]}: {exc.strerror}") from None
        except (KeyError, ValueError, OSError) as exc:
            raise ResourceError(f"cannot run {argv[0]}: {exc}") from None
        return Completed(argv, proc.returncode, proc.stdout, proc.stderr)

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
        flushed with all others by :meth:`flush` at the end of the run (or
        fsync'ed here where the host has no ``syncfs``).
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


def write_file_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``, durably: trueup's own files (reports, records).

    The data goes to a temporary sibling with ``mode``, is written completely and
    fsync'ed, then renamed over ``path``, and the folder is fsync'ed. Readers see
    the old file or the new one; a failure (a full disk, a short write) raises
    OSError, removes the temporary file and leaves ``path`` as it was.
    """
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        try:
            os.fchmod(fd, mode)  # os.open's mode is masked by the umask
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
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
