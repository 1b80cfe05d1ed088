"""sysctl: the live value from <root>/proc/sys, the persisted one under <root>/etc/sysctl.d."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import SpecError
from tests.resources.fakehost import FakeHost

PROC = "/proc/sys/net/core/somaxconn"
CONF = "/etc/sysctl.d/60-trueup-net.core.somaxconn.conf"
LINE = "# managed by trueup\nnet.core.somaxconn = 1234\n"
SET = ["sysctl", "-w", "net.core.somaxconn=1234"]


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    host.write(PROC, "4096\n")
    # sysctl -w changes the live value (a kernel file: its content, nothing else)
    host.on(SET, then=lambda: Path(host.system.path(PROC)).write_text("1234\n"))
    return host


def test_a_host_without_sysctl_d_gets_the_folder_the_file_and_the_value(host: FakeHost) -> None:
    res = host.resource({"sysctl": "net.core.somaxconn", "value": 1234})
    changes = res.check()
    assert changes == [Change("value", "4096", "1234"),
                       Change("folder", None, "/etc/sysctl.d"),
                       Change("persisted", None, CONF)]
    ran, touched = host.apply(res, changes)
    assert ran == [SET]
    assert touched == {"/etc/sysctl.d", CONF, PROC}
    assert host.system.read(CONF).decode() == LINE
    assert stat.S_IMODE(host.system.lstat("/etc/sysctl.d").st_mode) == 0o755
    assert stat.S_IMODE(host.system.lstat(CONF).st_mode) == 0o644
    assert res.check() == []


def test_only_the_live_value_is_set_when_the_file_is_right(host: FakeHost) -> None:
    host.write(CONF, LINE)
    res = host.resource({"sysctl": "net.core.somaxconn", "value": "1234"})
    changes = res.check()
    assert changes == [Change("value", "4096", "1234")]
    ran, touched = host.apply(res, changes)
    assert (ran, touched) == ([SET], {PROC})


def test_only_the_file_is_written_when_the_live_value_is_right(host: FakeHost) -> None:
    host.write(PROC, "1234\n")
    host.write(CONF, "net.core.somaxconn = 99\n")
    res = host.resource({"sysctl": "net.core.somaxconn", "value": 1234})
    changes = res.check()
    assert changes == [Change("persisted", CONF, CONF)]
    ran, touched = host.apply(res, changes)
    assert (ran, touched) == ([], {CONF})
    assert res.check() == []


def test_values_compare_as_the_kernel_prints_them(host: FakeHost) -> None:
    host.write("/proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n")
    host.write("/etc/sysctl.d/60-trueup-net.ipv4.tcp_rmem.conf",
               "# managed by trueup\nnet.ipv4.tcp_rmem = 4096 131072 6291456\n")
    res = host.resource({"sysctl": "net.ipv4.tcp_rmem", "value": "4096  131072 6291456"})
    assert res.check() == []


def test_absent_removes_the_persisted_file_and_leaves_the_live_value(host: FakeHost) -> None:
    host.write(CONF, LINE)
    res = host.resource({"sysctl": "net.core.somaxconn", "state": "absent"})
    changes = res.check()
    assert changes == [Change("persisted", CONF, None)]
    ran, touched = host.apply(res, changes)
    assert (ran, touched) == ([], {CONF})
    assert res.check() == []


def test_an_unknown_key_fails_clearly(host: FakeHost) -> None:
    with pytest.raises(ResourceError, match="no setting net.core.nothing"):
        host.resource({"sysctl": "net.core.nothing", "value": 1}).check()


def test_a_refused_value_reports_sysctl_s_words(host: FakeHost) -> None:
    host.write(CONF, LINE)
    host.on(SET, returncode=255, stderr="sysctl: setting key \"net.core.somaxconn\": "
            "Invalid argument\n")
    res = host.resource({"sysctl": "net.core.somaxconn", "value": 1234})
    with pytest.raises(ResourceError, match="Invalid argument"):
        host.apply(res, res.check())


@pytest.mark.parametrize("spec", [
    {"sysctl": "net.core.somaxconn"},
    {"sysctl": "../../etc/passwd", "value": 1},
    {"sysctl": "kernel", "value": 1},
])
def test_bad_specs_are_refused(host: FakeHost, spec: dict) -> None:
    with pytest.raises((SpecError, ValueError)):
        host.resource(spec)
