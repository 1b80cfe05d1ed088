"""cron: one scheduled job, as a file in /etc/cron.d."""

from __future__ import annotations

import difflib
import os
import re
import stat

from agent.errors import ResourceError
from agent.host.system import temp_name
from agent.model import Change
from agent.resources import Resource, SpecError, f, symlink_refused

CRON_D = "/etc/cron.d"  # a host path: the System maps it under its root
MODE = 0o644
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # cron ignores cron.d files with other characters
_FIELD = re.compile(r"^[0-9A-Za-z*/,-]+$")
_USER = re.compile(r"[a-z_][a-z0-9_.-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Cron(Resource, kind="cron"):
    """A cron job written to ``/etc/cron.d/<name>`` (atomically, mode 0644).

    /etc/cron.d is created (0755) when it is missing, as on a host whose cron
    package is not installed yet: the job is then in place for when it is. A
    replaced or removed job file is kept in the backups.

    Spec:
        cron (str): the job's name: letters, digits, '-' and '_' only (cron
            skips files with other names).
        schedule (str): five cron fields ("*/5 * * * *") or @hourly, @daily, @reboot ….
        run (str): the command line (cron runs it with /bin/sh).
        user (str): the user it runs as (default root).
        environment (dict): variables set for the job, e.g. {MAILTO: ""}; names
            are letters, digits and _, values one line.
        backup (bool | int): keep the replaced job file (default: the configured count).
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
        "backup": f((bool, int), True, "keep replaced content (true, false or a count)"),
    }
    SYSTEM = True
    EXAMPLES = [{"cron": "trueup-example", "schedule": "*/5 * * * *", "run": "/bin/true"}]
    SENSITIVE_EXAMPLE = {"cron": "trueup-example", "schedule": "*/5 * * * *",
                         "run": "/usr/local/bin/rotate --token {canary}", "sensitive": True}

    desired = b""

    @property
    def path(self) -> str:
        return f"{CRON_D}/{self.name}"

    def validate(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"cron name {self.name!r} may hold only letters, digits, - and _")
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

    PREPARE_IS_PURE = True  # the spec, and files/ of the recipe (agent.compile.stored)

    def prepare(self) -> None:
        if self.state == "absent":
            return
        lines = [f"# {self.name}: managed by trueup, local edits are replaced"]
        for key, value in (self.spec["environment"] or {}).items():
            lines.append(f"{key}={value}")
        lines.append(f"{' '.join(self.spec['schedule'].split())} "
                     f"{self.spec['user']} {self.spec['run']}")
        self.desired = ("\n".join(lines) + "\n").encode()

    def _current(self) -> tuple[os.stat_result | None, bytes | None]:
        """The job file's lstat and content (None, None when there is none)."""
        system = self.ctx.system
        try:
            st = system.lstat(self.path)
        except FileNotFoundError:
            return None, None
        except NotADirectoryError:
            raise ResourceError(f"{CRON_D} is not a directory") from None
        if stat.S_ISLNK(st.st_mode):
            raise symlink_refused(self.path)
        if not stat.S_ISREG(st.st_mode):
            raise ResourceError(f"{self.path} is not a regular file; remove it first")
        return st, system.read(self.path)

    def check(self) -> list[Change]:
        system = self.ctx.system
        st, current = self._current()
        changes = []
        if system.exists(temp_name(self.path)):  # left by a run that was killed mid-write
            changes.append(Change("leftover", temp_name(self.path), None))
        if self.state == "absent":
            return changes + ([Change("state", "present", "absent")] if st else [])
        if not system.isdir(CRON_D):
            changes.append(Change("folder", None, CRON_D))
        if st is None:
            changes.append(Change("state", "absent", "present", self._diff(b"")))
            return changes
        if current != self.desired:
            changes.append(Change("content", f"{len(current)} bytes", f"{len(self.desired)} bytes",
                                  self._diff(current)))
        if stat.S_IMODE(st.st_mode) != MODE:
            changes.append(Change("mode", f"{stat.S_IMODE(st.st_mode):04o}", f"{MODE:04o}"))
        return changes

    def _diff(self, before: bytes) -> str | None:
        if self.sensitive:
            return None
        old = before.decode("utf-8", "replace").splitlines(keepends=True)
        new = self.desired.decode("utf-8", "replace").splitlines(keepends=True)
        return "".join(difflib.unified_diff(old, new, f"{self.path} (current)",
                                            f"{self.path} (declared)"))

    def apply(self, changes: list[Change]) -> None:
        system = self.ctx.system
        fields = {c.field for c in changes}
        if "leftover" in fields:
            system.remove_leftover(self.path)
        if "folder" in fields:
            system.mkdir(CRON_D, 0o755)
        if fields & {"state", "content"}:
            st, current = self._current()
            keep = self.spec["backup"]
            if current is not None and keep is not False:
                self.ctx.backups.save(self.path, current, None if keep is True else int(keep))
            if self.state == "absent":
                system.remove(self.path)
            else:
                system.atomic_write(self.path, self.desired, MODE, replacing=st is not None)
        elif "mode" in fields:
            system.chmod(self.path, MODE)
