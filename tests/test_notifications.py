"""A restart notified in a run absorbs that run's reloads (the runner, with recording kinds)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from agent.compile.catalog import Catalog, Node, _order
from agent.engine.runner import Runner
from agent.host.system import System
from agent.model import CHANGED, Change, Location
from agent.resources import Context, Resource


class Daemon(Resource):  # no kind=: kept out of the registry
    """Records each action it is asked for; never drifts itself."""

    kind: ClassVar[str] = "daemon"
    ACTIONS = ("restart", "reload")

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name, {}, Context("", "", str, None, None))
        self.log = log

    def check(self) -> list[Change]:
        return []

    def refresh(self, action: str) -> None:
        self.log.append(action)


class Edit(Daemon):
    """Always changes (a config file that was edited)."""

    kind: ClassVar[str] = "edit"
    done = False

    def check(self) -> list[Change]:
        return [] if self.done else [Change("content", "old", "new")]

    def apply(self, changes: list[Change]) -> None:
        self.done = True


def run(edits: list[tuple[str, str, bool]],
        noop: bool = False) -> tuple[list[str], dict[str, Any]]:
    """Edits ``(name, action, immediately)`` each notify daemon:d; what d was asked."""
    log: list[str] = []
    nodes = [Node(Edit(name, log), Location("r.yml", i + 1), i, "r", "any",
                  notify=[("daemon:d", action)], immediately=now)
             for i, (name, action, now) in enumerate(edits)]
    daemon = Node(Daemon("d", log), Location("r.yml", 99), len(nodes), "r", "any")
    nodes.append(daemon)
    by_ident = {n.ident: n for n in nodes}
    results = Runner(Catalog(_order(nodes, by_ident), by_ident), System(),
                     noop=noop).run()
    return log, {r.ident: r for r in results}


@pytest.mark.parametrize("edits", [
    [("a", "restart", False), ("b", "reload", False)],
    [("a", "reload", False), ("b", "restart", False)],
    [("a", "restart", True), ("b", "reload", False)],
    [("a", "restart", True), ("b", "reload", True)],
    [("a", "reload", False), ("b", "restart", False), ("c", "reload", False)],
], ids=["restart-then-reload", "reload-then-restart", "immediate-restart",
        "both-immediate", "reloads-around-a-restart"])
def test_a_restart_absorbs_every_reload_of_the_run(edits):
    asked, results = run(edits)
    assert asked == ["restart"]
    daemon = results["daemon:d"]
    assert daemon.status == CHANGED
    reloads = [c for c in daemon.changes if c.field == "reload"]
    assert reloads and all(c.after.startswith("not needed: restarted by this run")
                           for c in reloads), daemon.changes


def test_a_reload_before_a_later_change_restarts_is_kept():
    # the reload ran at once, for an edit made before the restart was even asked for
    asked, _ = run([("a", "reload", True), ("b", "restart", False)])
    assert asked == ["reload", "restart"]


def test_a_restart_after_an_earlier_restart_still_runs():
    # each immediate restart follows a change the previous one did not see
    asked, _ = run([("a", "restart", True), ("b", "restart", True)])
    assert asked == ["restart", "restart"]


def test_plan_shows_the_reload_a_restart_would_absorb():
    asked, results = run([("a", "restart", False), ("b", "reload", False)], noop=True)
    assert asked == []
    changes = {c.field: c.after for c in results["daemon:d"].changes}
    assert changes == {"restart": "triggered by edit:a",
                       "reload": "not needed: restarted by this run (triggered by edit:b)"}
