"""Attribute precedence, lowest first: recipe defaults < bundle file < node JSON < -a flags."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from agent.errors import TrueupError


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into ``base`` in place: mappings merge key by key, the rest replaces."""
    for key, value in over.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            deep_merge(current, value)
        else:
            base[key] = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
    return base


def parse_assignment(text: str) -> dict[str, Any]:
    """``web.port=8080`` → ``{"web": {"port": 8080}}``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise TrueupError(f"-a expects key.sub=value, got {text!r}")
    import yaml

    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, ValueError):  # ValueError: a number too long for int()
        value = raw
    if isinstance(value, (dict, list)) and not raw.lstrip().startswith(("{", "[")):
        value = raw
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def merge_all(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """All layers merged, lowest precedence first."""
    out: dict[str, Any] = {}
    for layer in layers:
        deep_merge(out, layer)
    return out
