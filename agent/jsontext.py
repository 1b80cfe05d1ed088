"""JSON text for the reports a run writes, without importing :mod:`json` when it can.

``import json`` imports ``re`` and ``enum`` and compiles its regular expressions: on a
small instance that is about 15 ms, a fifth of an empty run. A run mostly writes JSON, so
:func:`dumps` calls the C encoder that ``json.dumps`` itself uses for compact output
(same text, same speed); :mod:`json` is imported only for indented output, where that
encoder is missing, or by :func:`read_object` when there is a file to read.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

try:
    from _json import encode_basestring_ascii as _quote
    from _json import make_encoder as _make_encoder
except ImportError:  # a Python without the C accelerator
    _make_encoder = None


def dumps(value: Any, indent: int | None = None) -> str:
    """``json.dumps(value, indent=indent, default=str)``."""
    if indent is None and _make_encoder is not None:
        encode = _make_encoder({}, str, _quote, None, ": ", ", ", False, False, True)
        return "".join(encode(value, 0))
    import json

    return json.dumps(value, indent=indent, default=str)


def read_object(path: str, limit: int = -1) -> dict[str, Any] | None:
    """The JSON object in the file ``path`` (its first ``limit`` bytes); None when the file
    is missing or unreadable, or holds no JSON object."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(limit)
    except OSError:
        return None
    import json  # only now: most runs find no such file

    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
