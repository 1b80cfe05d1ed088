#!/bin/sh
# The peers' Python baseline at any size (scaling reference):  baseline/run.sh SIZE
# target /tmp/peers/target/baseline (W100) or baseline-w<SIZE>.  W100_PYTHON is the real
# interpreter (exported by ../env.sh), not a pyenv shim.
S=${1:-100}
if [ "$S" = 100 ]; then T=/tmp/peers/target/baseline; else T=/tmp/peers/target/baseline-w$S; fi
exec "${W100_PYTHON:-python3}" "$(dirname "$0")/converge_scaled.py" "$S" "$T"
