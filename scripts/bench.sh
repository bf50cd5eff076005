#!/usr/bin/env bash
# `npm run bench`: in one run, the synth against `helm template` (scripts/bench-synth.js, which takes
# this script's arguments, e.g. --chart DIR), then authenticated against anonymous logging on the
# real node (e2e/bench.sh with BENCH_PARTS=auth; BENCH_PARTS=auth,baseline adds the stack against
# `mlflow server` defaults). The second part needs root; BENCH_PARTS=none skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/bench-synth.js "$@"
parts="${BENCH_PARTS:-auth}"
[ "$parts" != none ] || exit 0
[ "$(id -u)" = 0 ] || { echo "bench: the logging part runs a Kubernetes node and needs root (BENCH_PARTS=none skips it)" >&2; exit 1; }
BENCH_PARTS="$parts" bash e2e/bench.sh
