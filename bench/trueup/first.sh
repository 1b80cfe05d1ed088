#!/bin/sh
# W100 first run for trueup: remove the target, then converge from scratch
#   trueup/first.sh [SIZE]   target /tmp/peers/target/trueup (W100) or trueup-w<SIZE>
# Like the peers' first.sh, only the target is removed, not the tool's own state.
S=${1:-100}
if [ "$S" = 100 ]; then T=/tmp/peers/target/trueup; else T=/tmp/peers/target/trueup-w$S; fi
rm -rf "$T" && mkdir -p /tmp/peers/target
exec "$(dirname "$0")/run.sh" "$S"
