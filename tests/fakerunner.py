"""A recording stand-in for the host's processes: ``System(root=tmp, runner=FakeRunner())``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from agent.host.pyinfra_bridge import shell_argv
from agent.host.system import Completed


class FakeRunner:
    """Records every argv it is asked to run and answers with canned results.

    ``answer(command, stdout=..., returncode=..., then=...)`` sets what one argv
    returns; a string ``command`` stands for ``["/bin/sh", "-c", command]``. ``then``
    runs after the command is recorded: a test uses it to change what the host
    looks like (the next answer of a fact) once a planned command has run. A
    command nobody answered exits 0 with no output.

    Example::

        runner = FakeRunner()
        runner.answer("dpkg -l", stdout="ii  jq  1.6-2.1  amd64  JSON processor\\n")
        system = System(root=str(tmp_path), runner=runner)
    """

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self._answers: dict[tuple[str, ...], tuple[Completed, Callable[[], None] | None]] = {}

    def answer(self, command: str | Sequence[str], stdout: str = "", returncode: int = 0,
               stderr: str = "", then: Callable[[], None] | None = None) -> None:
        argv = shell_argv(command) if isinstance(command, str) else [str(a) for a in command]
        self._answers[tuple(argv)] = (Completed(argv, returncode, stdout, stderr), then)

    def __call__(self, argv: list[str], *, cwd: str | None = None,
                 env: Mapping[str, str] | None = None, user: str | None = None,
                 timeout: float | None = None, input: str | None = None) -> Completed:
        argv = list(argv)
        self.calls.append(argv)
        done, then = self._answers.get(tuple(argv), (None, None))
        if then is not None:
            then()
        if done is None:
            return Completed(argv, 0, "", "")
        return Completed(argv, done.returncode, done.stdout, done.stderr)

    def shell_commands(self) -> list[str]:
        """The shell command lines run so far (``/bin/sh -c TEXT``), in order."""
        shell = shell_argv("")[:2]
        return [argv[2] for argv in self.calls if len(argv) == 3 and argv[:2] == shell]

    def clear(self) -> None:
        """Forget the calls recorded so far (the answers stay)."""
        self.calls.clear()
