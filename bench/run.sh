#!/usr/bin/env bash
# trueup beside the W100 peers, in one invocation (see README.md).
#
#   bash ../shared/bench/peers/install.sh   # once, as root: puppet-agent, cfengine3, venvs
#   bench/run.sh [TOOL ...]                  # default: trueup baseline cfengine puppet salt pyinfra
#                                            # (add ansible explicitly: ~1 min per run)
#
# trueup is measured here, by the same steps as the peers' run.sh loop (below); the peer
# tools are measured by calling the peers' own run.sh with OUT=<out>/peers.  Per tool:
#   empty  : RUNS timed runs (+WARMUP) of TOOL/empty.sh, a policy managing nothing
#   first  : RUNS timed runs (+WARMUP) of TOOL/first.sh (rm -rf the target, converge)
#   check  : the peers' verify.py check TOOL, byte for byte
#   no-op  : RUNS timed runs (+WARMUP) of TOOL/run.sh on the converged tree, with a
#            snapshot (inode/mtime/ctime/mode/sha256/link) before and after all of them
#   logs   : one more first run and no-op run with the tool's own output kept (+ snapshot)
# Timer: the peers' common/bench.py (whole process, wall + rusage, min/median/max).
# Then bench/summarize.py prints the table and the trueup-vs-peer ratios.
#
# Environment knobs (as the peers' run.sh): RUNS=5 WARMUP=1 TIMEOUT=1200 BENCH=... OUT=...
#   SCALE=1     also run bench/scale.sh (W100/W1000/W10000 for trueup and the baseline)
#               into the same OUT
#   PEERS, TRUEUP, TRUEUP_BUNDLES, TRUEUP_STATE_DIR, W100_PYTHON: see env.sh
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/env.sh"
DEFAULT="trueup baseline cfengine puppet salt pyinfra"
TOOLS=${*:-$DEFAULT}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
TIMEOUT=${TIMEOUT:-1200}
BENCH=${BENCH:-$W100_PYTHON $PEERS/common/bench.py}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$BENCH_DIR/results/$STAMP}
WORK=/tmp/peers/run/trueup-$STAMP
V="$W100_PYTHON $PEERS/common/verify.py"
export RUNS WARMUP TIMEOUT BENCH

mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)

machine() {
  echo "date_utc: $(date -u '+%Y-%m-%d %H:%M:%S')"
  echo "host: $(uname -srm); $(. /etc/os-release && echo "$PRETTY_NAME") $(cat /etc/debian_version 2>/dev/null)"
  echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
  echo "memory: $(free -g | awk '/^Mem:/{print $2}') GiB"
  echo "loadavg_at_start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "runs: $RUNS counted + $WARMUP warm-up per measurement"
  echo "tools: $TOOLS"
}
machine > "$OUT/machine.txt"

trueup_python() {  # the interpreter named on the console script's #! line
  head -n1 "$TRUEUP" 2>/dev/null | sed -n 's/^#! *//p' | cut -d' ' -f1
}

trueup_ok=0
case " $TOOLS " in *" trueup "*)
  if [ -z "$TRUEUP" ] || ! "$TRUEUP" run --help > /dev/null 2>&1; then
    echo "!! trueup is not runnable (TRUEUP='$TRUEUP'): skipping it" | tee "$OUT/trueup-skipped.txt"
  else
    trueup_ok=1
    # (re)write the bundles; only changed files are written
    for s in 100 1000 10000; do
      "$W100_PYTHON" "$BENCH_DIR/workload.py" -q --size "$s" --out "$TRUEUP_BUNDLES/w$s"
    done
    "$W100_PYTHON" "$BENCH_DIR/workload.py" -q --empty --out "$TRUEUP_BUNDLES/empty"
  fi ;;
esac

