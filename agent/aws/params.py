"""Parameter Store reads: a whole tree, one secret, and the values kept there."""

from __future__ import annotations

import json
import re
from typing import Any

from agent.aws.clients import call, client, pages
from agent.errors import TrueupError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def get_tree(path: str, decrypt: bool = True) -> list[dict[str, Any]]:
    """Every parameter under ``path``, recursively (decrypted unless ``decrypt`` is False),
    in as few pages as AWS allows."""
    ssm = client("ssm")
    return [param for page in pages(ssm.get_parameters_by_path,
                                    f"ssm GetParametersByPath {path}", Path=path,
                                    Recursive=True, WithDecryption=decrypt, MaxResults=10)
            for param in page.get("Parameters", [])]


def get_secret(name: str) -> str:
    """The decrypted value of one parameter (``secret("/path")`` outside the source's tree)."""
    ssm = client("ssm")
    try:
        got = call(ssm.get_parameter, f"secret {name!r}", Name=name, WithDecryption=True)
    except TrueupError as exc:
        if "ParameterNotFound" in exc.message:
            raise TrueupError(f"secret {name!r}: no such parameter in Parameter Store") from None
        raise
    return str(got["Parameter"]["Value"])


def attribute_value(param: dict[str, Any]) -> Any:
    """String → a YAML scalar (8080 → int); StringList → list; SecureString → exact text."""
    value = str(param["Value"])
    kind = param.get("Type")
    if kind == "SecureString":
        return value
    if kind == "StringList":
        return value.split(",")
    import yaml

    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        return value
    if isinstance(parsed, (dict, list)) and not value.lstrip().startswith(("{", "[")):
        return value
    return parsed


def parse_pointer(text: str, name: str) -> dict[str, Any]:
    """The release pointer JSON, checked: an s3:// uri, a sha256 and a version."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise TrueupError(f"{name}: not a release pointer; expected JSON "
                          '{"uri": "s3://bucket/key.tar.gz", "sha256": "...", "version": "..."}'
                          " (written by trueup publish)")
    uri, sha = data.get("uri"), str(data.get("sha256", "")).lower()
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise TrueupError(f"{name}: uri must be s3://bucket/key.tar.gz, not {uri!r}")
    if not _SHA256.match(sha):
        raise TrueupError(f"{name}: sha256 must be 64 hex digits, not {data.get('sha256')!r}")
    return {"uri": uri, "sha256": sha, "version": str(data.get("version") or "")}


# --------------------------------------------------------------------------- release pointer


def current_pointer(name: str) -> tuple[int, dict[str, Any]] | None:
    """(parameter version, pointer JSON) of the pointer ``name``; None when there is none."""
    ssm = client("ssm")
    try:
        got = call(ssm.get_parameter, f"ssm GetParameter {name}", Name=name)
    except TrueupError as exc:
        if "ParameterNotFound" in exc.message:
            return None
        raise
    try:
        value = json.loads(got["Parameter"]["Value"])
    except ValueError:
        value = {}
    return int(got["Parameter"]["Version"]), value if isinstance(value, dict) else {}


def put_pointer(name: str, pointer: dict[str, Any], label: str = "") -> int:
    """Write ``pointer`` as a new version of ``name`` (and label it); its version number."""
    ssm = client("ssm")
    put = call(ssm.put_parameter, f"ssm PutParameter {name}", Name=name, Type="String",
               Value=json.dumps(pointer, sort_keys=True), Overwrite=True,
               Description="trueup release pointer (written by trueup publish)")
    number = int(put["Version"])
    if label:
        call(ssm.label_parameter_version, f"ssm LabelParameterVersion {name}", Name=name,
             ParameterVersion=number, Labels=[label])
    return number


def find_pointer(name: str, target: str) -> str:
    """The pointer JSON of parameter version/label ``target``, or of bundle version ``target``."""
    ssm = client("ssm")
    try:
        got = call(ssm.get_parameter, f"ssm GetParameter {name}:{target}",
                   Name=f"{name}:{target}")
        return str(got["Parameter"]["Value"])
    except TrueupError as exc:
        if not any(code in exc.message for code in ("ParameterNotFound", "ParameterVersion",
                                                    "ValidationException")):
            raise
    for page in pages(ssm.get_parameter_history, f"ssm GetParameterHistory {name}", Name=name):
        for entry in reversed(page.get("Parameters", [])):
            try:
                data = json.loads(entry.get("Value", ""))
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("version") == target:
                return str(entry["Value"])
    raise TrueupError(f"cannot roll back {name} to {target!r}: no parameter version, label "
                      "or bundle version of that name (see: aws ssm get-parameter-history "
                      f"--name {name})")
