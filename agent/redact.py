"""Secret values, and their removal from every text trueup shows or stores."""

from __future__ import annotations

import json
import logging

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


class LogFilter(logging.Filter):
    """Scrubs secret values from every log record that passes the handler it is attached to.

    botocore logs a response body before the caller has it, so a decrypted SecureString
    would be logged before it is known as a secret: response bodies are never logged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "botocore.parsers" and str(record.msg).startswith("Response body"):
            # logged before trueup has seen (and registered) the secrets it may hold
            record.msg, record.args = "Response body: (not logged: may hold secrets)", None
            return True
        if REDACTOR:
            text = record.getMessage()
            scrubbed = REDACTOR.scrub(text)
            if scrubbed != text:
                record.msg, record.args = scrubbed, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = REDACTOR.scrub(logging.Formatter().formatException(
                    record.exc_info))
                record.exc_info = None
        return True
