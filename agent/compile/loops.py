"""``loop:`` and ``when:``: one resource per item, and resources kept out by a condition.

Both are decided while the catalog is compiled, before anything changes::

    - template: "/etc/nginx/sites-enabled/{{ item.name }}"
      source: site.conf.j2
      loop: "{{ attributes.web.sites }}"          # one template per site
      when: "{{ item.enabled }}"                  # evaluated for each item

    - package: selinux-utils
      when: "{{ facts.selinux.enabled }}"         # or, Ansible-style: facts.selinux.enabled

``loop`` takes a list (written in the recipe, or one ``{{ expression }}`` that gives one)
or a mapping, whose entries become items ``{key: ..., value: ...}`` in order. Each item is
``item`` in every value of the resource and in its template, and ``loop_index`` is its
position (0 for the first). ``when`` is one expression, with or without ``{{ }}``; a
false one keeps the resource (or that item) out of the catalog, and the run reports it
as skipped by condition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agent.compile.render import Renderer, RenderError

MAX_ITEMS = 10_000  # items one loop may make: each is a resource of the catalog
_FALSE = frozenset({"false", "no", "off", "0", ""})
_TRUE = frozenset({"true", "yes", "on", "1"})


class LoopError(ValueError):
    """A ``loop`` or ``when`` value that cannot be used; the message says what to write."""


def loop_items(raw: Any, renderer: Renderer) -> list[Any]:
    """The items of a ``loop:`` value (RenderError or LoopError when it has none)."""
    value = renderer.native(raw) if isinstance(raw, str) else renderer.value(raw)
    if isinstance(value, Mapping):
        value = [{"key": k, "value": v} for k, v in value.items()]
    elif isinstance(value, (tuple, range)):
        value = list(value)
    if not isinstance(value, list):
        raise LoopError(f"loop must be a list (or a mapping), not {type(value).__name__} "
                        f"{_clip(value)}; e.g. loop: \"{{{{ attributes.web.sites }}}}\" or "
                        "loop: [a, b]")
    if len(value) > MAX_ITEMS:
        raise LoopError(f"loop has {len(value):,} items; one loop may make at most "
                        f"{MAX_ITEMS:,} resources")
    return value


def condition(raw: Any, renderer: Renderer) -> bool:
    """Whether a ``when:`` value holds: a boolean, ``{{ expression }}`` or a bare expression."""
    if isinstance(raw, bool):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        raise LoopError(f"when must be an expression such as \"{{{{ facts.os_family == "
                        f"'debian' }}}}\" or true/false, not {_clip(raw)}")
    text = raw.strip()
    if "{{" in text or "{%" in text:
        value = renderer.native(text)
    else:  # Ansible writes conditions without braces
        value = renderer.native("{{ " + text + " }}")
    return truth(value, raw)


def truth(value: Any, raw: Any) -> bool:
    """``value`` as a condition: booleans, numbers, None, collections; strings only when
    they say true or false (yes/no, on/off, 1/0), so a misspelt name is never "true"."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _FALSE:
            return False
        if word in _TRUE:
            return True
        raise LoopError(f"when gave the string {_clip(value)}, which is neither true nor "
                        f"false (from {_clip(raw)}); compare it, e.g. \"{{{{ x == 'on' }}}}\"")
    if value is None or isinstance(value, (bool, int, float, list, tuple, dict, Mapping)):
        return bool(value)
    raise LoopError(f"when gave {type(value).__name__}, which is neither true nor false "
                    f"(from {_clip(raw)})")


def describe_item(index: int, item: Any, hide: bool = False) -> str:
    """``item 2 ({"name": "b"})``, for errors; only the index when values are hidden."""
    if hide:
        return f"item {index}"
    return f"item {index} ({_clip(item)})"


def _clip(value: Any, width: int = 60) -> str:
    try:
        text = json.dumps(value, default=str, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


__all__ = ["LoopError", "MAX_ITEMS", "RenderError", "condition", "describe_item",
           "loop_items", "truth"]
