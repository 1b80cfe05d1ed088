"""The catalog's data: a resource with what the engine needs to schedule it, in order.

Kept apart from the compiler (agent.compile.catalog), so that a run that loads a stored
catalog (agent.compile.stored) imports neither the compiler nor its renderer.
"""

from __future__ import annotations

from agent.model import FrozenRecord, Record
from agent.resources import COMMON_FIELDS


class Node(Record):
    """A resource with what the engine needs to schedule it.

    ``dependents`` (filled by order()): resources that must not run if this one fails;
    ``lines``: the line of each spec key; ``item``: "item 2 (...)" for a resource made by a
    loop; ``raw``: the recipe's mapping, unrendered (``plan --bake-report`` reads it).
    """

    __slots__ = ("res", "loc", "index", "recipe", "phase", "requires", "notify", "subscribe",
                 "immediately", "only_if", "not_if", "retries", "retry_delay",
                 "ignore_failure", "dependents", "lines", "item", "raw")
    DEFAULTS = {"requires": [], "notify": [], "subscribe": [],
                "immediately": COMMON_FIELDS["immediately"].default,
                "only_if": None, "not_if": None,
                "retries": COMMON_FIELDS["retries"].default,
                "retry_delay": COMMON_FIELDS["retry_delay"].default,
                "ignore_failure": COMMON_FIELDS["ignore_failure"].default,
                "dependents": [], "lines": {}, "item": "", "raw": None}
    HIDDEN = ("dependents",)  # a cycle back to this node: not in repr or ==

    @property
    def ident(self) -> str:
        return self.res.ident


class Catalog(Record):
    """Every resource of a run, in the order they converge."""

    __slots__ = ("nodes", "by_ident", "excluded")
    DEFAULTS = {"excluded": []}


class Excluded(FrozenRecord):
    """A resource (or recipe) a ``when:`` kept out of the catalog, and why."""

    __slots__ = ("ident", "loc", "reason")
