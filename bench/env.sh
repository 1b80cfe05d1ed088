# Default locations for the trueup benchmark scripts (POSIX sh, sourced, not run).
# The caller sets BENCH_DIR (this folder) first:
#     BENCH_DIR=$(cd "$(dirname "$0")" && pwd); . "$BENCH_DIR/env.sh"
# Every setting can be overridden from the environment:
#   PEERS             the peer benchmark folder (default: ../shared/bench/peers from the repo root)
#   TRUEUP            the trueup executable (default: <repo>/.venv/bin/trueup if it exists, else
#                     `trueup` from PATH; a pyenv shim is resolved to the real console script)
#   TRUEUP_BUNDLES    where workload.py writes the bundles (default /tmp/peers/bundles/trueup)
#   TRUEUP_STATE_DIR  trueup's own state (default /tmp/peers/state/trueup)
#   W100_PYTHON       the real interpreter for the baseline and the helper scripts
# Once sourced, TRUEUP_BENCH_ENV=1 is exported, so bench/trueup/*.sh and bench/baseline/*.sh
# started by run.sh / scale.sh do not source it again inside the timed runs.

REPO=$(cd "$BENCH_DIR/.." && pwd)
PEERS=$(cd "${PEERS:-$REPO/../shared/bench/peers}" 2>/dev/null && pwd) || {
  echo "bench: peer benchmark folder not found (set PEERS)" >&2; exit 2; }

if [ -z "${TRUEUP:-}" ]; then
  if [ -x "$REPO/.venv/bin/trueup" ]; then
    TRUEUP=$REPO/.venv/bin/trueup
  else
    TRUEUP=$(command -v trueup 2>/dev/null || true)
    # a version-manager shim is a bash script in front of the real console script
    case "$TRUEUP" in
      */shims/*) TRUEUP=$(pyenv which trueup 2>/dev/null || echo "$TRUEUP") ;;
    esac
  fi
fi
: "${TRUEUP_BUNDLES:=/tmp/peers/bundles/trueup}"
: "${TRUEUP_STATE_DIR:=/tmp/peers/state/trueup}"
# the real interpreter, past any pyenv/asdf shim (as the peers' run.sh does)
: "${W100_PYTHON:=$(python3 -c 'import sys; print(sys.executable)')}"
TRUEUP_BENCH_ENV=1
export BENCH_DIR REPO PEERS TRUEUP TRUEUP_BUNDLES TRUEUP_STATE_DIR W100_PYTHON TRUEUP_BENCH_ENV

mkdir -p /tmp/peers/target "$TRUEUP_STATE_DIR"
# bundles: written if missing (run.sh and scale.sh rewrite them anyway, which is cheap)
for _s in 100 1000 10000; do
  [ -f "$TRUEUP_BUNDLES/w$_s/w$_s/recipe.yml" ] ||
    "$W100_PYTHON" "$BENCH_DIR/workload.py" -q --size "$_s" --out "$TRUEUP_BUNDLES/w$_s"
done
[ -f "$TRUEUP_BUNDLES/empty/empty/recipe.yml" ] ||
  "$W100_PYTHON" "$BENCH_DIR/workload.py" -q --empty --out "$TRUEUP_BUNDLES/empty"
unset _s
