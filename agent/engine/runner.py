"""The engine: converge a catalog resource by resource.

For each resource, in order: guards, then ``check``; under ``--noop`` stop
there. Otherwise ``apply`` exactly those changes (with retries), and ``check``
again: anything left is a failure (paired execution). A failed resource skips
its dependents; independent resources still converge. Notifications from
changed resources run once each, at the end, or at once with ``immediately``.
A resource that asks for a reboot (the reboot kind) is noted in ``reboot``; one that
asks for it ``now`` ends the walk there.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.compile.nodes import Catalog, Node
from agent.engine.sensitive import shown_changes, shown_error
from agent.errors import ResourceError
from agent.host.system import System
from agent.model import (
    CHANGED,
    EXCLUDED,
    FAILED,
    GUARDED,
    IGNORED,
    SKIPPED,
    UNCHANGED,
    Change,
    Result,
)


class Runner:
    """Converges one catalog; ``on_result`` sees each result as it is decided.

    Every change and error of a sensitive resource is masked here (engine.sensitive),
    once for all kinds, before ``on_result`` or the report sees it.
    """

    def __init__(self, catalog: Catalog, system: System, noop: bool = False,
                 on_result: Callable[[Result], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 progress: Callable[[str, str], None] | None = None,
                 only: set[str] | None = None) -> None:
        self.catalog = catalog
        self.system = system
        self.noop = noop
        self.on_result = on_result or (lambda r: None)
        self.sleep = sleep
        self.progress = progress  # (ident, step) as each step starts; None: nobody watches
        self.results: dict[str, Result] = {}
        self.blocked: dict[str, str] = {}          # ident → why it is skipped
        self.queued: dict[tuple[str, str], list[str]] = {}  # delayed notifications
        self.subscribers: dict[str, list[tuple[Node, str]]] = {}
        self.decided: set[str] = set()  # identities the walk through the catalog has passed
        self.sent: set[tuple[str, str]] = set()  # delayed notifications done
        self.current: str | None = None  # the identity being converged or refreshed
        self.done_actions: dict[str, set[str]] = {}  # ident → actions refreshed this run
        self.only = only  # converge just these identities (and what they notify): watch
        # the reboot asked for: {"resource", "when": "end"|"now", "reason"}; None: none
        self.reboot: dict[str, str] | None = None
        for node in catalog.nodes:
            for ident, action in node.subscribe:
                self.subscribers.setdefault(ident, []).append((node, action))
        # kept out by `when:`: reported, never converged
        self.excluded = [Result(e.ident, EXCLUDED, location=str(e.loc), reason=e.reason)
                         for e in catalog.excluded]

    def run(self) -> list[Result]:
        for result in self.excluded:
            self.on_result(result)
        for node in self.catalog.nodes:
            if self.only is not None and node.ident not in self.only:
                continue
            if node.ident in self.blocked:
                result = Result(node.ident, SKIPPED, location=str(node.loc),
                                error=self.blocked[node.ident])
                self._block_dependents(node)
            else:
                result = self._converge(node)
                earlier = self.results.get(node.ident)  # refreshed by an immediate notify
                if earlier is not None:
                    result.changes[:0] = earlier.changes
                    result.notified = earlier.notified
                    if result.status == UNCHANGED:
                        result.status = earlier.status
                if result.status in (FAILED, SKIPPED):
                    self._block_dependents(node)
            self._record(result)
            self._note_reboot(node)
            if result.status == CHANGED:
                self._notify_from(node)
            if self.reboot_now:
                self.system.flush()
                return self.finished()
        self._settle()
        for (ident, action), sources in self._delayed():
            if self.reboot_now:
                break
            self._refresh(self.catalog.by_ident[ident], action, sources)
            self.sent.add((ident, action))
        self.system.flush()
        return self.finished()

    @property
    def reboot_now(self) -> bool:
        """A resource asked for a reboot at once: the walk stops after it."""
        return self.reboot is not None and self.reboot["when"] == "now"

    def _note_reboot(self, node: Node) -> None:
        when = node.res.reboot_asked
        if not when or (self.reboot is not None and self.reboot["when"] == "now"):
            return
        reason = "(sensitive)" if node.res.sensitive else str(node.res.get("reason") or "")
        self.reboot = {"resource": node.ident, "when": when, "reason": reason}

    def finished(self) -> list[Result]:
        """The results decided so far, in catalog order (all of them once run() returns),
        then those of the resources a condition kept out."""
        return ([self.results[n.ident] for n in self.catalog.nodes if n.ident in self.results]
                + self.excluded)

    def unfinished(self) -> list[str]:
        """Identities not converged yet: not reached, or being converged (``current``).

        One refreshed by an immediate notification before its turn is among them too.
        """
        return [n.ident for n in self.catalog.nodes if n.ident not in self.decided]

    def pending_notifications(self) -> list[str]:
        """Delayed notifications queued but not yet sent, as "type:name action"."""
        return [f"{ident} {action}" for ident, action in self.queued
                if (ident, action) not in self.sent]

    # --- one resource -----------------------------------------------------------------

    def _converge(self, node: Node) -> Result:
        res = node.res
        result = Result(node.ident, location=str(node.loc))
        start = time.perf_counter()
        try:
            self._step(node, "checking")
            if not self._guards_pass(node):
                result.status = GUARDED
                return result
            result.changes = res.check()
            if result.changes:
                result.status = CHANGED
                if not self.noop:
                    self._apply(node, result)
                if not res.reports_changes:  # read-only: it ran (or would), and that is all
                    result.status, result.changes = UNCHANGED, []
        except (ResourceError, OSError) as exc:
            self._fail(node, result, _describe(exc))
        except Exception as exc:  # a bug in a kind must not stop the other resources
            self._fail(node, result, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            result.duration = time.perf_counter() - start
            result.changes = shown_changes(res, result.changes)
        return result

    def _apply(self, node: Node, result: Result) -> None:
        """Apply the plan in ``result.changes``, with retries; then check it took.

        A failed attempt is followed by a fresh ``check``: the next attempt applies that
        new plan, and ``result.changes`` ends as the plan of the attempt that succeeded
        (a failed attempt may have done part of the work, or something else may have).
        When that check finds nothing left, the plan of the failed attempt stays.
        """
        res = node.res
        for attempt in range(1, node.retries + 2):
            result.attempts = attempt
            try:
                self._step(node, "applying" if attempt == 1 else f"applying (attempt {attempt})")
                res.apply(result.changes)
                self._verify(node)
                return
            except (ResourceError, OSError):
                if attempt > node.retries:
                    raise
            self.sleep(node.retry_delay)
            self._step(node, "checking again")
            again = res.check()
            if not again:
                return
            result.changes = again

    def _verify(self, node: Node) -> None:
        """Paired execution: after apply, check must find nothing left to do."""
        if not node.res.converges:
            return
        self._step(node, "verifying")
        left = node.res.check()
        if left:
            fields = ", ".join(c.field for c in left)
            raise ResourceError(f"not converged after apply: {fields} still differ")

    def _step(self, node: Node, what: str) -> None:
        self.current = node.ident
        if self.progress is not None:
            self.progress(node.ident, what)

    def _fail(self, node: Node, result: Result, message: str, prefix: str = "") -> None:
        """Mark ``result`` failed (or ignored); a sensitive resource's message is cut short."""
        result.status = IGNORED if node.ignore_failure else FAILED
        result.error = prefix + shown_error(node.res, message, result.changes)

    def _guards_pass(self, node: Node) -> bool:
        for argv, want_ok in ((node.only_if, True), (node.not_if, False)):
            if argv is None:
                continue
            done = self.system.run(argv, timeout=300)
            if done.ok != want_ok:
                return False
        return True

    def _settle(self) -> None:
        """Work changed resources left for once per run (one ``apt-get update`` after
        repositories changed, one ``systemctl daemon-reload`` after units changed), done
        before the delayed notifications; its changes join the resource's result."""
        if self.noop:
            return
        for node in self.catalog.nodes:
            result = self.results.get(node.ident)
            if result is None or result.status != CHANGED:
                continue
            self._step(node, "settling")
            try:
                extra = node.res.settle()
            except (ResourceError, OSError) as exc:
                self._fail(node, result, _describe(exc), "after apply: ")
                extra = []
            result.changes.extend(shown_changes(node.res, extra))
        self.current = None

    # --- relations ----------------------------------------------------------------------

    def _block_dependents(self, node: Node) -> None:
        why = f"skipped because {node.ident} did not converge"
        for dep in node.dependents:
            self.blocked.setdefault(dep.ident, why)

    def _notify_from(self, node: Node) -> None:
        targets = [(self.catalog.by_ident[i], a) for i, a in node.notify]
        targets += self.subscribers.get(node.ident, [])
        for target, action in targets:
            if node.immediately or action in target.res.IMMEDIATE_ACTIONS:
                self._refresh(target, action, [node.ident])
            else:
                self.queued.setdefault((target.ident, action), []).append(node.ident)

    def _delayed(self) -> list[tuple[tuple[str, str], list[str]]]:
        """The delayed notifications in the order queued, except that an action another
        queued action of the same target absorbs (a reload, when a restart is queued)
        comes after it, so that it is skipped (see :meth:`_absorbed_by`)."""
        queued = list(self.queued.items())

        def absorbed(entry: tuple[tuple[str, str], list[str]]) -> bool:
            (ident, action), _ = entry
            absorbs = self.catalog.by_ident[ident].res.ABSORBS
            return any(action in absorbs.get(other, ()) for (i, other) in self.queued
                       if i == ident and other != action)

        return sorted(queued, key=absorbed)  # stable: the order queued otherwise

    def _absorbed_by(self, target: Node, action: str) -> str | None:
        """The action done to ``target`` earlier in this run that makes ``action`` unneeded."""
        absorbs = target.res.ABSORBS
        for done in self.done_actions.get(target.ident, ()):
            if action in absorbs.get(done, ()):
                return done
        return None

    def _refresh(self, target: Node, action: str, sources: list[str]) -> None:
        ident = target.ident
        result = self.results.get(ident)
        if ident in self.blocked or (result is not None and result.status in (FAILED, SKIPPED,
                                                                               GUARDED)):
            return
        if result is None:
            result = Result(ident, location=str(target.loc))
        # engine text naming identities only (shown everywhere anyway): not masked
        change = Change(action, None, f"triggered by {', '.join(sources)}")
        result.changes.append(change)
        result.notified.extend(s for s in sources if s not in result.notified)
        result.status = CHANGED
        absorbed_by = self._absorbed_by(target, action)
        if absorbed_by is not None:
            done = "restarted" if absorbed_by == "restart" else f"{absorbed_by} done"
            change.after = f"not needed: {done} by this run ({change.after})"
        elif self.noop:  # what run would do: this action, which absorbs later ones
            self.done_actions.setdefault(ident, set()).add(action)
        else:
            start = time.perf_counter()
            self._step(target, f"{action} (notified)")
            try:
                if target.res.refresh(action) is False:
                    change.after = f"not needed: started by this run ({change.after})"
                else:
                    self.done_actions.setdefault(ident, set()).add(action)
            except (ResourceError, OSError) as exc:
                self._fail(target, result, _describe(exc), f"{action} failed: ")
            except Exception as exc:
                self._fail(target, result, f"internal error: {type(exc).__name__}: {exc}",
                           f"{action} failed: ")
            result.duration += time.perf_counter() - start
        self.results[ident] = result
        self.current = None
        self._note_reboot(target)
        # the console shows just this notification, not the resource's earlier changes again
        self.on_result(Result(ident, result.status, [change], result.error))

    def _record(self, result: Result) -> None:
        self.results[result.ident] = result
        self.decided.add(result.ident)
        self.current = None
        self.on_result(result)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc)
