#!/bin/sh
# Paste README.md's two commands (install + example, install + tests) into a fresh Debian 12
# container and fail unless both pass. CI runs this after the test suite (.ci/run).
#
#   sh scripts/check-fresh-install.sh [--full]
#
# The container is made from the project's debootstrap base image (pytest-tcpcopy-base:bookworm,
# BASE_IMAGE names another): Debian 12's base system, nothing installed by apt beyond it, no pip
# cache (PIP_NO_CACHE_DIR=1). It gets the checkout's files (tracked and untracked, not ignored:
# no venv, build products or caches of this host) in /root/pytest-tcpcopy and, like every machine
# of this kind, this host's extra CA certificates (/usr/local/share/ca-certificates: an egress
# proxy may re-sign PyPI's TLS). The example needs a Docker daemon in there (docker-in-docker):
# the container gets every capability this host may grant, unconfined seccomp, AppArmor and
# /proc, every device, the host's cgroup hierarchies (v1) to nest the inner containers' cgroups
# in, and /var/lib/docker on a volume of its own (overlay2 cannot sit on the container's overlay
# root). Not --privileged: where the host itself lacks a capability (CAP_SYS_RESOURCE on some
# sandboxes), runc cannot grant all of them and refuses to start it. IPv6 is on (a machine has
# ::1; Docker turns it off in containers). apt reaches the Debian mirror the base image names.
#
# The install command runs whole. The test command runs as pasted with CI=true (a missing
# prerequisite fails instead of skipping), its pytest narrowed by PYTEST_ADDOPTS (-k) to the unit
# tests and an end-to-end test of each kind of prerequisite the install provides (netns + NFQUEUE,
# Docker, nginx and redis, tcpdump, chromium, a rig's real server), which keeps the check to
# minutes. --full runs the whole suite in there instead: it takes as long again as the suite
# itself, and the two tests that look for the receive thread's kernel thread in /proc fail there
# (kernel threads are not in a container's PID namespace).
#
# Needs root and a Docker daemon with the base image (sh docker/ci-setup.sh makes both). The
# container is labelled like every object of a run (pytest-tcpcopy=1, run id, owner pid), so a
# killed check's container is reaped by the next run on this host; it is removed on exit.
set -eu

say() { echo "fresh-install: $*"; }
die() { echo "fresh-install: error: $*" >&2; exit 1; }

full=0
for arg in "$@"; do
    case "$arg" in
        --full) full=1 ;;
        *) echo "usage: sh scripts/check-fresh-install.sh [--full]" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
BASE_IMAGE=${BASE_IMAGE:-pytest-tcpcopy-base:bookworm}
CHECKOUT=/root/pytest-tcpcopy
# Each end-to-end test needs what the install provides: a netns rig with the NFQUEUE intercept,
# the Docker backend, real nginx and redis, tcpdump, headless chromium.
SELECTION="unit or test_replay_into_v1_completes_every_session or test_replay_into_a_sut_container_delivers"
SELECTION="$SELECTION or test_nginx_sees_every or test_redis_processes_every or test_report_of_a_real_replay_loads"
SELECTION="$SELECTION or test_rig_serves_a_real_http_server"

readme_command() {  # the README's indented command line starting with "$1"
    sed -n "s|^    \($1.*\)$|\1|p" README.md
}
example_command=$(readme_command "sh scripts/install.sh &&")
test_command=$(readme_command "sh scripts/install.sh --tests &&")
[ -n "$example_command" ] || die "README.md has no indented line starting with: sh scripts/install.sh &&"
[ -n "$test_command" ] || die "README.md has no indented line starting with: sh scripts/install.sh --tests &&"

docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
    || die "no image $BASE_IMAGE: run sh docker/ci-setup.sh (or pytest-tcpcopy build-base-image) first"

run_id="fresh$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
name="tcpcopy-$run_id-fresh"
owner_start=$(sed 's/.*) //' "/proc/$$/stat" | cut -d' ' -f20)
cleanup() {
    docker rm -f -v "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "container $name from $BASE_IMAGE"
caps=$(grep CapBnd /proc/self/status | cut -f2)
drop=""
[ $(( 0x$caps >> 24 & 1 )) = 1 ] || drop="--cap-drop SYS_RESOURCE"
# shellcheck disable=SC2086 # $drop is empty or two words
docker run -d --name "$name" --hostname fresh-debian \
    --cap-add ALL $drop --device-cgroup-rule 'a *:* rwm' -v /sys/fs/cgroup:/sys/fs/cgroup \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
    --label pytest-tcpcopy=1 --label "pytest-tcpcopy.run=$run_id" --label pytest-tcpcopy.role=fresh-install \
    --label "pytest-tcpcopy.owner-pid=$$" --label "pytest-tcpcopy.owner-start=$owner_start" \
    --label "pytest-tcpcopy.owner-host=$(hostname)" \
    --sysctl net.ipv6.conf.all.disable_ipv6=0 --sysctl net.ipv6.conf.lo.disable_ipv6=0 \
    -v /var/lib/docker -e PIP_NO_CACHE_DIR=1 "$BASE_IMAGE" sleep infinity >/dev/null

docker exec "$name" mount -o remount,rw /sys  # as on a machine: the rigs write sysfs (rps_cpus, threaded NAPI)

for cert in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$cert" ] && docker cp "$cert" "$name:/usr/local/share/ca-certificates/"
done
docker exec "$name" update-ca-certificates >/dev/null 2>&1

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _ \
        | tar --null -T - -cf - | docker exec -i "$name" sh -c "mkdir -p $CHECKOUT && tar -xf - -C $CHECKOUT"
else
    tar --exclude=.venv --exclude=.git --exclude='*.so' --exclude=__pycache__ --exclude=build -cf - . \
        | docker exec -i "$name" sh -c "mkdir -p $CHECKOUT && tar -xf - -C $CHECKOUT"
fi

# The shared benchmark captures some tests read sit beside the checkout, as in CI.
for shared in "${TCPCOPY_SHARED:-}" ../shared /work/shared; do
    if [ -n "$shared" ] && [ -d "$shared/bench" ]; then
        tar -C "$shared" -cf - bench | docker exec -i "$name" sh -c "mkdir -p /root/shared && tar -xf - -C /root/shared"
        break
    fi
done

paste() {  # run one pasted command line in a root login shell in the checkout; $1 names it
    what=$1; shift
    say "$what: $command"
    start=$(date +%s)
    if ! docker exec "$@" -w "$CHECKOUT" "$name" bash -lc "$command"; then
        die "$what failed in the fresh container after $(( $(date +%s) - start )) s: $command"
    fi
    say "$what passed in $(( $(date +%s) - start )) s"
}

started=$(date +%s)
command=$example_command
paste "install + example"
command=$test_command
if [ "$full" = 1 ]; then
    paste "install + tests" -e CI=true
else
    paste "install + tests (-k: $SELECTION)" -e CI=true -e "PYTEST_ADDOPTS=-k '$SELECTION'"
fi
say "both README commands passed in a fresh container in $(( $(date +%s) - started )) s"
