"""Fixtures for every suite: a private state dir and config, and the CLI bound to them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import run_cli

pytest_plugins = ["tests.servers.fixtures"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for one trueup: its own state dir and no system config file."""
    values = {
        "TRUEUP_STATE_DIR": str(tmp_path / "state"),
        "TRUEUP_CONFIG": str(tmp_path / "no-config.toml"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def trueup(env: dict[str, str]) -> Callable:
    """Run the real CLI with this test's state dir: ``trueup("run", str(bundle))``."""

    def call(*args: str, **kwargs):
        extra = dict(env)
        extra.update(kwargs.pop("env", {}) or {})
        return run_cli(*args, env=extra, **kwargs)

    return call


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line that says how many tests were skipped and why (0 when none were)."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    detail = "; ".join(f"{count} x {why}" for why, count in sorted(reasons.items()))
    total = sum(reasons.values())
    terminalreporter.write_line(f"skipped: {total}" + (f" ({detail})" if detail else ""))
