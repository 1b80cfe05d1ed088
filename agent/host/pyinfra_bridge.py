"""pyinfra's facts and operations, run on this host through trueup's System seam.

An operation plans by reading facts and yielding the commands that are needed;
here the plan is a resource's ``check`` (the commands are its diff) and running
those exact commands is its ``apply``. Each fact is read once per run and
forgotten when a resource changes the state it describes.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.errors import ResourceError
from agent.host.system import System

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any


def shell_argv(text: str) -> list[str]:
    """The argv that runs a shell command line: how pyinfra's facts and plans run."""
    return ["/bin/sh", "-c", text]


def fact_command(cls: type, *args: Any, **kwargs: Any) -> str:
    """The shell command line that reads pyinfra fact ``cls`` with these arguments."""
    command = cls().command(*args, **kwargs)
    return command.get_raw_value() if hasattr(command, "get_raw_value") else str(command)


def _key(cls: type, args: tuple, kwargs: dict) -> tuple:
    return (cls, repr(args), repr(sorted(kwargs.items())))


class FactHost:
    """Stands in for pyinfra's ``host`` while an operation plans.

    Only what planning needs is here: ``get_fact`` (cached per run) and ``noop``.
    Facts are read by running their shell command through the :class:`System`, so
    a rooted System's runner can serve them; ``create_fact`` sets one outright.

    Attributes:
        cache: fact values of this run, by (class, args, kwargs).
        reads: fact name → times read from the host.
        noops: why operations planned nothing (pyinfra's ``host.noop``), in order.
        refreshed_indexes: package managers whose index this run refreshed (apt ...):
            ``package`` refreshes one at most once per run.
        pending: once-per-run work that changed resources left to do ("apt-update"
            after a repository changed, "daemon-reload" after a unit changed): the
            first resource that needs it done does it, else it is done at the end of
            the run (``Resource.settle``).
    """

    def __init__(self, system: System) -> None:
        self.system = system
        self.cache: dict[tuple, Any] = {}
        self.reads: dict[str, int] = {}
        self.noops: list[str] = []
        self.refreshed_indexes: set[str] = set()
        self.pending: set[str] = set()

    def get_fact(self, cls: type, *args: Any, **kwargs: Any) -> Any:
        key = _key(cls, args, kwargs)
        if key not in self.cache:
            self.cache[key] = self._read(cls, args, kwargs)
        return self.cache[key]

    def create_fact(self, cls: type, data: Any, *args: Any, **kwargs: Any) -> None:
        """Set the value of a fact (for these arguments) without reading the host."""
        self.cache[_key(cls, args, kwargs)] = data

    def _read(self, cls: type, args: tuple, kwargs: dict) -> Any:
        fact = cls()
        required = fact.requires_command(*args, **kwargs)
        if required and self.system.which(str(required)) is None:
            return fact.default()
        done = self.system.run(shell_argv(fact_command(cls, *args, **kwargs)), timeout=300)
        self.reads[cls.name] = self.reads.get(cls.name, 0) + 1
        if not done.ok:
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ResourceError(f"cannot read {cls.name}: {detail[0]}")
        lines = done.stdout.splitlines()
        return fact.process(lines) if lines else fact.default()

    def forget(self, *classes: type) -> None:
        """Drop cached facts of ``classes`` (all facts if none given) after a change."""
        for key in list(self.cache):
            if not classes or key[0] in classes:
                del self.cache[key]

    def noop(self, description: str) -> None:
        self.noops.append(description)


def plan(operation: Callable[..., Any], host: FactHost, **kwargs: Any) -> list[str]:
    """The shell commands a pyinfra operation yields for the current facts."""
    from agent import logs

    logs.setup()  # before pyinfra can log anything
    from pyinfra.context import ctx_host

    commands: list[str] = []
    with ctx_host.use(host):
        try:
            for command in operation._inner(**kwargs):
                if hasattr(command, "get_raw_value"):
                    commands.append(command.get_raw_value())
                elif isinstance(command, str):
                    commands.append(command.strip())
                else:
                    raise ResourceError(f"pyinfra planned a {type(command).__name__}, which "
                                        "trueup does not run")
        except ResourceError:
            raise
        except Exception as exc:  # pyinfra's OperationError and friends
            raise ResourceError(f"{type(exc).__name__}: {exc}") from None
    return commands


def run_commands(host: FactHost, commands: list[str], timeout: float | None = None) -> None:
    """Run planned commands in order; the first failure stops and is reported."""
    for text in commands:
        done = host.system.run(shell_argv(text), timeout=timeout)
        if not done.ok:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ResourceError(f"{text!r} exited with status {done.returncode}"
                                + (": " + " | ".join(tail) if tail else ""))
