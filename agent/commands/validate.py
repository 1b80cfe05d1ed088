"""trueup validate: load, render and check every recipe of a bundle, changing nothing.

Each run list of the bundle is checked the way ``trueup run`` compiles it, so the two
agree on what is valid; each recipe in no run list is checked on its own.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from agent.aws.ec2 import Placeholder
from agent.aws.secrets import Placeholders
from agent.compile.attributes import merge_all
from agent.compile.loader import Bundle
from agent.compile.prepare import Options, Prepared, prepare
from agent.config import Config
from agent.engine.backups import Backups
from agent.errors import TrueupError
from agent.host.facts import Facts
from agent.host.system import System


class _WithAttributes(Bundle):
    """A bundle whose attributes file is overlaid with an environment's attributes."""

    def __init__(self, root: str, extra: dict[str, Any], origin: str) -> None:
        super().__init__(root)
        self.extra, self.origin = extra, origin

    def attributes(self) -> tuple[dict[str, Any], str] | None:
        own = super().attributes()
        return merge_all([own[0] if own else {}, self.extra]), self.origin


def validate_bundle(path: str, runlist: str = "", assignments: list[str] | None = None,
                    attributes_file: str = "", attributes: dict[str, Any] | None = None,
                    attributes_origin: str = "") -> str:
    """Check each run list as ``trueup run`` would, then each recipe in none; say what was
    checked.

    A run list is the bundle's ``runlist`` and every ``runlist.<event>`` file, or
    ``runlist`` when given. Its recipes are checked together, with the default attributes
    of all of them merged, exactly as a run of it compiles them: a recipe may use the
    defaults of another recipe in its run list. A recipe in no run list is checked on its
    own (with its depends). ``attributes`` (e.g. an environment's Parameter Store tree,
    for ``trueup publish``) overlay the bundle's attributes file, as they will when the
    bundle runs.
    """
    bundle = _WithAttributes(path, attributes, attributes_origin) if attributes else Bundle(path)
    secrets = Placeholders()  # no AWS call: stand-ins
    names = bundle.names()
    if not names:
        raise TrueupError("no recipes found (expected <name>/recipe.yml)", bundle.root)
    cfg = Config(state_dir="")
    events: list[str | None] = []  # the bundle's run list files: runlist, runlist.<event>
    if not runlist:
        events = [entry.partition(".")[2] or None for entry in sorted(os.listdir(bundle.root))
                  if entry == "runlist" or entry.startswith("runlist.")]
    checks = 0
    covered: set[str] = set()
    for event in events:
        if bundle.runlist(event) is not None:  # read as run reads it: a folder is an error
            prepared = _check(bundle, path, cfg, secrets, assignments, attributes_file,
                              event=event or "")
            covered.update(r.name for r in prepared.recipes)
            checks += 1
    lists = [runlist] if runlist else [name for name in names if name not in covered]
    for names_csv in lists:
        _check(bundle, path, cfg, secrets, assignments, attributes_file, runlist=names_csv)
    return f"{len(names)} recipes, {checks + len(lists)} run lists checked"


def _check(bundle: Bundle, path: str, cfg: Config, secrets: Placeholders,
           assignments: list[str] | None, attributes_file: str, runlist: str = "",
           event: str = "") -> Prepared:
    """Compile one run list as ``trueup plan`` would (``runlist`` as --runlist, else the
    bundle's file for ``event``), touching nothing."""
    opts = Options(source=path, runlist=runlist, event=event,
                   assignments=list(assignments or []), attributes_file=attributes_file,
                   noop=True)
    return prepare(opts, cfg, bundle, System(), Backups("", 0), Facts(ec2=Placeholder()),
                   secrets)


def main(args: argparse.Namespace, cfg: Config) -> int:
    checked = validate_bundle(args.path, args.runlist, args.assignments, args.attributes_file)
    print(f"trueup validate: {args.path}: OK ({checked})")
    return 0
