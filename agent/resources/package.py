"""package: system packages through apt, dnf or yum (pyinfra plans the commands)."""

from __future__ import annotations

import re
import time
from typing import Any

from agent.errors import ResourceError
from agent.host.pyinfra_bridge import plan, run_commands
from agent.model import Change
from agent.resources import STRLIST, Resource, SpecError, f

MANAGERS = (("apt", "apt-get"), ("dnf", "dnf"), ("yum", "yum"))
APT_LISTS = "/var/lib/apt/lists"
# Written after every successful `apt-get update` by Ubuntu's apt hook and by pyinfra's
# apt.update(cache_time=...); trueup writes it too, so the age of the index is known even
# when apt kept list files dated by the mirror.
APT_STAMP = "/var/lib/apt/periodic/update-success-stamp"
DAY = 24 * 3600
# Package names and versions go into planned shell commands: nothing a shell interprets
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_+.:~-]*(=[A-Za-z0-9_+.:~-]+)?$")  # jq, jq=1.6-2
_VERSION = re.compile(r"^[A-Za-z0-9_+.:~-]+$")
_TABLE_VERSION = re.compile(r"^ (?:\*\*\*|   ) (\S+) -?\d+$")  # a version in apt-cache policy


class Package(Resource, kind="package"):
    """Packages installed (or removed) with the host's package manager.

    ``names`` installs many packages in one transaction; the resource's name is
    then only a label. The installed-package list is read once per run.

    ``update`` decides when the package index is refreshed (``apt-get update``),
    and only ever when something is to be installed, so a run that changes
    nothing never refreshes:

    - ``auto`` (default): on apt, refresh at most once per run, when the index
      lists are missing (a fresh cloud image), older than ``update_max_age``
      seconds, or a package to install has no install candidate (or not the
      wanted version), or an ``apt_repository`` changed earlier in the run (that
      refresh is then the run's only one). dnf and yum refresh expired metadata
      themselves: no extra refresh.
    - ``true``: refresh before every install.
    - ``false``: never refresh.

    After a refresh on apt, /var/lib/apt/periodic/update-success-stamp is written
    (as Ubuntu's apt and pyinfra do): its age is the age of the index.

    Spec:
        package (str): the package name (or a label when ``names`` is given).
        names (list): several packages, installed together.
        version (str): an exact version (single package only).
        update (str | bool): auto (default), true or false.
        update_max_age (int): with ``update: auto``, index lists older than this
            many seconds are refreshed before an install (default 86400, a day).
        state (str): present (default) or absent.

    Example:
        - package: nginx
        - package: tools
          names: [curl, jq, htop]
        - package: hello
          update: true
    """

    FIELDS = {
        "names": f(STRLIST, None, "several packages in one transaction"),
        "version": f((str, int, float), None, "exact version"),
        "update": f((bool, str), "auto", "refresh the package index before installing: "
                    "auto (when missing, stale or without the package), true or false"),
        "update_max_age": f(int, DAY, "with update: auto, seconds after which the index is "
                            "refreshed before an install"),
    }
    SYSTEM = True
    EXAMPLES = [{"package": "hello"},
                {"package": "tools", "names": ["jq", "hello"], "update": True}]
    SENSITIVE_EXAMPLE = {"package": "tools", "names": ["hello-{canary}"], "sensitive": True}

    def validate(self) -> None:
        names = self.spec.get("names")
        self.names = ([names] if isinstance(names, str) else list(names)) if names else [self.name]
        for name in self.names:
            if not isinstance(name, str) or not _NAME.match(name):
                raise SpecError("names" if names else "package",
                                f"{name!r} is not a package name (letters, digits and "
                                "_ + . : ~ - only, and =VERSION)")
        version = self.spec.get("version")
        if version is not None:
            if len(self.names) != 1:
                raise SpecError("version", "version applies to a single package, not names:")
            if not _VERSION.match(str(version)):
                raise SpecError("version", f"{version!r} is not a package version")
            self.names = [f"{self.names[0]}={version}"]
        update = self.get("update")
        if isinstance(update, str):
            update = {"auto": "auto", "true": True, "false": False}.get(update.lower())
        if update is None:
            raise SpecError("update", f"update must be auto, true or false, not "
                            f"{self.spec.get('update')!r}")
        self.update = update
        self.max_age = self.get("update_max_age")
        if self.max_age < 0:
            raise SpecError("update_max_age", "update_max_age is a number of seconds >= 0")

    def _manager(self) -> str:
        for tool, binary in MANAGERS:
            if self.ctx.system.which(binary):
                return tool
        raise ResourceError("no supported package manager (apt-get, dnf or yum) found")

    def check(self) -> list[Change]:
        manager = self._manager()
        module = _operations(manager)
        host = self.ctx.fact_host
        commands = plan(module.packages, host, packages=self.names,
                        present=self.state == "present")
        changes = [Change("command", None, cmd) for cmd in commands]
        if not commands or self.state != "present":
            return changes
        why = self._refresh_reason(manager)
        if why is None:
            return changes
        refresh = [Change("update", why, cmd) for cmd in plan(module.update, host)]
        if manager == "apt":
            refresh.append(Change("stamp", None, APT_STAMP))
        return refresh + changes

    def _refresh_reason(self, manager: str) -> str | None:
        """Why the index must be refreshed before installing, or None."""
        if self.update is True:
            return "update: true"
        if self.update is False or manager != "apt":
            return None
        if "apt-update" in self.ctx.fact_host.pending:
            return "a repository changed"
        if manager in self.ctx.fact_host.refreshed_indexes:
            return None  # once per run
        system = self.ctx.system
        try:
            lists = [f"{APT_LISTS}/{n}" for n in system.listdir(APT_LISTS) if "_Packages" in n]
        except FileNotFoundError:
            lists = []
        if not lists:
            return "no package lists"
        newest = max(_mtime(system, path) for path in [*lists, APT_STAMP])
        age = time.time() - newest
        if age > self.max_age:
            return f"package lists are {_duration(age)} old"
        missing = self._without_candidate()
        if missing:
            return f"no install candidate for {', '.join(missing)}"
        return None

    def _without_candidate(self) -> list[str]:
        """The packages to install that apt cannot find (in the wanted version)."""
        from pyinfra.facts.deb import DebPackages

        installed = self.ctx.fact_host.get_fact(DebPackages)
        wanted: dict[str, str | None] = {}
        for item in self.names:
            name, _, version = item.partition("=")
            if name not in installed or (version and version not in installed[name]):
                wanted[name] = version or None
        if not wanted:
            return []
        done = self.ctx.system.run(["apt-cache", "policy", *wanted], timeout=120)
        if not done.ok:
            return sorted(wanted)
        tables = _policy(done.stdout)
        missing = []
        for name, version in wanted.items():
            candidate, versions = tables.get(name, (None, set()))
            if candidate is None or (version is not None and version not in versions):
                missing.append(name if version is None else f"{name}={version}")
        return missing

    def apply(self, changes: list[Change]) -> None:
        host = self.ctx.fact_host
        manager = self._manager()
        try:
            for change in changes:
                if change.field == "stamp":
                    self._write_stamp()
                    continue
                run_commands(host, [change.after], timeout=1800)
                if change.field == "update":
                    host.refreshed_indexes.add(manager)
                    host.pending.discard("apt-update")
        finally:
            # not only the package list: maintainer scripts add users and groups, start and
            # enable services, write files
            host.forget()

    def _write_stamp(self) -> None:
        system = self.ctx.system
        folder = APT_STAMP.rpartition("/")[0]
        if not system.isdir(folder):
            system.mkdir(folder, 0o755)
        system.atomic_write(APT_STAMP, b"", 0o644, replacing=system.exists(APT_STAMP))


def _operations(manager: str) -> Any:
    import importlib

    return importlib.import_module(f"pyinfra.operations.{manager}")


def _mtime(system: Any, path: str) -> float:
    try:
        return system.lstat(path).st_mtime  # a file: repository's lists are links
    except FileNotFoundError:
        return 0.0


def _duration(seconds: float) -> str:
    for unit, size in (("days", DAY), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} seconds"


def _policy(output: str) -> dict[str, tuple[str | None, set[str]]]:
    """``apt-cache policy`` output → package → (candidate or None, versions apt knows)."""
    tables: dict[str, tuple[str | None, set[str]]] = {}
    name = None
    for line in output.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            name = line[:-1]
            tables[name] = (None, set())
        elif name is not None:
            candidate, versions = tables[name]
            stripped = line.strip()
            if stripped.startswith("Candidate:"):
                value = stripped.partition(":")[2].strip()
                candidate = None if value == "(none)" else value
            else:
                match = _TABLE_VERSION.match(line)
                if match:
                    versions.add(match.group(1))
            tables[name] = (candidate, versions)
    return tables
