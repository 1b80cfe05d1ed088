"""trueup plan --bake-report: what each image strategy costs at boot, from measured runs.

Reads the phases of the bundle's resources (compiled as ``plan`` would, with stand-ins for
secrets and EC2 facts: no AWS call beyond fetching the bundle) and the durations of the
full runs (``--phase all``, not noop) kept in the report history; a resource's cost is
its longest duration there, i.e. a converge from scratch. Then, for one boot:

* OS-only image: every resource converges at boot.
* fully baked: everything is in the image except what reads a secret or instance facts,
  which must still converge at boot (and every change needs a new image).
* the recipes' split: the ``boot`` and ``any`` resources converge at boot.

and the boot resources that read no instance value, costliest first: baking them would
shorten the boot. Measure on an OS-only test host first (a full ``trueup run``).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from agent.config import Config
from agent.errors import TrueupError

TOP = 5


def measured(state_dir: str) -> tuple[dict[str, float], list[str]]:
    """Resource → its longest duration (s) over the stored full runs; the runs' ids."""
    from agent.engine.report import stored

    costs: dict[str, float] = {}
    runs: list[str] = []
    for _path, report in stored(state_dir):
        if report.get("phase") != "all" or report.get("mode") != "run" \
                or "interrupted" in report:
            continue
        run_id = str(report.get("run_id"))
        if run_id in runs:
            continue
        runs.append(run_id)
        for entry in report.get("resources") or []:
            if isinstance(entry, dict) and isinstance(entry.get("duration_ms"), (int, float)):
                ident = str(entry.get("resource"))
                costs[ident] = max(costs.get(ident, 0.0), entry["duration_ms"] / 1000)
    return costs, runs


def build(nodes: list[Any], renderer: Any, costs: dict[str, float],
          runs: list[str]) -> dict[str, Any]:
    """The report: strategies and candidates, from the catalog's nodes and the costs."""
    from agent.compile.phases import reads_instance, strings_in

    rows = []
    for node in nodes:
        texts = list(strings_in(dict(node.raw) if node.raw is not None else {}))
        source = getattr(node.res, "source_path", None)
        if source:
            try:
                with open(source, encoding="utf-8") as fh:
                    texts.append(fh.read())
            except (OSError, UnicodeDecodeError):
                texts.append("{{ facts }}")  # unreadable: never a candidate
        rows.append({"resource": node.ident, "phase": node.phase,
                     "seconds": round(costs.get(node.ident, 0.0), 3),
                     "measured": node.ident in costs,
                     "instance_values": reads_instance(renderer, texts)})

    def total(selected: list[dict[str, Any]]) -> dict[str, Any]:
        return {"boot_s": round(sum(r["seconds"] for r in selected), 3),
                "resources": len(selected)}

    at_boot = [r for r in rows if r["phase"] in ("boot", "any")]
    pinned = [r for r in rows if r["instance_values"]]
    all_s = total(rows)["boot_s"]
    strategies = [
        {"strategy": "os-only", "title": "OS-only image, converge at boot", **total(rows),
         "bake_s": 0.0},
        {"strategy": "baked", "title": "fully baked (instance values still at boot)",
         **total(pinned), "bake_s": round(all_s - total(pinned)["boot_s"], 3)},
        {"strategy": "split", "title": "the recipes' bake/boot split", **total(at_boot),
         "bake_s": round(all_s - total(at_boot)["boot_s"], 3)},
    ]
    candidates = sorted((r for r in at_boot if not r["instance_values"]),
                        key=lambda r: -r["seconds"])[:TOP]
    return {"runs": runs, "strategies": strategies,
            "candidates": [{k: r[k] for k in ("resource", "phase", "seconds")}
                           for r in candidates],
            "unmeasured": [r["resource"] for r in rows if not r["measured"]]}


def main(args: argparse.Namespace, cfg: Config) -> int:
    from agent.aws.ec2 import Placeholder
    from agent.aws.secrets import Placeholders
    from agent.commands.run import _options, resolve_source
    from agent.compile.prepare import prepare
    from agent.engine.backups import Backups
    from agent.host.facts import Facts
    from agent.host.system import System

    costs, runs = measured(cfg.state_dir)
    if not runs:
        raise TrueupError("no full run is recorded here to measure: run `trueup run` (all "
                          "phases) once, on an OS-only host, then ask again",
                          os.path.join(cfg.state_dir, "reports"))
    opts = _options(args, True)
    opts.phase = "all"
    bundle = resolve_source(opts, cfg, Placeholder())
    prepared = prepare(opts, cfg, bundle, System(), Backups("", 0), Facts(ec2=Placeholder()),
                       Placeholders())
    from agent.compile.render import Renderer

    report = build(prepared.catalog.nodes, Renderer({}, {}), costs, runs)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


def render(report: dict[str, Any]) -> str:
    """The human table."""
    lines = [f"{'strategy':<46} {'boot converge':>13} {'at boot':>8} {'baked':>9}"]
    for s in report["strategies"]:
        lines.append(f"{s['title']:<46} {s['boot_s']:>12.2f}s {s['resources']:>8} "
                     f"{s['bake_s']:>8.2f}s")
    lines.append("")
    if report["candidates"]:
        lines.append("boot resources that read no instance value, costliest first "
                     "(could be baked):")
        lines += [f"  {c['resource']:<50} {c['seconds']:>7.2f}s  phase {c['phase']}"
                  for c in report["candidates"]]
    else:
        lines.append("every boot resource reads an instance value: nothing more to bake")
    lines.append(f"from {len(report['runs'])} full run(s): {', '.join(report['runs'][:3])}"
                 + (" ..." if len(report["runs"]) > 3 else ""))
    if report["unmeasured"]:
        lines.append(f"not measured (counted as 0 s): {', '.join(report['unmeasured'])}")
    return "\n".join(lines)
