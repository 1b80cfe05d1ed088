"""ssm:/trueup/<env>: pointer, run lists, attributes, recipes and secrets from Parameter Store.

Layout under the path (``ssm:/trueup/prod`` reads ``/trueup/prod``)::

    /trueup/prod/bundle                      String, JSON {"uri": "s3://b/k.tar.gz",
                                             "sha256": "...", "version": "..."}
    /trueup/prod/runlist                     StringList or String: base,web
    /trueup/prod/runlist.<event>             run list of a lifecycle event (setup, deploy ...)
    /trueup/prod/roles/<role>/runlist        the run list of instances tagged trueup:role=<role>
    /trueup/prod/roles/<role>/runlist.<event>
    /trueup/prod/attributes/web/port         attribute web.port = 8080 (read as YAML scalar)
    /trueup/prod/attributes/db/password      SecureString: a secret attribute (never logged)
    /trueup/prod/recipes/<name>              a small recipe.yml kept in Parameter Store

One run makes ONE ``GetParametersByPath`` walk (recursive, with decryption; 10 parameters
a page) for the whole tree, plus ``GetParameter`` for each ``secret()`` outside it, plus
the S3 request for the bundle. This module is also trueup's AWS client factory (retries,
timeouts, region, call counting) and, with ``s3.py``, the only one that imports boto3,
lazily, so a run from a folder never loads it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from agent.errors import TrueupError
from agent.loader import EVENTS, parse_runlist
from agent.sources import STATS, FetchContext, Fetched, Source, SourceUnreachable

DEFAULT_MAX_ATTEMPTS = 5
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 20
THROTTLING = {"Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
              "TooManyRequestsException", "RequestThrottled", "SlowDown",
              "RequestThrottledException", "ProvisionedThroughputExceededException"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

_clients: dict[str, Any] = {}
_lock = threading.Lock()


# --------------------------------------------------------------------------- clients


def client(service: str) -> Any:
    """A boto3 client for ``service`` with trueup's retry policy, counted in ``STATS``.

    Retries: botocore's ``standard`` mode (exponential backoff with full jitter) with
    5 attempts; ``AWS_RETRY_MODE=adaptive`` adds client-side rate limiting and
    ``AWS_MAX_ATTEMPTS`` changes the attempts. The region comes from the usual AWS
    configuration, else from IMDS (botocore never asks IMDS for it).
    """
    with _lock:
        found = _clients.get(service)
        if found is not None:
            return found
        from agent import logs

        logs.setup()  # before botocore can log anything
        import boto3
        from botocore.config import Config

        session = boto3.session.Session()
        config = Config(
            retries={"mode": os.environ.get("AWS_RETRY_MODE") or "standard",
                     "total_max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS")
                                         or DEFAULT_MAX_ATTEMPTS)},
            connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
            user_agent_extra="trueup")
        made = session.client(service, region_name=_region(session), config=config)
        made.meta.events.register("before-call", _count_call)
        made.meta.events.register("request-created", _count_attempt)
        _clients[service] = made
        return made


def _region(session: Any) -> str:
    if session.region_name:
        return str(session.region_name)
    from agent import imds

    try:
        return imds.region()
    except imds.ImdsError as exc:
        raise TrueupError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or run on "
                          f"EC2 where IMDS tells it ({exc})") from None


def _count_call(model: Any = None, **_: Any) -> None:
    STATS.call(f"{model.service_model.service_name}:{model.name}")


def _count_attempt(**_: Any) -> None:
    STATS.attempt()


def call(fn: Callable[..., Any], what: str, **kwargs: Any) -> Any:
    """``fn(**kwargs)`` with AWS errors turned into SourceUnreachable or TrueupError."""
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as AwsConnectionError

    try:
        return fn(**kwargs)
    except (AwsConnectionError, HTTPClientError) as exc:
        raise SourceUnreachable(f"{what}: {exc}") from None
    except ClientError as exc:
        code, status, message = error_parts(exc)
        if code in THROTTLING or status >= 500:
            raise SourceUnreachable(f"{what}: {code} (HTTP {status}) after retries") from None
        raise TrueupError(f"{what}: {code}: {message}") from None
    except BotoCoreError as exc:
        raise TrueupError(f"{what}: {exc}") from None


def error_parts(exc: Any) -> tuple[str, int, str]:
    """(error code, HTTP status, message) of a botocore ClientError."""
    err = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return str(err.get("Code") or status), status, str(err.get("Message") or "")


# --------------------------------------------------------------------------- Parameter Store


def get_tree(path: str) -> list[dict[str, Any]]:
    """Every parameter under ``path``, recursively and decrypted, in as few pages as AWS allows."""
    ssm = client("ssm")
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Path": path, "Recursive": True, "WithDecryption": True,
                              "MaxResults": 10}
    while True:
        page = call(ssm.get_parameters_by_path, f"ssm GetParametersByPath {path}", **kwargs)
        found += page.get("Parameters", [])
        token = page.get("NextToken")
        if not token:
            return found
        kwargs["NextToken"] = token


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


def describe_tags(instance_id: str) -> dict[str, str]:
    """The instance's tags from ``ec2:DescribeTags`` (when IMDS does not expose them)."""
    ec2 = client("ec2")
    tags: dict[str, str] = {}
    kwargs: dict[str, Any] = {"Filters": [{"Name": "resource-id", "Values": [instance_id]}]}
    while True:
        page = call(ec2.describe_tags, "ec2 DescribeTags", **kwargs)
        for tag in page.get("Tags", []):
            tags[tag["Key"]] = tag.get("Value", "")
        if not page.get("NextToken"):
            return tags
        kwargs["NextToken"] = page["NextToken"]


