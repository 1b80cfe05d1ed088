"""trueup publish: validate a bundle folder, pack it, upload it, and move the release pointer.

Example::

    trueup publish recipes --bucket trueup-bundles --prefix bundles --env prod
    trueup publish --env prod --rollback 3          # parameter version 3 of the pointer
    trueup publish --env prod --rollback stable     # a parameter label, or a bundle version

Steps: ``trueup validate`` the folder (secrets and EC2 facts stand in, nothing is read
from AWS); pack it deterministically (same tree → same sha256); upload it to
``s3://B/P/<env>/<sha256>.tar.gz`` with server-side encryption (SSE-S3, or SSE-KMS with
``--kms-key``) and the sha256 in the object metadata, unless that object is already
there; then write ``/trueup/<env>/bundle`` = ``{"uri", "sha256", "version"}`` as a new
parameter version, and print it. A rollback writes an earlier pointer again as a new
version, after checking that its object still exists.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import bundle
from agent.errors import TrueupError


@dataclass
class Published:
    """The pointer now in force, and what it took."""

    parameter: str
    parameter_version: int
    pointer: dict[str, Any]
    uploaded: bool
    changed: bool


def pointer_name(env: str, ssm_path: str = "") -> str:
    if not ssm_path and (not env or "/" in env):
        raise TrueupError(f"--env must be an environment name such as prod, not {env!r}")
    return f"{(ssm_path or f'/trueup/{env}').rstrip('/')}/bundle"


def object_key(prefix: str, env: str, sha256: str) -> str:
    parts = [p for p in (prefix.strip("/"), env, f"{sha256}.tar.gz") if p]
    return "/".join(parts)


def publish(path: str, bucket: str, env: str, prefix: str = "", version: str = "",
            kms_key: str = "", label: str = "", ssm_path: str = "") -> Published:
    """Validate, pack, upload and point ``env`` at the bundle folder ``path``."""
    from agent.sources.ssm import call, client
    from agent.validate import validate_bundle

    name = pointer_name(env, ssm_path)
    if not bucket:
        raise TrueupError("publish needs --bucket BUCKET (where bundles are kept)")
    attributes, origin = env_attributes(name.rsplit("/", 1)[0])
    validate_bundle(path, attributes=attributes, attributes_origin=origin)
    with tempfile.TemporaryDirectory(prefix="trueup-publish-") as tmp:
        archive = Path(tmp) / "bundle.tar.gz"
        try:
            sha = bundle.pack(Path(path), archive)
        except bundle.BundleError as exc:
            raise TrueupError(str(exc), path) from None
        key = object_key(prefix, env, sha)
        uri = f"s3://{bucket}/{key}"
        s3 = client("s3")
        uploaded = not _has_object(s3, bucket, key, sha)
        if uploaded:
            extra: dict[str, Any] = {"ServerSideEncryption": "AES256"}
            if kms_key:
                extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key}
            with open(archive, "rb") as body:
                call(s3.put_object, f"s3 PutObject {uri}", Bucket=bucket, Key=key, Body=body,
                     ContentType="application/gzip", Metadata={"sha256": sha}, **extra)
    current = _current(name)
    pointer = {"uri": uri, "sha256": sha,
               "version": version or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}
    if current and current[1].get("uri") == uri and current[1].get("sha256") == sha \
            and not version:
        return Published(name, current[0], current[1], uploaded, changed=False)
    number = _put_pointer(name, pointer, label)
    return Published(name, number, pointer, uploaded, changed=True)


def env_attributes(path: str) -> tuple[dict[str, Any], str]:
    """The environment's attribute tree from Parameter Store, secrets as stand-ins (not
    decrypted), so the bundle is validated against the attributes it will run with."""
    from agent.sources.ssm import Tree, call, client

    ssm = client("ssm")
    prefix = f"{path}/attributes"
    params: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Path": prefix, "Recursive": True, "MaxResults": 10}
    while True:
        page = call(ssm.get_parameters_by_path, f"ssm GetParametersByPath {prefix}", **kwargs)
        for param in page.get("Parameters", []):
            if param.get("Type") == "SecureString":
                param = dict(param, Type="String", Value=f"(secret {param['Name']})")
            params.append(param)
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return Tree(path, params, None).attributes()[0], prefix  # type: ignore[arg-type]


def rollback(env: str, target: str, label: str = "", ssm_path: str = "") -> Published:
    """Point ``env`` again at an earlier pointer: a parameter version, a label, or a
    bundle version string found in the pointer's history."""
    from agent.sources.ssm import client, parse_pointer

    name = pointer_name(env, ssm_path)
    old = _find(name, target)
    pointer = parse_pointer(old, f"{name} ({target})")
    bucket, _, key = pointer["uri"][len("s3://"):].partition("/")
    if not _has_object(client("s3"), bucket, key, pointer["sha256"]):
        raise TrueupError(f"cannot roll back to {target}: {pointer['uri']} is gone or does not "
                          f"hold sha256 {pointer['sha256']}")
    current = _current(name)
    if current and current[1].get("sha256") == pointer["sha256"] \
            and current[1].get("uri") == pointer["uri"]:
        return Published(name, current[0], current[1], False, changed=False)
    number = _put_pointer(name, pointer, label)
    return Published(name, number, pointer, False, changed=True)


