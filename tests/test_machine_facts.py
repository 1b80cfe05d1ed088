"""facts.init, systemd_version, virtual, mounts, selinux: read under a root, only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.host.facts import Facts
from agent.host.system import System
from tests.fakerunner import FakeRunner


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "host"


def put(root: Path, path: str, text: str = "", executable: bool = False) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    if executable:
        target.chmod(0o755)


def facts_of(root: Path, runner: FakeRunner | None = None) -> Facts:
    root.mkdir(parents=True, exist_ok=True)
    return Facts(system=System(root=str(root), runner=runner or FakeRunner()))


def test_init_is_systemd_when_systemd_runs_the_host(root):
    (root / "run/systemd/system").mkdir(parents=True)
    put(root, "/proc/1/comm", "systemd\n")
    assert facts_of(root).init == "systemd"


def test_init_is_pid_1s_name_otherwise(root):
    put(root, "/proc/1/comm", "tini\n")
    assert facts_of(root).init == "tini"
    assert facts_of(root / "empty").init == "unknown"


def test_systemd_version_from_systemctl(root):
    put(root, "/usr/bin/systemctl", executable=True)
    runner = FakeRunner()
    runner.answer(["systemctl", "--version"], stdout="systemd 252 (252.39-1~deb12u2)\n+PAM\n")
    assert facts_of(root, runner).systemd_version == 252
    assert facts_of(root / "none").systemd_version == 0  # no systemctl: 0, so >= compares


def test_virtual_from_systemd_detect_virt(root):
    put(root, "/usr/bin/systemd-detect-virt", executable=True)
    runner = FakeRunner()
    runner.answer(["systemd-detect-virt", "--container"], stdout="none\n", returncode=1)
    runner.answer(["systemd-detect-virt", "--vm"], stdout="kvm\n")
    assert facts_of(root, runner).virtual == {"kind": "vm", "type": "kvm"}
    runner.answer(["systemd-detect-virt", "--container"], stdout="systemd-nspawn\n")
    assert facts_of(root, runner).virtual == {"kind": "container", "type": "systemd-nspawn"}
    runner.answer(["systemd-detect-virt", "--container"], stdout="none\n", returncode=1)
    runner.answer(["systemd-detect-virt", "--vm"], stdout="none\n", returncode=1)
    assert facts_of(root, runner).virtual == {"kind": "none", "type": ""}


def test_virtual_without_systemd_detect_virt(root):
    put(root, "/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n")
    put(root, "/sys/class/dmi/id/sys_vendor", "Amazon EC2\n")
    assert facts_of(root).virtual == {"kind": "vm", "type": "amazon"}
    put(root, "/proc/1/environ", "PATH=/bin\0container=lxc\0")
    assert facts_of(root).virtual == {"kind": "container", "type": "lxc"}
    put(root, "/.dockerenv")
    assert facts_of(root).virtual == {"kind": "container", "type": "docker"}
    assert facts_of(root / "bare").virtual == {"kind": "none", "type": ""}


def test_mounts_decode_escaped_paths(root):
    put(root, "/proc/self/mounts",
        "/dev/vda1 / ext4 rw,relatime 0 0\n"
        "tmpfs /run/my\\040disk tmpfs rw,nosuid,size=10k 0 0\n")
    assert facts_of(root).mounts == [
        {"device": "/dev/vda1", "mount": "/", "fstype": "ext4", "options": "rw,relatime"},
        {"device": "tmpfs", "mount": "/run/my disk", "fstype": "tmpfs",
         "options": "rw,nosuid,size=10k"}]


@pytest.mark.parametrize(("enforce", "config", "expected"), [
    (None, None, {"enabled": False, "mode": "disabled", "config_mode": "disabled", "type": ""}),
    ("1", "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
     {"enabled": True, "mode": "enforcing", "config_mode": "enforcing", "type": "targeted"}),
    ("0", "# comment\nSELINUX=permissive\n",
     {"enabled": True, "mode": "permissive", "config_mode": "permissive", "type": ""}),
])
def test_selinux(root, enforce, config, expected):
    if enforce is not None:
        put(root, "/sys/fs/selinux/enforce", enforce)
    if config is not None:
        put(root, "/etc/selinux/config", config)
    assert facts_of(root).selinux == expected


def test_each_is_gathered_only_when_read(root):
    put(root, "/usr/bin/systemctl", executable=True)
    put(root, "/usr/bin/systemd-detect-virt", executable=True)
    runner = FakeRunner()
    runner.answer(["systemctl", "--version"], stdout="systemd 247\n")
    facts = facts_of(root, runner)
    assert facts.os_family is not None and facts.mounts == []
    assert runner.calls == []  # neither tool ran
    assert facts.systemd_version == 247 and facts.systemd_version == 247
    assert runner.calls == [["systemctl", "--version"]]  # once


def test_a_recipe_decides_on_the_new_facts(tmp_path, trueup):
    from tests.helpers import write_bundle

    target = tmp_path / "out"
    bundle = write_bundle(tmp_path / "b", {"m": f"""\
        resources:
          - file: {target}
            content: "{{{{ facts.init }}}} {{{{ facts.virtual.kind }}}} \\
              {{{{ facts.selinux.mode }}}}\\n"
            when: facts.systemd_version >= 0 and facts.mounts | length > 0
    """}, runlist="m")
    out = trueup("run", str(bundle))
    assert out.returncode == 0, out.stdout + out.stderr
    init, kind, mode = target.read_text().split()
    assert init and kind in ("container", "vm", "none") and mode in (
        "enforcing", "permissive", "disabled")
