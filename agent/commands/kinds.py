"""trueup kinds: every resource type with its fields and documentation."""

from __future__ import annotations

import argparse
import inspect
import json
import re
import textwrap
from collections.abc import Mapping
from typing import Any

from agent.config import Config
from agent.errors import TrueupError, did_you_mean
from agent.resources import COMMON_FIELDS, Field, Resource, load_all

_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:$")  # a Google-style header: "Spec:", "Example:"


def main(args: argparse.Namespace, cfg: Config) -> int:
    """Print every kind (or ``args.kind``) as text, or as JSON with ``--json``."""
    kinds = load_all()
    name = getattr(args, "kind", None)
    if name:
        if name not in kinds:
            raise TrueupError(f"unknown resource type {name!r}{did_you_mean(name, list(kinds))}; "
                              f"types: {', '.join(kinds)}")
        kinds = {name: kinds[name]}
    if getattr(args, "json", False):
        print(json.dumps(describe(kinds), indent=2))
    else:
        print(render(kinds, full=bool(name)))
    return 0


def describe(kinds: Mapping[str, type[Resource]]) -> dict[str, Any]:
    """The machine-readable form: each kind's documentation and fields, and the common fields.

    Shape::

        {"kinds": {"file": {"summary": str, "description": str, "states": [str],
                            "actions": [str], "system": bool, "example": str (recipe YAML),
                            "fields": {"mode": FIELD, ...}}, ...},
         "common_fields": {"retries": FIELD, ...}}

    where FIELD is ``{"type": ["str", "int"], "default": ..., "choices": [...] | null,
    "doc": str, "required": bool}``.
    """
    out: dict[str, Any] = {}
    for kind, cls in kinds.items():
        doc = docstring_parts(cls)
        out[kind] = {"summary": doc["summary"], "description": doc["description"],
                     "states": list(cls.STATES), "actions": list(cls.ACTIONS),
                     "system": cls.SYSTEM, "example": doc["example"],
                     "fields": _fields_json(cls.FIELDS)}
    return {"kinds": out, "common_fields": _fields_json(COMMON_FIELDS)}


def render(kinds: Mapping[str, type[Resource]], full: bool = False) -> str:
    """The text form: per kind its summary, states, actions and a table of its fields; then
    the fields every kind takes. ``full`` adds each kind's description and example."""
    blocks = []
    for kind, cls in kinds.items():
        doc = docstring_parts(cls)
        lines = [kind, "=" * len(kind), doc["summary"]]
        if full and doc["description"]:
            lines += ["", doc["description"]]
        lines += ["", f"states: {', '.join(cls.STATES)}",
                  f"actions: {', '.join(cls.ACTIONS) or '-'}", ""]
        lines += field_table(cls.FIELDS) if cls.FIELDS else ["(no fields of its own)"]
        if full and doc["example"]:
            lines += ["", "Example:", *("  " + line for line in doc["example"].splitlines())]
        blocks.append("\n".join(lines))
    common = "Fields every type takes"
    blocks.append("\n".join([common, "=" * len(common), *field_table(COMMON_FIELDS)]))
    return "\n\n".join(blocks)


def field_table(fields: Mapping[str, Field]) -> list[str]:
    """One line per field: name, type(s), default and meaning, in aligned columns."""
    rows = [("field", "type", "default", "meaning")]
    for name, fld in fields.items():
        doc = fld.doc
        if fld.choices:
            doc += f" (one of: {', '.join(map(str, fld.choices))})"
        rows.append((name, " | ".join(t.__name__ for t in fld.types), _default_text(fld), doc))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True))
            + "  " + row[3] for row in rows]


def docstring_parts(cls: type[Resource]) -> dict[str, str]:
    """A kind's docstring split: ``summary`` (first paragraph), ``description`` (the other
    paragraphs, outside sections) and ``example`` (the Example: section, dedented)."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    summary: list[str] = []
    while lines and lines[0].strip():
        summary.append(lines.pop(0))
    body: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if _SECTION.match(line):
            current = sections.setdefault(line[:-1].lower(), [])
        elif current is not None and (line.startswith(" ") or not line.strip()):
            current.append(line)
        else:
            current = None
            body.append(line)
    example = textwrap.dedent("\n".join(sections.get("example", []))).strip("\n")
    return {"summary": "\n".join(summary), "description": _paragraphs(body),
            "example": example + "\n" if example else ""}


def _paragraphs(lines: list[str]) -> str:
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _fields_json(fields: Mapping[str, Field]) -> dict[str, Any]:
    return {name: {"type": [t.__name__ for t in fld.types], "default": _jsonable(fld.default),
                   "choices": list(fld.choices) if fld.choices else None, "doc": fld.doc,
                   "required": fld.required}
            for name, fld in fields.items()}


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _default_text(fld: Field) -> str:
    if fld.required:
        return "required"
    if fld.default is None:
        return "-"
    return json.dumps(_jsonable(fld.default))
