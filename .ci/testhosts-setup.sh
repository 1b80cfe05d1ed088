#!/usr/bin/env bash
# Prepare booted Debian 12 test hosts for tests/system (see tests/testhost.py).
#
#   bash .ci/testhosts-setup.sh               install host tools, build or reuse the image
#   bash .ci/testhosts-setup.sh --print-path  print the image rootfs path for the current
#                                             recipe (no apt, no build; exit 1 if not built)
#   bash .ci/testhosts-setup.sh --print-repo  print the local apt repository's path (exit 1
#                                             if not built)
#   bash .ci/testhosts-setup.sh --rebuild     force a fresh image (and repository) build
#
# Idempotent, runs as root. The image is a plain directory (used read-only as the lower
# layer of `systemd-nspawn --volatile=overlay`) plus a tar.zst copy of it, cached under
#   ${TRUEUP_TESTHOST_CACHE:-/var/cache/trueup-testhosts}/images/bookworm-<key>/
# where <key> hashes the image recipe below (suite, mirror, packages, customize hook), so a
# changed recipe builds a new image. An image older than TRUEUP_TESTHOST_MAX_AGE_DAYS
# (default 14) is rebuilt so its apt lists and packages don't drift too far from the mirror.
#
# Beside the image it builds a local apt file repository (keyed by the image and the package
# list below): hosts with their own network namespace (anything that sets net.* sysctls must
# run in one, or it would change this machine) cannot reach the mirror, so they install from
# it instead, bound read-only at /srv/repo (BootedHost(apt_repo=...)).
set -euo pipefail

CACHE=${TRUEUP_TESTHOST_CACHE:-/var/cache/trueup-testhosts}
MAX_AGE_DAYS=${TRUEUP_TESTHOST_MAX_AGE_DAYS:-14}
APT_OPTS=(-o DPkg::Lock::Timeout=900 -o Acquire::Retries=3)

# --- image recipe: everything here goes into the cache key -------------------------------
RECIPE_VERSION=1
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
SECURITY_MIRROR=http://deb.debian.org/debian-security
PACKAGES=(
    systemd systemd-sysv dbus
    python3 python3-venv
    iproute2 procps
    openssh-server
    ca-certificates
)
MMDEBSTRAP_OPTS=(
    --variant=apt --mode=root --format=directory
    '--aptopt=Acquire::Retries "3"'
    # Keep the apt lists so tests can `apt-get install` straight away (an `apt-get update`
    # in a test then only refreshes them).
    --skip=cleanup/apt/lists
)
HOST_TOOLS=(mmdebstrap systemd-container zstd util-linux iproute2 dpkg-dev)

# --- local apt repository: goes into its own cache key (with the image key) ---------------
# Exactly what the recipes (recipes/base, recipes/web) and the SYSTEM kinds' EXAMPLES install
# that the image lacks; `apt-get install -d` in a throw-away overlay of the image adds the
# missing dependencies and recommends, i.e. what a host of this image will ask for.
REPO_VERSION=1
REPO_PACKAGES=(sudo curl less tzdata nginx hello jq prometheus-node-exporter cloud-init)

# Runs in a private mount namespace: "$1" image rootfs, "$2" scratch folder, "$3" output
# folder, then the package names.
download_repo_debs() {
    local rootfs=$1 work=$2 out=$3
    shift 3
    mkdir -p "$work/upper" "$work/work" "$work/root" "$out/partial"
    mount -t overlay -o "lowerdir=$rootfs,upperdir=$work/upper,workdir=$work/work" \
        trueup-repo "$work/root"
    local r=$work/root
    mount -t proc proc "$r/proc"
    mount --bind /dev "$r/dev"
    mkdir -p "$r/srv/debs"
    mount --bind "$out" "$r/srv/debs"
    cp /etc/resolv.conf "$r/etc/resolv.conf"
    chroot "$r" apt-get -o Acquire::Retries=3 -q update
    chroot "$r" apt-get -o Acquire::Retries=3 -o Dir::Cache::Archives=/srv/debs/ \
        -q install -y --download-only "$@"
}

# Runs as mmdebstrap's customize hook: "$1" is the new root.
customize_image() {
    local root=$1
    # No /etc/hostname: systemd then keeps the hostname nspawn sets (the machine name).
    # No /etc/resolv.conf: nspawn copies the host's at boot (--resolv-conf=copy-host).
    rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
    # An empty machine-id makes systemd generate a fresh one on every boot.
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    # Services that are useless or harmful in a container sharing the host's network.
    # (ssh.service is masked per boot by the harness, so a test may still unmask it.)
    for unit in systemd-networkd-wait-online.service getty@tty1.service \
        e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer \
        fstrim.timer; do
        ln -sf /dev/null "$root/etc/systemd/system/$unit"
    done
    # Fast, quiet journal kept in memory (the host is thrown away anyway).
    mkdir -p "$root/etc/systemd/journald.conf.d"
    printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' \
        >"$root/etc/systemd/journald.conf.d/testhost.conf"
}
# -----------------------------------------------------------------------------------------

