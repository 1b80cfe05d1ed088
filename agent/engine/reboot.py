"""Reboots asked for by a run: the resume marker, and what the next run makes of it.

A run that ends with a reboot request writes ``reboot-pending.json`` in the state dir
(atomically, mode 0600) and exits 194, SSM Run Command's "reboot and run me again".
The marker holds the run's id, the resource that asked, its reason, what was left, and
the boot id of the boot it was written in. The next run reads it:

- written in an earlier boot: the reboot happened; the run says it *resumed*, converges
  what is left, and removes the marker;
- written in this boot: the reboot has not happened yet; the run converges, keeps the
  marker, and exits 194 again, so that no caller loses the request.
"""

from __future__ import annotations

import contextlib
import os

from agent.jsontext import dumps, read_object

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

EXIT_REBOOT = 194  # SSM's convention: the agent reboots the instance, then reruns the command
MARKER = "reboot-pending.json"
BOOT_ID = "/proc/sys/kernel/random/boot_id"


def boot_id() -> str:
    """This boot's id (a new one at every boot, in a VM or a container); "" if unknown."""
    try:
        with open(BOOT_ID) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def marker_path(state_dir: str) -> str:
    return os.path.join(state_dir, MARKER)


def read_marker(state_dir: str) -> dict[str, Any] | None:
    """The pending reboot request, or None (no marker, or one that cannot be read)."""
    return read_object(marker_path(state_dir), 65536)


def write_marker(state_dir: str, run_id: str, request: dict[str, str],
                 not_run: list[str]) -> None:
    """Record that run ``run_id`` asked for a reboot (atomically; mode 0600)."""
    data = {**request, "run_id": run_id, "boot_id": boot_id(), "not_run": not_run}
    path = marker_path(state_dir)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(dumps(data, indent=1))
    os.replace(tmp, path)


def clear_marker(state_dir: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker_path(state_dir))


def rebooted_since(marker: dict[str, Any]) -> bool:
    """Whether the machine booted since ``marker`` was written."""
    now = boot_id()
    return not now or marker.get("boot_id") != now


def resumed_line(marker: dict[str, Any]) -> str:
    """"trueup: resumed after the reboot that reboot:kernel asked for (run R)"."""
    return (f"trueup: resumed after the reboot that {marker.get('resource', '?')} asked for "
            f"(run {marker.get('run_id', '?')})")


def request_line(request: dict[str, Any], action: str) -> str:
    """The console line of a run that ends with a reboot request."""
    why = f": {request['reason']}" if request.get("reason") else ""
    if request.get("pending_since"):
        return (f"trueup: the reboot that {request['resource']} asked for in run "
                f"{request['pending_since']} has not happened yet{why}; {action}")
    return f"trueup: reboot requested by {request['resource']}{why}; {action}"