def parse_url(url: str) -> str:
    """``ssm:/trueup/prod`` (or ``ssm:///trueup/prod``) → ``/trueup/prod``."""
    path = url.partition(":")[2]
    while path.startswith("//"):
        path = path[1:]
    path = path.rstrip("/")
    if not path.startswith("/") or len(path) < 2 or not re.fullmatch(r"[A-Za-z0-9_.\-/]+", path):
        raise TrueupError(f"not a Parameter Store source: {url!r}; write ssm:/trueup/<env>")
    return path


class SsmSource(Source, scheme="ssm"):
    """``ssm:/trueup/<env>``: everything a run needs from one Parameter Store walk."""

    def fetch(self) -> Fetched:
        path = parse_url(self.url)
        params = get_tree(path)
        if not params:
            raise TrueupError(f"no parameters under {path} in Parameter Store (wrong "
                              "environment or region?); publish a bundle with trueup publish")
        tree = Tree(path, params, self.ctx)
        fetched = tree.fetched(self.url)
        if tree.pointer is not None:
            from agent.sources import s3

            root, info = s3.download(tree.pointer["uri"], tree.pointer["sha256"],
                                     self.ctx.state_dir)
            fetched.root = str(root)
            fetched.origin.update(info)
            if info.get("offline_reason"):
                fetched.offline = True
                fetched.offline_reason = info.pop("offline_reason")
                fetched.origin.pop("offline_reason", None)
        return fetched


class Tree:
    """The parameters of one environment, sorted into pointer, run lists, attributes, recipes."""

    def __init__(self, path: str, params: list[dict[str, Any]], ctx: FetchContext) -> None:
        from agent.redact import REDACTOR

        self.path = path
        self.ctx = ctx
        self.pointer: dict[str, Any] | None = None
        self.by_name: dict[str, dict[str, Any]] = {}
        for param in params:
            self.by_name[param["Name"]] = param
            if param.get("Type") == "SecureString":
                REDACTOR.add(str(param["Value"]))
        bundle = self.by_name.get(f"{path}/bundle")
        if bundle is not None:
            self.pointer = parse_pointer(str(bundle["Value"]), bundle["Name"])

    def fetched(self, url: str) -> Fetched:
        out = Fetched(root="", origin={"source": url})
        if self.pointer is not None:
            out.origin.update({"uri": self.pointer["uri"], "sha256": self.pointer["sha256"],
                               "version": self.pointer.get("version")})
        out.secrets = {name: str(p["Value"]) for name, p in self.by_name.items()
                       if p.get("Type") == "SecureString"}
        out.runlists = self.runlists()
        out.attributes, out.secret_attributes = self.attributes()
        out.attributes_origin = f"{self.path}/attributes"
        out.recipes = self.recipes()
        return out

    def _runlist(self, name: str) -> tuple[list[str], str] | None:
        param = self.by_name.get(name)
        if param is None:
            return None
        return parse_runlist(str(param["Value"])), name

    def runlists(self) -> dict[str, tuple[list[str], str]]:
        role = ""
        if any(n.startswith(f"{self.path}/roles/") for n in self.by_name):
            role = self.ctx.role or instance_role()
        out: dict[str, tuple[list[str], str]] = {}
        for event in ("", *EVENTS):
            suffix = f"runlist.{event}" if event else "runlist"
            found = None
            if role:
                found = self._runlist(f"{self.path}/roles/{role}/{suffix}")
            found = found or self._runlist(f"{self.path}/{suffix}")
            if found is not None:
                out[event] = found
        return out

    def attributes(self) -> tuple[dict[str, Any], list[tuple[list[str], str]]]:
        prefix = f"{self.path}/attributes/"
        tree: dict[str, Any] = {}
        secret: list[tuple[list[str], str]] = []
        for name in sorted(self.by_name):
            if not name.startswith(prefix):
                continue
            param = self.by_name[name]
            keys = name[len(prefix):].split("/")
            node = tree
            for i, key in enumerate(keys[:-1]):
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    raise TrueupError(f"{name}: attribute {'.'.join(keys[:i + 1])} is both a "
                                      "value and a tree; keep one")
            if isinstance(node.get(keys[-1]), dict):
                raise TrueupError(f"{name}: attribute {'.'.join(keys)} is both a value and "
                                  "a tree; keep one")
            node[keys[-1]] = attribute_value(param)
            if param.get("Type") == "SecureString":
                secret.append((keys, name))
        return tree, secret

    def recipes(self) -> dict[str, tuple[str, str]]:
        prefix = f"{self.path}/recipes/"
        out = {}
        for name, param in self.by_name.items():
            rest = name[len(prefix):] if name.startswith(prefix) else ""
            if rest and "/" not in rest:
                if param.get("Type") == "SecureString":
                    raise TrueupError(f"{name}: a recipe must be a String parameter (it is "
                                      "stored for offline runs); read secrets with secret()")
                out[rest] = (str(param["Value"]), name)
        return out


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


def instance_role() -> str:
    """The ``trueup:role`` tag of this instance, or "" off EC2."""
    from agent import ec2facts

    return ec2facts.tag("trueup:role") or ""
