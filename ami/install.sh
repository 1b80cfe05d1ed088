#!/bin/sh
# Install trueup into a virtual environment under /opt/trueup (idempotent).
#
#   install.sh WHEEL                 a trueup-*.whl; its dependencies come from the wheel's
#                                    folder when that folder holds them (a wheelhouse: no
#                                    network), else from the package index
#   install.sh DIR                   a wheelhouse (trueup-*.whl and its dependencies: no
#                                    network) or a source checkout (pyproject.toml)
#   install.sh --index-url URL [SPEC]  from a package index (SPEC default: trueup)
#
# Options (before the source):
#   --prefix DIR       where to install (default /opt/trueup; the venv is DIR/venv)
#   --find-links DIR   more wheels for the dependencies (repeatable); implies no index
#   --bin-dir DIR      where the `trueup` link goes (default /usr/local/bin; "" for none)
#
# Installing the same wheel again changes nothing. The last line printed is
# `trueup VERSION`. Exit 1 on any failure, 2 on a bad command line.
set -eu

PREFIX=${TRUEUP_PREFIX:-/opt/trueup}
BIN_DIR=${TRUEUP_BIN_DIR-/usr/local/bin}
FIND_LINKS=""
INDEX_URL=""
SRC=""
SPEC=""

usage() {
    echo "usage: install.sh [--prefix DIR] [--find-links DIR] [--bin-dir DIR] WHEEL|DIR|--index-url URL [SPEC]" >&2
    exit 2
}
die() {
    echo "install.sh: $*" >&2
    exit 1
}
log() { echo "install.sh: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
    --prefix) [ $# -ge 2 ] || usage; PREFIX=$2; shift 2 ;;
    --find-links) [ $# -ge 2 ] || usage; FIND_LINKS="$FIND_LINKS $2"; shift 2 ;;
    --bin-dir) [ $# -ge 2 ] || usage; BIN_DIR=$2; shift 2 ;;
    --index-url) [ $# -ge 2 ] || usage; INDEX_URL=$2; shift 2
        if [ $# -gt 0 ]; then SPEC=$1; shift; fi ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) usage ;;
    *) [ -z "$SRC" ] || usage; SRC=$1; shift ;;
    esac
done
if [ -n "$INDEX_URL" ] && [ -n "$SRC" ]; then usage; fi
if [ -z "$INDEX_URL" ] && [ -z "$SRC" ]; then usage; fi
case $PREFIX in /*) ;; *) die "--prefix must be an absolute path, not $PREFIX" ;; esac

VENV=$PREFIX/venv
STAMP=$PREFIX/installed-from

# A Python >= 3.11 with venv (Amazon Linux 2023's python3 is 3.9: its python3.11 is used).
pick_python() {
    for py in ${TRUEUP_PYTHON:-} python3.13 python3.12 python3.11 python3; do
        command -v "$py" >/dev/null 2>&1 || continue
        if "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' \
            2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}
PYTHON=$(pick_python || true)
if [ -z "$PYTHON" ]; then
    log "no Python >= 3.11 with venv; installing one"
    if command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q install -y \
            python3 python3-venv >&2 || die "apt-get could not install python3-venv"
    elif command -v dnf >/dev/null 2>&1; then
        dnf -q -y install python3.11 python3.11-pip >&2 || die "dnf could not install python3.11"
    fi
    PYTHON=$(pick_python) || die "no Python >= 3.11 with the venv module (set TRUEUP_PYTHON)"
fi

# What is being installed, as one line for the stamp (a wheel by its sha256).
pip_args=""
if [ -n "$INDEX_URL" ]; then
    target=${SPEC:-trueup}
    pip_args="--index-url $INDEX_URL"
    source_id="index $INDEX_URL $target"
else
    [ -e "$SRC" ] || die "$SRC does not exist"
    case $SRC in /*) ;; *) SRC=$(cd "$(dirname "$SRC")" && pwd)/$(basename "$SRC") ;; esac
    if [ -d "$SRC" ] && [ -f "$SRC/pyproject.toml" ]; then
        target=$SRC
        source_id="checkout $SRC"
    elif [ -d "$SRC" ]; then
        target=$(ls -1 "$SRC"/trueup-*.whl 2>/dev/null | sort -V | tail -n 1)
        [ -n "$target" ] || die "$SRC holds no trueup-*.whl and no pyproject.toml"
        FIND_LINKS="$FIND_LINKS $SRC"
    else
        case $SRC in *.whl) ;; *) die "$SRC is not a wheel (*.whl), a wheelhouse or a checkout" ;; esac
        target=$SRC
        # The wheel's folder is a wheelhouse when it holds more wheels than trueup's.
        if ls -1 "$(dirname "$SRC")"/*.whl | grep -qv '/trueup-[^/]*\.whl$'; then
            FIND_LINKS="$FIND_LINKS $(dirname "$SRC")"
        fi
    fi
    if [ -f "$target" ]; then
        source_id="wheel $(basename "$target") sha256 $(sha256sum "$target" | cut -d' ' -f1)"
    fi
fi
for dir in $FIND_LINKS; do
    [ -d "$dir" ] || die "--find-links $dir is not a folder"
    pip_args="$pip_args --find-links $dir"
done
if [ -n "$FIND_LINKS" ] && [ -z "$INDEX_URL" ]; then
    pip_args="--no-index $pip_args"
fi

link_bin() {
    if [ -n "$BIN_DIR" ]; then
        mkdir -p "$BIN_DIR"
        ln -sfn "$VENV/bin/trueup" "$BIN_DIR/trueup.tmp.$$"
        mv -f "$BIN_DIR/trueup.tmp.$$" "$BIN_DIR/trueup"
    fi
}

if [ -x "$VENV/bin/trueup" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$source_id" ] \
    && [ "${source_id#checkout }" = "$source_id" ] && "$VENV/bin/trueup" --version >/dev/null 2>&1; then
    link_bin
    log "already installed from $source_id"
    "$VENV/bin/trueup" --version
    exit 0
fi

umask 022
mkdir -p "$PREFIX"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" || die "could not create the venv $VENV"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore
rm -f "$STAMP"
# shellcheck disable=SC2086 # pip_args is a list of words without spaces
"$VENV/bin/python" -m pip install -q $pip_args "$target" >&2 || die "pip could not install $target"
if [ -f "$target" ] || [ -d "$target" ]; then
    # The same version number may be a different build: put exactly this one in place.
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install -q --no-deps --force-reinstall $pip_args "$target" >&2 \
        || die "pip could not install $target"
fi
"$VENV/bin/trueup" --version >/dev/null || die "$VENV/bin/trueup does not run"
printf '%s\n' "$source_id" >"$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
link_bin
"$VENV/bin/trueup" --version
