#!/usr/bin/env bash
# Where trueup's time goes on W100: import times and a cProfile of one run.
#
#   bench/profile.sh [SIZE]        SIZE = 100 (default), 1000 or 10000
#
# Writes OUT (default bench/results/profile-<UTC stamp>/):
#   importtime.txt      python -X importtime of one no-op run, sorted by cumulative time
#   noop.prof/.txt      cProfile of one no-op run (top 40 by cumulative and by own time)
#   first.prof/.txt     the same for one first run (target removed first)
#   floor.txt           wall medians of: python -c pass, import yaml, import jinja2,
#                       import agent.cli, the empty bundle and the no-op, for scale, and
#                       the no-op compiled every run (TRUEUP_CATALOG_CACHE=off)
#   modules.txt         how many modules the no-op imported (start-up included)
# Runs the trueup interpreter (the console script's #! line) with the same environment as
# bench/trueup/run.sh (state dir, bytecode cache outside the repo).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/env.sh"
S=${1:-100}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$BENCH_DIR/results/profile-$STAMP}
mkdir -p "$OUT"
if [ "${TRUEUP_PYCACHE:-}" != off ]; then
  unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX="${TRUEUP_PYCACHE:-/tmp/peers/pycache/trueup}"
fi
PY=$(head -n1 "$TRUEUP" | sed -n 's/^#! *//p' | cut -d' ' -f1)
if [ "$S" = 100 ]; then T=/tmp/peers/target/trueup; else T=/tmp/peers/target/trueup-w$S; fi
RUN=("$TRUEUP" run "$TRUEUP_BUNDLES/w$S" --runlist "w$S")

"${RUN[@]}" > /dev/null 2>&1   # converge (and fill the bytecode cache)
"$PY" -X importtime "${RUN[@]}" 2> "$OUT/importtime.raw" > /dev/null
{ echo "# python -X importtime, one W$S no-op run: self us | cumulative us | module"
  grep '^import time:' "$OUT/importtime.raw" | grep -v 'self \[us\]' | sort -t'|' -k2 -n -r | head -60
} > "$OUT/importtime.txt"

stats() {  # stats PROF -> top functions
  "$PY" - "$1" <<'EOF'
import pstats, sys
p = pstats.Stats(sys.argv[1])
p.sort_stats("cumulative").print_stats(40)
p.sort_stats("tottime").print_stats(25)
EOF
}
"$PY" -m cProfile -o "$OUT/noop.prof" "${RUN[@]}" > /dev/null 2>&1
stats "$OUT/noop.prof" > "$OUT/noop.txt"
rm -rf "$T"
"$PY" -m cProfile -o "$OUT/first.prof" "${RUN[@]}" > /dev/null 2>&1
stats "$OUT/first.prof" > "$OUT/first.txt"

B="$W100_PYTHON $PEERS/common/bench.py -n ${RUNS:-10} --warmup 2 --"
{
  echo "# wall medians (min-max), ${RUNS:-10} runs each; load $(cut -d' ' -f1-3 /proc/loadavg)"
  for c in "pass" "import yaml" "import jinja2" "import yaml, jinja2" "import agent.cli"; do
    printf '%-34s %s\n' "python -c '$c'" "$($B "$PY" -c "$c" | awk '/A wall s/{print $5" s ("$4"-"$6")"}')"
  done
  printf '%-34s %s\n' "trueup/empty.sh" "$($B "$BENCH_DIR/trueup/empty.sh" | awk '/A wall s/{print $5" s ("$4"-"$6")"}')"
  printf '%-34s %s\n' "trueup/run.sh $S (no-op)" "$($B "$BENCH_DIR/trueup/run.sh" "$S" | awk '/A wall s/{print $5" s ("$4"-"$6")"}')"
  printf '%-34s %s\n' "same, TRUEUP_CATALOG_CACHE=off" "$(TRUEUP_CATALOG_CACHE=off $B "$BENCH_DIR/trueup/run.sh" "$S" | awk '/A wall s/{print $5" s ("$4"-"$6")"}')"
} > "$OUT/floor.txt"
{ echo "modules -X importtime lists for one W$S no-op run (start-up included):"
  grep -c '^import time:' "$OUT/importtime.raw" | awk '{print $1 - 1}'
} > "$OUT/modules.txt"
cat "$OUT/floor.txt"
echo; cat "$OUT/modules.txt"
echo; head -25 "$OUT/importtime.txt"
echo; sed -n '1,45p' "$OUT/noop.txt"
echo "profile in $OUT"
