#!/usr/bin/env bash
# Builds the galaxy-runtime container image locally, without any registry: the image holds the
# binary and exactly the shared libraries it links (as ldd lists them), on an empty base.
#
#   scripts/build-image.sh                      # release build, image galaxy-runtime:VERSION
#   scripts/build-image.sh --binary PATH --tag galaxy-runtime:test
#
# Run it with the Docker socket and a database:
#
#   docker run -d --name galaxy-runtime --network galaxy \
#       -v /var/run/docker.sock:/var/run/docker.sock -v galaxy-runtime:/data \
#       galaxy-runtime:0.1.0 run --database-url sqlite:///data/galaxy-runtime.db
#
# The entry point is the binary, the default command `run`; `docker stop` sends SIGTERM, on
# which the pass in flight finishes and the process exits 0. The working directory is /data.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
tag=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--tag IMAGE:TAG]" >&2; exit 2 ;;
    esac
done

if [ -z "$binary" ]; then
    cargo build --release -p galaxy-runtime-cli
    binary=target/release/galaxy-runtime
fi
if [ ! -x "$binary" ]; then
    echo "build-image: $binary is not an executable" >&2
    exit 2
fi
if [ -z "$tag" ]; then
    version=$("$binary" --version | awk '{print $2}')
    tag="galaxy-runtime:$version"
fi

context=$(mktemp -d "${TMPDIR:-/tmp}/galaxy-runtime-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
root="$context/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/data" "$root/tmp"
cp "$binary" "$root/usr/local/bin/galaxy-runtime"
# Every library the binary links, and the dynamic loader, at their own paths.
ldd "$binary" | awk '/=> \// {print $3} /^[[:space:]]*\// {print $1}' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# Name resolution (engines are reached by container name) reads these; glibc has its files
# and dns modules built in.
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/usr/local/bin/galaxy-runtime\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"

cat >"$context/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
WORKDIR /data
ENV BACKEND_RUNTIME_LOG_FORMAT=json
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/galaxy-runtime"]
CMD ["run"]
DOCKERFILE

docker build -q -t "$tag" \
    --label "org.opencontainers.image.version=$("$binary" --version)" "$context" >/dev/null
echo "$tag"
