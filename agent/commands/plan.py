"""trueup plan: ``run --noop`` with diffs, or with ``--bake-report`` the cost of the image
strategies (agent.commands.bakereport)."""

from __future__ import annotations

import argparse

from agent.config import Config


def main(args: argparse.Namespace, cfg: Config) -> int:
    if getattr(args, "bake_report", False):
        from agent.commands import bakereport

        return bakereport.main(args, cfg)
    from agent.commands import run

    return run.plan_main(args, cfg)
