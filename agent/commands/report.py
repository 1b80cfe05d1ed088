"""trueup report: the last run, printed by the same Console as the run itself, or as JSON."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from agent.config import Config
from agent.engine import report as reports
from agent.errors import TrueupError
from agent.model import Result


def main(args: argparse.Namespace, cfg: Config) -> int:
    last = reports.load_last(cfg.state_dir)
    if last is None:
        raise TrueupError("no run recorded yet; `trueup run` records one",
                          os.path.join(cfg.state_dir, "reports", "last_run.json"))
    if args.json:
        sys.stdout.write(reports.dumps(last) + "\n")
        return 0
    show(last, reports.Console(sys.stdout, cfg.color, noop=last.get("mode") == "noop",
                               carry_on=False))
    return 0


def show(last: dict[str, Any], console: reports.Console) -> None:
    """A stored report as the run printed it: a heading, one line per resource, totals."""
    console.write(_heading(last))
    for res in last.get("resources", []):
        console.result(Result.from_dict(res))
    if "totals" in last and "duration_s" in last:
        console.summary(last, label="totals")


def _heading(last: dict[str, Any]) -> str:
    text = (f"run {last.get('run_id', '?')} ({last.get('mode', '?')}) started "
            f"{last.get('started', '?')}, exit {last.get('exit_code')}\n")
    if last.get("error"):
        text += f"error: {last['error']}\n"
    elif last.get("interrupted"):
        text += _interruption(last)
    return text


def _interruption(last: dict[str, Any]) -> str:
    """"interrupted by SIGTERM during command:x; 3 resources not run" and a newline."""
    during = f" during {last['interrupted_during']}" if last.get("interrupted_during") else ""
    not_run = last.get("not_run")
    count = len(not_run) if isinstance(not_run, list) else "?"
    return (f"interrupted by {last['interrupted']}{during}; {count} resource"
            f"{'' if count == 1 else 's'} not run\n")
