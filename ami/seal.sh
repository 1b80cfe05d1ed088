#!/bin/sh
# The last step of an image build: `trueup seal`, then flush to disk. Run as root.
# Exits non-zero (and removes nothing) while a file rendered from a secret remains.
set -eu
/opt/trueup/venv/bin/trueup seal
sync
