"""Safe extraction of a tar (plain, gz, bz2, xz) or zip archive into a folder.

Every member is read and checked before anything is written: no absolute name, no
``..``, no symbolic or hard link that leads outside the folder, no device, FIFO or
socket, no more than MAX_MEMBERS members or MAX_TOTAL bytes. setuid, setgid and sticky
bits are dropped. ``strip`` leading path components are removed (as ``tar
--strip-components``); members left with no name are skipped. ``tarfile``'s own
extraction is never used, so the result does not depend on the Python version's filter.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from agent.errors import ResourceError

MAX_MEMBERS = 100_000
MAX_TOTAL = 4 * 1024 ** 3


@dataclass(frozen=True)
class Entry:
    """One member to write: its relative name, kind (file, dir, symlink, hardlink)."""

    name: str
    kind: str
    mode: int
    size: int = 0
    target: str = ""  # a link's target (a hard link's: another member's name)
    read: Callable[[], bytes] | None = None


def name_parts(name: str) -> list[str]:
    """The components of an archive member's name, without empty and ``.`` ones."""
    return [p for p in name.split("/") if p not in ("", ".")]


def _strip(name: str, strip: int) -> str | None:
    return "/".join(name_parts(name)[strip:]) or None


def _safe_name(raw: str, name: str) -> None:
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":") or "\\" in raw:
        raise ResourceError(f"archive member {raw!r} has an absolute name; nothing extracted")
    if ".." in name.split("/"):
        raise ResourceError(f"archive member {raw!r} leaves the folder (..); nothing extracted")


def _checked_name(raw: str, strip: int) -> str | None:
    """``raw`` with ``strip`` leading components removed (None: nothing left), checked."""
    name = _strip(raw, strip)
    if name is not None:
        _safe_name(raw, name)
    return name


def link_inside(name: str, target: str) -> bool:
    """Whether the symbolic link ``name`` → ``target`` (both relative to one folder, in
    POSIX form) stays inside that folder: its target is not absolute and does not climb
    out with ``..``."""
    if target.startswith("/"):
        return False
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    return joined != ".." and not joined.startswith("../")


def entries(path: str, strip: int = 0) -> list[Entry]:
    """The members of the archive at ``path``, checked; ResourceError on the first unsafe one."""
    try:
        read = _zip_entries if zipfile.is_zipfile(path) else _tar_entries
        found = read(path, strip)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ResourceError(f"cannot read archive {path}: {exc}") from None
    if len(found) > MAX_MEMBERS or sum(e.size for e in found) > MAX_TOTAL:
        raise ResourceError(f"archive {path} is too large to extract "
                            f"(at most {MAX_MEMBERS} members and {MAX_TOTAL} bytes)")
    names = {e.name for e in found}
    for entry in found:
        if entry.kind == "symlink" and not link_inside(entry.name, entry.target):
            raise ResourceError(f"archive member {entry.name!r} links outside the folder "
                                f"({entry.target}); nothing extracted")
        if entry.kind == "hardlink" and entry.target not in names:
            raise ResourceError(f"archive member {entry.name!r} is a hard link to "
                                f"{entry.target!r}, which is not in the archive; nothing "
                                "extracted")
    return found


def _tar_entries(path: str, strip: int) -> list[Entry]:
    tar = tarfile.open(path)  # noqa: SIM115 (kept open for the readers)
    found = []
    for member in tar.getmembers():
        name = _checked_name(member.name, strip)
        if name is None:
            continue
        mode = stat.S_IMODE(member.mode) & 0o777
        if member.isdir():
            found.append(Entry(name, "dir", mode))
        elif member.isreg():
            found.append(Entry(name, "file", mode, member.size,
                               read=lambda m=member: tar.extractfile(m).read()))
        elif member.issym():
            found.append(Entry(name, "symlink", 0o777, target=member.linkname))
        elif member.islnk():
            target = _checked_name(member.linkname, strip)
            if target is None:
                raise ResourceError(f"archive member {member.name!r} is a hard link to a "
                                    "stripped member; nothing extracted")
            found.append(Entry(name, "hardlink", mode, target=target))
        else:
            raise ResourceError(f"archive member {member.name!r} is a device, FIFO or other "
                                "special file; nothing extracted")
    return found


