#!/bin/sh
# Builds galaxy-runtime-test-engine, the fake game engine the tests and benchmarks run:
# FROM scratch + Debian's static busybox + testing/engine-image/www/status.
#
# Idempotent and quick: the image carries a label with the hash of its inputs, and nothing is
# built when an image with the same hash exists. Installs busybox-static with apt-get (as root)
# when /bin/busybox is missing or not static.
#
# Usage: scripts/build-test-image.sh [--force]
set -eu

IMAGE=galaxy-runtime-test-engine
HASH_LABEL=galaxy-runtime.test-image.inputs
root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
context_src="$root/testing/engine-image"
busybox=/bin/busybox

if ! command -v docker >/dev/null 2>&1; then
    echo "build-test-image: the docker command is missing; install the Docker CLI and start the daemon" >&2
    exit 1
fi
if ! docker info >/dev/null 2>&1; then
    echo "build-test-image: Docker is not reachable (DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock});" \
        "start it (for example 'service docker start' or 'dockerd &') and run this again" >&2
    exit 1
fi

is_static() {
    # A static binary has no program interpreter; the file(1) wording varies, readelf's does not.
    [ -x "$1" ] || return 1
    if command -v readelf >/dev/null 2>&1; then
        ! readelf -l "$1" 2>/dev/null | grep -q 'INTERP'
    else
        # Without readelf, trust the package: busybox-static installs /bin/busybox.
        dpkg -s busybox-static >/dev/null 2>&1
    fi
}

if ! is_static "$busybox"; then
    if [ "$(id -u)" != 0 ]; then
        echo "build-test-image: a static busybox is needed; run as root or: apt-get install -y busybox-static" >&2
        exit 1
    fi
    echo "build-test-image: installing busybox-static" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
    if ! is_static "$busybox"; then
        echo "build-test-image: $busybox is still not a static binary after installing busybox-static" >&2
        exit 1
    fi
fi

inputs=$( (cat "$context_src/Dockerfile" "$context_src/www/status" "$busybox") | sha256sum | cut -c1-64)
if [ "${1:-}" != "--force" ]; then
    current=$(docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$IMAGE" 2>/dev/null || true)
    if [ "$current" = "$inputs" ]; then
        echo "build-test-image: $IMAGE is up to date" >&2
        exit 0
    fi
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$context_src/Dockerfile" "$context/"
mkdir -p "$context/www"
cp "$context_src/www/status" "$context/www/status"
cp "$busybox" "$context/busybox"
echo "build-test-image: building $IMAGE" >&2
# The legacy builder prints a deprecation notice on every build: show the output only on failure.
if ! docker build --quiet --label "$HASH_LABEL=$inputs" --tag "$IMAGE" "$context" >"$context/build.log" 2>&1; then
    cat "$context/build.log" >&2
    echo "build-test-image: docker build failed" >&2
    exit 1
fi
echo "build-test-image: built $IMAGE" >&2
