"""A `trueup watch` daemon in a subprocess, and what its runs left in the state dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import REPO


def wait_for(what: Callable[[], Any], timeout: float = 30.0, step: float = 0.05) -> Any:
    """``what()`` once it is truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {what}")
        time.sleep(step)


class Watch:
    """``trueup watch ARGS`` with the test's environment; output kept in a file."""

    def __init__(self, env: dict[str, str], *args: str, log: Path) -> None:
        self.state = Path(env["TRUEUP_STATE_DIR"])
        self.log = log
        full = {**os.environ, **env, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "agent", "watch", *args],
                                         stdout=out, stderr=subprocess.STDOUT, env=full,
                                         cwd=str(REPO))

    def reports(self) -> list[dict[str, Any]]:
        """Every run's report, oldest first."""
        folder = self.state / "reports" / "history"
        if not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.iterdir()):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def runs(self, trigger: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.reports() if trigger is None or r.get("trigger") == trigger]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"watch did not stop on SIGTERM:\n{self.output()}") from None
