"""group: a local group (pyinfra plans the commands)."""

from __future__ import annotations

from agent.host.pyinfra_bridge import plan, run_commands
from agent.model import Change
from agent.resources import Resource, f


class Group(Resource, kind="group"):
    """A local group.

    Spec:
        group (str): the group name.
        gid (int): a fixed group id.
        system (bool): create a system group.
        state (str): present (default) or absent.

    Example:
        - group: deploy
          gid: 2001
    """

    FIELDS = {
        "gid": f(int, None, "group id"),
        "system": f(bool, False, "a system group"),
    }
    SYSTEM = True
    EXAMPLES = [{"group": "trueup-example", "gid": 2742}]
    SENSITIVE_EXAMPLE = {"group": "trueup-example", "gid": "{canary}", "sensitive": True}

    def _plan(self) -> list[str]:
        from pyinfra.operations import server

        return plan(server.group, self.ctx.fact_host, group=self.name,
                    present=self.state == "present", system=bool(self.spec.get("system")),
                    gid=self.spec.get("gid"))

    def check(self) -> list[Change]:
        return [Change("command", None, cmd) for cmd in self._plan()]

    def apply(self, changes: list[Change]) -> None:
        from pyinfra.facts.server import Groups, Users

        host = self.ctx.fact_host
        try:
            run_commands(host, [c.after for c in changes])
        finally:
            host.forget(Groups, Users)  # users' group lists change with a group
