#!/usr/bin/env bash
# Reaction benchmark on the real Docker engine, run by hand (not in CI): N game containers
# (default 40) whose engines answer in about a second, probed 4 at a time by `galaxy-runtime
# run`, so that a full pass probes for about N / 4 seconds; during such a pass one game's
# container is removed with `docker rm -f`, and the time until the run logs its record's
# `set_status … to=removed` is measured. Goal: under 2 s.
#
#   scripts/bench-reaction-docker.sh               # N=40, CONCURRENCY=4, RUNS=3
#   N=80 RUNS=5 scripts/bench-reaction-docker.sh
#   BIN=/path/to/galaxy-runtime scripts/bench-reaction-docker.sh   # another build
#
# The slow engine is the test image's busybox httpd with a CGI status resource that sleeps 1 s
# (a directory mounted over /www; `--engine-status-path /cgi-bin/status`). Each run waits for a
# full pass to start probing (the debug line `observed … N engines to probe`), removes a
# container 3 s later, and reads the run's log until the record is removed. Also prints the file
# descriptors the run process holds while it probes. Everything it makes (containers, network,
# database, the run process) is removed when it ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-40}
CONCURRENCY=${CONCURRENCY:-4}
RUNS=${RUNS:-3}

scripts/build-test-image.sh
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p galaxy-runtime-cli
  BIN=target/release/galaxy-runtime
fi

id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
net="galaxy-bench-$id"
label="bench-$id"
dir=$(mktemp -d)
run_pid=
cleanup() {
  if [ -n "$run_pid" ]; then
    kill "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
  fi
  docker ps -aq --filter "label=galaxy-runtime.bench=$id" | xargs -r docker rm -f >/dev/null
  docker network rm "$net" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

mkdir -p "$dir/www/cgi-bin"
cat >"$dir/www/cgi-bin/status" <<'EOF'
#!/bin/busybox sh
/bin/busybox sleep 1
echo "Content-Type: application/json"
echo ""
echo '{"turn": 1, "engine": "slow"}'
EOF
chmod -R a+rX "$dir/www"
chmod 755 "$dir/www/cgi-bin/status"

flags=(--database-url "sqlite://$dir/bench.db" --managed-label-value "$label"
  --docker-network "$net" --engine-addressing container_ip
  --engine-status-path /cgi-bin/status --probe-concurrency "$CONCURRENCY")

docker network create --label "galaxy-runtime.bench=$id" "$net" >/dev/null
echo "bench-reaction-docker: starting $N slow game containers on network $net" >&2
for _ in $(seq "$N"); do
  cat /proc/sys/kernel/random/uuid
done >"$dir/games"
xargs -P 4 -I{} docker run -d --name "galaxy-game-{}" --network "$net" \
  --label "galaxy.managed=$label" --label "galaxy.engine_version=1.0.0" \
  --label "galaxy-runtime.bench=$id" -v "$dir/www:/www:ro" galaxy-runtime-test-engine \
  <"$dir/games" >/dev/null
while read -r game; do
  "$BIN" games add "$game" --database-url "sqlite://$dir/bench.db" >/dev/null
done <"$dir/games"
echo "bench-reaction-docker: adopting them" >&2
"$BIN" reconcile --once "${flags[@]}" --format json >/dev/null

# A full pass at start-up, then one every 15 s: each probes for about N / CONCURRENCY seconds.
"$BIN" run "${flags[@]}" --reconcile-interval 15s --log-format json --log-level debug \
  2>"$dir/run.log" &
run_pid=$!

python3 - "$dir" "$N" "$RUNS" "$run_pid" "$CONCURRENCY" <<'EOF'
import json, os, re, statistics, subprocess, sys, time

d, n, runs, pid, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
games = open(f"{d}/games").read().split()
log_path = f"{d}/run.log"
offset = 0

def new_messages():
    """The messages logged since the last call."""
    global offset
    with open(log_path) as f:
        f.seek(offset)
        text = f.read()
    complete = text[: text.rfind("\n") + 1]
    offset += len(complete.encode())
    for line in complete.splitlines():
        try:
            yield json.loads(line)["message"]
        except (ValueError, KeyError):
            pass

def running():
    """Whether the run process is alive (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

def wait_for(pattern, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in new_messages():
            if re.search(pattern, message):
                return time.monotonic()
        if not running():
            sys.exit(f"bench-reaction-docker: the run process ended; its log is {log_path}")
        time.sleep(0.005)
    sys.exit(f"bench-reaction-docker: nothing matched {pattern!r} within {timeout} s")

reactions, descriptors = [], []
for run in range(runs):
    victim = games[run]
    wait_for(rf"observed {n - run} managed containers .* {n - run} engines to probe", 60)
    time.sleep(3)
    descriptors.append(len(os.listdir(f"/proc/{pid}/fd")))
    started = time.monotonic()
    subprocess.run(["docker", "rm", "-f", f"galaxy-game-{victim}"], check=True,
                   stdout=subprocess.DEVNULL)
    removed = time.monotonic()
    seen = wait_for(rf"set_status game_id={victim} .*to=removed", 60)
    reactions.append((seen - removed, removed - started))
    print(f"run {run + 1}: removed {seen - removed:.2f} s after `docker rm -f` returned "
          f"(which took {removed - started:.2f} s), during a full pass probing {n - run} engines "
          f"{concurrency} at a time")

took = sorted(r for r, _ in reactions)
print(f"{n} engines answering in about 1 s: a removal during a full pass is acted on in "
      f"{statistics.median(took):.2f} s (median of {runs}; min {took[0]:.2f}, max {took[-1]:.2f}); "
      f"goal under 2 s: {'met' if took[-1] < 2 else 'not met'}")
print(f"file descriptors of the run process while probing: {max(descriptors)} at most")
EOF