{
  if [ "$trueup_ok" = 1 ]; then
    py=$(trueup_python)
    echo "trueup: $("$TRUEUP" --version 2>&1 | head -n1) ($TRUEUP), python $("$py" -c 'import platform; print(platform.python_version())' 2>/dev/null), $("$py" -c 'import jinja2, yaml; print("jinja2", jinja2.__version__, "pyyaml", yaml.__version__, "libyaml" if yaml.__with_libyaml__ else "no-libyaml")' 2>/dev/null)"
    # read-only look at the work tree (--no-optional-locks: no index refresh is written)
    dirty=$(git --no-optional-locks -C "$REPO" status --porcelain -- agent 2>/dev/null | wc -l)
    echo "trueup_commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null), $dirty uncommitted file(s) under agent/"
  fi
  echo "baseline: python $("$W100_PYTHON" -c 'import platform; print(platform.python_version())') ($W100_PYTHON)"
} > "$OUT/versions.txt"

bench() {  # bench NAME CMD...   -> $OUT/NAME.txt (first line of the timer dropped)
  local name=$1; shift
  $BENCH -n "$RUNS" --warmup "$WARMUP" --timeout "$TIMEOUT" -- "$@" > "$WORK/$name.txt" 2>&1
  tail -n +2 "$WORK/$name.txt" > "$OUT/$name.txt"
}

run_trueup() {  # the peers' run.sh per-tool loop, for trueup (bench/trueup/*.sh)
  local tool=trueup T=$BENCH_DIR/trueup
  echo "== $tool  $(date -u +%H:%M:%S)  ($TRUEUP)"
  bench "$tool-empty" "$T/empty.sh"
  bench "$tool-first" "$T/first.sh"
  $V check "$tool" > "$OUT/$tool-check.txt"
  $V snapshot "$tool" "$WORK/$tool-pre.json" > /dev/null
  bench "$tool-noop" "$T/run.sh"
  $V snapshot "$tool" "$WORK/$tool-post.json" > /dev/null
  $V compare "$WORK/$tool-pre.json" "$WORK/$tool-post.json" > "$WORK/$tool-touched-bench.txt"
  # once more with the tool's own output kept
  "$T/first.sh" > "$OUT/$tool-first.log" 2>&1; echo "exit code $?" >> "$OUT/$tool-first.log"
  $V snapshot "$tool" "$WORK/$tool-pre2.json" > /dev/null
  "$T/run.sh" > "$OUT/$tool-noop.log" 2>&1; echo "exit code $?" >> "$OUT/$tool-noop.log"
  $V snapshot "$tool" "$WORK/$tool-post2.json" > /dev/null
  $V compare "$WORK/$tool-pre2.json" "$WORK/$tool-post2.json" > "$WORK/$tool-touched-log.txt"
  {
    echo "# across the $RUNS+$WARMUP timed no-op runs:"
    cat "$WORK/$tool-touched-bench.txt"
    echo "# across the single logged no-op run:"
    cat "$WORK/$tool-touched-log.txt"
    if grep -q UNCHANGED "$WORK/$tool-touched-bench.txt" && grep -q UNCHANGED "$WORK/$tool-touched-log.txt"; then
      echo "no-op check: UNCHANGED"
    else
      echo "no-op check: TOUCHED (see above)"
    fi
  } > "$OUT/$tool-noop-touched.txt"
  tail -n1 "$OUT/$tool-check.txt"; tail -n1 "$OUT/$tool-noop-touched.txt"
  grep -hE 'exit codes' "$OUT/$tool-empty.txt" "$OUT/$tool-first.txt" "$OUT/$tool-noop.txt" | sed 's/^/   /'
  grep -E 'A (wall|cpu) s' "$OUT/$tool-empty.txt" "$OUT/$tool-first.txt" "$OUT/$tool-noop.txt" | sed 's/^/   /'
}

peers=""
for t in $TOOLS; do
  case $t in
    trueup) [ "$trueup_ok" = 1 ] && run_trueup ;;
    baseline|cfengine|puppet|salt|pyinfra|ansible) peers="$peers $t" ;;
    *) echo "unknown tool: $t" >&2 ;;
  esac
done

if [ -n "$peers" ]; then
  # the peers' own loop, figures into $OUT/peers (its summary.md there covers the peers only)
  OUT="$OUT/peers" bash "$PEERS/run.sh" $peers
fi

echo "loadavg_at_end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"

if [ "${SCALE:-0}" = 1 ]; then
  OUT="$OUT" bash "$BENCH_DIR/scale.sh"
fi

"$W100_PYTHON" "$BENCH_DIR/summarize.py" "$OUT" > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
echo "results in $OUT"
