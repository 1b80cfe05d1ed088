"""trueup facts: this host's facts as JSON."""

from __future__ import annotations

import argparse
import json

from agent.config import Config
from agent.host.facts import Facts


def main(args: argparse.Namespace, cfg: Config) -> int:
    print(json.dumps(Facts().gather_all(), indent=2, sort_keys=True, default=str))
    return 0
