"""service: a systemd unit running or stopped, enabled or not (pyinfra plans the commands)."""

from __future__ import annotations

from agent.host.pyinfra_bridge import plan, run_commands
from agent.model import Change
from agent.resources import Resource, f


class Service(Resource, kind="service"):
    """A systemd service: running or stopped, enabled at boot or not.

    Without ``state`` the running state is left alone; without ``enabled`` the
    boot setting is. Notifications may ask it to ``restart`` or ``reload``. When
    systemd says the unit file changed on disk, ``systemctl daemon-reload`` runs
    first. A service this run started (or restarted) itself is not restarted or
    reloaded again for a notification: everything that notifies it is ordered
    before it, so it already runs with those changes. A service restarted for a
    notification is not reloaded later in the same run (see Resource.ABSORBS).

    Spec:
        service (str): the unit name (``nginx`` means ``nginx.service``).
        state (str): running or stopped.
        enabled (bool): started at boot.

    Example:
        - service: nginx
          state: running
          enabled: true
          subscribe: template:/etc/nginx/nginx.conf
    """

    FIELDS = {"enabled": f(bool, None, "start at boot")}
    STATES = ("running", "stopped")
    ACTIONS = ("restart", "reload")
    SYSTEM = True
    EXAMPLES = [{"service": "trueup-example", "state": "running", "enabled": True,
                 "_unit": "[Service]\nExecStart=/bin/sleep infinity\n"
                          "[Install]\nWantedBy=multi-user.target\n"}]
    # a service shows nothing but its name, which is its identity: no canary to place
    SENSITIVE_EXAMPLE = {"service": "trueup-example", "state": "running", "sensitive": True}

    started = False  # this run's apply started or restarted the unit

    def validate(self) -> None:
        state = self.spec.get("state")
        self.running = None if state is None else state == "running"
        self.unit = self.name if "." in self.name else f"{self.name}.service"

    def _facts(self) -> tuple:
        from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

        return SystemdEnabled, SystemdStatus

    def _plan(self, **actions: bool) -> list[str]:
        from pyinfra.operations import systemd

        host = self.ctx.fact_host
        commands = plan(systemd.service, host, service=self.unit, running=self.running,
                        enabled=self.spec.get("enabled"), **actions)
        if commands or actions:
            done = self.ctx.system.run(["systemctl", "show", "-p", "NeedDaemonReload",
                                        "--value", self.unit])
            if done.stdout.strip() == "yes":
                commands.insert(0, "systemctl daemon-reload")
        return commands

    def check(self) -> list[Change]:
        return [Change("command", None, cmd) for cmd in self._plan()]

    def apply(self, changes: list[Change]) -> None:
        commands = [c.after for c in changes]
        self._run(commands)
        self.started = any(cmd.split()[-2:-1] in (["start"], ["restart"]) for cmd in commands)

    def refresh(self, action: str) -> bool | None:
        if self.started:  # started by this run: it already runs with the notifier's change
            return False
        commands = self._plan(restarted=action == "restart", reloaded=action == "reload")
        self._run(commands)
        return None

    def _run(self, commands: list[str]) -> None:
        host = self.ctx.fact_host
        if "systemctl daemon-reload" in commands:
            host.pending.discard("daemon-reload")  # what a changed systemd_unit left
        try:
            run_commands(host, commands, timeout=600)
        finally:
            host.forget(*self._facts())
