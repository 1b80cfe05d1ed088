"""What was last verified, kept under the state dir: the offline fallback and S3 ETag records.

Layout under ``<state_dir>``::

    bundles/<sha256>/           verified, extracted bundles (see agent.sources.archive)
    sources/last-verified.json  per source URL: pointer, run lists, attributes, recipes
    sources/s3-objects.json     per s3:// URI: the ETag and sha256 of the copy we verified
    downloads/                  partial downloads (removed after each run)

Secrets are never written here: attributes that were SecureStrings are stored by name
only, and an offline run that needs one stops with a message saying so.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from agent.errors import TrueupError
from agent.host.system import write_file_atomic


def bundles_dir(state_dir: str) -> Path:
    return Path(state_dir) / "bundles"


def downloads_dir(state_dir: str) -> Path:
    path = Path(state_dir) / "downloads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def load(state_dir: str, name: str) -> dict[str, Any]:
    """A JSON record file under ``sources/`` ({} when absent or unreadable)."""
    try:
        with open(Path(state_dir) / "sources" / name, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(state_dir: str, name: str, data: dict[str, Any]) -> None:
    """Write a record file atomically, mode 0600."""
    folder = Path(state_dir) / "sources"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file_atomic(str(folder / name), json.dumps(data, indent=1, sort_keys=True).encode())


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def remember(state_dir: str, url: str, fetched: Any) -> None:
    """Record a fetch that was verified online, for offline runs of ``url`` later."""
    if fetched.offline:
        return
    secret_keys = {tuple(keys) for keys, _ in fetched.secret_attributes}
    record = {
        "origin": fetched.origin,
        "runlists": {k: list(v) for k, v in fetched.runlists.items()},
        "attributes": _without(fetched.attributes, secret_keys),
        "attributes_origin": fetched.attributes_origin,
        "secret_attributes": [[list(keys), name] for keys, name in fetched.secret_attributes],
        "recipes": {k: list(v) for k, v in fetched.recipes.items()},
        "verified_at": now(),
    }
    records = load(state_dir, "last-verified.json")
    records[url] = record
    save(state_dir, "last-verified.json", records)


def _without(tree: dict[str, Any], secret: set[tuple[str, ...]], prefix: tuple = ()) -> dict:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = (*prefix, key)
        if path in secret:
            continue
        out[key] = _without(value, secret, path) if isinstance(value, dict) else value
    return out


def offline(state_dir: str, url: str, reason: str) -> Any:
    """The last verified fetch of ``url``, marked offline; TrueupError when there is none."""
    from agent.aws.secrets import Unavailable
    from agent.sources.base import Fetched

    record = load(state_dir, "last-verified.json").get(url)
    if not record:
        raise TrueupError(f"cannot reach {url} ({reason}), and no verified bundle from it is "
                          f"cached under {state_dir}: nothing to run offline. Check the "
                          "network path to AWS (VPC endpoints, NAT, proxy) and the instance "
                          "profile, then run again")
    origin = dict(record.get("origin") or {})
    origin["verified_at"] = record.get("verified_at")
    root = ""
    sha = origin.get("sha256")
    if sha:
        from agent.sources import archive  # tarfile & co.: only when a cache is consulted

        cached = archive.cached(bundles_dir(state_dir), sha)
        if cached is None:
            raise TrueupError(f"cannot reach {url} ({reason}), and the last verified bundle "
                              f"(sha256 {sha}) is no longer in {bundles_dir(state_dir)}: "
                              "nothing to run offline")
        root = str(cached)
    attributes = record.get("attributes") or {}
    secret_attributes = []
    for keys, name in record.get("secret_attributes") or []:
        node = attributes
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = Unavailable(name, reason)
        secret_attributes.append((keys, name))
    return Fetched(
        root=root,
        runlists={k: (list(v[0]), v[1]) for k, v in (record.get("runlists") or {}).items()},
        attributes=attributes,
        attributes_origin=record.get("attributes_origin") or "",
        recipes={k: (v[0], v[1]) for k, v in (record.get("recipes") or {}).items()},
        secret_attributes=secret_attributes,
        origin=origin,
        offline=True,
        offline_reason=f"cannot reach {url} ({reason})",
    )
