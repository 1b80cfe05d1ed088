"""Facts about the machine around the OS: init system, systemd, virtualization, mounts, SELinux.

Each is gathered the first time a recipe reads it (agent.host.facts), from files under
the System's root and, where only a tool knows, ``systemctl --version`` and
``systemd-detect-virt``::

    facts.init              "systemd", or the name of PID 1 ("init", "tini" …)
    facts.systemd_version   252 (0 when systemd is not installed)
    facts.virtual           {kind: container | vm | none, type: systemd-nspawn, kvm, … or ""}
    facts.mounts            [{device, mount, fstype, options}], as /proc/self/mounts lists them
    facts.selinux           {enabled, mode: enforcing | permissive | disabled, config_mode, type}
"""

from __future__ import annotations

import re
from typing import Any

from agent.errors import ResourceError
from agent.host.system import System

TIMEOUT = 10  # seconds for one of the tools above


def _text(system: System, path: str) -> str | None:
    try:
        return system.read(path).decode("utf-8", "replace")
    except OSError:
        return None


def _output(system: System, argv: list[str]) -> tuple[int, str] | None:
    """(exit code, stdout) of a tool, or None when it is not installed or cannot run."""
    if system.which(argv[0]) is None:
        return None
    try:
        done = system.run(argv, timeout=TIMEOUT)
    except ResourceError:
        return None
    return done.returncode, done.stdout


def init(system: System) -> str:
    """``systemd`` when systemd runs this host (sd_booted's test), else PID 1's name."""
    if system.isdir("/run/systemd/system"):
        return "systemd"
    comm = _text(system, "/proc/1/comm")
    return comm.strip() if comm and comm.strip() else "unknown"


def systemd_version(system: System) -> int:
    found = _output(system, ["systemctl", "--version"])
    if found is None or found[0] != 0:
        return 0
    match = re.match(r"systemd (\d+)", found[1])
    return int(match[1]) if match else 0


_CONTAINER_FILES = {"/.dockerenv": "docker", "/run/.containerenv": "podman"}


def virtual(system: System) -> dict[str, str]:
    """Whether this host is a container, a virtual machine, or neither, and which kind."""
    for flag, kind in (("--container", "container"), ("--vm", "vm")):
        found = _output(system, ["systemd-detect-virt", flag])
        if found is None:
            break
        name = found[1].strip()
        if found[0] == 0 and name and name != "none":
            return {"kind": kind, "type": name}
    else:
        return {"kind": "none", "type": ""}
    # no systemd-detect-virt: the marks containers and hypervisors leave
    for path, name in _CONTAINER_FILES.items():
        if system.exists(path):
            return {"kind": "container", "type": name}
    environ = _text(system, "/proc/1/environ") or ""
    for entry in environ.split("\0"):
        if entry.startswith("container="):
            return {"kind": "container", "type": entry.partition("=")[2] or "container"}
    cpuinfo = _text(system, "/proc/cpuinfo") or ""
    if re.search(r"^flags\s*:.*\bhypervisor\b", cpuinfo, re.MULTILINE):
        return {"kind": "vm", "type": _vendor(system)}
    return {"kind": "none", "type": ""}


def _vendor(system: System) -> str:
    product = (_text(system, "/sys/class/dmi/id/sys_vendor") or "").strip().lower()
    for mark, name in (("amazon", "amazon"), ("qemu", "qemu"), ("kvm", "kvm"),
                       ("vmware", "vmware"), ("microsoft", "microsoft"), ("xen", "xen")):
        if mark in product:
            return name
    return "vm"


_ESCAPE = re.compile(r"\\([0-7]{3})")


def mounts(system: System) -> list[dict[str, str]]:
    text = _text(system, "/proc/self/mounts") or _text(system, "/proc/mounts") or ""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        device, mount, fstype, options = (_ESCAPE.sub(lambda m: chr(int(m[1], 8)), f)
                                          for f in fields[:4])
        out.append({"device": device, "mount": mount, "fstype": fstype, "options": options})
    return out


def selinux(system: System) -> dict[str, Any]:
    config: dict[str, str] = {}
    for line in (_text(system, "/etc/selinux/config") or "").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            config[key.strip()] = value.strip().strip('"')
    enforce = _text(system, "/sys/fs/selinux/enforce")
    enabled = enforce is not None
    mode = ("enforcing" if enforce.strip() == "1" else "permissive") if enabled else "disabled"
    return {"enabled": enabled, "mode": mode,
            "config_mode": config.get("SELINUX", "disabled" if not config else ""),
            "type": config.get("SELINUXTYPE", "")}
