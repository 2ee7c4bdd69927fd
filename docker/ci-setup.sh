#!/bin/sh
# Make this machine ready for pytest-tcpcopy's Docker backend and its tests (Debian 12, as root);
# scripts/install.sh runs it after installing the package.
# Idempotent: installs docker.io and debootstrap when missing, starts dockerd when no daemon
# answers (and waits for it), then builds the base image (debootstrap, no registry needed) and
# the agent image for the installed package, each only when missing.
# Environment: PYTHON (default python3) is the interpreter pytest-tcpcopy is installed in;
# DOCKERD_LOG (default /var/log/dockerd.log) receives the daemon's output.
set -eu

PYTHON=${PYTHON:-python3}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}

say() { echo "ci-setup: $*"; }
die() { echo "ci-setup: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, dockerd and debootstrap need it)"

missing=""
{ command -v dockerd && command -v docker; } >/dev/null 2>&1 || missing="$missing docker.io"
command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
if [ -n "$missing" ]; then
    say "installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

if docker info >/dev/null 2>&1; then
    say "a Docker daemon answers"
else
    say "starting dockerd (log: $DOCKERD_LOG)"
    setsid dockerd >"$DOCKERD_LOG" 2>&1 < /dev/null &
    dockerd_pid=$!
    tries=0
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "$dockerd_pid" 2>/dev/null; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd exited at start (see $DOCKERD_LOG above)"
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 60 ]; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not answer within 60 s (see $DOCKERD_LOG above)"
        fi
        sleep 1
    done
    say "dockerd answers"
fi

"$PYTHON" -m pytest_tcpcopy build-base-image --agent
