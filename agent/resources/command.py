"""command: run a program, guarded so it runs only when needed."""

from __future__ import annotations

import math
import os

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import STRLIST, Resource, SpecError, f


class Command(Resource, kind="command"):
    """Run a command: an argv list, or a shell string with ``shell: true``.

    Without ``creates``, ``only_if``/``not_if`` or ``refresh_only`` a command runs
    on every run, like Chef's execute or Puppet's exec.

    Spec:
        command (str): a name for the command; the resource's name.
        run (list | str): argv list; a string only together with ``shell: true``.
        shell (bool): run ``run`` with /bin/sh -c.
        creates (str): skip when this path exists; it must exist afterwards.
        cwd (str): working directory; it must exist when the command runs (a
            missing one fails the resource as "working directory CWD does not exist").
        environment (dict): extra environment variables.
        user (str): run as this user.
        timeout (int): seconds before the command is killed and fails.
        returns (list): exit codes that count as success (default [0]).
        refresh_only (bool): run only when notified (Puppet's refreshonly).
        changes (bool): false for a read-only command (a config test, a health
            check): it runs on every run but never counts as a change, so it notifies
            nothing and a second run still reports 0 changes; a bad exit code still
            fails it. ``plan`` does not run it.

    Example:
        - command: seed-index
          run: [/usr/local/bin/seed-index, --port, "{{ attributes.web.port }}"]
          creates: /var/www/index.html

        - command: nginx-config-test
          run: [nginx, -t]
          changes: false
    """

    FIELDS = {
        "run": f(STRLIST, None, "argv list, or a string with shell: true", required=True),
        "shell": f(bool, False, "run the string with /bin/sh -c"),
        "creates": f(str, None, "path whose existence means done"),
        "cwd": f(str, None, "working directory"),
        "environment": f(dict, None, "extra environment variables"),
        "user": f((str, int), None, "run as this user"),
        "timeout": f((int, float), None, "seconds before it is killed"),
        "returns": f((list, int), [0], "exit codes meaning success"),
        "refresh_only": f(bool, False, "run only when notified"),
        "changes": f(bool, True, "false: read-only, runs every time, never a change"),
    }
    STATES = ("present",)
    ACTIONS = ("run",)
    EXAMPLES = [
        {"command": "stamp", "run": ["/bin/sh", "-c", "echo done > {tmp}/stamp"],
         "creates": "{tmp}/stamp", "_expect": {"stamp": "done\n"}},
        {"command": "shell-stamp", "run": "echo ok > {tmp}/shell-stamp", "shell": True,
         "creates": "{tmp}/shell-stamp", "_expect": {"shell-stamp": "ok\n"}},
    ]
    # fails and prints its secret argument: the error must not show it
    SENSITIVE_EXAMPLE = {"command": "login", "sensitive": True,
                         "run": ["/bin/sh", "-c", 'echo "token $0 refused" >&2; exit 3',
                                 "{canary}"]}

    def validate(self) -> None:
        run = self.spec["run"]
        shell = bool(self.spec.get("shell"))
        if isinstance(run, str):
            if not shell:
                raise SpecError("run", "run is a string but shell is not true: give an argv list "
                           "such as [systemctl, daemon-reload], or set shell: true")
            self.argv = ["/bin/sh", "-c", run]
        else:
            if not run or not all(isinstance(a, (str, int, float)) for a in run):
                raise SpecError("run", "run must be a non-empty argv list of strings")
            if shell:
                raise SpecError("shell", "shell: true needs run to be one string")
            self.argv = [str(a) for a in run]
        creates = self.spec.get("creates")
        if creates is not None and not os.path.isabs(creates):
            raise SpecError("creates", f"creates must be an absolute path, not {creates!r}")
        _check_timeout(self.spec.get("timeout"))
        returns = self.spec["returns"]
        self.returns = _exit_codes(returns)

    @property
    def converges(self) -> bool:
        return self.spec.get("creates") is not None

    @property
    def reports_changes(self) -> bool:
        return bool(self.spec["changes"])

    def check(self) -> list[Change]:
        if self.spec.get("refresh_only"):
            return []
        creates = self.spec.get("creates")
        if creates is not None and os.path.lexists(creates):
            return []
        return [Change("run", None, _show(self.argv))]

    def apply(self, changes: list[Change]) -> None:
        self._run()

    def refresh(self, action: str) -> None:
        self._run()

    def _run(self) -> None:
        env = self.spec.get("environment")
        user = self.spec.get("user")
        cwd = self.spec["cwd"]
        if cwd is not None and not os.path.isdir(cwd):  # else: "cannot run /bin/sh"
            what = "is not a directory" if os.path.lexists(cwd) else "does not exist"
            raise ResourceError(f"working directory {cwd} {what}")
        done = self.ctx.system.run(
            self.argv, cwd=cwd,
            env={str(k): str(v) for k, v in env.items()} if env else None,
            user=str(user) if user is not None else None, timeout=self.spec.get("timeout"))
        if done.returncode not in self.returns:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            detail = (": " + " | ".join(tail)) if tail else ""
            raise ResourceError(f"exited with status {done.returncode}{detail}")


def _exit_codes(returns: object) -> set[int]:
    """``returns: [0, 2]`` (or one code) as a set; anything but whole numbers is an error."""
    codes = returns if isinstance(returns, list) else [returns]
    try:
        if all(isinstance(c, (int, float, str)) and not isinstance(c, bool) for c in codes):
            return {int(c) for c in codes}
    except (ValueError, OverflowError):
        pass
    raise SpecError("returns", f"returns must be exit codes (whole numbers), not {returns!r}")


def _check_timeout(timeout: object) -> None:
    """None (no limit) or a positive, finite number of seconds."""
    if timeout is None:
        return
    if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout) or timeout <= 0):
        raise SpecError("timeout", f"timeout must be a positive number of seconds, not "
                        f"{timeout!r}; leave it out for no limit")


def _show(argv: list[str]) -> str:
    import shlex

    return shlex.join(argv)

