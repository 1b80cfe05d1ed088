"""The run lock: never opened through a link, and one clear line (exit 1) when the lock or
the state dir cannot be used, instead of a traceback or a truncated victim."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.engine.lock import RunLock
from agent.errors import TrueupError
from tests.helpers import write_bundle

VICTIM = b"root:x:0:0:root:/root:/bin/bash\n"


@pytest.fixture
def state(env: dict[str, str]) -> Path:
    folder = Path(env["TRUEUP_STATE_DIR"])
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle", {"app": f"""
        resources:
          - file: {tmp_path}/converged
            content: "x\\n"
        """}, runlist="app")


def one_error_line(out: subprocess.CompletedProcess) -> str:
    """The run's stderr, which must be exactly one 'trueup: error:' line; exit 1."""
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1, out.stderr
    assert len(lines) == 1 and lines[0].startswith("trueup: error: "), out.stderr
    return lines[0]


def test_a_symlinked_lock_is_refused_and_its_target_left_alone(tmp_path: Path, state: Path,
                                                              bundle: Path, trueup) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    (state / "run.lock").symlink_to(victim)
    line = one_error_line(trueup("run", str(bundle)))
    assert f"{state}/run.lock is a symbolic link" in line
    assert victim.read_bytes() == VICTIM
    assert not (tmp_path / "converged").exists()


def test_a_dangling_symlinked_lock_creates_nothing(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    lock.symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(TrueupError, match="is a symbolic link"), RunLock(str(lock)):
        pass
    assert not (tmp_path / "created-through-the-link").exists()


def test_a_hard_linked_lock_is_refused_and_its_other_name_left_alone(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    os.link(victim, tmp_path / "run.lock")
    with pytest.raises(TrueupError, match="has 2 names"), RunLock(str(tmp_path / "run.lock")):
        pass
    assert victim.read_bytes() == VICTIM


def test_a_folder_named_run_lock_is_one_clear_line(tmp_path: Path, state: Path, bundle: Path,
                                                   trueup) -> None:
    (state / "run.lock").mkdir()
    line = one_error_line(trueup("run", str(bundle)))
    assert f"{state}/run.lock is a directory" in line
    assert not (tmp_path / "converged").exists()


@contextlib.contextmanager
def immutable(folder: Path) -> Iterator[None]:
    """``chattr +i folder`` for the block (skips the test where chattr cannot)."""
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {done.stderr.strip() or 'no chattr'}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("lock_exists", [False, True], ids=["fresh", "lock-exists"])
def test_an_immutable_state_dir_is_one_clear_line(tmp_path: Path, state: Path, bundle: Path,
                                                  trueup, lock_exists: bool) -> None:
    if lock_exists:
        (state / "run.lock").write_bytes(b"")
    with immutable(state):
        out = trueup("run", str(bundle))
    line = one_error_line(out)
    assert f"state dir {state} is not writable" in line
    assert not (tmp_path / "converged").exists()


@pytest.mark.parametrize("before", ["", "1\n", "123456789012345678901234567890\n"],
                         ids=["empty", "shorter", "longer"])
def test_the_lock_file_holds_exactly_the_holders_pid(tmp_path: Path, before: str) -> None:
    path = tmp_path / "run.lock"
    path.write_text(before)
    with RunLock(str(path)):
        assert path.read_text() == f"{os.getpid()}\n"
