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


#: Words a YAML 1.1 reader (PyYAML) takes for true, false or null, in any case: such a
#: value is read by YAML itself, never by the shortcut of :func:`plain_scalar`.
YAML_WORDS = frozenset({"yes", "no", "on", "off", "true", "false", "null", "y", "n"})
_WORD_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_/")
_WORD_CHARS = _WORD_START | frozenset("0123456789.-")


def plain_scalar(raw: str) -> tuple[bool, Any]:
    """``(True, value)`` when ``raw`` is a value YAML reads as a plain decimal integer (of
    at most 18 digits) or a plain word, known without a YAML reader; ``(False, None)``
    for anything else.

    A word starts with a letter, ``_`` or ``/`` and holds only letters, digits and
    ``_./-``: ``web01``, ``/srv/app``, ``eu-west-1``; true/false/null words (``yes``,
    ``off`` …) are left to YAML, as is every other number (``0x1f``, ``1.5``, ``010``).
    """
    if raw.isdigit() and raw.isascii() and len(raw) < 19 and (raw == "0" or raw[0] != "0"):
        return True, int(raw)
    if raw and raw[0] in _WORD_START and all(c in _WORD_CHARS for c in raw) \
            and raw.lower() not in YAML_WORDS:
        return True, raw
    return False, None


def parse_assignment(text: str) -> dict[str, Any]:
    """``web.port=8080`` → ``{"web": {"port": 8080}}``; the value is read as YAML.

    A value that is not valid YAML is taken as a string; one over the limits of
    compile.yamlfile (aliases, nesting) is an error. A plain word or decimal integer
    is read without a YAML reader (:func:`plain_scalar`), to the same value.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a byte that is not UTF-8 on the command line
        try:
            shown = str(text.encode("utf-8", "surrogateescape"))[2:-1]  # b'x=\xff' → x=\xff
        except UnicodeEncodeError:
            shown = text.encode("utf-8", "backslashreplace").decode("ascii")
        raise TrueupError(f"'{shown}' is not UTF-8 text; give attributes as UTF-8",
                          "-a") from None
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise TrueupError(f"-a expects key.sub=value, got {text!r}")
    plain, value = plain_scalar(raw)
    if not plain:
        value = _yaml_value(key, raw)
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _yaml_value(key: str, raw: str) -> Any:
    from agent.compile import yamlfile

    try:
        value = yamlfile.parse(f"-a {key}", raw) if raw.strip() else ""
    except yamlfile.LimitError as exc:
        raise TrueupError(exc.message, f"-a {key}") from None
    except TrueupError:
        value = raw
    if isinstance(value, (dict, list)) and not raw.lstrip().startswith(("{", "[")):
        value = raw
    return value


def merge_all(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """All layers merged, lowest precedence first."""
    out: dict[str, Any] = {}
    for layer in layers:
        deep_merge(out, layer)
    return out
