"""A fake host for the system kinds' fixture tests: a scratch root, a FakeRunner, facts.

Like pyinfra's operation tests (tests/operations/<module>.<op>/*.json in its repository):
the facts are filled in first (here: the output the runner gives for each fact's shell
command, so pyinfra parses it as on a real host), the planned commands are asserted
exactly, and after a simulated apply (``then=`` callbacks that change the answers) a
second plan yields nothing. Nothing needs root: the System is rooted at tmp_path/root and
no command really runs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from agent.engine.backups import Backups
from agent.host.pyinfra_bridge import FactHost, fact_command
from agent.host.system import System
from agent.model import Change
from agent.resources import Context, Resource, kind_class
from tests.fakerunner import FakeRunner
from tests.helpers import snapshot


class FakeHost:
    """One rooted System with its runner, fact host and resource context."""

    def __init__(self, tmp_path: Path, tools: tuple[str, ...] = ()) -> None:
        self.root = tmp_path / "root"
        (self.root / "etc").mkdir(parents=True)  # every host has one
        self.runner = FakeRunner()
        self.system = System(root=str(self.root), runner=self.runner)
        self.facts = FactHost(self.system)
        self.fact_reads: set[tuple[str, ...]] = set()  # the argv of every answered fact
        self.backups = tmp_path / "backups"
        self.ctx = Context(str(tmp_path), "r", _no_templates, Backups(str(self.backups)),
                          self.system, self.facts)
        self.tool(*tools)

    def tool(self, *names: str) -> None:
        """Put executables on the host's search path (what which() and facts look for)."""
        for name in names:
            self.write(f"/usr/bin/{name}", "#!/bin/sh\n", 0o755)

    def write(self, path: str, text: str = "", mode: int = 0o644) -> Path:
        """Create a file on the host (with its parents)."""
        real = Path(self.system.path(path))
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text(text)
        os.chmod(real, mode)
        return real

    def fact(self, cls: type, output: str, *args: Any, **kwargs: Any) -> None:
        """Answer the shell command of pyinfra fact ``cls`` (with these arguments)."""
        argv = shell(fact_command(cls, *args, **kwargs))
        self.fact_reads.add(tuple(argv))
        self.runner.answer(argv, stdout=output)

    def on(self, command: str | list[str], then: Any = None, stdout: str = "",
           returncode: int = 0, stderr: str = "") -> None:
        """Answer a planned command (shell text or argv); ``then`` changes the host after."""
        self.runner.answer(command, stdout=stdout, returncode=returncode, stderr=stderr,
                           then=then)

    def resource(self, spec: dict[str, Any]) -> Resource:
        """The resource of ``spec`` (``{kind: name, ...}``), validated and prepared."""
        kind = next(iter(spec))
        cls = kind_class(kind)
        assert cls is not None, kind
        res = cls(str(spec[kind]), {k: v for k, v in spec.items() if k != kind}, self.ctx)
        res.validate()
        res.prepare()
        return res

    def apply(self, res: Resource, changes: list[Change]) -> tuple[list[list[str]], set[str]]:
        """Apply ``changes``; the argv run and the host paths written (created, replaced,
        removed, chmod'ed or chown'ed; a folder only for itself, not for its entries).

        Fact reads are not counted as commands run: planning reads them, apply changes.
        """
        before = snapshot(self.root)
        self.runner.clear()
        res.apply(changes)
        after = snapshot(self.root)
        ran = [argv for argv in self.runner.calls if tuple(argv) not in self.fact_reads]
        touched = {"/" + rel for rel in set(before) | set(after)
                   if _entry(before.get(rel)) != _entry(after.get(rel))}
        return ran, touched


def commands(changes: list[Change]) -> list[str]:
    """The shell commands among ``changes``."""
    return [c.after for c in changes if c.field in ("command", "update")]


def shell(text: str) -> list[str]:
    return ["/bin/sh", "-c", text]


def _entry(entry: tuple | None) -> tuple | None:
    """A snapshot entry without a folder's times (they change with its entries)."""
    if entry is not None and stat.S_ISDIR(entry[0]):
        return entry[:4]
    return entry


def _no_templates(*args: object) -> str:
    raise AssertionError("system kinds render no template")
