"""Bundles: a folder of recipes packed as a deterministic .tar.gz, and its verified extraction.

A bundle is published once (``pack``), referenced by its sha256 in the release pointer
(``/trueup/<env>/bundle``), and extracted on every instance (``extract_verified``) into a
content-addressed cache folder ``<cache_dir>/<sha256>/``. Nothing from an archive is ever
written before its sha256 matches the expected one, and every member is checked by hand:
``tarfile``'s own extraction is never used, so the result is the same on Python 3.11 and
3.12+ whatever the default extraction filter is.

Example:
    >>> sha = pack(Path("recipes"), Path("/tmp/bundle.tar.gz"))
    >>> root = extract_verified(Path("/tmp/bundle.tar.gz"), sha, Path("/var/lib/trueup/bundles"))
    >>> (root / "web" / "recipe.yml").is_file()
    True
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from agent.host.system import fsync_dir, sync_tree
from agent.host.unpack import link_inside, name_parts

__all__ = [
    "COMPLETE_MARKER",
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_MEMBER_SIZE",
    "DEFAULT_MAX_TOTAL_SIZE",
    "BundleError",
    "cached",
    "extract_verified",
    "pack",
    "sha256_file",
]

#: Written inside a cache folder, before the rename that publishes it: its presence
#: means the folder holds a complete, verified extraction. Reserved as a member name.
COMPLETE_MARKER = ".trueup-complete"

DEFAULT_MAX_MEMBER_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_TOTAL_SIZE = 512 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 10_000

#: Fixed metadata written into every member, so the archive depends on content only.
FIXED_MTIME = 0
_DIR_MODE = 0o755
_EXEC_MODE = 0o755
_FILE_MODE = 0o644
_LINK_MODE = 0o777

_SKIP_NAMES = frozenset({"__pycache__", ".git", ".hg", ".svn", ".DS_Store", COMPLETE_MARKER})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", ".swo", ".swx", "~")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


class BundleError(Exception):
    """A bundle cannot be packed, verified or extracted; the message says which member and why."""


def sha256_file(path: Path | str) -> str:
    """Return the sha256 hex digest of the file at ``path``, read in chunks."""
    with open(path, "rb") as fh:
        return _sha256_stream(fh)


def _sha256_stream(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- pack


def _skipped(name: str) -> bool:
    """Whether a file or folder name is build debris or an editor backup, never bundled."""
    if name in _SKIP_NAMES or name.endswith(_SKIP_SUFFIXES):
        return True
    # Emacs autosave (#file#) and lock files (.#file).
    return (name.startswith("#") and name.endswith("#")) or name.startswith(".#")


def _walk(root: Path, skip: frozenset[Path]) -> Iterator[tuple[str, Path]]:
    """Yield ``(archive name, path)`` in a fixed pre-order: each folder, then its sorted entries."""

    def visit(folder: Path, prefix: str) -> Iterator[tuple[str, Path]]:
        for name in sorted(os.listdir(folder)):
            path = folder / name
            if _skipped(name) or path in skip:
                continue
            arcname = f"{prefix}{name}"
            yield arcname, path
            if path.is_dir() and not path.is_symlink():
                yield from visit(path, f"{arcname}/")

    yield from visit(root, "")


def _tarinfo(arcname: str, path: Path, root: Path) -> tarfile.TarInfo:
    """Build a member header that depends only on the name, type, content size and exec bit."""
    st = path.lstat()
    info = tarfile.TarInfo(arcname)
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        if not link_inside(arcname, target):
            raise BundleError(
                f"cannot pack {path}: symlink target {target!r} points outside {root}"
            )
        info.type = tarfile.SYMTYPE
        info.linkname = target
        info.mode = _LINK_MODE
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        info.mode = _DIR_MODE
    elif stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
        info.mode = _EXEC_MODE if st.st_mode & 0o111 else _FILE_MODE
    else:
        raise BundleError(f"cannot pack {path}: not a regular file, folder or symlink")
    return info


def pack(folder: Path, out: Path) -> str:
    """Pack ``folder`` into the gzipped tarball ``out``, byte for byte reproducibly.

    The same tree always gives the same bytes: members are sorted, every header carries a
    fixed mtime, uid/gid 0 and empty owner names, modes are normalised (0755 for folders and
    executables, 0644 for other files, 0777 for symlinks), hard links are stored as plain
    files, and the gzip header has mtime 0 and no file name. ``__pycache__``, VCS folders,
    ``*.pyc`` and editor backups (``*~``, ``*.swp``, ``#x#``, ``.#x``) are left out, and so
    is ``out`` itself if it lies inside ``folder``. Member names are relative to ``folder``
    (``web/recipe.yml``), with no leading folder.

    The archive is written to a temporary file next to ``out`` and renamed into place, so
    ``out`` is never seen half written.

    Args:
        folder: the bundle folder.
        out: the .tar.gz to write (replaced if it exists).

    Returns:
        The sha256 hex digest of the written archive.

    Raises:
        BundleError: ``folder`` is not a folder, or holds a symlink leaving it, a device,
            a FIFO or a socket.
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise BundleError(f"cannot pack {folder}: not a folder")
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        skip = frozenset({out.resolve(), tmp.resolve()})
        with os.fdopen(fd, "wb") as raw:
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
                tarfile.open(
                    fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8"
                ) as tar,
            ):
                for arcname, path in _walk(root, skip):
                    info = _tarinfo(arcname, path, root)
                    if info.isreg():
                        with open(path, "rb") as fh:
                            tar.addfile(info, fh)
                    else:
                        tar.addfile(info)
            raw.flush()
            os.fsync(raw.fileno())
        digest = sha256_file(tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest


# --------------------------------------------------------------------------- extract


def cached(cache_dir: Path, sha256: str) -> Path | None:
    """Return ``cache_dir/<sha256>`` if it holds a complete extraction, else None.

    This is how a run works offline from the last verified bundle: the folder only ever
    appears under its final name once it has been verified and fully extracted.
    """
    digest = _check_digest(sha256)
    final = Path(cache_dir) / digest
    return final if (final / COMPLETE_MARKER).is_file() else None


def _check_digest(sha256: str) -> str:
    digest = sha256.strip().lower()
    if not _SHA256_RE.match(digest):
        raise BundleError(f"not a sha256 hex digest: {sha256!r}")
    return digest


def _member_path(name: str) -> PurePosixPath | None:
    """Validate a member name; return its relative path, or None for the bundle root itself."""
    if not name or "\x00" in name:
        raise BundleError(f"refusing member {name!r}: empty name or NUL byte")
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise BundleError(f"refusing member {name!r}: absolute path")
    parts = name_parts(name)
    if ".." in parts:
        raise BundleError(f"refusing member {name!r}: '..' component")
    if not parts:
        return None
    if parts == [COMPLETE_MARKER]:
        raise BundleError(f"refusing member {name!r}: reserved name")
    return PurePosixPath(*parts)


class _Extractor:
    """One extraction of a verified archive into a fresh temporary folder."""

    def __init__(self, dest: Path, max_member_size: int, max_total_size: int, max_members: int):
        self.dest = dest
        self.real_dest = dest.resolve()
        self.max_member_size = max_member_size
        self.max_total_size = max_total_size
        self.max_members = max_members
        self.total = 0
        self.count = 0
        self.seen: set[PurePosixPath] = set()
        self.files: set[PurePosixPath] = set()
        self.symlinks: list[tuple[tarfile.TarInfo, PurePosixPath]] = []

    def run(self, tar: tarfile.TarFile) -> int:
        """Extract every member; symlinks last, then re-check them on the real tree."""
        while True:
            member = tar.next()
            if member is None:
                break
            self.count += 1
            if self.count > self.max_members:
                raise BundleError(
                    f"refusing member {member.name!r}: more than {self.max_members} members"
                )
            self._member(tar, member)
        for member, rel in self.symlinks:
            self._symlink(member, rel)
        self._check_symlinks()
        return self.count

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        try:
            self._extract_member(tar, member)
        except gzip.BadGzipFile:
            raise  # a corrupt archive, reported as such by the caller
        except OSError as exc:
            raise BundleError(f"cannot extract member {member.name!r}: {exc}")

    def _extract_member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        rel = _member_path(member.name)
        if rel is None:
            if member.isdir():
                return
            raise BundleError(f"refusing member {member.name!r}: names the bundle root")
        if rel in self.seen:
            raise BundleError(f"refusing member {member.name!r}: duplicate member name")
        self.seen.add(rel)
        if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
            self._file(tar, member, rel)
        elif member.type == tarfile.DIRTYPE:
            path = self._target(rel)
            path.mkdir(mode=_DIR_MODE, exist_ok=True)
            if path.is_symlink() or not path.is_dir():  # pragma: no cover - no links yet
                raise BundleError(f"refusing member {member.name!r}: not a folder")
            os.chmod(path, _DIR_MODE)
        elif member.type == tarfile.SYMTYPE:
            self._check_symlink_target(member, rel)
            self.symlinks.append((member, rel))  # created after all files and folders
        elif member.type == tarfile.LNKTYPE:
            self._hardlink(member, rel)
        else:
            kind = {
                tarfile.CHRTYPE: "character device",
                tarfile.BLKTYPE: "block device",
                tarfile.FIFOTYPE: "FIFO",
                tarfile.CONTTYPE: "contiguous file",
                tarfile.GNUTYPE_SPARSE: "sparse file",
            }.get(member.type, f"member type {member.type!r}")
            raise BundleError(f"refusing member {member.name!r}: {kind} not allowed")

    def _target(self, rel: PurePosixPath) -> Path:
        path = self.dest.joinpath(*rel.parts)
        parent = path.parent
        parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        # No symlink exists yet during this pass, so the real parent must equal the lexical one.
        if parent.resolve() != self.real_dest.joinpath(*rel.parts[:-1]):
            raise BundleError(f"refusing member {str(rel)!r}: its path goes through a symlink")
        return path

    def _file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, rel: PurePosixPath) -> None:
        if member.size > self.max_member_size:
            raise BundleError(
                f"refusing member {member.name!r}: {member.size} bytes exceeds the "
                f"per-member limit of {self.max_member_size}"
            )
        self.total += member.size
        if self.total > self.max_total_size:
            raise BundleError(
                f"refusing member {member.name!r}: bundle exceeds the total size limit "
                f"of {self.max_total_size} bytes"
            )
        src = tar.extractfile(member)
        if src is None:  # pragma: no cover - regular members always have a file object
            raise BundleError(f"refusing member {member.name!r}: unreadable")
        mode = _EXEC_MODE if member.mode & 0o111 else _FILE_MODE
        path = self._target(rel)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, mode)
        written = 0
        with os.fdopen(fd, "wb") as dst:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                written += len(chunk)
                if written > member.size:  # pragma: no cover - tarfile caps reads at size
                    raise BundleError(f"refusing member {member.name!r}: longer than declared")
                dst.write(chunk)
        os.chmod(path, mode)
        self.files.add(rel)

    def _hardlink(self, member: tarfile.TarInfo, rel: PurePosixPath) -> None:
        # A hard link's target is an archive path (relative to the bundle root).
        try:
            target = _member_path(member.linkname)
        except BundleError:
            target = None
        if target is None or target not in self.files:
            raise BundleError(
                f"refusing member {member.name!r}: hard link target {member.linkname!r} "
                "is not a regular file earlier in the bundle"
            )
        os.link(self.dest.joinpath(*target.parts), self._target(rel))
        self.files.add(rel)

    def _check_symlink_target(self, member: tarfile.TarInfo, rel: PurePosixPath) -> None:
        target = member.linkname
        if not target or "\x00" in target or not link_inside(str(rel), target):
            raise BundleError(
                f"refusing member {member.name!r}: symlink target {target!r} leaves the bundle"
            )

    def _symlink(self, member: tarfile.TarInfo, rel: PurePosixPath) -> None:
        path = self._target(rel)
        try:
            os.symlink(member.linkname, path)
        except FileExistsError:
            raise BundleError(
                f"refusing member {member.name!r}: symlink collides with another member"
            )

    def _check_symlinks(self) -> None:
        """Resolve every symlink on the finished tree: chains of links must stay inside too."""
        root = str(self.real_dest)
        for member, rel in self.symlinks:
            real = os.path.realpath(self.dest.joinpath(*rel.parts))
            if os.path.commonpath([root, real]) != root:
                raise BundleError(
                    f"refusing member {member.name!r}: symlink target {member.linkname!r} "
                    "resolves outside the bundle through other symlinks"
                )


