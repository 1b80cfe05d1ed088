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

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.errors import TrueupError
from agent.sources import archive


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
    from agent.aws.clients import call, client, object_sha256
    from agent.aws.params import current_pointer, put_pointer
    from agent.commands.validate import validate_bundle

    name = pointer_name(env, ssm_path)
    if not bucket:
        raise TrueupError("publish needs --bucket BUCKET (where bundles are kept)")
    attributes, origin = env_attributes(name.rsplit("/", 1)[0])
    validate_bundle(path, attributes=attributes, attributes_origin=origin)
    with tempfile.TemporaryDirectory(prefix="trueup-publish-") as tmp:
        packed = Path(tmp) / "bundle.tar.gz"
        try:
            sha = archive.pack(Path(path), packed)
        except archive.BundleError as exc:
            raise TrueupError(str(exc), path) from None
        key = object_key(prefix, env, sha)
        uri = f"s3://{bucket}/{key}"
        s3 = client("s3")
        uploaded = object_sha256(bucket, key) != sha
        if uploaded:
            extra: dict[str, Any] = {"ServerSideEncryption": "AES256"}
            if kms_key:
                extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key}
            with open(packed, "rb") as body:
                call(s3.put_object, f"s3 PutObject {uri}", Bucket=bucket, Key=key, Body=body,
                     ContentType="application/gzip", Metadata={"sha256": sha}, **extra)
    current = current_pointer(name)
    pointer = {"uri": uri, "sha256": sha,
               "version": version or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}
    if current and current[1].get("uri") == uri and current[1].get("sha256") == sha \
            and not version:
        return Published(name, current[0], current[1], uploaded, changed=False)
    number = put_pointer(name, pointer, label)
    return Published(name, number, pointer, uploaded, changed=True)


def env_attributes(path: str) -> tuple[dict[str, Any], str]:
    """The environment's attribute tree from Parameter Store, secrets as stand-ins (not
    decrypted), so the bundle is validated against the attributes it will run with."""
    from agent.aws.params import get_tree
    from agent.sources.ssm import Tree

    prefix = f"{path}/attributes"
    params = [dict(p, Type="String", Value=f"(secret {p['Name']})")
              if p.get("Type") == "SecureString" else p
              for p in get_tree(prefix, decrypt=False)]
    return Tree(path, params, None).attributes()[0], prefix  # type: ignore[arg-type]


def rollback(env: str, target: str, label: str = "", ssm_path: str = "") -> Published:
    """Point ``env`` again at an earlier pointer: a parameter version, a label, or a
    bundle version string found in the pointer's history."""
    from agent.aws.clients import object_sha256
    from agent.aws.params import current_pointer, find_pointer, parse_pointer, put_pointer

    name = pointer_name(env, ssm_path)
    old = find_pointer(name, target)
    pointer = parse_pointer(old, f"{name} ({target})")
    bucket, _, key = pointer["uri"][len("s3://"):].partition("/")
    if object_sha256(bucket, key) != pointer["sha256"]:
        raise TrueupError(f"cannot roll back to {target}: {pointer['uri']} is gone or does not "
                          f"hold sha256 {pointer['sha256']}")
    current = current_pointer(name)
    if current and current[1].get("sha256") == pointer["sha256"] \
            and current[1].get("uri") == pointer["uri"]:
        return Published(name, current[0], current[1], False, changed=False)
    number = put_pointer(name, pointer, label)
    return Published(name, number, pointer, False, changed=True)


def describe(result: Published) -> str:
    """What publish prints: a summary line, then the pointer as JSON on its own line."""
    state = "now" if result.changed else "already"
    head = (f"trueup publish: {result.parameter} is {state} version "
            f"{result.parameter_version}" + ("" if not result.uploaded else
                                             f" (uploaded {result.pointer['uri']})"))
    return head + "\n" + json.dumps(result.pointer, sort_keys=True)


def main(args: argparse.Namespace, cfg: Config) -> int:
    if args.rollback:
        if args.path:
            raise TrueupError("give a bundle folder or --rollback, not both")
        result = rollback(args.env, args.rollback, args.label, args.ssm_path)
    else:
        if not args.path:
            raise TrueupError("publish needs a bundle folder: trueup publish PATH --bucket B "
                              "--env E (or --rollback VERSION)")
        result = publish(args.path, args.bucket, args.env, args.prefix,
                                 args.bundle_version, args.kms_key, args.label, args.ssm_path)
    print(describe(result))
    return 0
