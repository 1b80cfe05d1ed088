"""SIGTERM and SIGINT during a run: an exception the run stops on, and what it left undone."""

from __future__ import annotations

# the C module behind `signal`: the same functions and numbers, without signal.py's enums
# (importing `enum` is several milliseconds of every run)
import _signal as signal
import sys
from types import FrameType

from agent.errors import Interrupted

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from agent.engine.runner import Runner


class StopOnSignal:
    """``with StopOnSignal() as stop:`` turns SIGTERM and SIGINT into :class:`Interrupted`.

    The exception comes out of whatever the main thread is doing; a command being
    waited for is stopped with its whole process group on the way
    (``System.run``). Only the first signal raises: later ones arrive while that
    one is being handled, and are ignored, so the clean-up is not cut short.
    After :meth:`disarm` (the work is done, the report is being written) signals
    are ignored too. The previous handlers come back when the block ends.
    Outside the main thread, where Python cannot install handlers, it does nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.armed = True
        self.caught: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        # no threading module imported: no other thread was started, this is the main one
        threading = sys.modules.get("threading")
        if threading is None or threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def disarm(self) -> None:
        """From now on a signal is ignored: the run is over, its report is being kept."""
        self.armed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.armed or self.caught is not None:
            return
        self.caught = signum
        raise Interrupted(signum)


def interrupted_fields(exc: Interrupted, runner: Runner | None) -> dict[str, Any]:
    """Report fields of a run stopped by ``exc``: the signal, and what was not done.

    ``not_run`` lists the resources without a result, in catalog order (the one
    being converged, ``interrupted_during``, among them); ``notifications_not_run``
    the delayed notifications that were queued but not sent. ``runner`` is None
    when the signal came before the catalog was ready.
    """
    fields: dict[str, Any] = {"interrupted": exc.name, "exit_code": exc.exit_code,
                              "not_run": runner.unfinished() if runner else []}
    if runner is None:
        fields["error"] = f"interrupted by {exc.name} before any change"
    if runner is not None and runner.current:
        fields["interrupted_during"] = runner.current
    pending = runner.pending_notifications() if runner else []
    if pending:
        fields["notifications_not_run"] = pending
    return fields


def interrupted_line(report: dict[str, Any]) -> str:
    """"trueup: interrupted by SIGTERM; 3 resources done, 2 not run" (and the notifications)."""
    if report.get("error"):
        return f"trueup: {report['error']}"
    done, left = report["totals"]["total"], len(report["not_run"])
    text = (f"trueup: interrupted by {report['interrupted']}; "
            f"{done} resource{'' if done == 1 else 's'} done, {left} not run")
    pending = len(report.get("notifications_not_run", []))
    if pending:
        text += f", {pending} notification{'' if pending == 1 else 's'} not sent"
    return text
