#!/usr/bin/env bash
# npm run test:cluster: the manifests against a real kube-apiserver (+ etcd, + kube-controller-manager)
# on loopback. Builds the binaries on first use (cluster/build-k8s.sh, cached outside the repo), then
# runs the jest suite in cluster/*.test.ts. Extra arguments go to jest (e.g. -t 'server-side').
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"

bash "$here/build-k8s.sh"

command -v openssl >/dev/null || { echo "test:cluster: openssl is required" >&2; exit 1; }

# Every control-plane process the harness starts is recorded here; whatever is still running when
# this script ends (the test runner crashed or was interrupted) is ended by its id.
CLUSTER_PIDS_FILE="$(mktemp)"
results="$(mktemp)"
export CLUSTER_PIDS_FILE
cleanup() {
  local pid exe
  while read -r pid; do
    [[ -n "$pid" ]] || continue
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    if [[ "$exe" == "$K8S_BIN/"* || "$exe" == "$ETCD_BIN/"* ]]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done <"$CLUSTER_PIDS_FILE"
  rm -f "$CLUSTER_PIDS_FILE" "$results"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$root"
status=0
[[ -x node_modules/.bin/jest ]] || { echo "test:cluster: run npm ci first" >&2; exit 1; }
node_modules/.bin/jest -c cluster/jest.config.js --json --outputFile="$results" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`cluster: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' "$results" 2>/dev/null || echo "cluster: the test runner produced no result (exit $status)"
exit "$status"
