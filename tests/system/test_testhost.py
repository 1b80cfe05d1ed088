"""Proof that the test-host harness (tests/testhost.py) does what the system tests need."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from testhost import (
    CGROUP_BASE,
    STATE_DIR,
    BootedHost,
    ChrootHost,
    HostCommandError,
    HostCommandTimeout,
    _cgroup_roots,
    cleanup_stale,
)

pytestmark = pytest.mark.host


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gone(host: BootedHost | ChrootHost) -> None:
    """Assert that nothing of a stopped host is left on the machine."""
    for pid in (host.leader, host.pid):
        assert pid is None or not Path(f"/proc/{pid}").exists(), f"{pid} still alive"
    assert not (STATE_DIR / host.name).exists()
    for root in _cgroup_roots():
        assert not (root / CGROUP_BASE / host.name).exists()
    assert not Path(f"/run/systemd/nspawn/propagate/{host.name}").exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert host.name not in mounts


def test_booted_host_runs_systemd_as_pid1(booted_host: BootedHost) -> None:
    assert booted_host.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    assert booted_host.system_state == "running"
    state = booted_host.run(["systemctl", "is-system-running"], check=False).stdout.strip()
    assert state == "running"
    assert booted_host.run(["systemd-detect-virt"]).stdout.strip() == "systemd-nspawn"
    assert booted_host.run(["hostname"]).stdout.strip() == booted_host.name
    assert "bookworm" in booted_host.run(["cat", "/etc/os-release"]).stdout
    # run_unit: a transient service, exit code and output propagated
    res = booted_host.run_unit(["sh", "-c", "echo from-unit; exit 3"], check=False)
    assert res.returncode == 3
    assert "from-unit" in res.stdout
    with pytest.raises(HostCommandError) as err:
        booted_host.run(["false"])
    assert err.value.returncode == 1
    host = booted_host.testinfra()
    assert host.process.get(pid=1).comm == "systemd"
    assert host.service("systemd-journald").is_running
    assert booted_host.boot_seconds is not None and booted_host.boot_seconds < 15


def test_service_start_stop_seen_by_testinfra(booted_host: BootedHost) -> None:
    port = _free_port()
    booted_host.write_file("/srv/www/index.html", "hello from the test host\n")
    booted_host.write_file(
        "/etc/systemd/system/th-web.service",
        textwrap.dedent(
            f"""\
            [Unit]
            Description=test web server
            [Service]
            ExecStart=/usr/bin/python3 -m http.server {port} --bind 127.0.0.1 -d /srv/www
            [Install]
            WantedBy=multi-user.target
            """
        ),
    )
    booted_host.run(["systemctl", "daemon-reload"])
    booted_host.run(["systemctl", "enable", "--now", "th-web.service"])
    host = booted_host.testinfra()
    web = host.service("th-web")
    assert web.is_enabled
    assert web.is_running
    listening = host.socket(f"tcp://127.0.0.1:{port}")
    for _ in range(100):
        if listening.is_listening:
            break
        time.sleep(0.05)
    assert listening.is_listening
    page = booted_host.run(
        [
            "python3",
            "-c",
            f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/').read().decode())",
        ]
    )
    assert "hello from the test host" in page.stdout

    booted_host.run(["systemctl", "stop", "th-web.service"])
    assert not web.is_running
    assert not host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert web.is_enabled
    journal = booted_host.run(["journalctl", "-u", "th-web.service", "--no-pager"]).stdout
    assert "Stopped th-web.service" in journal or "Deactivated" in journal


def test_two_hosts_are_isolated(testhost_image: Path) -> None:
    with BootedHost(testhost_image) as a, BootedHost(testhost_image) as b:
        assert a.name != b.name
        a.write_file("/root/only-in-a", "a\n")
        a.run(["systemd-run", "--unit=th-sleeper", "sleep", "600"])
        assert a.run(["test", "-e", "/root/only-in-a"], check=False).returncode == 0
        assert b.run(["test", "-e", "/root/only-in-a"], check=False).returncode == 1
        assert a.run(["systemctl", "is-active", "th-sleeper"], check=False).stdout.strip() == (
            "active"
        )
        assert b.run(["systemctl", "is-active", "th-sleeper"], check=False).returncode != 0
        assert "sleep 600" not in b.run(["ps", "-eo", "args"]).stdout
        assert b.run(["hostname"]).stdout.strip() == b.name
        # each host has its own cgroup tree (not the machine's root cgroup)
        for host in (a, b):
            cgroup = Path(f"/proc/{host.leader}/cgroup").read_text()
            assert f"/{CGROUP_BASE}/{host.name}/" in cgroup
    _gone(a)
    _gone(b)


def test_overlay_discarded_after_stop(testhost_image: Path) -> None:
    marker = "/etc/trueup-overlay-marker"
    before = sorted(p.name for p in (testhost_image / "etc").iterdir())
    with BootedHost(testhost_image) as host:
        host.write_file(marker, "written in the host\n")
        host.run(["useradd", "-m", "th-alice"])
        host.run(["rm", "-f", "/etc/debian_version"])
        assert host.testinfra().user("th-alice").exists
    _gone(host)
    assert not (testhost_image / marker.lstrip("/")).exists()
    assert (testhost_image / "etc/debian_version").exists()
    assert "th-alice" not in (testhost_image / "etc/passwd").read_text()
    assert sorted(p.name for p in (testhost_image / "etc").iterdir()) == before
    # and a graceful stop cleans up as well; the next host starts pristine
    host2 = BootedHost(testhost_image).start()
    try:
        assert host2.run(["test", "-e", marker], check=False).returncode == 1
        assert host2.run(["id", "th-alice"], check=False).returncode != 0
    finally:
        host2.stop(graceful=True)
    _gone(host2)


def test_apt_install_inside_booted_host(booted_host: BootedHost) -> None:
    booted_host.run(["apt-get", "-q", "update"], timeout=300)
    booted_host.run(
        ["apt-get", "-q", "install", "-y", "--no-install-recommends", "hello"], timeout=300
    )
    assert booted_host.run(["hello"]).stdout.strip() == "Hello, world!"
    assert booted_host.testinfra().package("hello").is_installed


def test_private_network_host_keeps_sysctls_inside_and_installs_from_the_local_repo(
    testhost_image: Path, local_repo: Path
) -> None:
    machine = Path("/proc/sys/net/core/somaxconn").read_text().strip()
    inside = "1111" if machine != "1111" else "1112"
    with BootedHost(testhost_image, network="private", apt_repo=local_repo) as host:
        links = host.run(["ip", "-o", "link"]).stdout.splitlines()
        assert [line.split(":")[1].strip() for line in links] == ["lo"]
        host.run(["sysctl", "-w", f"net.core.somaxconn={inside}"])
        assert host.run(["sysctl", "-n", "net.core.somaxconn"]).stdout.strip() == inside
        assert Path("/proc/sys/net/core/somaxconn").read_text().strip() == machine
        # the local repository is the only apt source, read-only, and apt lists start empty
        sources = host.run(["apt-get", "indextargets", "--format", "$(URI)"]).stdout
        assert sources.strip() == "", sources
        host.run(["apt-get", "-q", "update"], timeout=120)
        policy = host.run(["apt-cache", "policy", "hello"]).stdout
        assert "file:/srv/repo ./ Packages" in policy and "deb.debian.org" not in policy
        host.run(["apt-get", "-q", "install", "-y", "hello"], timeout=300)
        assert host.run(["hello"]).stdout.strip() == "Hello, world!"
        assert host.run(["touch", "/srv/repo/x"], check=False).returncode != 0
    assert Path("/proc/sys/net/core/somaxconn").read_text().strip() == machine


def test_chroot_host_runs_commands_and_testinfra_sees_files(
    chroot_host: ChrootHost, tmp_path: Path, testhost_image: Path
) -> None:
    assert chroot_host.run(["cat", "/etc/debian_version"]).stdout.startswith("12.")
    local = tmp_path / "app.conf"
    local.write_text("answer = 42\n")
    local.chmod(0o640)
    chroot_host.put(local, "/etc/trueup-test/app.conf")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f.txt").write_text("in a tree\n")
    chroot_host.put(tree, "/srv/tree")
    chroot_host.run(["useradd", "-m", "-s", "/bin/bash", "th-bob"])

    host = chroot_host.testinfra()
    conf = host.file("/etc/trueup-test/app.conf")
    assert conf.exists and conf.is_file
    assert conf.contains("answer = 42")
    assert conf.mode == 0o640
    assert host.file("/srv/tree/sub/f.txt").content_string == "in a tree\n"
    assert host.user("th-bob").shell == "/bin/bash"
    assert host.package("systemd").is_installed
    assert chroot_host.read_file("/srv/tree/sub/f.txt") == b"in a tree\n"
    # no init: systemctl can't talk to a manager, but the host's files are all there
    assert chroot_host.run(["systemctl", "is-system-running"], check=False).returncode != 0
    assert chroot_host.run(["cat", "/proc/1/comm"]).stdout.strip() == "sleep"
    chroot_host.stop()
    _gone(chroot_host)
    assert not (testhost_image / "etc/trueup-test").exists()
    assert not (testhost_image / "srv/tree").exists()


def test_run_timeout_kills_the_command_and_argv_is_required(chroot_host: ChrootHost) -> None:
    with pytest.raises(TypeError):
        chroot_host.run("echo not a list")  # type: ignore[arg-type]
    t0 = time.monotonic()
    with pytest.raises(HostCommandTimeout):
        chroot_host.run(["sleep", "77"], timeout=1)
    assert time.monotonic() - t0 < 10
    assert "sleep 77" not in chroot_host.run(["ps", "-eo", "args"]).stdout
    # arguments reach the command verbatim: no shell in between
    weird = "a b; echo injected $(id) 'q' \"d\""
    assert chroot_host.run(["printf", "%s", weird]).stdout == weird


def test_stale_hosts_of_dead_processes_are_cleaned_up(testhost_image: Path) -> None:
    script = textwrap.dedent(
        f"""\
        import json, os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        import testhost
        h = testhost.BootedHost({str(testhost_image)!r}).start()
        c = testhost.ChrootHost({str(testhost_image)!r}).start()
        print(json.dumps([[h.name, h.leader, h.pid], [c.name, c.leader, c.pid]]), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # crash: no stop(), no atexit
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    hosts = json.loads(proc.stdout)
    removed = cleanup_stale()
    for name, leader, pid in hosts:
        assert name in removed
        for p in (leader, pid):
            deadline = time.monotonic() + 10
            while Path(f"/proc/{p}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not Path(f"/proc/{p}").exists()
        assert not (STATE_DIR / name).exists()
        for root in _cgroup_roots():
            assert not (root / CGROUP_BASE / name).exists()
    # hosts of live processes (this one) are left alone
    with BootedHost(testhost_image) as mine:
        assert mine.name not in cleanup_stale()
        assert mine.running
    assert os.path.isdir(testhost_image)


def test_install_wheel_in_booted_host(booted_host: BootedHost, trueup_wheel: Path) -> None:
    venv = booted_host.install_wheel(trueup_wheel)
    assert venv == "/opt/trueup/venv"
    res = booted_host.run(
        [f"{venv}/bin/python", "-c", "import agent, sys; print(agent.__file__, sys.version)"]
    )
    assert res.stdout.startswith("/opt/trueup/venv/lib/python3")
    host = booted_host.testinfra()
    assert host.file(f"{venv}/bin/trueup").exists
    pip_list = booted_host.run([f"{venv}/bin/pip", "list", "--format=json"]).stdout
    names = {p["name"].lower() for p in json.loads(pip_list)}
    assert {"trueup", "pyyaml", "jinja2", "boto3", "pyinfra"} <= names
    # the agent can run as a unit inside the host
    res = booted_host.run_unit([f"{venv}/bin/python", "-c", "import agent; print('unit-ok')"])
    assert "unit-ok" in res.stdout
