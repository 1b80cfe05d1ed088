#!/usr/bin/env python3
"""The peers' common/verify.py, for the scaled workloads too.

    verify.py [--size N] check TOOL            tree under /tmp/peers/target/TOOL == W<N> spec?
    verify.py [--size N] snapshot TOOL FILE    inode/mtime/ctime/mode/sha256 of every entry
    verify.py compare A B                      entries that differ between two snapshots

This is a thin wrapper: it imports ``w100.py`` and ``verify.py`` from the peers' ``common/``
folder ($PEERS, else ``../shared/bench/peers`` from the repository root) and only sets
``w100.NDIRS = N // 10`` first, so W1000 (100 dirs) and W10000 (1000 dirs) are checked by the
very same code as W100.  The default size, 100, is exactly the peers' verify.py.  TOOL is any
name: the target is /tmp/peers/target/TOOL (bench/ uses ``trueup`` for W100 and
``trueup-w1000``, ``trueup-w10000``, ``baseline-w1000`` ... for the scaled runs).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.abspath(os.environ.get("PEERS")
                        or os.path.join(HERE, "..", "..", "shared", "bench", "peers"))
sys.path.insert(0, os.path.join(PEERS, "common"))

import verify  # noqa: E402  (the peers' verify.py)
import w100  # noqa: E402


def main(argv):
    size = 100
    if len(argv) >= 2 and argv[0] == "--size":
        size = int(argv[1])
        argv = argv[2:]
    if size % w100.NFILES:
        print(f"--size must be a multiple of {w100.NFILES}", file=sys.stderr)
        return 2
    w100.NDIRS = size // w100.NFILES
    return verify.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
