#!/usr/bin/env bash
# Builds the tools the project needs from Go modules into bin/, skipping any that is already built
# from the same pinned go.mod (nothing can be downloaded as a prebuilt binary on our machines).
#
#   hack/tools.sh            build every tool
#   hack/tools.sh NAME...    build only these (kube-apiserver etcd kubectl kube-controller-manager
#                            kube-scheduler kube-proxy controller-gen protoc-gen-go
#                            protoc-gen-go-grpc golangci-lint helm coredns)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/bin"
STAMPS="$BIN/.stamps"
mkdir -p "$STAMPS"

# name | tools module | package
TOOLS=(
  "kube-apiserver|kube|k8s.io/kubernetes/cmd/kube-apiserver"
  "kubectl|kube|k8s.io/kubernetes/cmd/kubectl"
  "kube-controller-manager|kube|k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler|kube|k8s.io/kubernetes/cmd/kube-scheduler"
  "kube-proxy|kube|k8s.io/kubernetes/cmd/kube-proxy"
  "etcd|etcd|go.etcd.io/etcd/server/v3"
  "controller-gen|gen|sigs.k8s.io/controller-tools/cmd/controller-gen"
  "protoc-gen-go|gen|google.golang.org/protobuf/cmd/protoc-gen-go"
  "protoc-gen-go-grpc|gen|google.golang.org/grpc/cmd/protoc-gen-go-grpc"
  "golangci-lint|lint|github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
  "helm|helm|helm.sh/helm/v3/cmd/helm"
  "coredns|coredns|github.com/rayk8s/rayk8s/hack/tools/coredns"
)

want=("$@")
selected() {
  [[ ${#want[@]} -eq 0 ]] && return 0
  local w
  for w in "${want[@]}"; do [[ "$w" == "$1" ]] && return 0; done
  return 1
}

for entry in "${TOOLS[@]}"; do
  IFS='|' read -r name module pkg <<<"$entry"
  selected "$name" || continue
  dir="$ROOT/hack/tools/$module"
  # The stamp pins the binary to its module's go.mod/go.sum/*.go and the Go version that built it.
  stamp="$(cat "$dir/go.mod" "$dir/go.sum" "$dir"/*.go <(go env GOVERSION) <(echo "$pkg") | sha256sum | cut -c1-16)"
  if [[ -x "$BIN/$name" && -f "$STAMPS/$name" && "$(cat "$STAMPS/$name")" == "$stamp" ]]; then
    continue
  fi
  echo ">> building $name from $pkg (module hack/tools/$module)"
  start=$SECONDS
  (cd "$dir" && go build -trimpath -o "$BIN/$name.tmp" "$pkg")
  mv "$BIN/$name.tmp" "$BIN/$name"
  echo "$stamp" >"$STAMPS/$name"
  echo "   $name built in $((SECONDS - start))s"
done
