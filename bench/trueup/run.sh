#!/bin/sh
# W100 no-op / converge run for trueup:  trueup run BUNDLE --runlist w<SIZE>
#   trueup/run.sh [SIZE]     SIZE = 100 (default), 1000 or 10000
# TRUEUP, TRUEUP_BUNDLES and TRUEUP_STATE_DIR come from ../env.sh; bench/run.sh and
# bench/scale.sh export them, so inside the timed runs this is one sh + exec of the
# console script itself (no shim, no extra process).
[ -n "${TRUEUP_BENCH_ENV:-}" ] || { BENCH_DIR=$(cd "$(dirname "$0")/.." && pwd); . "$BENCH_DIR/env.sh"; }
# This machine sets PYTHONDONTWRITEBYTECODE=1, so trueup's modules, imported from the work
# tree, would be compiled from source on every run.  An installed package has its .pyc files,
# so keep them in a cache outside the repository (TRUEUP_PYCACHE=off: do not).
if [ "${TRUEUP_PYCACHE:-}" != off ]; then
  unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX="${TRUEUP_PYCACHE:-/tmp/peers/pycache/trueup}"
fi
S=${1:-100}
exec "$TRUEUP" run "$TRUEUP_BUNDLES/w$S" --runlist "w$S"
