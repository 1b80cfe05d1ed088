#!/usr/bin/env bash
# Install Debian's packer (1.6.6 on Debian 12) for the template checks in tests/test_packer.py
# and the local image build (packer/local). Idempotent; runs as root.
set -euo pipefail
if command -v packer >/dev/null; then
    echo "[packer-setup] $(packer version | head -n 1) present" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-o DPkg::Lock::Timeout=900 -o Acquire::Retries=3)
# `apt-get update` can fail on the lists lock, which DPkg::Lock::Timeout does not cover:
# retry it, and install from the lists already there if it keeps failing.
for attempt in 1 2 3 4 5; do
    if apt-get "${APT_OPTS[@]}" -q update >/dev/null; then
        break
    fi
    echo "[packer-setup] apt-get update failed (attempt $attempt); retrying" >&2
    sleep 10
done
apt-get "${APT_OPTS[@]}" -q install -y --no-install-recommends packer >&2
echo "[packer-setup] $(packer version | head -n 1) installed" >&2
