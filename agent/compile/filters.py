"""The Jinja2 filters roles reach for, as Ansible spells them, on top of Jinja's own.

    {{ attributes.app.name | quote }}                 shell-quoted: 'my app'
    {{ attributes.app.settings | to_yaml }}           YAML (flow style for small values)
    {{ attributes.app.settings | to_nice_yaml }}      YAML, block style, indent 4
    {{ attributes.app.settings | to_json }}           JSON on one line
    {{ attributes.app.settings | to_nice_json }}      JSON, indent 4, keys sorted
    {{ attributes.tls | ternary('443', '80') }}       one of two values
    {{ attributes.token | b64encode }}                base64 (b64decode reverses it)
    {{ secret('/app/pw') | password_hash('sha512') }} a crypt(3) hash for /etc/shadow

Each one takes and returns plain values: nothing here reaches Python's internals, so the
sandbox stays closed. ``password_hash`` without ``salt`` derives the salt from the
password (agent.compile.passwords.stable_salt): the same password gives the same hash,
so a run that writes it changes nothing the second time.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Mapping
from typing import Any

from agent.compile import passwords


def plain(value: Any) -> Any:
    """``value`` as plain dicts, lists and scalars (recipe mappings, facts, tuples …)."""
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def quote(value: Any) -> str:
    return shlex.quote(str(value))


def to_yaml(value: Any, indent: int | None = None, default_flow_style: bool | None = None,
            sort_keys: bool = True, width: int = 80) -> str:
    import yaml

    return yaml.safe_dump(plain(value), allow_unicode=True, indent=indent, width=width,
                          default_flow_style=default_flow_style, sort_keys=sort_keys)


def to_nice_yaml(value: Any, indent: int = 4, sort_keys: bool = True, width: int = 80) -> str:
    return to_yaml(value, indent=indent, default_flow_style=False, sort_keys=sort_keys,
                   width=width)


def to_json(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    return json.dumps(plain(value), indent=indent, sort_keys=sort_keys, ensure_ascii=False)


def to_nice_json(value: Any, indent: int = 4, sort_keys: bool = True) -> str:
    return json.dumps(plain(value), indent=indent, sort_keys=sort_keys, ensure_ascii=False,
                      separators=(",", ": "))


def ternary(value: Any, true_value: Any, false_value: Any, none_value: Any = None) -> Any:
    if value is None and none_value is not None:
        return none_value
    return true_value if value else false_value


def b64encode(value: Any, encoding: str = "utf-8") -> str:
    return base64.b64encode(str(value).encode(encoding)).decode("ascii")


def b64decode(value: Any, encoding: str = "utf-8") -> str:
    return base64.b64decode(str(value)).decode(encoding)


def password_hash(password: Any, hashtype: str = "sha512", salt: str | None = None,
                  rounds: int | None = None) -> str:
    text = str(password)
    method = {"sha512": "sha512", "sha512_crypt": "sha512", "sha256": "sha256",
              "sha256_crypt": "sha256"}.get(str(hashtype))
    if method is None:
        raise ValueError(f"password_hash: unknown hash {hashtype!r}; use sha512 or sha256")
    try:
        return passwords.sha_crypt(text, salt or passwords.stable_salt(text), rounds, method)
    except ValueError as exc:
        raise ValueError(f"password_hash: {exc}") from None


FILTERS = {
    "quote": quote, "to_yaml": to_yaml, "to_nice_yaml": to_nice_yaml, "to_json": to_json,
    "to_nice_json": to_nice_json, "ternary": ternary, "b64encode": b64encode,
    "b64decode": b64decode, "password_hash": password_hash,
}


def install(env: Any) -> None:
    """Add :data:`FILTERS` to a Jinja2 environment."""
    env.filters.update(FILTERS)
