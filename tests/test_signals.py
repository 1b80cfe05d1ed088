"""SIGTERM and SIGINT stop a run cleanly: the running command's whole process group
goes, a report marked interrupted is kept, the lock is freed, and the exit code is
128 + the signal. The next run converges the rest."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from agent.errors import ResourceError
from agent.host.system import System


def group_gone(pgid: int, timeout: float = 10) -> bool:
    """Whether no process of group ``pgid`` is left (PID 1 may take a moment to reap)."""
    return _gone(lambda: os.killpg(pgid, 0), timeout)


def process_gone(pid: int, timeout: float = 10) -> bool:
    """Whether process ``pid`` has ended (and been reaped)."""
    return _gone(lambda: os.kill(pid, 0), timeout)


def _gone(probe, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            probe()
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def kill_quietly(pid: int) -> None:
    """Cleanup: one process by its pid, never a group this test might belong to."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_a_timed_out_command_takes_its_whole_process_group_with_it(tmp_path):
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    pid = None
    try:
        with pytest.raises(ResourceError, match=r"^/bin/sh timed out after 0\.5s$"):
            System().run(["/bin/sh", "-c", 'sleep 30 & echo $! > "$0"; wait', str(pidfile)],
                         timeout=0.5)
        pid = int(pidfile.read_text())
        assert time.monotonic() - started < 10, "waited for the orphaned sleep"
        assert process_gone(pid), "the command's child outlived the timeout"
    finally:
        if pid is None and pidfile.exists():
            pid = int(pidfile.read_text())
        if pid is not None:
            kill_quietly(pid)


def test_commands_run_in_their_own_process_group(tmp_path):
    done = System().run(["/bin/sh", "-c", "ps -o pgid= -p $$; ps -o sid= -p $$"])
    pgid, sid = (int(x) for x in done.stdout.split())
    assert pgid != os.getpgrp() and pgid == sid  # a session of its own, led by the command
