#!/usr/bin/env bash
# Runs a command with DATABASE_URL pointing at a PostgreSQL server.
#
#   scripts/with-postgres.sh cargo test --workspace
#
# When DATABASE_URL is already set, the command simply runs against that server. Otherwise a
# throwaway PostgreSQL (15 by default) is created with initdb in a temporary directory, listens on
# a free port of 127.0.0.1 only, and is stopped and deleted when the command ends, however it
# ends. The exit status is the command's.
#
# Environment:
#   DATABASE_URL   use this server instead of starting one
#   PG_BINDIR      where initdb and pg_ctl are (default: pg_config --bindir, then
#                  /usr/lib/postgresql/15/bin)
#   PG_PORT        the port to try first (default: a random one from 20000 to 59999)
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

if [ -n "${DATABASE_URL:-}" ]; then
    exec "$@"
fi

find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        echo "$PG_BINDIR"
        return
    fi
    for candidate in /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)" \
        /usr/lib/postgresql/*/bin; do
        if [ -n "$candidate" ] && [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ]; then
            echo "$candidate"
            return
        fi
    done
}

bindir=$(find_bindir)
if [ -z "$bindir" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    # The test command installs what it needs itself, from Debian's packages.
    echo "with-postgres: installing postgresql-15" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
    bindir=$(find_bindir)
fi
if [ -z "$bindir" ]; then
    echo "with-postgres: no PostgreSQL server binaries (initdb, pg_ctl) found;" \
        "install postgresql-15 (apt-get install postgresql-15), set PG_BINDIR, or set DATABASE_URL" >&2
    exit 2
fi

# PostgreSQL refuses to run as root: as root, the server runs as the postgres user.
as_server_user=()
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        echo "with-postgres: running as root, but there is no postgres user to run the server as" >&2
        exit 2
    fi
    as_server_user=(runuser -u postgres --)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/galaxy-runtime-pg.XXXXXX")
chmod 0755 "$dir"
if [ "${#as_server_user[@]}" -gt 0 ]; then
    chown postgres:postgres "$dir"
fi

started=0
cleanup() {
    if [ "$started" -eq 1 ]; then
        "${as_server_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${as_server_user[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
    --no-sync >"$dir/initdb.log" 2>&1 || {
    echo "with-postgres: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    exit 2
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

port=${PG_PORT:-$((20000 + RANDOM % 40000))}
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if ! port_in_use "$port"; then
        # fsync off: the server is thrown away, so durability only costs test time.
        if "${as_server_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
            start >/dev/null 2>&1; then
            started=1
            break
        fi
    fi
    port=$((20000 + RANDOM % 40000))
done

if [ "$started" -ne 1 ]; then
    echo "with-postgres: the server did not start; its log:" >&2
    cat "$dir/server.log" >&2 || true
    exit 2
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL at $DATABASE_URL (data in $dir, deleted on exit)" >&2

status=0
"$@" || status=$?
exit "$status"
