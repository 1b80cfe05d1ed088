"""trueup validate: load, render and check every recipe of a bundle, changing nothing."""

from __future__ import annotations

import argparse
from typing import Any

from agent.aws.ec2 import Placeholder
from agent.aws.secrets import Placeholders
from agent.compile.attributes import merge_all
from agent.compile.loader import Bundle
from agent.compile.prepare import Options, prepare
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
    """Check each recipe (with its depends) and each run list file; say what was checked.

    ``attributes`` (e.g. an environment's Parameter Store tree, for ``trueup publish``)
    overlay the bundle's attributes file, as they will when the bundle runs.
    """
    bundle = _WithAttributes(path, attributes, attributes_origin) if attributes else Bundle(path)
    secrets = Placeholders()  # no AWS call: stand-ins
    names = bundle.names()
    if not names:
        raise TrueupError("no recipes found (expected <name>/recipe.yml)", bundle.root)
    cfg = Config(state_dir="")
    checks: list[str] = []
    if runlist:
        checks.append(runlist)
    else:
        checks += names
        import os

        for entry in sorted(os.listdir(bundle.root)):
            if entry == "runlist" or entry.startswith("runlist."):
                found = bundle.runlist(entry.partition(".")[2] or None)
                if found:
                    checks.append(",".join(found[0]))
    resources = 0
    for names_csv in checks:
        opts = Options(source=path, runlist=names_csv, assignments=list(assignments or []),
                       attributes_file=attributes_file, noop=True)
        prepared = prepare(opts, cfg, bundle, System(), Backups("", 0),
                           Facts(ec2=Placeholder()), secrets)
        resources = max(resources, len(prepared.catalog.nodes))
    return f"{len(names)} recipes, {len(checks)} run lists checked"


def main(args: argparse.Namespace, cfg: Config) -> int:
    checked = validate_bundle(args.path, args.runlist, args.assignments, args.attributes_file)
    print(f"trueup validate: {args.path}: OK ({checked})")
    return 0
