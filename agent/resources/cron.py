"""cron: one scheduled job, as a file in /etc/cron.d."""

from __future__ import annotations

import os
import re

from agent.model import Change
from agent.resources import SpecError, f
from agent.resources.file import File

CRON_D = "/etc/cron.d"
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # cron ignores cron.d files with other characters
_FIELD = re.compile(r"^[0-9A-Za-z*/,-]+$")
_USER = re.compile(r"[a-z_][a-z0-9_.-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Cron(File, kind="cron"):
    """A cron job written to ``/etc/cron.d/<name>`` (atomically, mode 0644).

    /etc/cron.d is created (root, 0755) when it is missing, as on a host whose cron
    package is not installed yet: the job is then in place for when it is.

    Spec:
        cron (str): the job's name: letters, digits, '-' and '_' only (cron
            skips files with other names).
        schedule (str): five cron fields ("*/5 * * * *") or @hourly, @daily, @reboot ….
        run (str): the command line (cron runs it with /bin/sh).
        user (str): the user it runs as (default root).
        environment (dict): variables set for the job, e.g. {MAILTO: ""}; names
            are letters, digits and _, values one line.
        state (str): present (default) or absent.

    Example:
        - cron: logrotate-app
          schedule: "15 * * * *"
          user: deploy
          run: /usr/local/bin/rotate --app web
    """

    FIELDS = {
        "schedule": f(str, None, "five cron fields or @daily etc."),
        "run": f(str, None, "command line, run by /bin/sh"),
        "user": f(str, "root", "run as this user"),
        "environment": f(dict, None, "environment lines, e.g. {MAILTO: ''}"),
        "backup": File.FIELDS["backup"],
    }
    SYSTEM = True
    EXAMPLES = [{"cron": "trueup-example", "schedule": "*/5 * * * *", "run": "/bin/true"}]
    SENSITIVE_EXAMPLE = {"cron": "trueup-example", "schedule": "*/5 * * * *",
                         "run": "/usr/local/bin/rotate --token {canary}", "sensitive": True}

    def __init__(self, name: str, spec: dict, ctx: object) -> None:
        super().__init__(name, spec, ctx)  # type: ignore[arg-type]
        self.job = name
        self.name = f"{CRON_D}/{name}"

    @property
    def ident(self) -> str:
        return f"cron:{self.job}"

    def validate(self) -> None:
        if not _NAME.fullmatch(self.job):
            raise ValueError(f"cron name {self.job!r} may hold only letters, digits, - and _")
        self.mode = 0o644
        if self.state == "absent":
            return
        schedule = (self.spec.get("schedule") or "").split()
        run = self.spec.get("run")
        if not schedule:
            raise SpecError("schedule", "cron needs schedule: e.g. \"*/5 * * * *\" or @daily")
        if schedule[0].startswith("@"):
            if len(schedule) != 1:
                raise SpecError("schedule", f"bad schedule {self.spec['schedule']!r}")
        elif len(schedule) != 5 or not all(_FIELD.match(part) for part in schedule):
            raise SpecError("schedule", f"schedule {self.spec['schedule']!r} needs five fields "
                            "(minute hour day month weekday) or @daily, @reboot …")
        if not run or "\n" in run or "\r" in run:
            raise SpecError("run", "cron needs run: one command line")
        if not _USER.fullmatch(self.spec["user"]):
            raise SpecError("user", f"bad user name {self.spec.get('user')!r}")
        for key, value in (self.spec["environment"] or {}).items():
            if not _ENV_NAME.fullmatch(str(key)):
                raise SpecError("environment", f"environment name {str(key)!r} must be letters, "
                                "digits and _, not starting with a digit")
            if any(c in str(value) for c in "\n\r\0"):
                raise SpecError("environment", f"environment value of {key} may not hold a "
                                "newline, \\r or NUL (each setting is one line of the job file)")

    def prepare(self) -> None:
        if self.state == "absent":
            return
        lines = [f"# {self.job}: managed by trueup, local edits are replaced"]
        for key, value in (self.spec.get("environment") or {}).items():
            lines.append(f"{key}={value}")
        lines.append(f"{' '.join(self.spec['schedule'].split())} "
                     f"{self.spec['user']} {self.spec['run']}")
        self.desired = ("\n".join(lines) + "\n").encode()

    def check(self) -> list[Change]:
        if self.state != "absent" and not os.path.isdir(CRON_D):
            return [Change("folder", None, CRON_D), *super().check()]
        return super().check()

    def apply(self, changes: list[Change]) -> None:
        if any(c.field == "folder" for c in changes) and not os.path.isdir(CRON_D):
            self.ctx.system.mkdir(CRON_D, 0o755, 0, 0)
        super().apply(changes)
