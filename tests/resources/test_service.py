"""service: planned systemctl commands for pre-filled unit states."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

from agent.errors import ResourceError
from agent.model import Change
from tests.resources.fakehost import FakeHost, shell

UNIT = "web.service"
NEEDS_RELOAD = ["systemctl", "show", "-p", "NeedDaemonReload", "--value", UNIT]


def unit(host: FakeHost, sub_state: str, file_state: str, name: str = UNIT) -> None:
    """What systemctl show says about the unit (``SubState``, ``UnitFileState``)."""
    host.fact(SystemdStatus, f"Id={name}\nSubState={sub_state}\n", services=[name])
    host.fact(SystemdEnabled, f"Id={name}\nUnitFileState={file_state}\n", services=[name])


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path, tools=("systemctl",))
    unit(host, "dead", "disabled")
    host.on(NEEDS_RELOAD, stdout="no\n")
    return host


def test_a_stopped_disabled_unit_is_started_and_enabled(host: FakeHost) -> None:
    res = host.resource({"service": "web", "state": "running", "enabled": True})
    changes = res.check()
    assert changes == [Change("command", None, "systemctl start web.service"),
                       Change("command", None, "systemctl enable web.service")]

    host.on("systemctl start web.service", then=lambda: unit(host, "running", "disabled"))
    host.on("systemctl enable web.service", then=lambda: unit(host, "running", "enabled"))
    ran, touched = host.apply(res, changes)
    assert ran == [shell("systemctl start web.service"), shell("systemctl enable web.service")]
    assert touched == set()
    assert res.started
    assert res.check() == []


def test_a_unit_changed_on_disk_is_reloaded_first(host: FakeHost) -> None:
    host.on(NEEDS_RELOAD, stdout="yes\n")
    res = host.resource({"service": "web", "state": "running"})
    assert res.check() == [Change("command", None, "systemctl daemon-reload"),
                           Change("command", None, "systemctl start web.service")]


def test_a_running_unit_is_stopped_and_disabled(host: FakeHost) -> None:
    unit(host, "running", "enabled")
    res = host.resource({"service": "web", "state": "stopped", "enabled": False})
    changes = res.check()
    assert changes == [Change("command", None, "systemctl stop web.service"),
                       Change("command", None, "systemctl disable web.service")]
    host.on("systemctl stop web.service", then=lambda: unit(host, "dead", "enabled"))
    host.on("systemctl disable web.service", then=lambda: unit(host, "dead", "disabled"))
    host.apply(res, changes)
    assert not res.started
    assert res.check() == []


def test_a_converged_unit_plans_nothing_and_asks_systemd_nothing_more(host: FakeHost) -> None:
    unit(host, "running", "enabled")
    res = host.resource({"service": "web", "state": "running", "enabled": True})
    assert res.check() == []
    assert NEEDS_RELOAD not in host.runner.calls
    assert host.facts.noops == ["service web.service is running"]


def test_without_state_or_enabled_nothing_is_managed(host: FakeHost) -> None:
    assert host.resource({"service": "web"}).check() == []


def test_a_full_unit_name_is_kept(host: FakeHost) -> None:
    unit(host, "dead", "disabled", name="backup.timer")
    res = host.resource({"service": "backup.timer", "state": "running"})
    host.on(["systemctl", "show", "-p", "NeedDaemonReload", "--value", "backup.timer"],
            stdout="no\n")
    assert res.check() == [Change("command", None, "systemctl start backup.timer")]


def test_restart_runs_for_a_running_unit_not_started_by_this_run(host: FakeHost) -> None:
    unit(host, "running", "enabled")
    res = host.resource({"service": "web", "state": "running"})
    assert res.check() == []
    host.runner.clear()
    assert res.refresh("restart") is None
    assert host.runner.shell_commands() == ["systemctl restart web.service"]


def test_a_unit_this_run_started_is_not_restarted_again(host: FakeHost) -> None:
    res = host.resource({"service": "web", "state": "running"})
    host.on("systemctl start web.service", then=lambda: unit(host, "running", "disabled"))
    host.apply(res, res.check())
    host.runner.clear()
    assert res.refresh("reload") is False
    assert host.runner.calls == []


def test_a_failed_start_is_reported_with_systemctl_s_words(host: FakeHost) -> None:
    host.on("systemctl start web.service", returncode=5,
            stderr="Failed to start web.service: Unit web.service not found.\n")
    res = host.resource({"service": "web", "state": "running"})
    with pytest.raises(ResourceError, match="Unit web.service not found"):
        host.apply(res, res.check())
