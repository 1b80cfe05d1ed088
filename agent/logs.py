"""Diagnostic logging (stderr, optionally a file), with every secret value scrubbed.

``TRUEUP_LOG_LEVEL=DEBUG`` shows botocore's request and response traces (decrypted
SecureString values included, as botocore logs them); ``TRUEUP_LOG_FILE=/var/log/trueup.log``
also appends them to a file. Both pass through :class:`LogFilter`, and an
uncaught exception's traceback is scrubbed the same way.
"""

from __future__ import annotations

import logging
import os
import sys

from agent.redact import REDACTOR

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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


def setup() -> None:
    """Attach scrubbing handlers to the root logger (once per process).

    Called before any library that logs is imported (boto3, pyinfra), and at start
    when TRUEUP_LOG_LEVEL or TRUEUP_LOG_FILE ask for logs; a folder run of file
    resources imports no logging at all.
    """
    root = logging.getLogger()
    if any(isinstance(f, LogFilter) for h in root.handlers for f in h.filters):
        return
    level = os.environ.get("TRUEUP_LOG_LEVEL", "WARNING").upper()
    root.setLevel(getattr(logging, level, logging.WARNING))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    path = os.environ.get("TRUEUP_LOG_FILE")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        handlers.append(logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8")))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(LogFilter())
        root.addHandler(handler)

