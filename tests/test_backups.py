"""Backups: written whole or not at all, never repeated, private; a full backup disk fails the
resource before its file is touched."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.engine import backups as backups_module
from agent.engine.backups import Backups
from tests.helpers import tiny_tmpfs, write_bundle

BIG = bytes(range(256)) * 1076  # 275,456 bytes (269 KB): more than the 64 KB disk holds


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    with tiny_tmpfs(tmp_path / "disk") as disk:
        yield disk


def kept(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_a_short_write_is_continued_until_the_backup_is_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:  # as a pipe, a signal or a full disk may
        return real_write(fd, bytes(data[:1000]))

    monkeypatch.setattr(backups_module.os, "write", short_write)
    name = Backups(str(tmp_path / "b")).save("/etc/big.conf", BIG)
    assert name is not None and Path(name).read_bytes() == BIG


def test_a_full_disk_raises_no_space_and_leaves_no_partial_backup(tiny_disk: Path) -> None:
    store = Backups(str(tiny_disk / "backup"))
    first = store.save("/etc/app.conf", b"small, fits\n")
    with pytest.raises(OSError, match="cannot back up /etc/app.conf .*No space left") as caught:
        store.save("/etc/app.conf", BIG)
    assert caught.value.errno == errno.ENOSPC
    assert kept(tiny_disk) == [Path(first)]  # the earlier backup is still there, alone
    assert [p.name for p in Path(first).parent.iterdir()] == [Path(first).name]


def test_identical_consecutive_backups_are_kept_once(tmp_path: Path) -> None:
    store = Backups(str(tmp_path / "b"), keep=3)
    first = store.save("/etc/x", b"a\n")
    assert store.save("/etc/x", b"a\n") == first
    store.save("/etc/x", b"b\n")
    store.save("/etc/x", b"a\n")  # not the newest copy: kept again
    assert [p.read_bytes() for p in kept(tmp_path / "b")] == [b"a\n", b"b\n", b"a\n"]


def test_another_files_backups_in_a_subfolder_are_not_pruned(tmp_path: Path) -> None:
    """/etc/x (a file once) and /etc/x/y (later, in a folder x): /etc/x's backups sit
    beside folder y, which is neither a backup of /etc/x nor pruned with them."""
    store = Backups(str(tmp_path / "b"), keep=1)
    store.save("/etc/x/y", b"y\n")
    store.save("/etc/x", b"x1\n")
    store.save("/etc/x", b"x2\n")
    assert [p.read_bytes() for p in kept(tmp_path / "b")] == [b"x2\n", b"y\n"]


def test_backups_are_0600_in_0700_folders_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        name = Backups(str(tmp_path / "b")).save("/etc/ssl/private/key.pem", b"KEY\n")
    finally:
        os.umask(old)
    assert name is not None
    assert stat.S_IMODE(os.stat(name).st_mode) == 0o600
    folder = Path(name).parent
    while folder != tmp_path:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        folder = folder.parent


def test_a_full_backup_disk_fails_the_file_and_leaves_it_unchanged(tmp_path: Path, trueup,
                                                                  env: dict[str, str]) -> None:
    state = Path(env["TRUEUP_STATE_DIR"])
    state.mkdir()
    target = tmp_path / "big.conf"
    target.write_bytes(BIG)
    bundle = write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - file: {target}
            content: "new\\n"
          - file: {tmp_path}/after
            content: "still converged\\n"
        """}, runlist="app")
    with tiny_tmpfs(state / "backup") as disk:  # the run's backup folder is a tiny disk
        out = trueup("run", str(bundle), "--json")
        assert target.read_bytes() == BIG
        assert kept(disk) == []
    report = json.loads(out.stdout)
    by_name = {r["resource"]: r for r in report["resources"]}
    error = by_name[f"file:{target}"]["error"]
    assert by_name[f"file:{target}"]["status"] == "failed"
    assert f"cannot back up {target}" in error and "No space left on device" in error
    assert error.endswith(f"{target} left unchanged")
    assert by_name[f"file:{tmp_path}/after"]["status"] == "changed"
    assert out.returncode == 4


STAMP = re.compile(r"\d{8}T\d{6}Z\.\d{9}")


@given(st.from_regex(STAMP, fullmatch=True) | st.text(max_size=30)
       | st.sampled_from(["20261202T051500Z.123456789", "20261202T051500Z.12345678",
                          "20261202T051500Z-123456789", "2026120xT051500Z.123456789",
                          "20261202t051500Z.123456789", "20261202T051500Z.123456789\n"]))
def test_a_backup_name_is_what_the_pattern_matched(name):
    assert backups_module._is_stamp(name) == bool(STAMP.fullmatch(name))
