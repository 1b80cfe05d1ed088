"""trueup kinds: every resource type with its fields and documentation."""

from __future__ import annotations

import argparse
import inspect

from agent.config import Config
from agent.resources import COMMON_FIELDS, load_all


def main(args: argparse.Namespace, cfg: Config) -> int:
    for kind, cls in load_all().items():
        print(f"{kind}\n{'=' * len(kind)}")
        print(inspect.cleandoc(cls.__doc__ or "").strip())
        print()
    print("Fields every type takes\n=======================")
    for name, fld in COMMON_FIELDS.items():
        print(f"  {name}: {fld.doc}")
    return 0
