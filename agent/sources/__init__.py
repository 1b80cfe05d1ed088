"""Where a bundle comes from: a folder, a .tar.gz, s3://bucket/key.tar.gz or ssm:/trueup/<env>.

A source kind lives in ``agent/sources/<scheme>.py`` and registers itself by subclassing
:class:`Source` with ``scheme="..."`` (the same ``__init_subclass__`` trick as the resource
kinds). ``open_bundle(url, ctx)`` picks the kind by URL scheme, fetches, falls back to the
last verified bundle when AWS cannot be reached, and returns a :class:`SourcedBundle` that
the session loads like any bundle folder.

Importing this package never imports boto3: only ``ssm.py`` and ``s3.py`` do, inside the
functions that talk to AWS, so a run from a local folder stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys

from agent.errors import TrueupError, Unreachable
from agent.sources.base import REGISTRY, FetchContext, Source

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from agent.sources.view import SourcedBundle

def load_all() -> dict[str, type[Source]]:
    """Import every source module (cheap: none imports boto3 at import time)."""
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return dict(REGISTRY)


def scheme_of(url: str) -> str:
    """``ssm:/trueup/prod`` → ``ssm``; ``s3://b/k`` → ``s3``; a path → ``""``."""
    head, sep, _ = url.partition(":")
    if sep and head.isalnum() and len(head) > 1:
        return head.lower()
    return ""


def source_class(url: str) -> type[Source]:
    scheme = scheme_of(url)
    module = "local" if scheme in ("", "file") else scheme
    if module.isidentifier():  # import only the one module (a folder run stays light)
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module}":
                raise
    cls = REGISTRY.get(scheme)
    if cls is not None:
        return cls
    kinds = load_all()
    cls = kinds.get(scheme)
    if cls is None and os.path.exists(url):  # a local path that merely holds a colon
        cls = kinds.get("")
    if cls is None:
        known = ", ".join(f"{s}:" for s in sorted(kinds) if s)
        raise TrueupError(f"unknown source scheme {scheme!r} in {url!r}; give a folder, a "
                          f".tar.gz or one of {known}")
    return cls


def open_bundle(url: str, ctx: FetchContext, cache_dir: str | None = None) -> SourcedBundle:
    """Fetch ``url`` (or fall back to its last verified bundle) as a loadable bundle."""
    from agent.sources import cache
    from agent.sources.view import SourcedBundle

    cls = source_class(url)
    try:
        fetched = cls(url, ctx).fetch()
    except Unreachable as exc:
        fetched = cache.offline(ctx.state_dir, url, str(exc))
    else:
        if cls.remote:
            cache.remember(ctx.state_dir, url, fetched)
    return SourcedBundle(fetched, ctx.state_dir, cache_dir)


def report_fields(bundle: Any) -> dict[str, Any]:
    """What the run report says about the source: origin, offline or not, AWS calls."""
    out: dict[str, Any] = {}
    fetched = getattr(bundle, "fetched", None)
    if fetched is not None:
        out["origin"] = fetched.origin
        out["offline"] = fetched.offline
        if fetched.offline:
            out["offline_reason"] = fetched.offline_reason
    clients = sys.modules.get("agent.aws.clients")  # not imported: no call to AWS was made
    if clients is not None and clients.STATS.calls:
        out["aws"] = clients.STATS.as_dict()
    return out


def offline_notice(bundle: Any) -> str | None:
    """The console line for a run from the cached bundle, or None when online."""
    fetched = getattr(bundle, "fetched", None)
    if fetched is None or not fetched.offline:
        return None
    o = fetched.origin
    what = f"version {o.get('version')} " if o.get("version") else ""
    sha = f"(sha256 {str(o.get('sha256'))[:12]}) " if o.get("sha256") else ""
    since = f", verified {o['verified_at']}" if o.get("verified_at") else ""
    return (f"trueup: offline: {fetched.offline_reason}; running the last verified bundle "
            f"{what}{sha}of {o.get('source')}{since}")