def _zip_entries(path: str, strip: int) -> list[Entry]:
    archive = zipfile.ZipFile(path)  # noqa: SIM115 (kept open for the readers)
    found = []
    for info in archive.infolist():
        name = _checked_name(info.filename, strip)
        if name is None:
            continue
        unix = info.external_attr >> 16
        mode = stat.S_IMODE(unix) & 0o777
        if info.is_dir():
            found.append(Entry(name, "dir", mode or 0o755))
        elif stat.S_ISLNK(unix):
            found.append(Entry(name, "symlink", 0o777,
                               target=archive.read(info).decode("utf-8", "replace")))
        elif unix and not stat.S_ISREG(unix):
            raise ResourceError(f"archive member {info.filename!r} is a special file; "
                                "nothing extracted")
        else:
            found.append(Entry(name, "file", mode or 0o644, info.file_size,
                               read=lambda i=info: archive.read(i)))
    return found


def extract(found: list[Entry], dest: str, uid: int = -1, gid: int = -1) -> None:
    """Write ``found`` (from :func:`entries`) under the existing folder ``dest``.

    Nothing is written through a symbolic link already in ``dest``: a member whose
    folder is a link is refused. Files replace what is there; ``uid``/``gid`` own
    every entry written (-1: the extracting user).
    """
    dest = os.path.realpath(dest)
    made_dirs: list[tuple[str, int]] = []
    for entry in found:
        target = os.path.join(dest, entry.name)
        parent = os.path.dirname(target)
        _ensure_dirs(dest, parent, uid, gid)
        if os.path.realpath(parent) != parent:
            raise ResourceError(f"{parent} is a symbolic link; {entry.name} not extracted")
        if entry.kind == "dir":
            if not os.path.isdir(target) or os.path.islink(target):
                _remove(target)
                os.mkdir(target, 0o700)
            made_dirs.append((target, entry.mode))
        elif entry.kind == "file":
            tmp = os.path.join(parent, f".{os.path.basename(target)}.trueup-new")
            _remove(tmp)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                data = entry.read() if entry.read else b""
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, entry.mode)
                if uid != -1 or gid != -1:
                    os.fchown(fd, uid, gid)
            finally:
                os.close(fd)
            if os.path.isdir(target) and not os.path.islink(target):
                raise ResourceError(f"{target} is a folder; the archive has a file there")
            os.rename(tmp, target)
        elif entry.kind == "symlink":
            _remove(target)
            os.symlink(entry.target, target)
            if uid != -1 or gid != -1:
                os.lchown(target, uid, gid)
        else:  # hardlink to a member written before
            _remove(target)
            os.link(os.path.join(dest, entry.target), target, follow_symlinks=False)
    for folder, mode in reversed(made_dirs):  # modes last: a 0555 folder still gets entries
        os.chmod(folder, mode)
        if uid != -1 or gid != -1:
            os.chown(folder, uid, gid)


def _ensure_dirs(dest: str, folder: str, uid: int, gid: int) -> None:
    missing = []
    while folder != dest and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for path in reversed(missing):
        _remove(path)
        os.mkdir(path, 0o755)
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)


def _remove(path: str) -> None:
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)


def differs(found: list[Entry], dest: str, uid: int = -1, gid: int = -1) -> list[str]:
    """The names of ``found`` that are not as the archive (and owner) has them in ``dest``."""
    out = []
    for entry in found:
        path = os.path.join(dest, entry.name)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            out.append(entry.name)
            continue
        same = _same(entry, path, st)
        if not same or (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
            out.append(entry.name)
    return out


def _same(entry: Entry, path: str, st: os.stat_result) -> bool:
    mode = stat.S_IMODE(st.st_mode)
    if entry.kind == "dir":
        return stat.S_ISDIR(st.st_mode) and mode == entry.mode
    if entry.kind == "symlink":
        return stat.S_ISLNK(st.st_mode) and os.readlink(path) == entry.target
    if entry.kind == "hardlink":
        return stat.S_ISREG(st.st_mode)
    return (stat.S_ISREG(st.st_mode) and st.st_size == entry.size and mode == entry.mode
            and _content(path) == (entry.read() if entry.read else b""))


def _content(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()
