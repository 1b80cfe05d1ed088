"""The SSM Command document infra/ssm/run-document.yml, as the SSM agent would run it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import REPO

DOCUMENT = REPO / "infra" / "ssm" / "run-document.yml"
ASSOCIATION = REPO / "infra" / "ssm" / "association.yml"


def document() -> dict[str, Any]:
    return yaml.safe_load(DOCUMENT.read_text())


def script(**values: str) -> str:
    """The step's shell script with ``{{ Name }}`` replaced as the SSM agent does: every
    parameter gets its value (or its default), after the value passed the document's
    allowedValues / allowedPattern (ValueError otherwise, as SSM refuses the command)."""
    doc = document()
    params = doc["parameters"]
    unknown = set(values) - set(params)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}")
    (step,) = doc["mainSteps"]
    text = "\n".join(step["inputs"]["runCommand"])
    for name, decl in params.items():
        value = values.get(name, decl.get("default", ""))
        if "allowedValues" in decl and value not in decl["allowedValues"]:
            raise ValueError(f"{name}={value!r} is not one of {decl['allowedValues']}")
        if "allowedPattern" in decl and not re.fullmatch(decl["allowedPattern"], value):
            raise ValueError(f"{name}={value!r} does not match {decl['allowedPattern']}")
        text = re.sub(r"\{\{\s*" + name + r"\s*\}\}", lambda _m, v=value: v, text)
    assert "{{" not in text, "a parameter was left unsubstituted"
    return text


def write_script(folder: Path, **values: str) -> Path:
    """The substituted script as ``_script.sh`` in ``folder`` (the agent's file name)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "_script.sh"
    path.write_text(script(**values))
    path.chmod(0o700)
    return path
