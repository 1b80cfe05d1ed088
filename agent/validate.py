"""trueup validate: load, render and check every recipe of a bundle, changing nothing."""

from __future__ import annotations

from agent.backups import Backups
from agent.config import Config
from agent.errors import TrueupError
from agent.loader import Bundle
from agent.session import Options, prepare
from agent.system import System


class _NoBackups(Backups):
    def __init__(self) -> None:
        super().__init__("", 0)


def validate_bundle(path: str, runlist: str = "", assignments: list[str] | None = None,
                    attributes_file: str = "") -> str:
    """Check each recipe (with its depends) and each run list file; say what was checked."""
    bundle = Bundle(path)
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
        prepared = prepare(opts, cfg, bundle, System(), _NoBackups())
        resources = max(resources, len(prepared.catalog.nodes))
    return f"{len(names)} recipes, {len(checks)} run lists checked"
