"""Plain data shared by the loader, the engine and the report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was declared: a file and a 1-based line."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(slots=True)
class Change:
    """One difference between the declared and the actual state.

    ``diff`` is a unified diff for content changes (``None`` when not applicable
    or hidden because the resource is sensitive). ``payload`` carries what
    ``apply`` needs to make exactly this change (the new bytes of a file, say),
    computed once by ``check``; it is never shown, compared or reported.
    """

    field: str
    before: Any
    after: Any
    diff: str | None = None
    payload: Any = field(default=None, repr=False, compare=False)

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


@dataclass(slots=True)
class Result:
    """What happened to one resource in one run."""

    ident: str
    status: str = UNCHANGED
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    duration: float = 0.0
    location: str = ""
    notified: list[str] = field(default_factory=list)
    attempts: int = 0
    reason: str = ""  # why it was skipped by condition

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


class AttrMapping(Mapping[str, Any]):
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
