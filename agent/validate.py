"""trueup validate: load, render and check every recipe of a bundle, changing nothing."""

from __future__ import annotations

from typing import Any

from agent.attributes import merge_all
from agent.backups import Backups
from agent.config import Config
from agent.errors import TrueupError
from agent.loader import Bundle
from agent.session import Options, prepare
from agent.system import System


class _NoBackups(Backups):
    def __init__(self) -> None:
        super().__init__("", 0)


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
    from agent.ec2facts import Placeholder
    from agent.facts import Facts
    from agent.secrets import Placeholders

    bundle = _WithAttributes(path, attributes, attributes_origin) if attributes else Bundle(path)
    bundle.secrets = Placeholders()  # type: ignore[attr-defined]  # no AWS call: stand-ins
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
        facts = Facts()
        facts.provide("ec2", lambda f: Placeholder())
        prepared = prepare(opts, cfg, bundle, System(), _NoBackups(), facts)
        resources = max(resources, len(prepared.catalog.nodes))
    return f"{len(names)} recipes, {len(checks)} run lists checked"
