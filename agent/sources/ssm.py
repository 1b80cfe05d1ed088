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
the S3 request for the bundle.
"""

from __future__ import annotations

import re
from typing import Any

from agent.aws.params import attribute_value, get_tree, parse_pointer
from agent.compile.loader import EVENTS, parse_runlist
from agent.errors import TrueupError
from agent.sources.base import FetchContext, Fetched, Source


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
            role = self.ctx.role or (self.ctx.instance.tag("trueup:role") or "")
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
