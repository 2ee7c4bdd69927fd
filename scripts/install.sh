#!/bin/sh
# Install pytest-tcpcopy from this checkout on Debian 12, as root, and make Docker ready for it.
#
#   sh scripts/install.sh            what the Docker backend needs (the bundled example runs on it)
#   sh scripts/install.sh --tests    also what the netns backend and the test suite need
#
# Python: the package goes into a virtual environment, .venv in the checkout (TCPCOPY_VENV names
# another). Debian's python3 is "externally managed" (PEP 668): pip refuses to install into it,
# because packages installed that way would replace or break the ones apt owns. A venv leaves
# the system's Python alone, works the same with any python3 >= 3.10 (PYTHON names another, e.g.
# a pyenv one) and makes the interpreter explicit: run everything with the venv's python3
# (`. .venv/bin/activate`), which also puts the `pytest-tcpcopy` command on the PATH.
#
# Without --tests the host needs nothing Linux-specific to build: the package and its pure-Python
# dependencies (the NFQUEUE intercept runs in the agent image, which builds NetfilterQueue
# itself). --tests adds the apt packages the netns backend (the intercept on this host:
# NetfilterQueue, built here against libnetfilter-queue-dev) and the tests use, and the package's
# dev and agent extras. Either way docker/ci-setup.sh then installs Docker when missing, starts
# the daemon and builds the base and agent images (no registry needed).
#
# Idempotent: present apt packages, an existing venv and present images are kept.
set -eu

usage() { echo "usage: sh scripts/install.sh [--tests]" >&2; exit 2; }
say() { echo "install: $*"; }
die() { echo "install: error: $*" >&2; exit 1; }

tests=0
for arg in "$@"; do
    case "$arg" in
        --tests) tests=1 ;;
        -h|--help) sed -n '2,21s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) usage ;;
    esac
done

[ "$(id -u)" = 0 ] || die "run as root (apt-get, dockerd, network namespaces and iptables need it)"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script installs on Debian 12"

checkout=$(cd "$(dirname "$0")/.." && pwd)
venv=${TCPCOPY_VENV:-$checkout/.venv}
PYTHON=${PYTHON:-python3}

# The Docker engine (dockerd and the docker CLI) and debootstrap, for the base image.
packages="docker.io debootstrap"
if [ "$tests" = 1 ]; then
    # tcpdump, tshark (editcap), nginx, redis, wrk, ab, ethtool, chromium: the tests' real
    # servers, clients and tools; iproute2 and iptables: the netns backend; the compiler and
    # libnetfilter-queue-dev: NetfilterQueue, built from source by pip; curl and socat: what
    # reproducers' request scripts run.
    packages="$packages tcpdump tshark nginx-light redis-server wrk apache2-utils iproute2 iptables ethtool procps"
    packages="$packages curl socat"
    packages="$packages libnetfilter-queue-dev gcc libc6-dev chromium"
fi
if [ "$PYTHON" = python3 ] && ! command -v python3 >/dev/null 2>&1; then
    packages="$packages python3"
fi

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

install_missing() {
    missing=""
    for package in "$@"; do
        installed "$package" || missing="$missing $package"
    done
    [ -n "$missing" ] || return 0
    say "apt packages:$missing"
    log=$(mktemp /tmp/pytest-tcpcopy-apt.XXXXXX)
    # shellcheck disable=SC2086 # one word per package
    if { [ -n "${apt_updated:-}" ] || apt-get update; } >"$log" 2>&1 \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >>"$log" 2>&1; then
        apt_updated=1
        rm -f "$log"
    else
        tail -n 30 "$log" >&2
        die "apt-get failed (whole log: $log)"
    fi
}

install_missing $packages
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; set PYTHON to a python3 >= 3.10"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'); 3.10 or later is needed"

# What Debian's python3 lacks for a venv (ensurepip) and for compiling extensions (Python.h).
if [ ! -x "$venv/bin/python3" ] && ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
    [ "$(command -v "$PYTHON")" = /usr/bin/python3 ] || die "$PYTHON cannot make a venv (no ensurepip)"
    install_missing python3-venv
fi
if [ "$tests" = 1 ] && ! "$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    [ "$(command -v "$PYTHON")" = /usr/bin/python3 ] || die "$PYTHON has no Python.h to compile NetfilterQueue against"
    install_missing python3-dev
fi

if [ ! -x "$venv/bin/python3" ]; then
    say "virtual environment $venv (from $(command -v "$PYTHON"))"
    "$PYTHON" -m venv "$venv"
fi
extras=""
[ "$tests" = 1 ] && extras="[dev,agent]"
say "pip install -e '$checkout$extras' into $venv"
"$venv/bin/python3" -m pip install -q --disable-pip-version-check -e "$checkout$extras"

PYTHON="$venv/bin/python3" sh "$checkout/docker/ci-setup.sh"
say "done; use it with: . $venv/bin/activate"
