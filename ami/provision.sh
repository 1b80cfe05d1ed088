#!/bin/sh
# Inside an image build (Packer's shell provisioner, or the local build): install trueup,
# install the image's systemd units, converge the bake phase. Run as root.
#
# Environment (all optional but a bundle):
#   TRUEUP_WHEEL       a trueup wheel (its folder may hold the dependencies: no network)
#   TRUEUP_INDEX_URL   else install from this package index (TRUEUP_VERSION: a version)
#   TRUEUP_BUNDLE      the bundle: a folder, s3://bucket/key.tar.gz or ssm:/trueup/ENV
#   TRUEUP_RUNLIST     recipes to bake (default: the bundle's run list)
#   TRUEUP_ROLE, TRUEUP_ENV   written to /etc/trueup/config.toml with the bundle, so the
#                      first boot converges the same source (user data may override it)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "provision.sh: $*" >&2; }

[ -n "${TRUEUP_BUNDLE:-}" ] || { log "TRUEUP_BUNDLE is not set"; exit 1; }
if [ -n "${TRUEUP_WHEEL:-}" ]; then
    sh "$here/install.sh" "$TRUEUP_WHEEL"
elif [ -n "${TRUEUP_INDEX_URL:-}" ]; then
    sh "$here/install.sh" --index-url "$TRUEUP_INDEX_URL" "trueup${TRUEUP_VERSION:+==$TRUEUP_VERSION}"
else
    log "set TRUEUP_WHEEL or TRUEUP_INDEX_URL"
    exit 1
fi

units=/etc/systemd/system
for unit in trueup-firstboot.service trueup-hostkeys.service; do
    install -m 0644 "$here/systemd/$unit" "$units/$unit"
    mkdir -p "$units/multi-user.target.wants"
    ln -sf "$units/$unit" "$units/multi-user.target.wants/$unit"
done

for value in "$TRUEUP_BUNDLE" "${TRUEUP_RUNLIST:-}" "${TRUEUP_ROLE:-}" "${TRUEUP_ENV:-}"; do
    case $value in *'"'*|*'\'*) log "a quote or backslash in $value"; exit 1 ;; esac
done
mkdir -p /etc/trueup
{
    printf 'source = "%s"\n' "$TRUEUP_BUNDLE"
    if [ -n "${TRUEUP_RUNLIST:-}" ]; then printf 'runlist = "%s"\n' "$TRUEUP_RUNLIST"; fi
    if [ -n "${TRUEUP_ROLE:-}" ]; then printf 'role = "%s"\n' "$TRUEUP_ROLE"; fi
    if [ -n "${TRUEUP_ENV:-}" ]; then printf 'env = "%s"\n' "$TRUEUP_ENV"; fi
} >/etc/trueup/config.toml.tmp
mv /etc/trueup/config.toml.tmp /etc/trueup/config.toml

set -- "$TRUEUP_BUNDLE"
if [ -n "${TRUEUP_RUNLIST:-}" ]; then set -- "$@" --runlist "$TRUEUP_RUNLIST"; fi
/opt/trueup/venv/bin/trueup bake "$@"
