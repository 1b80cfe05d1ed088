"""trueup report: the last run, as the run itself showed it, or as JSON."""

from __future__ import annotations

import argparse
import json

from agent.config import Config
from agent.engine import report as reports
from agent.errors import TrueupError


def main(args: argparse.Namespace, cfg: Config) -> int:
    last = reports.load_last(cfg.state_dir)
    if last is None:
        raise TrueupError("no run recorded yet", cfg.state_dir)
    if args.json:
        print(json.dumps(last, indent=2))
        return 0
    print(f"run {last['run_id']} ({last['mode']}) started {last['started']}, "
          f"{last['duration_s']:.2f}s, exit {last.get('exit_code')}")
    if last.get("error"):
        print(f"error: {last['error']}")
    for res in last.get("resources", []):
        if res["status"] not in ("unchanged", "guarded"):
            detail = res.get("error") or ", ".join(c["field"] for c in res.get("changes", []))
            print(f"  {res['status']:<12} {res['resource']}  {detail}")
    t = last.get("totals", {})
    if t:
        print("totals: " + ", ".join(f"{k} {v}" for k, v in t.items()))
    return 0
