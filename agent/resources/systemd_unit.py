"""systemd_unit: a unit file or a drop-in under /etc/systemd/system, and its unit's state."""

from __future__ import annotations

import os
import re

from agent.errors import RenderError, ResourceError
from agent.model import Change
from agent.resources import Resource, SpecError, f, save_backup, writing

UNIT_DIR = "/etc/systemd/system"
_UNIT = r"[A-Za-z0-9:_.\\@-]+\.(?:service|socket|timer|mount|automount|path|target|slice|scope)"
_NAME = re.compile(rf"^(?P<unit>{_UNIT})(?:\.d/(?P<dropin>[A-Za-z0-9:_.@-]+\.conf))?$")
RELOAD = "daemon-reload"


class SystemdUnit(Resource, kind="systemd_unit"):
    """A systemd unit file, or a drop-in for a unit, and the unit's enabled/running state.

    The name is the file's path under /etc/systemd/system: ``app.service`` for a unit,
    ``nginx.service.d/limits.conf`` for a drop-in of ``nginx.service`` (its folder is
    created). The content comes from ``content`` or a template in the recipe's
    templates/ folder (``template``, with ``variables``).

    systemd rereads unit files once per run, however many units changed: a
    changed file leaves ``systemctl daemon-reload`` pending, and the first resource
    that needs systemd to see it (a unit started here, a ``service`` acting) runs
    it; otherwise it runs once after the last resource, before delayed notifications.
    A unit (or the unit of a drop-in) that is running when its file changes is
    restarted once, after that reload (``restart: false`` leaves that to a
    notification).

    Spec:
        systemd_unit (str): ``NAME.service`` (or .socket, .timer ...), or
            ``NAME.service.d/FILE.conf`` for a drop-in.
        content (str): the file's content.
        template (str): a template under templates/, rendered, instead of content.
        variables (dict): extra names for the template.
        enabled (bool): start the unit at boot (unset: left alone).
        state (str): present (default: the file only), running, stopped or absent
            (the file removed; a unit is stopped and disabled first).
        restart (bool): restart a running unit when its file changed (default true).

    Example:
        - systemd_unit: node_exporter.service
          template: node_exporter.service.j2
          enabled: true
          state: running
        - systemd_unit: nginx.service.d/limits.conf
          content: |
            [Service]
            LimitNOFILE=65536
    """

    FIELDS = {
        "content": f(str, None, "the file's content"),
        "template": f(str, None, "template under the recipe's templates/ folder"),
        "variables": f(dict, None, "extra names for the template"),
        "enabled": f(bool, None, "start at boot"),
        "restart": f(bool, True, "restart a running unit when its file changed"),
    }
    STATES = ("present", "running", "stopped", "absent")
    SYSTEM = True
    EXAMPLES = [
        {"systemd_unit": "trueup-example.service", "enabled": True, "state": "running",
         "content": "[Service]\nExecStart=/bin/sleep infinity\n"
                    "[Install]\nWantedBy=multi-user.target\n"},
        {"systemd_unit": "trueup-example.service.d/env.conf",
         "content": "[Service]\nEnvironment=GREETING=hello\n",
         "_files": {"/etc/systemd/system/trueup-example.service":
                    "[Service]\nExecStart=/bin/sleep infinity\n"}},
    ]
    SENSITIVE_EXAMPLE = {"systemd_unit": "trueup-example.service",
                         "content": "[Service]\nEnvironment=TOKEN={canary}\n",
                         "sensitive": True}

    desired: bytes | None = None

    def validate(self) -> None:
        match = _NAME.match(self.name)
        if not match:
            raise ValueError(f"{self.name!r} is not a unit name such as app.service, nor a "
                             "drop-in such as app.service.d/override.conf")
        self.unit: str = match["unit"]
        self.dropin = match["dropin"] is not None
        self.path = f"{UNIT_DIR}/{self.name}"
        if self.spec["content"] is not None and self.spec["template"] is not None:
            raise SpecError("template", "give content or template, not both")
        if self.state != "absent" and self.spec["content"] is None \
                and self.spec["template"] is None:
            raise SpecError("content", "systemd_unit needs content or template")

    def prepare(self) -> None:
        if self.spec["content"] is not None:
            self.desired = self.spec["content"].encode()
        elif self.spec["template"] is not None and self.state != "absent":
            base = os.path.join(self.ctx.recipe_dir, "templates")
            path = os.path.normpath(os.path.join(base, self.spec["template"]))
            if not path.startswith(base + os.sep) or not os.path.isfile(path):
                raise SpecError("template", f"template not found: {path} (put it in the "
                                f"{self.ctx.recipe} recipe's templates/ folder)")
            try:
                self.desired = self.ctx.render_file(path, self.spec["variables"]).encode()
            except RenderError as exc:
                exc.file = path  # type: ignore[attr-defined]
                raise

    # --- check ------------------------------------------------------------------------

    def _current(self) -> bytes | None:
        system = self.ctx.system
        try:
            if os.path.islink(system.path(self.path)):
                raise ResourceError(f"{self.path} is a symbolic link; manage it with link:")
            return system.read(self.path)
        except FileNotFoundError:
            return None

    def _systemctl(self, *args: str) -> str:
        return self.ctx.system.run(["systemctl", *args, self.unit], timeout=60).stdout.strip()

    def check(self) -> list[Change]:
        current = self._current()
        if self.state == "absent":
            if current is None:
                return []
            changes = []
            if not self.dropin:
                if self._systemctl("is-active") in ("active", "activating", "reloading"):
                    changes.append(Change("running", True, False))
                if self._systemctl("is-enabled") == "enabled":
                    changes.append(Change("enabled", True, False))
            return changes + [Change("state", "present", "absent")]
        changes = []
        if current != self.desired:
            diff = _diff(current or b"", self.desired or b"", self.path)
            changes.append(Change("content" if current is not None else "state",
                                  None if current is None else f"{len(current)} bytes",
                                  f"{len(self.desired or b'')} bytes", diff,
                                  payload=self.desired))
        active = self._systemctl("is-active") in ("active", "activating", "reloading")
        want_running = {"running": True, "stopped": False}.get(self.state)
        if want_running is not None and active != want_running:
            changes.append(Change("running", active, want_running))
        elif changes and active and self.spec["restart"] and self.state != "stopped":
            changes.append(Change("restart", None, self.unit))
        enabled = self.spec["enabled"]
        if enabled is not None:
            now = self._systemctl("is-enabled") in ("enabled", "enabled-runtime", "alias")
            if now != enabled:
                changes.append(Change("enabled", now, enabled))
        return changes

    # --- apply ------------------------------------------------------------------------

    def apply(self, changes: list[Change]) -> None:
        by_field = {c.field: c for c in changes}
        if self.state == "absent":
            if "running" in by_field:
                self._run("stop")
            if "enabled" in by_field:
                self._run("disable")
            self._remove()
            return
        payload = (by_field.get("state") or by_field.get("content"))
        if payload is not None:
            self._write(payload.payload)
        acts = [name for name in ("enabled", "running", "restart") if name in by_field]
        if acts:
            self.reload_if_pending()
        if "enabled" in by_field:
            self._run("enable" if by_field["enabled"].after else "disable")
        if "running" in by_field:
            self._run("start" if by_field["running"].after else "stop")
        if "restart" in by_field:
            self._run("restart")

    def _write(self, data: bytes) -> None:
        system = self.ctx.system
        folder = os.path.dirname(self.path)
        current = self._current()
        with writing(self.path):
            if not system.isdir(folder):
                system.mkdir(folder, 0o755)
            if current is not None:
                save_backup(self.ctx, self.path, current)
            system.atomic_write(self.path, data, 0o644, replacing=current is not None)
        self.ctx.fact_host.pending.add(RELOAD)

    def _remove(self) -> None:
        current = self._current()
        if current is None:
            return
        save_backup(self.ctx, self.path, current)
        with writing(self.path, "remove"):
            self.ctx.system.remove(self.path)
        self.ctx.fact_host.pending.add(RELOAD)

    def _run(self, action: str) -> None:
        done = self.ctx.system.run(["systemctl", action, self.unit], timeout=600)
        if not done.ok:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ResourceError(f"systemctl {action} {self.unit} exited with status "
                                f"{done.returncode}" + (": " + " | ".join(tail) if tail else ""))

    def reload_if_pending(self) -> bool:
        """Run the run's pending ``systemctl daemon-reload``, if any; whether it ran."""
        host = self.ctx.fact_host
        if RELOAD not in host.pending:
            return False
        done = self.ctx.system.run(["systemctl", "daemon-reload"], timeout=300)
        if not done.ok:
            raise ResourceError(f"systemctl daemon-reload exited with status {done.returncode}: "
                                f"{(done.stderr or done.stdout).strip()[-300:]}")
        host.pending.discard(RELOAD)
        from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

        host.forget(SystemdEnabled, SystemdStatus)
        return True

    def settle(self) -> list[Change]:
        if self.reload_if_pending():
            return [Change("daemon_reload", None, "systemctl daemon-reload (once this run)")]
        return []


def _diff(before: bytes, after: bytes, path: str) -> str:
    import difflib

    lines = difflib.unified_diff(before.decode("utf-8", "replace").splitlines(keepends=True),
                                 after.decode("utf-8", "replace").splitlines(keepends=True),
                                 f"{path} (current)", f"{path} (declared)")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