recipe_key() {
    {
        echo "v=$RECIPE_VERSION suite=$SUITE mirror=$MIRROR security=$SECURITY_MIRROR"
        printf '%s\n' "${PACKAGES[@]}" | sort
        printf '%s\n' "${MMDEBSTRAP_OPTS[@]}"
        declare -f customize_image
    } | sha256sum | cut -c1-16
}

KEY=$(recipe_key)
IMAGE_DIR="$CACHE/images/$SUITE-$KEY"
ROOTFS="$IMAGE_DIR/rootfs"
TARBALL="$CACHE/images/$SUITE-$KEY.tar.zst"
STAMP="$IMAGE_DIR/READY"

repo_key() {
    {
        echo "image=$KEY repo=$REPO_VERSION"
        printf '%s\n' "${REPO_PACKAGES[@]}" | sort
        declare -f download_repo_debs
    } | sha256sum | cut -c1-16
}
REPO_DIR="$CACHE/repos/$SUITE-$KEY-$(repo_key)"

log() { printf '[testhosts-setup] %s\n' "$*" >&2; }

# Move a finished image into place. An old one is moved aside before it is deleted, so a
# host still running on it (as its overlay's lower layer) is not disturbed by a half-
# deleted tree.
replace_image_dir() {
    local new=$1 old="$CACHE/images/.old-$KEY-$$"
    if [[ -e "$IMAGE_DIR" ]]; then
        mv "$IMAGE_DIR" "$old"
    fi
    mv "$new" "$IMAGE_DIR"
    rm -rf "$old"
}

image_fresh() {
    [[ -f "$STAMP" && -x "$ROOTFS/lib/systemd/systemd" ]] || return 1
    [[ -z $(find "$STAMP" -mtime "+$MAX_AGE_DAYS" -print) ]]
}

case "${1:-}" in
--print-path)
    if image_fresh; then
        echo "$ROOTFS"
        exit 0
    fi
    echo "$ROOTFS"
    exit 1
    ;;
--print-key)
    echo "$KEY"
    exit 0
    ;;
--print-repo)
    echo "$REPO_DIR"
    [[ -f "$REPO_DIR/READY" && -f "$REPO_DIR/Packages" ]] && image_fresh
    exit
    ;;
--rebuild) FORCE=1 ;;
"") FORCE=0 ;;
*)
    echo "usage: $0 [--print-path|--print-key|--rebuild]" >&2
    exit 2
    ;;
esac

if [[ $(id -u) -ne 0 ]]; then
    echo "testhosts-setup: must run as root" >&2
    exit 1
fi

t0=$SECONDS

# 1. host tools --------------------------------------------------------------------------
missing=()
for tool in mmdebstrap systemd-nspawn zstd nsenter unshare ip dpkg-scanpackages; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    log "missing tools: ${missing[*]}; installing ${HOST_TOOLS[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get "${APT_OPTS[@]}" -q update
    apt-get "${APT_OPTS[@]}" -q install -y --no-install-recommends "${HOST_TOOLS[@]}"
    log "host tools installed ($((SECONDS - t0)) s)"
else
    log "host tools present: mmdebstrap $(dpkg-query -W -f='${Version}' mmdebstrap)," \
        "systemd-container $(dpkg-query -W -f='${Version}' systemd-container)"
fi

# 2. image -------------------------------------------------------------------------------
mkdir -p "$CACHE/images"
exec 9>"$CACHE/.lock"
if ! flock -w 900 9; then
    echo "testhosts-setup: could not lock $CACHE/.lock within 900 s" >&2
    exit 1
fi

if ((FORCE == 0)) && image_fresh; then
    log "image cached: $ROOTFS (key $KEY, built $(cat "$STAMP"))"
elif ((FORCE == 0)) && [[ -f "$TARBALL" ]] && [[ -z $(find "$TARBALL" -mtime "+$MAX_AGE_DAYS" -print) ]]; then
    t1=$SECONDS
    tmp="$CACHE/images/.restore-$KEY-$$"
    rm -rf "$tmp"
    mkdir -p "$tmp/rootfs"
    trap 'rm -rf "$tmp"' EXIT
    tar -C "$tmp/rootfs" --numeric-owner -I 'zstd -T0' -xpf "$TARBALL"
    date -u -r "$TARBALL" +%FT%TZ >"$tmp/READY"
    touch -r "$TARBALL" "$tmp/READY"
    replace_image_dir "$tmp"
    trap - EXIT
    log "image restored from $TARBALL in $((SECONDS - t1)) s: $ROOTFS"
