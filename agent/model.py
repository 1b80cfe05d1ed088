"""Plain data shared by the loader, the engine and the report."""

from __future__ import annotations

from collections.abc import Mapping

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any, ClassVar


class Record:
    """A class of named fields, with a dataclass's constructor, ``repr`` and ``==``.

    A subclass lists its fields in ``__slots__`` (that order is the constructor's) and
    their defaults in ``DEFAULTS``; a list, dict or set default is copied for each
    instance. ``HIDDEN`` fields are left out of ``repr`` and ``==``. Plain code instead
    of ``dataclasses``: importing that (and ``inspect``) and generating the methods of
    each class costs more than many runs spend on their work::

        class Point(Record):
            __slots__ = ("x", "y")
            DEFAULTS = {"y": 0}
    """

    __slots__ = ()
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    HIDDEN: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self.__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes at most {len(names)} arguments")
        put = object.__setattr__
        for name, value in zip(names, args, strict=False):
            put(self, name, value)
        defaults = self.DEFAULTS
        for name in names[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in defaults:
                value = defaults[name]
                if isinstance(value, (list, dict, set)):
                    value = value.copy()
            else:
                raise TypeError(f"{type(self).__name__}() needs {name!r}")
            put(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unknown field(s) "
                            f"{', '.join(map(repr, kwargs))}")

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied, as ``dataclasses.replace``."""
        values = {n: getattr(self, n) for n in self.__slots__}
        values.update(changes)
        return type(self)(**values)

    def _shown(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self.__slots__ if n not in self.HIDDEN)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._shown() == other._shown()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment] - mutable, as a dataclass with eq

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__
                           if n not in self.HIDDEN)
        return f"{type(self).__name__}({fields})"


class FrozenRecord(Record):
    """A :class:`Record` that cannot change after it is made, and so can be hashed."""

    __slots__ = ()

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {key!r} of {type(self).__name__}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"cannot delete field {key!r} of {type(self).__name__}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._shown())

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy go around __setattr__
        return type(self), tuple(getattr(self, n) for n in self.__slots__)


class Location(FrozenRecord):
    """Where something was declared: a file and a 1-based line."""

    __slots__ = ("file", "line")
    DEFAULTS = {"line": 0}

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class Change(Record):
    """One difference between the declared and the actual state.

    ``diff`` is a unified diff for content changes (``None`` when not applicable
    or hidden because the resource is sensitive). ``payload`` carries what
    ``apply`` needs to make exactly this change (the new bytes of a file, say),
    computed once by ``check``; it is never shown, compared or reported.
    """

    __slots__ = ("field", "before", "after", "diff", "payload")
    DEFAULTS = {"diff": None, "payload": None}
    HIDDEN = ("payload",)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "before": self.before, "after": self.after}
        if self.diff is not None:
            out["diff"] = self.diff
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        """The change :meth:`as_dict` described (as read back from a stored report)."""
        return cls(data["field"], data.get("before"), data.get("after"), data.get("diff"))


# Result statuses
UNCHANGED = "unchanged"
CHANGED = "changed"      # changed by this run (or, under --noop, would change)
FAILED = "failed"
SKIPPED = "skipped"      # a resource it depends on failed or was skipped
GUARDED = "guarded"      # only_if / not_if said no
IGNORED = "failed-ignored"  # failed with ignore_failure: true
EXCLUDED = "skipped-by-condition"  # a `when:` kept it out of the catalog


class Result(Record):
    """What happened to one resource in one run."""

    __slots__ = ("ident", "status", "changes", "error", "duration", "location", "notified",
                 "attempts", "reason")
    DEFAULTS = {"status": UNCHANGED, "changes": [], "error": None, "duration": 0.0,
                "location": "", "notified": [], "attempts": 0, "reason": ""}
    # reason: why it was skipped by condition

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "resource": self.ident,
            "status": self.status,
            "duration_ms": round(self.duration * 1000, 3),
        }
        if self.location:
            out["declared_at"] = self.location
        if self.changes:
            out["changes"] = [c.as_dict() for c in self.changes]
        if self.error:
            out["error"] = self.error
        if self.notified:
            out["notified"] = self.notified
        if self.attempts > 1:
            out["attempts"] = self.attempts
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """The result :meth:`as_dict` described (as read back from a stored report)."""
        return cls(data["resource"], data.get("status", UNCHANGED),
                   [Change.from_dict(c) for c in data.get("changes", [])], data.get("error"),
                   data.get("duration_ms", 0.0) / 1000, data.get("declared_at", ""),
                   list(data.get("notified", [])), data.get("attempts", 1),
                   data.get("reason", ""))


class AttrMapping(Mapping):  # Mapping[str, Any]
    """A mapping whose keys also read as attributes (``facts.hostname``), the way templates
    use them; a missing key is an AttributeError saying ``MISSING``."""

    MISSING = "no key named {!r}"

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(self.MISSING.format(key)) from None
