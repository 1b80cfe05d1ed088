#!/bin/sh
# start-up floor for trueup: the same invocation on a bundle whose recipe manages nothing
[ -n "${TRUEUP_BENCH_ENV:-}" ] || { BENCH_DIR=$(cd "$(dirname "$0")/.." && pwd); . "$BENCH_DIR/env.sh"; }
# This machine sets PYTHONDONTWRITEBYTECODE=1, so trueup's modules, imported from the work
# tree, would be compiled from source on every run.  An installed package has its .pyc files,
# so keep them in a cache outside the repository (TRUEUP_PYCACHE=off: do not).
if [ "${TRUEUP_PYCACHE:-}" != off ]; then
  unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX="${TRUEUP_PYCACHE:-/tmp/peers/pycache/trueup}"
fi
exec "$TRUEUP" run "$TRUEUP_BUNDLES/empty" --runlist empty
