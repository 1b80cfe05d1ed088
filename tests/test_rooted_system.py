"""The host seam rooted at a scratch folder: paths, accounts, which, commands and facts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyinfra.facts.deb import DebPackages

from agent.errors import ResourceError
from agent.host.facts import Facts
from agent.host.pyinfra_bridge import FactHost, fact_command
from agent.host.system import GroupEntry, System, UserEntry
from tests.fakerunner import FakeRunner


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "# a comment\n"
        "deploy:x:2001:2002:Deploy:/srv/deploy:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nsudo:x:27:deploy,admin\ndeploy:x:2002:\n")
    return tmp_path


def test_host_paths_map_under_the_root_and_cannot_leave_it(root: Path) -> None:
    system = System(root=str(root))
    assert system.path("/etc/cron.d") == f"{root}/etc/cron.d"
    assert system.path("/../../etc/shadow") == f"{root}/etc/shadow"
    with pytest.raises(ValueError):
        system.path("etc/passwd")
    assert System().path("/etc/cron.d") == "/etc/cron.d"


def test_reads_go_under_the_root(root: Path) -> None:
    system = System(root=str(root))
    assert system.read("/etc/group").startswith(b"root:x:0:")
    assert system.exists("/etc/passwd") and not system.exists("/etc/shadow")
    assert system.isdir("/etc") and not system.isdir("/etc/passwd")
    assert sorted(system.listdir("/etc")) == ["group", "passwd"]
    assert system.stat("/etc/passwd").st_size == (root / "etc/passwd").stat().st_size
    os.symlink("/nowhere", root / "etc/dangling")
    assert system.exists("/etc/dangling")
    assert system.lstat("/etc/dangling").st_size == len("/nowhere")


def test_users_and_groups_come_from_the_root_s_files(root: Path) -> None:
    system = System(root=str(root))
    assert system.user("deploy") == UserEntry("deploy", 2001, 2002, "/srv/deploy", "/bin/sh")
    assert system.user("nobody") is None
    assert system.group("sudo") == GroupEntry("sudo", 27, ("deploy", "admin"))
    assert system.group("root") == GroupEntry("root", 0, ())
    assert (system.uid("deploy"), system.gid("deploy")) == (2001, 2002)
    assert (system.uid(7), system.uid("8"), system.uid(None)) == (7, 8, -1)
    with pytest.raises(ResourceError, match="no such user 'www-data'"):
        system.uid("www-data")
    with pytest.raises(ResourceError, match="no such group 'web'"):
        system.gid("web")


def test_the_machine_s_accounts_come_from_pwd_and_grp() -> None:
    system = System()
    import grp
    import pwd

    me = pwd.getpwuid(os.getuid())
    assert system.user(me.pw_name) == UserEntry(me.pw_name, me.pw_uid, me.pw_gid, me.pw_dir,
                                                me.pw_shell)
    assert system.group(grp.getgrgid(0).gr_name).gid == 0
    assert system.user("no-such-user-here") is None


def test_which_looks_on_the_root_s_search_path(root: Path) -> None:
    system = System(root=str(root))
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/useradd").write_text("#!/bin/sh\n")
    assert system.which("useradd") is None  # not executable
    (root / "usr/sbin/useradd").chmod(0o755)
    assert system.which("useradd") == "/usr/sbin/useradd"
    assert system.which("/usr/sbin/useradd") == "/usr/sbin/useradd"
    assert system.which("sh") is None  # this machine's /bin/sh is not the host's


def test_a_rooted_system_runs_commands_only_through_its_runner(root: Path) -> None:
    with pytest.raises(ResourceError, match="no runner"):
        System(root=str(root)).run(["true"])
    runner = FakeRunner()
    runner.answer(["hostname"], stdout="web-1\n")
    system = System(root=str(root), runner=runner)
    assert system.run(["hostname"]).stdout == "web-1\n"
    assert system.run(["sysctl", "-w", 1]).ok
    assert runner.calls == [["hostname"], ["sysctl", "-w", "1"]]


def test_the_machine_runs_argv_without_a_shell() -> None:
    done = System().run(["echo", "a;b", "$HOME"])
    assert (done.returncode, done.stdout) == (0, "a;b $HOME\n")


def test_writes_go_under_the_root(root: Path) -> None:
    system = System(root=str(root))
    system.mkdir("/etc/app", 0o750)
    system.atomic_write("/etc/app/conf", b"x = 1\n", 0o640, replacing=False)
    assert (root / "etc/app/conf").read_bytes() == b"x = 1\n"
    assert oct((root / "etc/app/conf").stat().st_mode & 0o777) == "0o640"
    system.chmod("/etc/app/conf", 0o600)
    assert oct((root / "etc/app/conf").stat().st_mode & 0o777) == "0o600"
    system.atomic_symlink("/etc/app/conf", "/etc/app/link")
    assert os.readlink(root / "etc/app/link") == "/etc/app/conf"  # the host's target
    system.atomic_hardlink("/etc/app/conf", "/etc/app/hard")
    assert (root / "etc/app/hard").stat().st_ino == (root / "etc/app/conf").stat().st_ino
    system.remove("/etc/app/hard")
    system.remove("/etc/app/link")
    system.remove("/etc/app/conf")
    system.rmdir("/etc/app")
    assert not (root / "etc/app").exists()
    system.flush()


def test_facts_are_read_through_the_runner(root: Path) -> None:
    runner = FakeRunner()
    runner.answer(fact_command(DebPackages), stdout="ii  jq  1.6-2.1  amd64  JSON\n")
    host = FactHost(System(root=str(root), runner=runner))
    assert host.get_fact(DebPackages) == {}  # no dpkg on this host: the fact's default
    assert runner.calls == []
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/dpkg").write_text("")
    (root / "usr/bin/dpkg").chmod(0o755)
    host.forget(DebPackages)
    assert host.get_fact(DebPackages) == {"jq": {"1.6-2.1"}}
    assert host.get_fact(DebPackages) == {"jq": {"1.6-2.1"}}  # once per run
    assert runner.calls == [["/bin/sh", "-c", "dpkg -l"]]
    assert host.reads == {"deb.DebPackages": 1}


def test_a_failing_fact_command_is_a_resource_error(root: Path) -> None:
    from pyinfra.facts.server import Os

    runner = FakeRunner()
    runner.answer("uname -s", returncode=1, stderr="uname: not found\n")
    host = FactHost(System(root=str(root), runner=runner))
    with pytest.raises(ResourceError, match="cannot read server.Os: uname: not found"):
        host.get_fact(Os)


def test_create_fact_sets_a_value_without_reading(root: Path) -> None:
    runner = FakeRunner()
    host = FactHost(System(root=str(root), runner=runner))
    host.create_fact(DebPackages, {"hello": {"2.10-3"}})
    assert host.get_fact(DebPackages) == {"hello": {"2.10-3"}}
    assert runner.calls == []


def test_host_facts_read_os_release_under_the_root(root: Path) -> None:
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    facts = Facts(system=System(root=str(root)))
    assert (facts.os, facts.os_version, facts.os_codename, facts.os_family) == (
        "debian", "12", "bookworm", "debian")
