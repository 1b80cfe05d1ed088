"""trueup bake: converge the bake phase inside an image build and record what was baked.

Runs like ``trueup run --phase bake`` (resources with ``phase: bake`` or ``any``; same
exit codes), then writes the bake manifest (agent.engine.manifest) under the state
directory: trueup's version, the bundle's version and sha256, the run list, and each
baked resource's identity, phase, input digest, status and duration. Packer runs it::

    trueup bake /srv/recipes --runlist base,web
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from agent.commands import run
from agent.config import Config


def main(args: argparse.Namespace, cfg: Config) -> int:
    args.phase = "bake"
    opts = run._options(args, False)
    written: list[str] = []

    def record(prepared: Any, results: list[Any], report: dict[str, Any]) -> None:
        written.append(write_manifest(cfg, prepared, results, report))

    code = run.converge(opts, cfg, after=record)
    if written and not opts.json:
        run.say(f"trueup bake: manifest {written[0]}")
    return code


def write_manifest(cfg: Config, prepared: Any, results: list[Any],
                   report: dict[str, Any]) -> str:
    """The manifest of this bake, from its catalog and results; its path."""
    from agent import __version__
    from agent.compile.phases import input_digest
    from agent.engine import manifest

    by_ident = {r.ident: r for r in results}
    entries = []
    for node in prepared.catalog.nodes:
        result = by_ident.get(node.ident)
        entries.append({
            "resource": node.ident, "phase": node.phase, "recipe": node.recipe,
            "digest": input_digest(node.res),
            "status": result.status if result else "not run",
            "duration_ms": round(result.duration * 1000, 3) if result else 0.0,
        })
    origin = report.get("origin") or {}
    bundle = {"source": report.get("source") or prepared.bundle.root,
              "version": origin.get("version"),
              "sha256": origin.get("sha256") or _folder_sha(prepared.bundle.root)}
    data = {"trueup": __version__,
            "baked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "run_id": report.get("run_id"), "exit_code": report.get("exit_code"),
            "bundle": bundle, "runlist": list(prepared.runlist), "resources": entries}
    return manifest.write(cfg.state_dir, data)


def _folder_sha(root: str) -> str | None:
    from agent.engine.manifest import tree_sha256

    return tree_sha256(root) if root and os.path.isdir(root) else None
