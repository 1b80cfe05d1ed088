"""group: planned groupadd/groupdel for a pre-filled /etc/group."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.facts.server import Groups, Os

from agent.model import Change
from tests.resources.fakehost import FakeHost, shell

ETC_GROUP = "root:x:0:\nsudo:x:27:admin\nusers:x:100:\n"


def groups(host: FakeHost, text: str) -> None:
    host.fact(Groups, text)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    host.fact(Os, "Linux\n")
    groups(host, ETC_GROUP)
    return host


def test_a_missing_group_is_added_with_its_gid(host: FakeHost) -> None:
    res = host.resource({"group": "deploy", "gid": 2001})
    changes = res.check()
    assert changes == [Change("command", None, "groupadd deploy --gid 2001")]

    host.on("groupadd deploy --gid 2001",
            then=lambda: groups(host, ETC_GROUP + "deploy:x:2001:\n"))
    ran, touched = host.apply(res, changes)
    assert ran == [shell("groupadd deploy --gid 2001")]
    assert touched == set()
    assert res.check() == []


def test_a_system_group_is_added_with_r(host: FakeHost) -> None:
    res = host.resource({"group": "app", "system": True})
    assert res.check() == [Change("command", None, "groupadd -r app")]


def test_an_existing_group_plans_nothing(host: FakeHost) -> None:
    assert host.resource({"group": "sudo"}).check() == []
    assert host.runner.calls == [shell("cat /etc/group"), shell("uname -s")]


def test_absent_deletes_an_existing_group(host: FakeHost) -> None:
    res = host.resource({"group": "sudo", "state": "absent"})
    changes = res.check()
    assert changes == [Change("command", None, "groupdel sudo")]
    host.on("groupdel sudo", then=lambda: groups(host, "root:x:0:\nusers:x:100:\n"))
    host.apply(res, changes)
    assert res.check() == []


def test_absent_and_missing_plans_nothing(host: FakeHost) -> None:
    assert host.resource({"group": "nobody-here", "state": "absent"}).check() == []


def test_odd_names_are_quoted(host: FakeHost) -> None:
    res = host.resource({"group": "x;reboot"})
    assert res.check() == [Change("command", None, "groupadd 'x;reboot'")]
