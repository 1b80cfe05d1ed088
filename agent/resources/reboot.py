"""reboot: ask for a reboot at the end of the run, or at once (Chef's reboot resource)."""

from __future__ import annotations

import os

from agent.model import Change
from agent.resources import Resource, SpecError, f

WHEN = ("end", "now")


class Reboot(Resource, kind="reboot"):
    """A reboot the host needs: asked for by a notification, or when a file says so.

    It never reboots by itself in the middle of things. ``notify: reboot:NAME request``
    asks for a reboot at the end of the run (every other resource and delayed
    notification still converges first); ``notify: reboot:NAME now`` stops the run
    after the notifying resource. Either way trueup keeps the report, writes a resume
    marker and exits 194: SSM Run Command then reboots the instance and runs the
    document again; ``trueup run --reboot allow`` reboots by itself. The run after the
    reboot says it resumed and converges what was left.

    Declared without a notification it does nothing, unless ``if_exists`` names a
    file whose presence means a reboot is pending (Debian and Ubuntu write
    ``/run/reboot-required`` after a kernel or libc upgrade); ``at`` then says
    whether the run stops there (``now``) or finishes first (``end``).

    Spec:
        reboot (str): a name for the reboot; the resource's name.
        reason (str): why; shown in the report and the console.
        if_exists (str): ask for a reboot whenever this path exists.
        at (str): end (default) or now, for a reboot asked by ``if_exists``.

    Example:
        - reboot: new-kernel
          reason: a new kernel was installed
        - package: linux-image-cloud-amd64
          notify: reboot:new-kernel request
        - reboot: pending-upgrades
          if_exists: /run/reboot-required
    """

    FIELDS = {
        "reason": f(str, "", "why the reboot is needed (shown in the report)"),
        "if_exists": f(str, None, "ask for a reboot whenever this path exists"),
        "at": f(str, "end", "end of the run, or now (for if_exists)", choices=WHEN),
    }
    STATES = ("present",)
    ACTIONS = ("request", "now")
    IMMEDIATE_ACTIONS = ("now",)
    EXAMPLES = [{"reboot": "pending", "if_exists": "{tmp}/reboot-required",
                 "reason": "upgrades are pending",
                 "_setup": {"reboot-required": ""}, "_expect": {"reboot-required": ""}}]
    # a reboot shows its name and reason only: the reason is the canary's place
    SENSITIVE_EXAMPLE = {"reboot": "secret-reason", "sensitive": True, "reason": "{canary}",
                         "if_exists": "/"}

    def validate(self) -> None:
        path = self.spec.get("if_exists")
        if path is not None and not os.path.isabs(path):
            raise SpecError("if_exists", f"if_exists must be an absolute path, not {path!r}")

    @property
    def why(self) -> str:
        return self.spec["reason"] or f"asked for by {self.ident}"

    def check(self) -> list[Change]:
        path = self.spec.get("if_exists")
        if self.reboot_asked or path is None or not os.path.lexists(path):
            return []
        return [Change("reboot", None, f"{self.spec['at']}: {self.why} ({path} exists)")]

    def apply(self, changes: list[Change]) -> None:
        self.reboot_asked = self.spec["at"]

    def refresh(self, action: str) -> None:
        # "now" wins over an earlier "request" of the same run
        if action == "now" or self.reboot_asked is None:
            self.reboot_asked = "now" if action == "now" else "end"
