"""trueup watch on a booted host, as its unit runs it: a config file edited by hand is
restored by its resource alone, the service it notifies restarts, no other managed file is
touched; SIGTERM (systemctl stop) stops the daemon cleanly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from agenthost import TRUEUP, main_start, start_agent_host, write_recipe

pytestmark = [pytest.mark.host, pytest.mark.slow]

UNIT = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"


def _wait(what, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while not (got := what()):
        assert time.monotonic() < deadline, f"not true after {timeout} s"
        time.sleep(0.1)
    return got


def test_watch_repairs_a_hand_edit_and_restarts_only_what_it_notifies(
        testhost_image: Path, local_repo: Path, trueup_wheel: Path) -> None:
    host = start_agent_host(testhost_image, local_repo, trueup_wheel, recipes=False)
    try:
        write_recipe(host, "app", {"resources": [
            {"directory": "/etc/demo"},
            {"file": "/etc/systemd/system/demo.service", "content": UNIT},
            {"file": "/etc/demo/a.conf", "content": "a\n", "notify": "service:demo restart"},
            {"file": "/etc/demo/b.conf", "content": "b\n"},
            {"service": "demo", "state": "running", "enabled": True},
        ]})
        host.write_file("/srv/recipes/runlist", "app\n")
        host.run(["systemd-run", "--unit=trueup-watch", "--property=Type=exec",
                  "--property=TimeoutStopSec=60", "--", TRUEUP, "watch", "/srv/recipes",
                  "--splay", "0"])
        _wait(lambda: host.run(["test", "-e", "/var/lib/trueup/reports/last_run.json"],
                               check=False).returncode == 0)
        started = main_start(host, "demo.service")
        other = host.run(["stat", "-c", "%Y.%y", "/etc/demo/b.conf"]).stdout
        time.sleep(1)

        host.write_file("/etc/demo/a.conf", "edited by hand\n")
        try:
            _wait(lambda: host.read_file("/etc/demo/a.conf") == b"a\n", timeout=60)
        except AssertionError:
            log = host.run(["journalctl", "-u", "trueup-watch.service", "--no-pager"]).stdout
            raise AssertionError(f"not restored; the daemon's journal:\n{log}") from None
        repair = json.loads(_wait(lambda: _drift_report(host)))
        ran = {r["resource"]: r["status"] for r in repair["resources"]}
        assert ran == {"file:/etc/demo/a.conf": "changed", "service:demo": "changed"}, ran
        assert main_start(host, "demo.service") != started  # restarted by the notification
        assert host.run(["stat", "-c", "%Y.%y", "/etc/demo/b.conf"]).stdout == other

        host.run(["systemctl", "stop", "trueup-watch.service"], timeout=90)
        log = host.run(["journalctl", "-u", "trueup-watch.service", "--no-pager"]).stdout
        assert "trueup watch: stopped" in log
    finally:
        host.stop()


def _drift_report(host) -> str:
    names = host.run(["ls", "/var/lib/trueup/reports/history"]).stdout.split()
    for name in names:
        text = host.read_file(f"/var/lib/trueup/reports/history/{name}").decode()
        if json.loads(text).get("trigger") == "drift":
            return text
    return ""
