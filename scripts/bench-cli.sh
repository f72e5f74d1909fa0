#!/usr/bin/env bash
# End-to-end benchmark of the command line on the real Docker engine: N game containers of the
# test image (default 100), registered and adopted, then one `galaxy-runtime reconcile --once`
# with a probe of every engine, timed at probe_concurrency 64 and at 1.
#
#   scripts/bench-cli.sh                # N=100, 5 runs per concurrency
#   N=200 RUNS=9 scripts/bench-cli.sh
#
# Prints, per concurrency, the median wall time of the whole command (process start, Docker
# listing, SQLite, probes, writes, exit) and the median time of its observe step (listing and
# probing), then their ratios. The release binary is built first. Everything the benchmark
# makes (containers, network, database) is removed when it ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100}
RUNS=${RUNS:-5}
CONCURRENCIES=${CONCURRENCIES:-"64 1"}

scripts/build-test-image.sh
cargo build --release --quiet -p galaxy-runtime-cli
bin=target/release/galaxy-runtime

id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
net="galaxy-bench-$id"
label="bench-$id"
dir=$(mktemp -d)
cleanup() {
  docker ps -aq --filter "label=galaxy-runtime.bench=$id" | xargs -r docker rm -f >/dev/null
  docker network rm "$net" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

flags=(--database-url "sqlite://$dir/bench.db" --managed-label-value "$label"
  --docker-network "$net" --engine-addressing container_ip)

docker network create --label "galaxy-runtime.bench=$id" "$net" >/dev/null
echo "bench-cli: starting $N game containers on network $net" >&2
for _ in $(seq "$N"); do
  cat /proc/sys/kernel/random/uuid
done >"$dir/games"
# Four at a time: container creation is the slow part of setting up.
xargs -P 4 -I{} docker run -d --name "galaxy-game-{}" --network "$net" \
  --label "galaxy.managed=$label" --label "galaxy.engine_version=1.0.0" \
  --label "galaxy-runtime.bench=$id" galaxy-runtime-test-engine <"$dir/games" >/dev/null
while read -r game; do
  "$bin" games add "$game" --database-url "sqlite://$dir/bench.db" >/dev/null
done <"$dir/games"

echo "bench-cli: adopting them" >&2
"$bin" reconcile --once "${flags[@]}" --format json >"$dir/adopt.json"
# Until every engine answers: a dry run plans one snapshot per game.
for _ in $(seq 100); do
  snapshots=$("$bin" reconcile --once --dry-run "${flags[@]}" --format json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["plan"]["summary"]["actions"].get("publish_snapshot", 0))')
  [ "$snapshots" = "$N" ] && break
  sleep 0.2
done
if [ "$snapshots" != "$N" ]; then
  echo "bench-cli: only $snapshots of $N engines answer; giving up" >&2
  exit 1
fi

for c in $CONCURRENCIES; do
  for run in $(seq "$RUNS"); do
    start=$(date +%s%N)
    "$bin" reconcile --once "${flags[@]}" --probe-concurrency "$c" --format json >"$dir/run-$c-$run.json"
    end=$(date +%s%N)
    echo $(((end - start) / 1000)) >"$dir/wall-$c-$run"
  done
done

python3 - "$dir" "$N" "$RUNS" $CONCURRENCIES <<'EOF'
import json, statistics, sys
d, n, runs, concurrencies = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
medians = {}
print(f"{n} game containers, one `reconcile --once` with probes, median of {runs} runs")
print(f"{'probe_concurrency':>18} {'whole command':>14} {'observe step':>13} {'probes':>7} {'snapshots':>10}")
for c in concurrencies:
    walls, observes = [], []
    for r in range(1, runs + 1):
        walls.append(int(open(f"{d}/wall-{c}-{r}").read()) / 1e6)
        report = json.load(open(f"{d}/run-{c}-{r}.json"))["report"]
        observes.append(report["durations"]["observe"])
        probes, snapshots = report["probes"], report["applied"]["publish_snapshot"]
        assert probes == n and snapshots == n, (probes, snapshots)
    medians[c] = (statistics.median(walls), statistics.median(observes))
    print(f"{c:>18} {medians[c][0] * 1000:>12.1f}ms {medians[c][1] * 1000:>11.1f}ms {probes:>7} {snapshots:>10}")
if len(concurrencies) == 2:
    a, b = concurrencies
    print(f"ratio {b} / {a}: whole command {medians[b][0] / medians[a][0]:.2f}x, "
          f"observe step {medians[b][1] / medians[a][1]:.2f}x")
EOF
