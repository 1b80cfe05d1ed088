"""sysctl: a kernel setting, live and persisted under /etc/sysctl.d."""

from __future__ import annotations

import re

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import Resource, SpecError, f

SYSCTL_D = "/etc/sysctl.d"  # host paths: the System maps them under its root
PROC_SYS = "/proc/sys"
_KEY = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")


class Sysctl(Resource, kind="sysctl"):
    """A kernel parameter: set now (``sysctl -w``) and at every boot.

    The persisted value lives in ``/etc/sysctl.d/60-trueup-<key>.conf`` (the
    folder is created, root 0755, when missing). Values are compared the way the
    kernel prints them (whitespace-separated fields).

    Spec:
        sysctl (str): the key, e.g. net.ipv4.ip_forward.
        value (str): the value.
        state (str): present (default), or absent to drop the persisted file
            (the live value is left as it is).

    Example:
        - sysctl: net.core.somaxconn
          value: 4096
    """

    FIELDS = {"value": f((str, int), None, "the value")}
    SYSTEM = True
    EXAMPLES = [{"sysctl": "net.core.somaxconn", "value": 1234}]
    SENSITIVE_EXAMPLE = {"sysctl": "net.core.somaxconn", "value": "{canary}", "sensitive": True}

    def validate(self) -> None:
        if not _KEY.match(self.name):
            raise ValueError(f"{self.name!r} is not a sysctl key such as net.ipv4.ip_forward")
        value = self.spec.get("value")
        if self.state == "present" and value is None:
            raise SpecError("value", "sysctl needs value:")
        self.value = " ".join(str(value).split()) if value is not None else ""
        self.proc = f"{PROC_SYS}/" + self.name.replace(".", "/")
        self.persist = f"{SYSCTL_D}/60-trueup-{self.name}.conf"

    def _live(self) -> str | None:
        try:
            return " ".join(self.ctx.system.read(self.proc).decode("ascii", "replace").split())
        except FileNotFoundError:
            raise ResourceError(f"the kernel has no setting {self.name}") from None
        except OSError as exc:
            raise ResourceError(f"cannot read {self.proc}: {exc.strerror}") from None

    def _persisted(self) -> str | None:
        try:
            return self.ctx.system.read(self.persist).decode("utf-8", "replace")
        except FileNotFoundError:
            return None

    def _line(self) -> str:
        return f"# managed by trueup\n{self.name} = {self.value}\n"

    def check(self) -> list[Change]:
        if self.state == "absent":
            return [Change("persisted", self.persist, None)] if self._persisted() else []
        changes = []
        live = self._live()
        if live != self.value:
            changes.append(Change("value", live, self.value))
        if not self.ctx.system.isdir(SYSCTL_D):
            changes.append(Change("folder", None, SYSCTL_D))
        persisted = self._persisted()
        if persisted != self._line():
            changes.append(Change("persisted", None if persisted is None else self.persist,
                                  self.persist))
        return changes

    def apply(self, changes: list[Change]) -> None:
        system = self.ctx.system
        fields = {c.field for c in changes}
        if self.state == "absent":
            system.remove(self.persist)
            return
        if "folder" in fields:
            system.mkdir(SYSCTL_D, 0o755)
        if "persisted" in fields:
            system.atomic_write(self.persist, self._line().encode(), 0o644,
                                replacing=system.exists(self.persist))
        if "value" in fields:
            done = system.run(["sysctl", "-w", f"{self.name}={self.value}"])
            if not done.ok:
                raise ResourceError(f"sysctl -w {self.name} failed: {done.stderr.strip()}")