def _has_object(s3: Any, bucket: str, key: str, sha: str) -> bool:
    """Whether ``s3://bucket/key`` exists with this sha256 in its metadata."""
    from botocore.exceptions import ClientError

    from agent.sources.ssm import call

    def head() -> Any:
        try:
            return s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise

    found = call(head, f"s3 HeadObject s3://{bucket}/{key}")
    return found is not None and found.get("Metadata", {}).get("sha256") == sha


def _current(name: str) -> tuple[int, dict[str, Any]] | None:
    from agent.sources.ssm import call, client

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


def _put_pointer(name: str, pointer: dict[str, Any], label: str) -> int:
    from agent.sources.ssm import call, client

    ssm = client("ssm")
    put = call(ssm.put_parameter, f"ssm PutParameter {name}", Name=name, Type="String",
               Value=json.dumps(pointer, sort_keys=True), Overwrite=True,
               Description="trueup release pointer (written by trueup publish)")
    number = int(put["Version"])
    if label:
        call(ssm.label_parameter_version, f"ssm LabelParameterVersion {name}", Name=name,
             ParameterVersion=number, Labels=[label])
    return number


def _find(name: str, target: str) -> str:
    """The pointer JSON of parameter version/label ``target``, or of bundle version ``target``."""
    from agent.sources.ssm import call, client

    ssm = client("ssm")
    try:
        got = call(ssm.get_parameter, f"ssm GetParameter {name}:{target}",
                   Name=f"{name}:{target}")
        return str(got["Parameter"]["Value"])
    except TrueupError as exc:
        if not any(code in exc.message for code in ("ParameterNotFound", "ParameterVersion",
                                                    "ValidationException")):
            raise
    kwargs: dict[str, Any] = {"Name": name}
    while True:
        page = call(ssm.get_parameter_history, f"ssm GetParameterHistory {name}", **kwargs)
        for entry in reversed(page.get("Parameters", [])):
            try:
                data = json.loads(entry.get("Value", ""))
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("version") == target:
                return str(entry["Value"])
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    raise TrueupError(f"cannot roll back {name} to {target!r}: no parameter version, label "
                      "or bundle version of that name (see: aws ssm get-parameter-history "
                      f"--name {name})")


def describe(result: Published) -> str:
    """What publish prints: a summary line, then the pointer as JSON on its own line."""
    state = "now" if result.changed else "already"
    head = (f"trueup publish: {result.parameter} is {state} version "
            f"{result.parameter_version}" + ("" if not result.uploaded else
                                             f" (uploaded {result.pointer['uri']})"))
    return head + "\n" + json.dumps(result.pointer, sort_keys=True)
