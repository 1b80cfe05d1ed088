"""package: system packages through apt, dnf or yum (pyinfra plans the commands)."""

from __future__ import annotations

import shutil

from agent.host.pyinfra_bridge import plan, run_commands
from agent.model import Change
from agent.resources import STRLIST, Resource, SpecError, f

MANAGERS = ("apt", "dnf", "yum")


def _manager() -> str:
    for tool, binary in (("apt", "apt-get"), ("dnf", "dnf"), ("yum", "yum")):
        if shutil.which(binary):
            return tool
    return ""


class Package(Resource, kind="package"):
    """Packages installed (or removed) with the host's package manager.

    ``names`` installs many packages in one transaction; the resource's name is
    then only a label. The installed-package list is read once per run.

    Spec:
        package (str): the package name (or a label when ``names`` is given).
        names (list): several packages, installed together.
        version (str): an exact version (single package only).
        update (bool): refresh the package index before installing (only when
            something is missing).
        state (str): present (default) or absent.

    Example:
        - package: nginx
        - package: tools
          names: [curl, jq, htop]
          update: true
    """

    FIELDS = {
        "names": f(STRLIST, None, "several packages in one transaction"),
        "version": f((str, int, float), None, "exact version"),
        "update": f(bool, False, "refresh the package index before installing"),
    }
    SYSTEM = True
    EXAMPLES = [{"package": "hello", "update": True},
                {"package": "tools", "names": ["jq", "hello"], "update": True}]
    SENSITIVE_EXAMPLE = {"package": "tools", "names": ["hello-{canary}"], "sensitive": True}

    def validate(self) -> None:
        names = self.spec.get("names")
        self.names = ([names] if isinstance(names, str) else list(names)) if names else [self.name]
        version = self.spec.get("version")
        if version is not None:
            if len(self.names) != 1:
                raise SpecError("version", "version applies to a single package, not names:")
            self.names = [f"{self.names[0]}={version}"]

    def _plan(self) -> list[str]:
        manager = _manager()
        if not manager:
            from agent.errors import ResourceError

            raise ResourceError("no supported package manager (apt-get, dnf or yum) found")
        module = __import__(f"pyinfra.operations.{manager}", fromlist=["packages"])
        kwargs = {"packages": self.names, "present": self.state == "present"}
        commands = plan(module.packages, self.ctx.fact_host, **kwargs)
        if commands and self.spec.get("update") and self.state == "present":
            update = plan(module.update, self.ctx.fact_host)
            commands = update + commands
        return commands

    def check(self) -> list[Change]:
        commands = self._plan()
        return [Change("command", None, cmd) for cmd in commands]

    def apply(self, changes: list[Change]) -> None:
        host = self.ctx.fact_host
        try:
            run_commands(host, [c.after for c in changes], timeout=1800)
        finally:
            # not only the package list: maintainer scripts add users and groups, start and
            # enable services, write files
            host.forget()
