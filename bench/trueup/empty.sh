#!/bin/sh
# start-up floor for trueup: the same invocation on a bundle whose recipe manages nothing
[ -n "${TRUEUP_BENCH_ENV:-}" ] || { BENCH_DIR=$(cd "$(dirname "$0")/.." && pwd); . "$BENCH_DIR/env.sh"; }
exec "$TRUEUP" run "$TRUEUP_BUNDLES/empty" --runlist empty
