"""The systemd units trueup ships (ami/systemd): systemd's own checker finds nothing wrong
in them beyond the trueup executable missing on this machine, and they fit together."""

from __future__ import annotations

import configparser
import shutil
import subprocess

import pytest

from tests.helpers import REPO

UNITS = REPO / "ami" / "systemd"
OURS = ["trueup-run.service", "trueup-run.timer", "trueup-shutdown.service",
        "trueup-watch.service"]


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case sensitive
    parser.read(UNITS / name)
    return parser


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_finds_nothing_else():
    done = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           *[str(UNITS / name) for name in OURS]],
                          capture_output=True, text=True, env={"SYSTEMD_LOG_LEVEL": "warning",
                                                               "PATH": "/usr/bin:/bin"})
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if line and "/opt/trueup/venv/bin/trueup is not executable" not in line]
    assert problems == []


def test_the_units_fit_together():
    watch = _unit("trueup-watch.service")
    assert watch["Service"]["Restart"] == "on-failure"
    assert "--reboot allow" in watch["Service"]["ExecStart"]
    shutdown = _unit("trueup-shutdown.service")
    assert shutdown["Service"]["ExecStop"].endswith("run --event shutdown --lock-timeout 60")
    assert "network-online.target" in shutdown["Unit"]["After"]  # stops before the network
    assert "trueup-watch.service" in shutdown["Unit"]["Before"]  # and after the daemon
    assert shutdown["Service"]["TimeoutStopSec"]
    timer = _unit("trueup-run.timer")
    assert timer["Timer"]["OnUnitActiveSec"] and timer["Install"]["WantedBy"] == "timers.target"
    assert _unit("trueup-run.service")["Service"]["Type"] == "oneshot"
