"""systemd_unit: files through the rooted seam, systemctl as planned, one daemon-reload per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.model import Change
from agent.resources import SpecError
from tests.resources.fakehost import FakeHost

UNIT = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    (host.root / "etc/systemd/system").mkdir(parents=True)
    return host


def state(host: FakeHost, unit: str, active: str = "inactive", enabled: str = "disabled") -> None:
    host.on(["systemctl", "is-active", unit], stdout=active + "\n", returncode=0)
    host.on(["systemctl", "is-enabled", unit], stdout=enabled + "\n")


def test_a_new_unit_is_written_reloaded_enabled_and_started(host: FakeHost) -> None:
    state(host, "app.service")
    res = host.resource({"systemd_unit": "app.service", "content": UNIT, "enabled": True,
                         "state": "running"})
    changes = res.check()
    assert [c.field for c in changes] == ["state", "running", "enabled"]
    ran, touched = host.apply(res, changes)
    assert ran == [["systemctl", "daemon-reload"], ["systemctl", "enable", "app.service"],
                   ["systemctl", "start", "app.service"]]
    assert touched == {"/etc/systemd/system/app.service"}
    assert host.system.read("/etc/systemd/system/app.service") == UNIT.encode()
    state(host, "app.service", "active", "enabled")
    assert res.check() == []
    assert res.settle() == []  # the reload is done


def test_many_changed_units_reload_once(host: FakeHost) -> None:
    units = [host.resource({"systemd_unit": f"u{i}.service", "content": UNIT})
             for i in range(3)]
    for res in units:
        state(host, res.name)
        host.apply(res, res.check())
    host.runner.clear()
    settled = [res.settle() for res in units]
    assert settled[0] == [Change("daemon_reload", None, "systemctl daemon-reload (once this run)")]
    assert settled[1:] == [[], []]
    assert host.runner.calls == [["systemctl", "daemon-reload"]]


def test_a_changed_drop_in_restarts_its_running_unit_once(host: FakeHost) -> None:
    host.write("/etc/systemd/system/nginx.service.d/limits.conf", "[Service]\nLimitNOFILE=1\n")
    state(host, "nginx.service", "active", "enabled")
    res = host.resource({"systemd_unit": "nginx.service.d/limits.conf",
                         "content": "[Service]\nLimitNOFILE=65536\n"})
    changes = res.check()
    assert [c.field for c in changes] == ["content", "restart"]
    assert "+LimitNOFILE=65536" in changes[0].diff
    ran, _ = host.apply(res, changes)
    assert ran == [["systemctl", "daemon-reload"], ["systemctl", "restart", "nginx.service"]]
    assert res.check() == []


def test_restart_false_leaves_the_unit_alone(host: FakeHost) -> None:
    state(host, "nginx.service", "active")
    res = host.resource({"systemd_unit": "nginx.service.d/x.conf", "content": "[Unit]\n",
                         "restart": False})
    assert [c.field for c in res.check()] == ["state"]


def test_absent_stops_disables_and_removes(host: FakeHost) -> None:
    host.write("/etc/systemd/system/old.service", UNIT)
    state(host, "old.service", "active", "enabled")
    res = host.resource({"systemd_unit": "old.service", "state": "absent"})
    changes = res.check()
    assert [c.field for c in changes] == ["running", "enabled", "state"]
    ran, touched = host.apply(res, changes)
    assert ran == [["systemctl", "stop", "old.service"], ["systemctl", "disable", "old.service"]]
    assert touched == {"/etc/systemd/system/old.service"}
    assert res.check() == []
    assert [c.field for c in res.settle()] == ["daemon_reload"]


@pytest.mark.parametrize(("spec", "message"), [
    ({"systemd_unit": "app", "content": "x"}, "not a unit name"),
    ({"systemd_unit": "../x.service", "content": "x"}, "not a unit name"),
    ({"systemd_unit": "app.service.d/x", "content": "x"}, "not a unit name"),
    ({"systemd_unit": "app.service"}, "needs content or template"),
    ({"systemd_unit": "app.service", "content": "x", "template": "t"}, "not both"),
])
def test_bad_specs(host: FakeHost, spec: dict, message: str) -> None:
    with pytest.raises((SpecError, ValueError), match=message):
        host.resource(spec)
