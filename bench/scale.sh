#!/usr/bin/env bash
# Scaling: W100, W1000 and W10000 (10, 100, 1000 dirs x 10 files; 122, 1202, 12002 resources)
# for trueup and, for reference, the Python baseline (bench/baseline/, the peers' converge.py
# method for any size).
#
#   bench/scale.sh [TOOL ...]      TOOL: trueup, baseline (default: both)
#
# Per tool and size: first-run and no-op medians (the peers' common/bench.py timer), the tree
# checked byte for byte (bench/verify.py --size N = the peers' verify.py with N/10 dirs), and
# the no-op snapshot compare, then one logged first run and no-op run (the tail of the tool's
# output is kept).  bench/summarize.py then prints the per-resource cost, so linear
# growth (or not) is visible.
#
# Environment: SIZES="100 1000 10000" RUNS=5 WARMUP=1 TIMEOUT=1200 BENCH=... OUT=...
# SCALE_FS=image|here (bench/run.sh with SCALE=1 runs this into its own OUT.)
#
# SCALE_FS=image (the default when run as root with mkfs.ext4): the targets live on a fresh
# journaled ext4 file system (a 4 GiB sparse image, loop-mounted over /tmp/peers/target for
# the duration), the file system an EC2 root volume has.  Every first run removes the
# previous run's 12,002 entries and creates them again at once; on an ext4 without a
# journal the inode allocator skips inodes freed in the last minutes (recently_deleted() in
# fs/ext4/ialloc.c), so each create scans past all of them and a W10000 series grows
# quadratically with the deletes before it, for any tool (bench/RESULTS.md).  SCALE_FS=here
# measures on /tmp/peers/target as it is.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/env.sh"
TOOLS=${*:-trueup baseline}
SIZES=${SIZES:-100 1000 10000}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
TIMEOUT=${TIMEOUT:-1200}
BENCH=${BENCH:-$W100_PYTHON $PEERS/common/bench.py}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$BENCH_DIR/results/$STAMP}
WORK=/tmp/peers/run/scale-$STAMP
V="$W100_PYTHON $BENCH_DIR/verify.py"

mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
SCALE_FS=${SCALE_FS:-image}
if [ "$SCALE_FS" = image ] && { [ "$(id -u)" != 0 ] || ! command -v mkfs.ext4 > /dev/null; }; then
  echo "!! SCALE_FS=image needs root and mkfs.ext4: measuring on /tmp/peers/target as it is"
  SCALE_FS=here
fi
if [ "$SCALE_FS" = image ]; then
  IMAGE=$WORK/target.ext4
  truncate -s 4G "$IMAGE" && mkfs.ext4 -q -F "$IMAGE" && mount -o loop "$IMAGE" /tmp/peers/target ||
    { echo "scale.sh: cannot mount a fresh ext4 image over /tmp/peers/target" >&2; exit 2; }
  trap 'umount /tmp/peers/target && rm -f "$IMAGE"' EXIT
fi
echo "scale_target_fs: $SCALE_FS ($(findmnt -n -o FSTYPE,SOURCE --target /tmp/peers/target))" >> "$OUT/machine.txt"
echo "scale_loadavg_at_start: $(cut -d' ' -f1-3 /proc/loadavg)  ($(date -u '+%Y-%m-%d %H:%M:%S') UTC)" >> "$OUT/machine.txt"

bench() {  # bench NAME CMD...   -> $OUT/NAME.txt (first line of the timer dropped)
  local name=$1; shift
  $BENCH -n "$RUNS" --warmup "$WARMUP" --timeout "$TIMEOUT" -- "$@" > "$WORK/$name.txt" 2>&1
  tail -n +2 "$WORK/$name.txt" > "$OUT/$name.txt"
}

for tool in $TOOLS; do
  case $tool in
    trueup)
      if [ -z "$TRUEUP" ] || ! "$TRUEUP" run --help > /dev/null 2>&1; then
        echo "!! trueup is not runnable (TRUEUP='$TRUEUP'): skipping it"; continue
      fi ;;
    baseline) ;;
    *) echo "unknown tool: $tool (scale.sh knows trueup, baseline)" >&2; continue ;;
  esac
  for s in $SIZES; do
    [ "$tool" = trueup ] && "$W100_PYTHON" "$BENCH_DIR/workload.py" -q --size "$s" --out "$TRUEUP_BUNDLES/w$s"
    if [ "$s" = 100 ]; then target=$tool; else target=$tool-w$s; fi
    name=scale-$tool-w$s
    echo "== $tool W$s  $(date -u +%H:%M:%S)"
    bench "$name-first" "$BENCH_DIR/$tool/first.sh" "$s"
    $V --size "$s" check "$target" > "$OUT/$name-check.txt"
    $V --size "$s" snapshot "$target" "$WORK/$name-pre.json" > /dev/null
    bench "$name-noop" "$BENCH_DIR/$tool/run.sh" "$s"
    $V --size "$s" snapshot "$target" "$WORK/$name-post.json" > /dev/null
    $V compare "$WORK/$name-pre.json" "$WORK/$name-post.json" > "$OUT/$name-noop-touched.txt"
    # once more each with the tool's own output kept (its report, or why it failed)
    "$BENCH_DIR/$tool/first.sh" "$s" > "$WORK/$name-first.log" 2>&1; echo "exit code $?" >> "$WORK/$name-first.log"
    "$BENCH_DIR/$tool/run.sh" "$s" > "$WORK/$name-noop.log" 2>&1; echo "exit code $?" >> "$WORK/$name-noop.log"
    for k in first noop; do  # the last 20 lines are enough (a first run lists every resource)
      tail -n 20 "$WORK/$name-$k.log" > "$OUT/$name-$k.log"
    done
    tail -n1 "$OUT/$name-check.txt"; tail -n1 "$OUT/$name-noop-touched.txt"
    grep -hE 'exit codes' "$OUT/$name-first.txt" "$OUT/$name-noop.txt" | sed 's/^/   /'
    grep -E 'A (wall|cpu) s' "$OUT/$name-first.txt" "$OUT/$name-noop.txt" | sed 's/^/   /'
  done
done
echo "scale_loadavg_at_end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"

"$W100_PYTHON" "$BENCH_DIR/summarize.py" --scale "$OUT" > "$OUT/scale.md"
echo
cat "$OUT/scale.md"
echo "results in $OUT"
