"""The base and web recipes on a real booted Debian 12 host (issue 3's "Done when" lines).

One host is booted (private network namespace: base sets net.core.somaxconn; packages come
from the local apt repository), trueup is installed from the wheel, and the repository's
recipes/ are copied in. The first test gets a host of its own, fresh; the others share one
host that the ``converged`` fixture converges before each of them, so no test depends on
another having run first: drift, notifications on a real service, a failing verify, failure
isolation, and a no-op run over 50 packages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from agenthost import (
    BUNDLE,
    TRUEUP,
    diagnosed_agent_host,
    http_status,
    is_active,
    journal_cursor,
    main_start,
    run_recipe_checks,
    snapshot,
    snapshot_diff,
    trueup,
    unit_events,
    write_recipe,
)
from testhost import BootedHost

pytestmark = pytest.mark.host

RUN = (BUNDLE, "--runlist", "base,web", "--detailed-exitcodes")
SSHD_CONFIG = "/etc/ssh/sshd_config"
BASE_AND_WEB = {
    "package:base-packages", "group:admins", "user:alice", "user:deploy",
    "file:/etc/sudoers.d/admins", "directory:/run/sshd", f"template:{SSHD_CONFIG}",
    "service:ssh",
    "sysctl:net.core.somaxconn", "link:/etc/localtime", "file:/etc/timezone",
    "template:/etc/motd", "package:nginx", "directory:/var/www/trueup",
    "template:/var/www/trueup/index.html", "file:/etc/nginx/snippets/trueup-headers.conf",
    "template:/etc/nginx/sites-available/default", "service:nginx",
}

# already right on a fresh host: tzdata's postinst makes /etc/localtime and /etc/timezone,
# and the running sshd has its /run/sshd
PRESET = {"link:/etc/localtime", "file:/etc/timezone", "directory:/run/sshd"}


def _passed_count(output: str) -> tuple[int, int]:
    passed = re.search(r"(\d+) passed", output)
    failed = re.search(r"(\d+) failed", output)
    return int(passed.group(1)) if passed else 0, int(failed.group(1)) if failed else 0


def _sha(host: BootedHost, path: str) -> str:
    return host.run(["sha256sum", path]).stdout.split()[0]


@pytest.fixture
def fresh_host(testhost_image: Path, local_repo: Path, trueup_wheel: Path,
               request: pytest.FixtureRequest) -> Iterator[BootedHost]:
    """A host of its own, never converged."""
    yield from diagnosed_agent_host(testhost_image, local_repo, trueup_wheel, request)


@pytest.fixture(scope="module")
def on_host(testhost_image: Path, local_repo: Path, trueup_wheel: Path,
            request: pytest.FixtureRequest) -> Iterator[BootedHost]:
    """One host shared by the tests below (booting one per test would cost minutes)."""
    yield from diagnosed_agent_host(testhost_image, local_repo, trueup_wheel, request)


@pytest.fixture
def converged(on_host: BootedHost) -> BootedHost:
    """The shared host, converged to base+web whatever the test before it left behind."""
    run = trueup(on_host, "run", *RUN)
    assert run.returncode in (0, 2) and run.report["totals"]["failed"] == 0, run
    return on_host


def test_base_and_web_converge_and_their_checks_pass(fresh_host: BootedHost) -> None:
    host = fresh_host
    # The recipes' own checks fail on the fresh host: they really look at this host.
    before = run_recipe_checks(host, "base", "web")
    passed, failed = _passed_count(before.stdout)
    assert before.returncode == 1 and failed >= 7, before.stdout[-3000:] + before.stderr

    ssh_started = main_start(host, "ssh.service")
    assert ssh_started > 0 and is_active(host, "ssh.service")
    machine_somaxconn = Path("/proc/sys/net/core/somaxconn").read_text()
    cursor = journal_cursor(host)
    fresh = snapshot(host)
    plan = trueup(host, "plan", *RUN)
    assert plan.returncode == 2 and plan.changed() >= BASE_AND_WEB - PRESET, plan
    after_plan = snapshot(host)
    assert after_plan == fresh, snapshot_diff(fresh, after_plan)
    first = trueup(host, "run", *RUN)
    assert first.returncode == 2, first
    statuses = first.statuses()
    assert set(statuses) == BASE_AND_WEB and first.report["totals"]["failed"] == 0, statuses
    assert first.changed() >= BASE_AND_WEB - PRESET, statuses
    assert set(statuses.values()) <= {"changed", "unchanged"}, statuses

    # sshd: config valid, restarted exactly once (by the template's notification)
    assert unit_events(host, "ssh.service", cursor) == ["stopping", "stopped", "starting",
                                                        "started"]
    assert main_start(host, "ssh.service") > ssh_started
    assert host.run(["/usr/sbin/sshd", "-t"], check=False).returncode == 0
    ssh = first.resource("service:ssh")
    assert [c["field"] for c in ssh["changes"]] == ["restart"], ssh
    assert ssh["notified"] == [f"template:{SSHD_CONFIG}"], ssh

    # nginx answers 200 on the configured port (8080), from the recipe's document root
    assert http_status(host, "http://127.0.0.1:8080/") == "200"
    assert http_status(host, "http://127.0.0.1:80/").startswith("error")
    assert is_active(host, "nginx.service")

    # the sysctl is live and persisted (in the host's network namespace only); users and
    # groups as declared
    assert host.run(["sysctl", "-n", "net.core.somaxconn"]).stdout.strip() == "1024"
    assert Path("/proc/sys/net/core/somaxconn").read_text() == machine_somaxconn
    assert "net.core.somaxconn = 1024" in host.read_file(
        "/etc/sysctl.d/60-trueup-net.core.somaxconn.conf").decode()
    assert host.run(["id", "-nG", "alice"]).stdout.split() == ["alice", "sudo", "admins"]
    assert host.run(["id", "-nG", "deploy"]).stdout.split() == ["deploy", "admins"]

    # the recipes' own testinfra checks, run against this host as an operator would
    after = run_recipe_checks(host, "base", "web")
    passed, failed = _passed_count(after.stdout)
    assert after.returncode == 0 and failed == 0 and passed == 9, (
        after.stdout[-4000:] + after.stderr[-2000:])

    # second run and plan: 0 changes, nothing touched, sshd not restarted again
    converged = snapshot(host)
    cursor = journal_cursor(host)
    second = trueup(host, "run", *RUN)
    assert second.returncode == 0, second
    assert second.report["totals"]["changed"] == 0
    assert set(second.statuses().values()) == {"unchanged"}, second.statuses()
    plan = trueup(host, "plan", *RUN, json_report=False)
    assert plan.returncode == 0, plan
    assert "0 would change, 0 failed, 18 unchanged" in plan.stdout, plan
    assert unit_events(host, "ssh.service", cursor) == []
    assert unit_events(host, "nginx.service", cursor) == []
    again = snapshot(host)
    assert again == converged, snapshot_diff(converged, again)


def test_drift_is_planned_exactly_and_repaired(converged: BootedHost) -> None:
    host = converged
    # three drifts: nginx stopped, sshd_config edited, a base package removed
    host.run(["systemctl", "stop", "nginx"])
    host.run(["sed", "-i", "s/^PasswordAuthentication no$/PasswordAuthentication yes/",
              SSHD_CONFIG])
    assert "PasswordAuthentication yes" in host.read_file(SSHD_CONFIG).decode()
    host.run(["apt-get", "-q", "remove", "-y", "less"], timeout=300)
    assert host.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "less"],
                    check=False).stdout.strip() != "ii"
    drifted = snapshot(host)
    ssh_started = main_start(host, "ssh.service")
    cursor = journal_cursor(host)

    plan = trueup(host, "plan", *RUN)
    assert plan.returncode == 2, plan
    drifts = {"package:base-packages", f"template:{SSHD_CONFIG}", "service:nginx"}
    # exactly the three drifts, plus the restart the sshd_config repair would trigger
    assert plan.changed() == drifts | {"service:ssh"}, plan.statuses()
    assert [c["field"] for c in plan.resource("service:ssh")["changes"]] == ["restart"]
    package_changes = [c["after"] for c in plan.resource("package:base-packages")["changes"]]
    assert package_changes[0] == "apt-get update"
    assert package_changes[1] == "/var/lib/apt/periodic/update-success-stamp", package_changes
    assert package_changes[2].endswith(" install less"), package_changes
    assert [c["after"] for c in plan.resource("service:nginx")["changes"]] == [
        "systemctl start nginx.service"]
    diff = plan.resource(f"template:{SSHD_CONFIG}")["changes"][0]["diff"]
    assert "-PasswordAuthentication yes" in diff and "+PasswordAuthentication no" in diff
    # ... and changed nothing
    after_plan = snapshot(host)
    assert after_plan == drifted, snapshot_diff(drifted, after_plan)
    assert not is_active(host, "nginx.service")
    assert unit_events(host, "ssh.service", cursor) == []
    assert main_start(host, "ssh.service") == ssh_started

    run = trueup(host, "run", *RUN)
    assert run.returncode == 2, run
    assert run.changed() == drifts | {"service:ssh"}, run.statuses()
    assert [c["after"] for c in run.resource("package:base-packages")["changes"]] == \
        package_changes
    assert is_active(host, "nginx.service")
    assert http_status(host, "http://127.0.0.1:8080/") == "200"
    assert "PasswordAuthentication no" in host.read_file(SSHD_CONFIG).decode()
    assert host.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "less"]).stdout.strip() \
        == "ii"
    assert unit_events(host, "ssh.service", cursor).count("started") == 1
    assert main_start(host, "ssh.service") > ssh_started

    again = trueup(host, "run", *RUN)
    assert again.returncode == 0 and again.changed() == set(), again


def test_delayed_notifications_restart_a_service_once_at_the_end(converged: BootedHost) -> None:
    host = converged
    write_recipe(host, "notify_delayed", {
        "depends": ["web"],
        "resources": [
            *({"file": f"/etc/nginx/conf.d/trueup-{n}.conf", "content": f"# {n}\n",
               "notify": "service:nginx restart"} for n in ("a", "b", "c")),
            # runs after the three and records when nginx's main process last started
            {"command": "probe-after-three",
             "run": ["/bin/sh", "-c", "systemctl show -p ExecMainStartTimestampMonotonic "
                     "--value nginx > /run/trueup-probe"]},
        ],
    })
    started = main_start(host, "nginx.service")
    cursor = journal_cursor(host)
    run = trueup(host, "run", BUNDLE, "--runlist", "notify_delayed", "--detailed-exitcodes")
    assert run.returncode == 2, run
    files = {f"file:/etc/nginx/conf.d/trueup-{n}.conf" for n in ("a", "b", "c")}
    assert run.changed() == files | {"command:probe-after-three", "service:nginx"}, run
    nginx = run.resource("service:nginx")
    assert [c["field"] for c in nginx["changes"]] == ["restart"], nginx
    assert sorted(nginx["notified"]) == sorted(files)
    # not restarted before the resource after the three; restarted once, at the end
    assert int(host.read_file("/run/trueup-probe").decode()) == started
    assert unit_events(host, "nginx.service", cursor).count("started") == 1
    assert main_start(host, "nginx.service") > started
    assert is_active(host, "nginx.service")


def test_immediate_notification_restarts_before_the_next_resource(converged: BootedHost) -> None:
    host = converged
    write_recipe(host, "notify_now", {
        "depends": ["web"],
        "resources": [
            {"file": "/etc/nginx/conf.d/trueup-now.conf", "content": "# now\n",
             "notify": "service:nginx restart", "immediately": True},
            {"command": "probe-after-immediate",
             "run": ["/bin/sh", "-c", "systemctl show -p ExecMainStartTimestampMonotonic "
                     "--value nginx > /run/trueup-probe"]},
        ],
    })
    started = main_start(host, "nginx.service")
    cursor = journal_cursor(host)
    run = trueup(host, "run", BUNDLE, "--runlist", "notify_now", "--detailed-exitcodes")
    assert run.returncode == 2, run
    probed = int(host.read_file("/run/trueup-probe").decode())
    assert probed > started, "nginx was not restarted before the next resource"
    assert main_start(host, "nginx.service") == probed, "restarted again after the probe"
    assert unit_events(host, "nginx.service", cursor).count("started") == 1
    assert run.resource("service:nginx")["notified"] == ["file:/etc/nginx/conf.d/trueup-now.conf"]


def test_template_failing_sshd_t_is_not_installed_and_sshd_not_restarted(
        converged: BootedHost) -> None:
    host = converged
    before = _sha(host, SSHD_CONFIG)
    ssh_started = main_start(host, "ssh.service")
    cursor = journal_cursor(host)
    # "maybe" is no yes/no: the rendered sshd_config fails `sshd -t`
    run = trueup(host, "run", BUNDLE, "--runlist", "base", "--detailed-exitcodes",
                 "-a", "base.sshd.password_authentication=maybe")
    assert run.returncode == 4, run
    template = run.resource(f"template:{SSHD_CONFIG}")
    assert template["status"] == "failed", template
    assert "verify /usr/sbin/sshd refused the new content" in template["error"], template
    assert "maybe" in template["error"], template
    # notify orders the service after the template (as in Puppet): its failure skips it
    ssh = run.resource("service:ssh")
    assert ssh["status"] == "skipped" and "changes" not in ssh, ssh
    assert ssh["error"] == f"skipped because template:{SSHD_CONFIG} did not converge"
    totals = run.report["totals"]
    assert (totals["failed"], totals["changed"], totals["skipped"]) == (1, 0, 1), totals
    assert _sha(host, SSHD_CONFIG) == before
    assert host.run(["ls", "-a", "/etc/ssh"]).stdout.count("trueup-new") == 0
    assert unit_events(host, "ssh.service", cursor) == []
    assert main_start(host, "ssh.service") == ssh_started
    assert is_active(host, "ssh.service")
    # the human report says so too
    report = host.run([TRUEUP, "report"]).stdout
    refused = rf"failed\s+template:{SSHD_CONFIG}\s+content\s+verify /usr/sbin/sshd"
    assert re.search(refused, report), report


def test_stopped_sshd_with_an_edited_config_is_repaired_with_one_start(
        converged: BootedHost) -> None:
    host = converged
    host.run(["systemctl", "stop", "ssh"])
    # systemd removed sshd's RuntimeDirectory, which `sshd -t` (the verify) needs
    assert host.run(["test", "-e", "/run/sshd"], check=False).returncode == 1
    host.run(["sed", "-i", "s/^X11Forwarding no$/X11Forwarding yes/", SSHD_CONFIG])
    cursor = journal_cursor(host)
    run = trueup(host, "run", BUNDLE, "--runlist", "base", "--detailed-exitcodes")
    assert run.returncode == 2, run
    assert run.changed() == {"directory:/run/sshd", f"template:{SSHD_CONFIG}",
                             "service:ssh"}, run.statuses()
    assert "X11Forwarding no" in host.read_file(SSHD_CONFIG).decode()
    assert is_active(host, "ssh.service")
    # started by the service resource after the new config was in place: the delayed
    # restart the template asked for is then redundant, and skipped
    assert unit_events(host, "ssh.service", cursor) == ["starting", "started"]
    again = trueup(host, "run", BUNDLE, "--runlist", "base", "--detailed-exitcodes")
    assert again.returncode == 0, again


def test_changed_unit_file_is_reloaded_before_the_restart(converged: BootedHost) -> None:
    host = converged
    unit = "[Service]\nExecStart=/bin/sleep {{ attributes.demo.seconds }}\n" \
           "[Install]\nWantedBy=multi-user.target\n"
    write_recipe(host, "unitfile", {
        "attributes": {"demo": {"seconds": 1001}},
        "resources": [
            {"file": "/etc/systemd/system/trueup-demo.service", "content": unit,
             "notify": "service:trueup-demo restart"},
            {"service": "trueup-demo", "state": "running", "enabled": True},
        ],
    })
    args = (BUNDLE, "--runlist", "unitfile", "--detailed-exitcodes")
    first = trueup(host, "run", *args)
    assert first.returncode == 2, first
    assert _main_cmdline(host, "trueup-demo") == "/bin/sleep 1001"
    second = trueup(host, "run", *args, "-a", "demo.seconds=1002")
    assert second.returncode == 2, second
    commands = [c["after"] for c in second.resource("service:trueup-demo")["changes"]]
    assert commands[0] == "triggered by file:/etc/systemd/system/trueup-demo.service", commands
    assert _main_cmdline(host, "trueup-demo") == "/bin/sleep 1002"
    assert host.run(["systemctl", "show", "-p", "NeedDaemonReload", "--value",
                     "trueup-demo"]).stdout.strip() == "no"
    third = trueup(host, "run", *args, "-a", "demo.seconds=1002")
    assert third.returncode == 0, third


def _main_cmdline(host: BootedHost, unit: str) -> str:
    pid = host.run(["systemctl", "show", "-p", "MainPID", "--value", unit]).stdout.strip()
    assert pid != "0", f"{unit} has no main process"
    return host.read_file(f"/proc/{pid}/cmdline").decode().replace("\0", " ").strip()


def test_failure_isolation_on_a_real_host(converged: BootedHost) -> None:
    host = converged
    missing = "trueup-no-such-package"
    write_recipe(host, "isolation", {
        "resources": [
            {"package": missing},
            {"file": "/etc/trueup-needs-package.conf", "content": "x\n",
             "requires": [f"package:{missing}"]},
            {"command": "configure-needs-package",
             "run": ["touch", "/etc/trueup-configured"],
             "creates": "/etc/trueup-configured",
             "requires": ["file:/etc/trueup-needs-package.conf"]},
            {"package": "hello"},
            {"file": "/etc/trueup-independent.conf", "content": "y\n"},
        ],
    })
    run = trueup(host, "run", BUNDLE, "--runlist", "isolation", "--detailed-exitcodes")
    assert run.returncode == 6, run
    assert run.statuses() == {
        f"package:{missing}": "failed",
        "file:/etc/trueup-needs-package.conf": "skipped",
        "command:configure-needs-package": "skipped",
        "package:hello": "changed",
        "file:/etc/trueup-independent.conf": "changed",
    }, run.statuses()
    assert f"Unable to locate package {missing}" in run.resource(f"package:{missing}")["error"]
    assert run.resource("file:/etc/trueup-needs-package.conf")["error"] == (
        f"skipped because package:{missing} did not converge")
    assert "file:/etc/trueup-needs-package.conf did not converge" in run.resource(
        "command:configure-needs-package")["error"]
    assert host.run(["hello"]).stdout.strip() == "Hello, world!"
    assert host.read_file("/etc/trueup-independent.conf") == b"y\n"
    for path in ("/etc/trueup-needs-package.conf", "/etc/trueup-configured"):
        assert host.run(["test", "-e", path], check=False).returncode == 1, path
    # the human report names each outcome
    report = host.run([TRUEUP, "report"]).stdout
    for status, ident in (("failed", f"package:{missing}"),
                          ("skipped", "file:/etc/trueup-needs-package.conf"),
                          ("skipped", "command:configure-needs-package"),
                          ("changed", "package:hello"),
                          ("changed", "file:/etc/trueup-independent.conf")):
        assert re.search(rf"^\s*{status}\s+{re.escape(ident)}\s", report, re.M), (ident, report)
    assert "exit 6" in report


def test_noop_run_of_50_packages_reads_the_package_fact_once(converged: BootedHost) -> None:
    host = converged
    installed = host.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\n"]).stdout
    extra = ("hello", "jq")  # planned below as missing
    names = sorted(line.split()[1] for line in installed.splitlines()
                   if line.startswith("ii") and line.split()[1] not in extra)
    assert len(names) >= 50
    # the longest names too: dpkg -l must not truncate them when piped
    longest = sorted(names, key=len)[-10:]
    names = longest + [n for n in names if n not in longest][:40]
    write_recipe(host, "fifty", {"resources": [{"package": name} for name in names]})
    run = trueup(host, "run", BUNDLE, "--runlist", "fifty", "--detailed-exitcodes")
    assert run.returncode == 0, run
    assert run.report["totals"]["unchanged"] == 50, run.statuses()
    assert run.report["facts"]["reads"] == {"deb.DebPackages": 1}, run.report.get("facts")
    # with two of 52 missing, the plan still reads it once and names exactly those two
    host.run(["apt-get", "-q", "remove", "-y", *extra], timeout=300)
    write_recipe(host, "fifty", {"resources": [{"package": name} for name in names]
                                 + [{"package": name} for name in extra]})
    plan = trueup(host, "plan", BUNDLE, "--runlist", "fifty", "--detailed-exitcodes")
    assert plan.returncode == 2, plan
    assert plan.changed() == {f"package:{name}" for name in extra}, plan.statuses()
    assert plan.report["facts"]["reads"] == {"deb.DebPackages": 1}, plan.report.get("facts")
