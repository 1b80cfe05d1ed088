"""Errors that stop a run before anything changes, and errors of one resource."""

from __future__ import annotations


class TrueupError(Exception):
    """trueup cannot run: bad recipe, configuration or source. Exit 1, nothing changed.

    The message names the file and line when there is one, and says what to do.
    """

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
                if self.column:
                    where += f":{self.column}"
            where += ": "
        from agent.redact import REDACTOR

        text = where + self.message
        return REDACTOR.scrub(text) if REDACTOR else text  # a secret never reaches a message


class ResourceError(Exception):
    """One resource could not be converged; the run goes on without its dependents."""


class RenderError(Exception):
    """A value or template could not be rendered; carries the template line when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class Unreachable(Exception):
    """AWS could not be reached (network, timeout, throttling or 5xx after every retry)."""


class LockBusy(Exception):
    """Another run holds the lock."""


class Interrupted(BaseException):
    """A signal (SIGTERM, SIGINT) asked the run to stop; exit ``128 + signum``.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the
    way (the runner's guard against a kind's bug) can swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        """The signal's name, such as "SIGTERM"."""
        import signal

        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def did_you_mean(word: str, options: list[str]) -> str:
    """`` (did you mean 'file'?)`` for the option closest to ``word``, or ``""``."""
    import difflib

    close = difflib.get_close_matches(word, options, n=3)
    if not close:
        return ""
    # a transposed pair of letters ("flie") is the likelier typo
    best = next((c for c in close if sorted(c) == sorted(word)), close[0])
    return f" (did you mean {best!r}?)"
