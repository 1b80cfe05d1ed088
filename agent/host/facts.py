"""Facts about this host, each gathered the first time something reads it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping

from agent.host.system import System
from agent.model import AttrMapping

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any


def _os_release(system: System) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = system.read(path).decode("utf-8", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep:
                out[key] = value.strip().strip('"')
        return out
    return out


def _memory_mb(system: System) -> int:
    try:
        text = system.read("/proc/meminfo").decode("ascii", "replace")
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def _fqdn() -> str:
    import socket

    return socket.getfqdn()


def _os_family(release: Mapping[str, str]) -> str:
    ids = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    for family in ("debian", "rhel", "fedora", "suse", "arch", "alpine"):
        if family in ids:
            return "rhel" if family == "fedora" else family
    return release.get("ID", os.uname().sysname.lower())


GATHERERS: dict[str, Callable[[Facts], Any]] = {
    "hostname": lambda f: os.uname().nodename.split(".")[0],
    "fqdn": lambda f: _fqdn(),
    "os_release": lambda f: _os_release(f._system),
    "os": lambda f: f.os_release.get("ID", os.uname().sysname.lower()),
    "os_family": lambda f: _os_family(f.os_release),
    "os_version": lambda f: f.os_release.get("VERSION_ID", os.uname().release),
    "os_codename": lambda f: f.os_release.get("VERSION_CODENAME", ""),
    "kernel": lambda f: os.uname().release,
    "architecture": lambda f: os.uname().machine,
    "cpus": lambda f: os.cpu_count() or 1,
    "memory_mb": lambda f: _memory_mb(f._system),
    "python": lambda f: ".".join(map(str, sys.version_info[:3])),
    "python_executable": lambda f: sys.executable,
    "env": lambda f: dict(os.environ),
    "ec2": lambda f: _instance(),
    "init": lambda f: _machine().init(f._system),
    "systemd_version": lambda f: _machine().systemd_version(f._system),
    "virtual": lambda f: _machine().virtual(f._system),
    "mounts": lambda f: _machine().mounts(f._system),
    "selinux": lambda f: _machine().selinux(f._system),
}


def _machine() -> Any:
    from agent.host import machine

    return machine


def _instance() -> Any:
    from agent.aws.ec2 import InstanceFacts

    return InstanceFacts()  # lazy: IMDS is asked only when a key is read


class Facts(AttrMapping):
    """Lazily gathered facts: ``facts.hostname`` runs only the hostname gatherer.

    ``ec2`` is the run's instance facts (agent.aws.ec2), shared with the rest of the
    run; without it ``facts.ec2`` makes its own on first read. Files (os-release,
    meminfo) are read through ``system`` (default: this machine).
    """

    MISSING = "no fact named {!r}"

    def __init__(self, overrides: Mapping[str, Any] | None = None, ec2: Any = None,
                 system: System | None = None) -> None:
        self._system = system or System()
        self._gatherers = dict(GATHERERS)
        if ec2 is not None:  # the run's instance facts (lazy: IMDS is asked on first read)
            self._gatherers["ec2"] = lambda f: ec2
        self._values: dict[str, Any] = dict(overrides or {})
        self.used: set[str] = set()

    def provide(self, name: str, gather: Callable[[Facts], Any]) -> None:
        self._gatherers[name] = gather

    def gatherer(self, name: str) -> Callable[[Facts], Any] | None:
        """The gatherer of ``name`` (to wrap it), without gathering anything."""
        return self._gatherers.get(name)

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            gather = self._gatherers.get(name)
            if gather is None:
                raise KeyError(name)
            self._values[name] = gather(self)
        self.used.add(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._gatherers) | set(self._values)))

    def __len__(self) -> int:
        return len(set(self._gatherers) | set(self._values))

    def gather_all(self, skip: tuple[str, ...] = ("env",)) -> dict[str, Any]:
        """Every fact (except ``skip``), for ``trueup facts``."""
        out = {}
        for name in self:
            if name not in skip:
                value = self[name]
                out[name] = value.as_dict() if hasattr(value, "as_dict") else value
        return out
