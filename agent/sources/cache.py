"""What was last verified, kept under the state dir: the offline fallback, S3 ETag records,
and the caches a run reads, bounded by :func:`prune`.

Layout under ``<state_dir>``::

    bundles/<sha256>/           verified, extracted bundles (see agent.sources.archive)
    sources/last-verified.json  per source URL: pointer, run lists, attributes, recipes
    sources/s3-objects.json     per s3:// URI: the ETag and sha256 of the copy we verified
    sources/recipes/<digest>/   Parameter Store recipes written out as <name>/recipe.yml
    cache/parsed/<digest>/      parsed recipe.yml files, one folder per bundle read
    downloads/                  partial downloads (removed after each run)

Secrets are never written here: attributes that were SecureStrings are stored by name
only, and an offline run that needs one stops with a message saying so.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterable

from agent.errors import TrueupError
from agent.host.system import write_file_atomic
from agent.jsontext import read_object

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


def bundles_dir(state_dir: str) -> Path:
    from pathlib import Path  # a remote or tarball source's: a folder run never needs it

    return Path(state_dir) / "bundles"


def recipes_dir(state_dir: str) -> str:
    return os.path.join(state_dir, "sources", "recipes")


def parsed_dir(state_dir: str) -> str:
    return os.path.join(state_dir, "cache", "parsed")


def downloads_dir(state_dir: str) -> Path:
    from pathlib import Path

    path = Path(state_dir) / "downloads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def load(state_dir: str, name: str) -> dict[str, Any]:
    """A JSON record file under ``sources/`` ({} when absent or unreadable)."""
    return read_object(os.path.join(state_dir, "sources", name)) or {}


def save(state_dir: str, name: str, data: dict[str, Any]) -> None:
    """Write a record file atomically, mode 0600."""
    import json

    folder = os.path.join(state_dir, "sources")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    write_file_atomic(os.path.join(folder, name),
                      json.dumps(data, indent=1, sort_keys=True).encode())


LAST_VERIFIED = "last-verified.json"


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
    records = load(state_dir, LAST_VERIFIED)
    records[url] = record
    save(state_dir, LAST_VERIFIED, records)


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

    record = load(state_dir, LAST_VERIFIED).get(url)
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


# --------------------------------------------------------------------------- pruning

#: The caches :func:`prune` bounds: report name → where it lives under the state dir.
CACHES = {"bundles": lambda d: os.path.join(d, "bundles"), "recipes": recipes_dir,
          "parsed": parsed_dir}


def prune(state_dir: str, keep: int, in_use: Iterable[str]) -> dict[str, Any]:
    """Remove old entries of the bundle, recipe and parsed-YAML caches; say what went.

    Each cache keeps the entries in ``in_use`` (this run's bundle, recipes and parsed
    files), the bundles recorded as last verified (the offline fallback), and the
    ``keep`` others used most recently; an entry's folder mtime is the time a run last
    used it (entries in use are touched here). Temporary entries left by a killed run
    go too. Call it under the run lock: no other run reads or writes these caches then.

    Returns:
        The report's ``pruned`` field: ``count`` and ``bytes`` removed, and the names
        removed from each cache (``bundles``, ``recipes``, ``parsed``).
    """
    used = {os.path.abspath(path) for path in in_use if path}
    verified = {str((record.get("origin") or {}).get("sha256") or "").lower()
                for record in load(state_dir, LAST_VERIFIED).values()
                if isinstance(record, dict)}
    out: dict[str, Any] = {"count": 0, "bytes": 0}
    for name, where in CACHES.items():
        removed, size = _prune_folder(os.path.abspath(where(state_dir)), max(keep, 0), used,
                                      verified if name == "bundles" else set())
        out[name] = removed
        out["count"] += len(removed)
        out["bytes"] += size
    return out


def _prune_folder(folder: str, keep: int, used: set[str],
                  protected: set[str]) -> tuple[list[str], int]:
    try:
        names = os.listdir(folder)
    except OSError:
        return [], 0
    dated: list[tuple[int, str]] = []
    doomed: list[str] = []
    for name in names:
        path = os.path.join(folder, name)
        if path in used:
            _touch(path)
        elif name.startswith(".") or ".tmp-" in name:
            doomed.append(name)  # a killed run's temporary folder
        elif name not in protected:
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                dated.append((st.st_mtime_ns, name))
            else:
                doomed.append(name)  # every entry is a folder: a file is from an old layout
    dated.sort(reverse=True)
    doomed += [name for _, name in dated[keep:]]
    removed: list[str] = []
    size = 0
    for name in sorted(doomed):
        freed = _remove(os.path.join(folder, name))
        if freed is not None:
            removed.append(name)
            size += freed
    return removed, size


def _touch(path: str) -> None:
    with contextlib.suppress(OSError):  # read-only or gone: its mtime just stays older
        os.utime(path)


def _remove(path: str) -> int | None:
    """Delete a cache entry; the bytes it held, or None if it could not be removed.

    A folder is first renamed to a hidden name, so a run killed while deleting it
    never leaves a partial entry under a name the caches would trust.
    """
    try:
        size = _size(path)
        if os.path.isdir(path) and not os.path.islink(path):
            import shutil

            folder, name = os.path.split(path)
            if not name.startswith("."):
                hidden = os.path.join(folder, f".{name}.pruned-{os.getpid()}")
                os.rename(path, hidden)
                path = hidden
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError:
        return None
    return size


def _size(path: str) -> int:
    total = os.lstat(path).st_size
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total
