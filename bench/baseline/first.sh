#!/bin/sh
# first run of the scaled baseline: remove the target, then converge from scratch
S=${1:-100}
if [ "$S" = 100 ]; then T=/tmp/peers/target/baseline; else T=/tmp/peers/target/baseline-w$S; fi
rm -rf "$T" && mkdir -p /tmp/peers/target
exec "$(dirname "$0")/run.sh" "$S"