else
    t1=$SECONDS
    tmp="$CACHE/images/.build-$KEY-$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    log "building image $SUITE-$KEY with mmdebstrap (${PACKAGES[*]})"
    include=$(IFS=,; echo "${PACKAGES[*]}")
    {
        echo '#!/bin/bash'
        echo 'set -euo pipefail'
        declare -f customize_image
        echo 'customize_image "$1"'
    } >"$tmp/customize.sh"
    chmod +x "$tmp/customize.sh"
    # One retry: a flaky mirror should not fail a CI run.
    for attempt in 1 2; do
        rm -rf "$tmp/rootfs"
        if mmdebstrap "${MMDEBSTRAP_OPTS[@]}" --include="$include" \
            --customize-hook="$tmp/customize.sh" \
            "$SUITE" "$tmp/rootfs" "$MIRROR" "deb $SECURITY_MIRROR $SUITE-security main" \
            "deb $MIRROR $SUITE-updates main"; then
            break
        elif ((attempt == 2)); then
            echo "testhosts-setup: mmdebstrap failed twice" >&2
            exit 1
        fi
        log "mmdebstrap failed (attempt $attempt); retrying"
    done
    log "mmdebstrap done in $((SECONDS - t1)) s; writing $TARBALL"
    tar -C "$tmp/rootfs" --numeric-owner -I 'zstd -T0 -3' -cpf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    date -u +%FT%TZ >"$tmp/READY"
    replace_image_dir "$tmp"
    trap - EXIT
    log "image built in $((SECONDS - t1)) s: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1)," \
        "tar.zst $(du -h "$TARBALL" | cut -f1))"
fi

# 3. local apt repository ---------------------------------------------------------------
if ((FORCE == 0)) && [[ -f "$REPO_DIR/READY" && "$REPO_DIR/READY" -nt "$STAMP" ]]; then
    log "apt repository cached: $REPO_DIR ($(cat "$REPO_DIR/READY"))"
else
    t1=$SECONDS
    tmp="$CACHE/repos/.build-$$"
    rm -rf "$tmp"
    mkdir -p "$tmp/debs"
    trap 'rm -rf "$tmp"' EXIT
    log "building the local apt repository (${REPO_PACKAGES[*]} and what the image lacks)"
    unshare --mount --propagation private /bin/bash -c \
        "set -euo pipefail; $(declare -f download_repo_debs); download_repo_debs \"\$@\"" \
        sh "$ROOTFS" "$tmp/work" "$tmp/debs" "${REPO_PACKAGES[@]}"
    rm -rf "$tmp/debs/partial" "$tmp/debs/lock"
    (cd "$tmp/debs" && dpkg-scanpackages --multiversion . >Packages 2>/dev/null)
    for pkg in "${REPO_PACKAGES[@]}"; do
        grep -qx "Package: $pkg" "$tmp/debs/Packages" || {
            echo "testhosts-setup: $pkg is missing from the repository" >&2
            exit 1
        }
    done
    echo "$(find "$tmp/debs" -name '*.deb' | wc -l) packages" >"$tmp/debs/READY"
    rm -rf "$REPO_DIR"
    mv "$tmp/debs" "$REPO_DIR"
    rm -rf "$tmp"
    trap - EXIT
    log "apt repository built in $((SECONDS - t1)) s: $REPO_DIR ($(cat "$REPO_DIR/READY")," \
        "$(du -sh "$REPO_DIR" | cut -f1))"
fi
# Keep the current repository and the 2 newest others.
mapfile -t old < <(cd "$CACHE/repos" && ls -1dt "$SUITE"-*/ 2>/dev/null \
    | sed 's#/$##' | grep -vx "$(basename "$REPO_DIR")" | tail -n +3)
for name in "${old[@]}"; do
    log "removing old apt repository $name"
    rm -rf "${CACHE:?}/repos/$name"
done

# Drop images of older recipes (keep the 2 newest others, so a concurrent run on an older
# checkout keeps working).
mapfile -t old < <(cd "$CACHE/images" && ls -1dt "$SUITE"-*/ 2>/dev/null \
    | sed 's#/$##' | grep -vx "$SUITE-$KEY" | tail -n +3)
for name in "${old[@]}"; do
    log "removing old image $name"
    rm -rf "${CACHE:?}/images/$name" "${CACHE:?}/images/$name.tar.zst" \
        "${CACHE:?}/venvs/$name"-*
done

echo "$ROOTFS"
log "done in $((SECONDS - t0)) s"
