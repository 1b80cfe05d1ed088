"""What the engine lets out of a sensitive resource: no values, no diffs, terse errors.

A resource is sensitive when its recipe says ``sensitive: true`` or when a secret went
into its values (compile.phases). Kinds return their real changes and raise their real
errors; the runner passes every change and error of a sensitive resource through this
module before anything (console, ``--json``, last_run.json, history) sees it. The
unmasked changes still go to ``apply``, which needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from agent.model import Change
from agent.redact import HIDDEN

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

# state values form a closed vocabulary (the kind's STATES), so they cannot carry a secret
STATE_WORDS = frozenset({"present", "absent", "running", "stopped"})
GENERIC_ERROR = "failed (details hidden: the resource is sensitive)"
_CLAUSE_ENDS = ":;|\n"
_MIN_VALUE = 3  # shorter values ("0", "80") would match every message


def shown_changes(res: Any, changes: list[Change]) -> list[Change]:
    """The changes as reports show them: for a sensitive ``res``, values and diff hidden.

    Each masked change keeps its field name, and ``None`` stays ``None`` (so "created"
    still reads as created); ``state`` changes between the kind's own states are kept.
    """
    if not res.sensitive:
        return changes
    states = STATE_WORDS.union(getattr(res, "STATES", ()))
    return [_mask(change, states) for change in changes]


def _mask(change: Change, states: frozenset[str]) -> Change:
    if change.field == "state" and {change.before, change.after} <= states | {None}:
        return Change(change.field, change.before, change.after)
    return Change(change.field, _hide(change.before), _hide(change.after))


def _hide(value: Any) -> Any:
    return None if value is None else HIDDEN


def shown_error(res: Any, message: str, changes: Iterable[Change] = ()) -> str:
    """The error as reports show it: for a sensitive ``res``, only its first clause.

    "exited with status 3: <the program's output>" becomes "exited with status 3". When
    even the first clause holds one of the resource's values (from its spec or its
    changes), a generic message stands in for it.
    """
    if not res.sensitive:
        return message
    ends = [i for i in map(message.find, _CLAUSE_ENDS) if i >= 0]
    head = message[:min(ends, default=len(message))].strip()
    if not head or any(value in head for value in _values(res, changes)):
        return GENERIC_ERROR
    return head


def _values(res: Any, changes: Iterable[Change]) -> Iterator[str]:
    """Every text value of the resource long enough to matter, except its own identity."""
    ident = res.ident
    found = list(_texts(res.spec))
    for change in changes:
        found += _texts([change.before, change.after])
    return (value for value in found if len(value) >= _MIN_VALUE and value not in ident)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
        if "\n" in value:  # content: an error may quote one line of it
            yield from (line.strip() for line in value.splitlines())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, Mapping):  # a dict, or a resource's Spec
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)
