"""package: planned apt/dnf commands for pre-filled facts, and when the index is refreshed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pyinfra.facts.deb import DebPackages

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import SpecError
from agent.resources.package import APT_STAMP
from tests.resources.fakehost import FakeHost, shell

APT = ('DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::="--force-confdef" '
       '-o Dpkg::Options::="--force-confold"')
LISTS = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
DPKG_HEADER = """\
Desired=Unknown/Install/Remove/Purge/Hold
| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend
|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)
||/ Name           Version         Architecture Description
+++-==============-===============-============-=================================
ii  base-files     12.4+deb12u8    amd64        Debian base system miscellaneous files
"""
JQ = "ii  jq             1.6-2.1         amd64        lightweight command-line JSON processor\n"
HELLO = "ii  hello          2.10-3          amd64        example package based on GNU hello\n"
POLICY_JQ = """\
jq:
  Installed: (none)
  Candidate: 1.6-2.1
  Version table:
     1.6-2.1 500
        500 file:/srv/repo ./ Packages
"""
POLICY_HELLO = """\
hello:
  Installed: (none)
  Candidate: 2.10-3
  Version table:
     2.10-3 500
        500 file:/srv/repo ./ Packages
"""
HOUR = 3600


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    """A Debian host: apt-get and dpkg, base-files installed, fresh lists that know jq."""
    host = FakeHost(tmp_path, tools=("apt-get", "dpkg", "apt-cache"))
    host.fact(DebPackages, DPKG_HEADER)
    host.write(LISTS, "Package: jq\n")
    host.on(["apt-cache", "policy", "jq"], stdout=POLICY_JQ)
    host.on(["apt-cache", "policy", "hello"], stdout=POLICY_HELLO)
    return host


def installs(host: FakeHost, *lines: str) -> None:
    """After the command, dpkg -l lists these packages too (the simulated install)."""
    host.fact(DebPackages, DPKG_HEADER + "".join(lines))


def age(host: FakeHost, path: str, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(host.system.path(path), (when, when))


# --- planned commands ----------------------------------------------------------------------

def test_a_missing_package_is_installed_without_refreshing_fresh_lists(host: FakeHost) -> None:
    res = host.resource({"package": "jq"})
    changes = res.check()
    assert changes == [Change("command", None, f"{APT} install jq")]
    # planning read the package list and asked apt for a candidate, nothing else
    assert host.runner.calls == [shell("dpkg -l"), ["apt-cache", "policy", "jq"]]

    host.on(f"{APT} install jq", then=lambda: installs(host, JQ))
    ran, touched = host.apply(res, changes)
    assert ran == [shell(f"{APT} install jq")]
    assert touched == set()
    assert res.check() == []


def test_an_installed_package_plans_nothing_and_reads_no_index(host: FakeHost) -> None:
    installs(host, JQ)
    os.unlink(host.system.path(LISTS))  # even without lists: nothing to install, no refresh
    res = host.resource({"package": "jq"})
    assert res.check() == []
    assert host.runner.calls == [shell("dpkg -l")]
    assert host.facts.noops == ["package jq is installed (1.6-2.1)"]
    assert host.facts.refreshed_indexes == set()


def test_names_install_in_one_transaction(host: FakeHost) -> None:
    installs(host, HELLO)
    res = host.resource({"package": "tools", "names": ["jq", "hello", "curl"],
                         "update": False})
    assert res.check() == [Change("command", None, f"{APT} install jq curl")]


def test_a_pinned_version_is_installed_by_name_and_version(host: FakeHost) -> None:
    res = host.resource({"package": "jq", "version": "1.6-2.1"})
    assert res.check() == [Change("command", None, f"{APT} install jq=1.6-2.1")]


def test_absent_removes_an_installed_package_without_refreshing(host: FakeHost) -> None:
    installs(host, JQ)
    os.unlink(host.system.path(LISTS))
    res = host.resource({"package": "jq", "state": "absent"})
    changes = res.check()
    assert changes == [Change("command", None, f"{APT} remove jq")]
    host.on(f"{APT} remove jq", then=lambda: installs(host))
    ran, touched = host.apply(res, changes)
    assert ran == [shell(f"{APT} remove jq")]
    assert touched == set()
    assert res.check() == []


# --- update: auto ----------------------------------------------------------------------------

def test_auto_refreshes_a_host_without_lists_once_then_installs(host: FakeHost) -> None:
    os.unlink(host.system.path(LISTS))  # a fresh cloud image
    res = host.resource({"package": "jq"})
    changes = res.check()
    assert changes == [Change("update", "no package lists", "apt-get update"),
                       Change("stamp", None, APT_STAMP),
                       Change("command", None, f"{APT} install jq")]
    assert ["apt-cache", "policy", "jq"] not in host.runner.calls  # the lists decide

    host.on(f"{APT} install jq", then=lambda: installs(host, JQ))
    ran, touched = host.apply(res, changes)
    assert ran == [shell("apt-get update"), shell(f"{APT} install jq")]
    assert touched == {"/var/lib/apt/periodic", APT_STAMP}
    assert host.facts.refreshed_indexes == {"apt"}
    assert res.check() == []


def test_auto_refreshes_at_most_once_per_run(host: FakeHost) -> None:
    os.unlink(host.system.path(LISTS))
    first, second = host.resource({"package": "jq"}), host.resource({"package": "hello"})
    host.apply(first, first.check())
    # the lists are still missing (the fake apt-get update wrote none): no second refresh
    assert second.check() == [Change("command", None, f"{APT} install hello")]


def test_auto_refreshes_lists_older_than_a_day(host: FakeHost) -> None:
    age(host, LISTS, 50 * HOUR)
    res = host.resource({"package": "jq"})
    assert res.check()[0] == Change("update", "package lists are 2 days old", "apt-get update")


def test_auto_trusts_lists_younger_than_update_max_age(host: FakeHost) -> None:
    age(host, LISTS, 50 * HOUR)
    res = host.resource({"package": "jq", "update_max_age": 3 * 24 * HOUR})
    assert res.check() == [Change("command", None, f"{APT} install jq")]


def test_auto_takes_the_age_of_the_index_from_the_update_stamp(host: FakeHost) -> None:
    # apt dates unchanged list files by the mirror: the stamp says when they were fetched
    age(host, LISTS, 30 * 24 * HOUR)
    host.write(APT_STAMP)
    age(host, APT_STAMP, HOUR)
    res = host.resource({"package": "jq", "update_max_age": 2 * HOUR})
    assert res.check() == [Change("command", None, f"{APT} install jq")]
    age(host, APT_STAMP, 3 * HOUR)
    assert res.check()[0].field == "update"


def test_auto_takes_lists_that_link_into_a_file_repository_by_the_link_s_date(
        host: FakeHost) -> None:
    os.unlink(host.system.path(LISTS))
    link = host.system.path("/var/lib/apt/lists/_srv_repo_._Packages")
    os.symlink("/srv/repo/./Packages", link)  # not under the root: never followed
    res = host.resource({"package": "jq"})
    assert res.check() == [Change("command", None, f"{APT} install jq")]
    old = time.time() - 3 * 24 * HOUR
    os.utime(link, (old, old), follow_symlinks=False)
    assert res.check()[0] == Change("update", "package lists are 3 days old", "apt-get update")


def test_auto_refreshes_when_a_package_has_no_candidate(host: FakeHost) -> None:
    host.on(["apt-cache", "policy", "jq"], stdout="jq:\n  Installed: (none)\n"
            "  Candidate: (none)\n  Version table:\n")
    res = host.resource({"package": "jq"})
    assert res.check()[0] == Change("update", "no install candidate for jq", "apt-get update")


def test_auto_refreshes_when_apt_does_not_know_the_package(host: FakeHost) -> None:
    host.on(["apt-cache", "policy", "jq"], stdout="",
            stderr="N: Unable to locate package jq\n")
    assert host.resource({"package": "jq"}).check()[0].before == "no install candidate for jq"


def test_auto_refreshes_when_the_pinned_version_is_unknown(host: FakeHost) -> None:
    res = host.resource({"package": "jq", "version": "1.7.1-3"})
    assert res.check() == [
        Change("update", "no install candidate for jq=1.7.1-3", "apt-get update"),
        Change("stamp", None, APT_STAMP),
        Change("command", None, f"{APT} install jq=1.7.1-3")]


def test_auto_asks_apt_only_about_the_packages_to_install(host: FakeHost) -> None:
    installs(host, JQ)
    host.on(["apt-cache", "policy", "hello"], stdout=POLICY_HELLO)
    res = host.resource({"package": "tools", "names": ["jq", "hello"]})
    assert res.check() == [Change("command", None, f"{APT} install hello")]
    assert ["apt-cache", "policy", "hello"] in host.runner.calls


# --- update: true / false ----------------------------------------------------------------------

def test_update_false_never_refreshes(host: FakeHost) -> None:
    os.unlink(host.system.path(LISTS))
    res = host.resource({"package": "jq", "update": False})
    assert res.check() == [Change("command", None, f"{APT} install jq")]
    assert host.resource({"package": "jq", "update": "false"}).update is False


def test_update_true_refreshes_before_every_install(host: FakeHost) -> None:
    host.facts.refreshed_indexes.add("apt")  # even after a refresh in this run
    res = host.resource({"package": "jq", "update": True})
    assert res.check() == [Change("update", "update: true", "apt-get update"),
                           Change("stamp", None, APT_STAMP),
                           Change("command", None, f"{APT} install jq")]
    assert host.resource({"package": "jq", "update": "true"}).update is True


def test_update_true_does_not_refresh_when_nothing_is_missing(host: FakeHost) -> None:
    installs(host, JQ)
    assert host.resource({"package": "jq", "update": True}).check() == []


def test_the_stamp_replaces_an_old_one(host: FakeHost) -> None:
    host.write(APT_STAMP)
    age(host, APT_STAMP, 10 * 24 * HOUR)
    age(host, LISTS, 10 * 24 * HOUR)
    res = host.resource({"package": "jq"})
    changes = res.check()
    host.on(f"{APT} install jq", then=lambda: installs(host, JQ))
    ran, touched = host.apply(res, changes)
    assert touched == {APT_STAMP}
    assert time.time() - host.system.stat(APT_STAMP).st_mtime < 60


def test_a_failed_refresh_stops_before_the_install(host: FakeHost) -> None:
    os.unlink(host.system.path(LISTS))
    host.on("apt-get update", returncode=100, stderr="E: The repository is not signed.\n")
    res = host.resource({"package": "jq"})
    with pytest.raises(ResourceError, match="not signed"):
        host.apply(res, res.check())
    assert host.runner.shell_commands()[-1] == "apt-get update"
    assert not host.system.exists(APT_STAMP)
    assert host.facts.refreshed_indexes == set()


# --- spec and host errors ----------------------------------------------------------------------

@pytest.mark.parametrize("spec", [
    {"package": "jq; rm -rf /"},
    {"package": "tools", "names": ["jq", "$(reboot)"]},
    {"package": "jq", "version": "1.6 && reboot"},
    {"package": "tools", "names": ["jq", "hello"], "version": "1"},
    {"package": "jq", "update": "sometimes"},
    {"package": "jq", "update_max_age": -1},
])
def test_bad_specs_are_refused(host: FakeHost, spec: dict) -> None:
    with pytest.raises(SpecError):
        host.resource(spec)


def test_a_host_without_a_package_manager_fails_clearly(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    with pytest.raises(ResourceError, match="no supported package manager"):
        host.resource({"package": "jq"}).check()


def test_dnf_hosts_refresh_only_when_asked(tmp_path: Path) -> None:
    from pyinfra.facts.rpm import RpmPackages

    host = FakeHost(tmp_path, tools=("dnf", "rpm"))
    host.fact(RpmPackages, "bash 5.2.26-3.fc40\n")
    res = host.resource({"package": "jq"})
    assert res.check() == [Change("command", None, "dnf install -y jq")]
    forced = host.resource({"package": "jq", "update": True})
    assert [c.after for c in forced.check()] == ["dnf update -y", "dnf install -y jq"]
