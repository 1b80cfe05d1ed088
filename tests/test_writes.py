"""trueup's writes: one complete, atomic, durable writer, and a flush of only the file
systems a run wrote to."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from agent.aws.secrets import SecretStore
from agent.compile.loader import Bundle
from agent.compile.prepare import Options, prepare
from agent.config import Config
from agent.engine.backups import Backups
from agent.engine.runner import Runner
from agent.host import system as host
from agent.host.facts import Facts
from agent.host.system import System, write_file_atomic
from tests.helpers import write_bundle


def test_write_file_atomic_writes_the_whole_file_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_bytes(b"old")
    write_file_atomic(str(target), b"new content", 0o640)
    assert target.read_bytes() == b"new content"
    assert target.stat().st_mode & 0o7777 == 0o640
    assert os.listdir(tmp_path) == ["record.json"]


def test_short_writes_are_continued_until_complete(tmp_path: Path, monkeypatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    write_file_atomic(str(tmp_path / "f"), b"0123456789" * 10)
    assert (tmp_path / "f").read_bytes() == b"0123456789" * 10


@pytest.mark.parametrize("failure", ["enospc", "no-progress"])
def test_a_failed_write_leaves_the_target_and_no_temp_file(tmp_path: Path, monkeypatch,
                                                            failure: str) -> None:
    target = tmp_path / "last_run.json"
    target.write_bytes(b"previous report")
    real_write = os.write
    calls = []

    def full_disk(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:4]))  # a short write, then nothing more fits
        if failure == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device")
        return 0

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError) as info:
        write_file_atomic(str(target), b"a new report that does not fit")
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"previous report"
    assert os.listdir(tmp_path) == ["last_run.json"]


def test_write_file_atomic_fsyncs_the_file_then_its_folder(tmp_path: Path,
                                                           monkeypatch) -> None:
    synced: list[tuple[bool, int]] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        st = os.fstat(fd)
        synced.append((stat.S_ISDIR(st.st_mode), st.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    write_file_atomic(str(tmp_path / "f"), b"x")
    assert synced == [(False, (tmp_path / "f").stat().st_ino), (True, tmp_path.stat().st_ino)]


# --- System.flush ------------------------------------------------------------------------


class SyncfsRecorder:
    """Stands in for libc's syncfs: records the device of each descriptor it gets."""

    def __init__(self) -> None:
        self.devices: list[int] = []

    def __call__(self, fd: int) -> int:
        self.devices.append(os.fstat(fd).st_dev)
        return 0


@pytest.fixture
def syncfs(monkeypatch) -> SyncfsRecorder:
    recorder = SyncfsRecorder()
    monkeypatch.setattr(host, "_SYNCFS", recorder)
    monkeypatch.setattr(os, "sync", _refuse_global_sync)
    return recorder


def _refuse_global_sync() -> None:
    raise AssertionError("os.sync() flushes every file system of the host")


def _other_filesystem(than: Path) -> str | None:
    """A writable folder on another file system than ``than`` (tmpfs), if there is one."""
    for base in ("/dev/shm", f"/run/user/{os.getuid()}"):
        try:
            if os.stat(base).st_dev != os.stat(than).st_dev and os.access(base, os.W_OK):
                return tempfile.mkdtemp(prefix="trueup-test-", dir=base)
        except OSError:
            continue
    return None


def test_flush_syncs_each_written_file_system_once_and_no_other(tmp_path: Path,
                                                                 syncfs) -> None:
    system = System()
    (tmp_path / "etc").mkdir()
    system.atomic_write(str(tmp_path / "a.conf"), b"a", 0o644, replacing=False)
    system.atomic_write(str(tmp_path / "etc" / "b.conf"), b"b", 0o644, replacing=False)
    other = _other_filesystem(tmp_path)
    try:
        if other:
            system.atomic_write(os.path.join(other, "c.conf"), b"c", 0o644, replacing=False)
        assert syncfs.devices == []  # nothing flushed while the run writes
        system.flush()
        expected = [os.stat(tmp_path).st_dev] + ([os.stat(other).st_dev] if other else [])
        assert sorted(syncfs.devices) == sorted(expected)
        system.flush()  # nothing new written: nothing to flush
        assert len(syncfs.devices) == len(expected)
    finally:
        if other:
            shutil.rmtree(other)


def test_a_run_that_writes_a_tmp_dir_syncs_that_file_system_only(tmp_path: Path,
                                                                 syncfs) -> None:
    target = tmp_path / "target"
    bundle = write_bundle(tmp_path / "bundle", {"p": f"""\
        resources:
          - directory: "{target}"
          - file: "{target}/a.txt"
            content: "a"
          - file: "{target}/b.txt"
            content: "b"
        """}, runlist="p")
    state = tmp_path / "state"
    system = System()
    prepared = prepare(Options(source=str(bundle), runlist="p"), Config(state_dir=str(state)),
                       Bundle(str(bundle)), system, Backups(str(state / "backup")), Facts(),
                       SecretStore())
    results = Runner(prepared.catalog, system).run()
    assert [r.status for r in results] == ["changed"] * 3
    assert syncfs.devices == [os.stat(target).st_dev]


def test_flush_after_replacing_only_fsyncs_the_folders(tmp_path: Path, syncfs,
                                                       monkeypatch) -> None:
    target = tmp_path / "motd"
    target.write_bytes(b"old")
    system = System()
    system.atomic_write(str(target), b"new", 0o644)  # replacing: fsync'ed before the rename
    folders: list[str] = []
    monkeypatch.setattr(host, "fsync_dir", folders.append)
    system.flush()
    assert syncfs.devices == []
    assert folders == [str(tmp_path)]


def test_without_syncfs_each_new_file_gets_its_own_fsync(tmp_path: Path,
                                                         monkeypatch) -> None:
    monkeypatch.setattr(host, "_SYNCFS", None)
    monkeypatch.setattr(os, "sync", _refuse_global_sync)
    inodes: list[int] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        inodes.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    system = System()
    system.atomic_write(str(tmp_path / "new.conf"), b"x", 0o644, replacing=False)
    assert inodes == [(tmp_path / "new.conf").stat().st_ino]
    system.flush()
    assert inodes[1:] == [tmp_path.stat().st_ino]  # then only the folder


def test_the_real_syncfs_is_found_on_linux() -> None:
    if not os.path.exists("/proc/self"):
        pytest.skip("not Linux")
    found = host._syncfs()
    assert found is not None
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert found(fd) == 0
    finally:
        os.close(fd)
