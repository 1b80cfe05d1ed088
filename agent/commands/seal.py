"""trueup seal: make this machine safe to snapshot into an image.

Removes what must not be shared by every instance booted from the image (agent.host.seal):
SSH host keys, the machine id (emptied), cloud-init's instance state, logs, shell
histories, temporary files, and trueup's own caches, reports, history and backups. The
bake manifest stays. ``--noop`` lists what would go and removes nothing.

It refuses (exit 1, nothing removed) while a file that a run rendered from a secret (a
sensitive file or template resource in a stored report) is still on disk: an image
must not carry one. Give such a resource ``phase: boot`` (or remove the file) first.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from agent.config import Config
from agent.errors import TrueupError

PATH_KINDS = ("file", "template")


def secret_files(state_dir: str) -> list[tuple[str, str]]:
    """(path, report) for each file a stored run marked sensitive that still exists.

    Like the state dir, the paths are this machine's (not under ``--root``).
    """
    from agent.engine.report import stored

    found: dict[str, str] = {}
    for path, report in stored(state_dir):
        for ident in report.get("sensitive") or []:
            kind, _, name = str(ident).partition(":")
            if kind in PATH_KINDS and os.path.lexists(name):
                found.setdefault(name, path)
    return sorted(found.items())


def main(args: argparse.Namespace, cfg: Config) -> int:
    from agent.engine.lock import RunLock
    from agent.engine.manifest import MANIFEST
    from agent.host import seal

    root = args.root
    held = secret_files(cfg.state_dir)
    if held:
        names = ", ".join(path for path, _ in held)
        raise TrueupError(f"refusing to seal: {names} {'was' if len(held) == 1 else 'were'} "
                          "rendered from a secret and would stay in the image; give the "
                          "resource phase: boot and remove the file, then seal again",
                          held[0][1])
    keep = (os.path.dirname(MANIFEST),)
    lock = os.path.join(cfg.state_dir, "run.lock")
    os.makedirs(cfg.state_dir, mode=0o700, exist_ok=True)
    with RunLock(lock, 0):
        entries = seal.plan(root, cfg.state_dir, keep)
        if not args.noop:
            seal.apply(entries)
    _tell(entries, args)
    return 0


def _tell(entries: list[Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps({"noop": args.noop, "entries": [e.as_dict() for e in entries]},
                         indent=2))
        return
    verb = {"remove": "remove", "empty": "empty", "clear": "clear"}
    for e in entries:
        print(f"{'would ' if args.noop else ''}{verb[e.action]:<6} {e.path}  ({e.what})")
    if args.noop:
        print(f"trueup seal: {len(entries)} paths would be cleaned (nothing changed)")
    else:
        print(f"trueup seal: {len(entries)} paths cleaned; the bake manifest stays")
