"""Secret values, and their removal from every text trueup shows or stores."""

from __future__ import annotations

import sys
from types import TracebackType

MASK = "********"
HIDDEN = "(sensitive)"  # stands for a value of a sensitive resource


class Redactor:
    """Knows every secret value of a run and scrubs it from text.

    Values are matched as written and as they appear inside JSON strings.
    """

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        if value and len(value) >= 3:
            self._values.add(value)
            import json

            escaped = json.dumps(value)[1:-1]
            if escaped != value:
                self._values.add(escaped)

    def __bool__(self) -> bool:
        return bool(self._values)

    def found_in(self, text: str) -> bool:
        """Whether ``text`` holds any secret value."""
        return any(value in text for value in self._values)

    def scrub(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text


REDACTOR = Redactor()


def install_excepthook() -> None:
    """Scrub secret values from the traceback of an uncaught exception."""
    sys.excepthook = _excepthook


def _excepthook(kind: type[BaseException], exc: BaseException,
                tb: TracebackType | None) -> None:
    import traceback

    text = "".join(traceback.format_exception(kind, exc, tb))
    sys.stderr.write(REDACTOR.scrub(text) if REDACTOR else text)