def extract_verified(
    archive: Path,
    expected_sha256: str,
    cache_dir: Path,
    *,
    max_member_size: int = DEFAULT_MAX_MEMBER_SIZE,
    max_total_size: int = DEFAULT_MAX_TOTAL_SIZE,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> Path:
    """Verify ``archive`` against ``expected_sha256``, then extract it into the cache.

    The archive is hashed from an open file descriptor and extracted from that same
    descriptor, so a file swapped between the check and the extraction is not used. On a
    mismatch nothing is written. Extraction goes into a fresh temporary folder
    ``cache_dir/.<sha256>.tmp-*``, gets a completion marker, and is renamed to
    ``cache_dir/<sha256>`` in one atomic step: a crash leaves at most a stray temporary
    folder, never a half-extracted bundle under the final name. A complete folder already
    there is reused as is; an incomplete one (no marker) is replaced.

    Every member is checked before anything is written for it. Refused, with a
    ``BundleError`` naming the member: absolute names, ``..`` components, duplicates,
    symlinks whose target (alone, or through other symlinks) leaves the bundle, hard links
    to anything but an earlier regular member, devices, FIFOs and other special types,
    members over ``max_member_size``, a total over ``max_total_size``, more than
    ``max_members`` members. Ownership, mtimes and special mode bits are not restored:
    files are 0644 (0755 if executable in the archive), folders 0755.

    Args:
        archive: the .tar.gz to extract.
        expected_sha256: the digest from the release pointer (64 hex digits).
        cache_dir: the cache root; created if missing.
        max_member_size: largest allowed size of one member, in bytes.
        max_total_size: largest allowed sum of member sizes, in bytes.
        max_members: largest allowed number of members.

    Returns:
        The folder ``cache_dir/<sha256>`` holding the bundle.

    Raises:
        BundleError: the digest does not match, the archive is not a valid .tar.gz, or a
            member is refused.
    """
    expected = _check_digest(expected_sha256)
    cache_dir = Path(cache_dir)
    try:
        fh = open(archive, "rb")  # noqa: SIM115 - closed below, kept open across steps
    except OSError as exc:
        raise BundleError(f"cannot read bundle {archive}: {exc.strerror or exc}")
    with fh:
        actual = _sha256_stream(fh)
        if actual != expected:
            raise BundleError(
                f"sha256 mismatch for bundle {archive}: expected {expected}, got {actual}; "
                "refusing to use it"
            )
        final = cache_dir / expected
        if (final / COMPLETE_MARKER).is_file():
            return final
        fh.seek(0)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{expected}.tmp-", dir=cache_dir))
        try:
            extractor = _Extractor(tmp, max_member_size, max_total_size, max_members)
            try:
                with tarfile.open(fileobj=fh, mode="r:gz") as tar:
                    count = extractor.run(tar)
            except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
                raise BundleError(f"bundle {archive} is not a valid .tar.gz: {exc}")
            except OSError as exc:
                raise BundleError(f"cannot extract bundle {archive} into {cache_dir}: {exc}")
            _write_marker(tmp, expected, count)
            os.chmod(tmp, _DIR_MODE)
            sync_tree(str(tmp))  # every member on disk before the folder gets its name
            _publish(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def _write_marker(folder: Path, sha256: str, count: int) -> None:
    with open(folder / COMPLETE_MARKER, "w", encoding="utf-8") as fh:
        fh.write(f"sha256={sha256}\nmembers={count}\n")


def _publish(tmp: Path, final: Path) -> None:
    """Rename the finished temporary folder to its final name; tolerate a concurrent winner."""
    if final.exists() and not (final / COMPLETE_MARKER).is_file():
        # Left by something other than this module (we only publish complete folders):
        # move it aside before deleting it, so the final name is never half-deleted.
        trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, trash / "old")
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(tmp, final)
    except OSError:
        if (final / COMPLETE_MARKER).is_file():  # another process published it first
            shutil.rmtree(tmp, ignore_errors=True)
            return
        raise BundleError(f"cannot move the extracted bundle into place at {final}")
    fsync_dir(str(final.parent))
