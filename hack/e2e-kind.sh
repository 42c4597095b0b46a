#!/usr/bin/env bash
# `make e2e-kind`: the e2e suite on kind, for machines with Docker (not ours: no container
# runtime there). Creates a kind cluster, builds the image from the Dockerfile and loads it,
# installs the operator with Helm and runs test/e2e against the cluster. The cluster is deleted
# afterwards unless KEEP_CLUSTER=1.
#
#   KIND              kind binary (default: kind on PATH, else `go install sigs.k8s.io/kind` into bin/)
#   KIND_CLUSTER      cluster name (default rayk8s-e2e)
#   KIND_NODE_IMAGE   node image (default: kind's default for its version)
#   IMG               image to build and load (default rayk8s/rayk8s:e2e)
#   E2E_GO_TEST_FLAGS extra `go test` flags
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/bin"
KIND_CLUSTER="${KIND_CLUSTER:-rayk8s-e2e}"
IMG="${IMG:-rayk8s/rayk8s:e2e}"
HELM="$BIN/helm"
[[ -x "$HELM" ]] || bash "$ROOT/hack/tools.sh" helm

command -v docker >/dev/null || { echo "e2e-kind needs Docker (use \`make e2e\` on machines without it)" >&2; exit 1; }
KIND="${KIND:-$(command -v kind || true)}"
if [[ -z "$KIND" ]]; then
  GOBIN="$BIN" go install sigs.k8s.io/kind@v0.33.0
  KIND="$BIN/kind"
fi

kubeconfig="$(mktemp -t rayk8s-kind-kubeconfig.XXXXXX)"
cleanup() {
  if [[ "${KEEP_CLUSTER:-}" != 1 ]]; then "$KIND" delete cluster --name "$KIND_CLUSTER" >/dev/null 2>&1 || true; fi
  rm -f "$kubeconfig"
}
trap cleanup EXIT

echo ">> kind create cluster --name $KIND_CLUSTER"
"$KIND" create cluster --name "$KIND_CLUSTER" --kubeconfig "$kubeconfig" --wait 5m ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
echo ">> docker build -t $IMG ."
docker build -t "$IMG" "$ROOT"
"$KIND" load docker-image "$IMG" --name "$KIND_CLUSTER"

echo ">> helm install rayk8s-operator charts/rayk8s-operator"
"$HELM" upgrade --install rayk8s-operator "$ROOT/charts/rayk8s-operator" --kubeconfig "$kubeconfig" \
  --namespace rayk8s-system --create-namespace \
  --set image.repository="${IMG%:*}" --set image.tag="${IMG##*:}" --set image.pullPolicy=IfNotPresent \
  --wait --timeout 5m

# The sample's Ray pods use rayk8s/rayk8s:latest; point them at the image just loaded.
sample="$(mktemp -t rayk8s-sample.XXXXXX.yaml)"
sed "s#image: rayk8s/rayk8s:latest#image: $IMG#" "$ROOT/config/samples/ray-cluster.sample.yaml" >"$sample"
trap 'rm -f "$sample"; cleanup' EXIT

echo ">> go test ./test/e2e"
cd "$ROOT"
E2E_KUBECONFIG="$kubeconfig" E2E_SAMPLE="$sample" go test ./test/e2e -count=1 -timeout 45m -v ${E2E_GO_TEST_FLAGS:-}
