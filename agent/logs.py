"""Diagnostic logging (stderr, optionally a file), with every secret value scrubbed.

``TRUEUP_LOG_LEVEL=DEBUG`` shows botocore's request and response traces (decrypted
SecureString values included, as botocore logs them); ``TRUEUP_LOG_FILE=/var/log/trueup.log``
also appends them to a file. Both pass through :class:`agent.redact.LogFilter`, and an
uncaught exception's traceback is scrubbed the same way.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from types import TracebackType

from agent.redact import REDACTOR, LogFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup() -> None:
    """Attach scrubbing handlers to the root logger (once per process)."""
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
    sys.excepthook = _excepthook


def _excepthook(kind: type[BaseException], exc: BaseException,
                tb: TracebackType | None) -> None:
    text = "".join(traceback.format_exception(kind, exc, tb))
    sys.stderr.write(REDACTOR.scrub(text) if REDACTOR else text)
