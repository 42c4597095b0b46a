#!/usr/bin/env bash
# `make e2e`: bring up the local cluster, install the operator with Helm, run test/e2e against it,
# take everything down again and fail if anything of ours is left on the machine (nftables
# tables, links, network namespaces, processes). Needs root; `make e2e` builds everything first.
#
#   E2E_GO_TEST_FLAGS   extra `go test` flags (e.g. -ginkgo.focus=suspend)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/lib/devcluster.sh
source "$ROOT/hack/lib/devcluster.sh"

dc::require_root e2e
for b in devcluster manager ray kubectl helm; do
  [[ -x "$BIN/$b" ]] || { echo "$BIN/$b is missing: run \`make e2e\` (it builds everything)" >&2; exit 1; }
done
dc::build_tools
# The RayService specs' load client runs in a pod; the process node finds it in bin/.
(cd "$ROOT" && go build -o "$BIN/rayk8s-e2e-loadclient" ./test/e2e/loadclient)

trap 'dc::down' EXIT
trap 'exit 130' INT TERM

dc::up
dc::helm_install

echo ">> go test ./test/e2e (E2E_KUBECONFIG=$KUBECONFIG)"
rc=0
(cd "$ROOT" && E2E_KUBECONFIG="$KUBECONFIG" go test ./test/e2e -count=1 -timeout 45m -v ${E2E_GO_TEST_FLAGS:-}) || rc=$?

trap - EXIT
# A failed teardown fails the run, but the leftover check still runs and reports.
dc::down || { echo "devcluster down failed" >&2; rc=1; }
left="$(dc::leftovers)"
if [[ -n "$left" ]]; then
  echo "devcluster down left these behind:" >&2
  echo "$left" >&2
  rc=1
else
  echo ">> devcluster down: no namespaces, links, nftables tables or processes of ours left"
fi
exit "$rc"
