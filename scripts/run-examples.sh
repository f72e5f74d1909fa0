#!/usr/bin/env bash
# Runs both examples to completion, as CI does:
#
#   scripts/run-examples.sh
#
# - examples/embedded: a host backend embedding the reconciler on the in-memory adapters (no
#   Docker needed); it checks every step and exits non-zero if one does not hold.
# - examples/fleet-demo: a small fleet of real game containers on the local Docker engine
#   (it builds the test image if missing and removes everything it made). Skipped, saying so,
#   when GALAXY_RUNTIME_SKIP_DOCKER=1.
#
# The exit status is non-zero as soon as one example fails.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> examples/embedded"
cargo run --quiet -p galaxy-runtime-example-embedded

if [ "${GALAXY_RUNTIME_SKIP_DOCKER:-}" = 1 ]; then
  echo "==> examples/fleet-demo: skipped (GALAXY_RUNTIME_SKIP_DOCKER=1; it needs Docker)"
  exit 0
fi
echo "==> examples/fleet-demo"
cargo run --quiet -p galaxy-runtime-example-fleet-demo
