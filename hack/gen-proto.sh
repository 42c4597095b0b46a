#!/usr/bin/env bash
# Regenerates the Go code for every .proto under proto/. Uses protoc from
# Debian's protobuf-compiler and the plugins built into bin/ from the
# versions pinned in hack/tools/gen (see the lead's Makefile).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v protoc >/dev/null 2>&1; then
  echo "gen-proto: protoc not found; install it with: apt-get install -y protobuf-compiler" >&2
  exit 1
fi

build_plugin() {
  local name="$1" pkg="$2"
  if [[ ! -x "bin/$name" ]]; then
    echo "gen-proto: building bin/$name"
    (cd hack/tools/gen && go build -o "../../../bin/$name" "$pkg")
  fi
}
build_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
build_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc

mapfile -t protos < <(find proto -name '*.proto' | sort)
if [[ ${#protos[@]} -eq 0 ]]; then
  echo "gen-proto: no .proto files under proto/" >&2
  exit 1
fi

protoc \
  --plugin=protoc-gen-go="$root/bin/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$root/bin/protoc-gen-go-grpc" \
  -I proto \
  --go_out=proto --go_opt=paths=source_relative \
  --go-grpc_out=proto --go-grpc_opt=paths=source_relative \
  "${protos[@]}"

echo "gen-proto: generated Go for ${#protos[@]} file(s)"

# Ray's generated Python modules for RayServeAPIService (ray.serve.generated), from the same proto,
# so `make verify` also catches them stale.
bash python/ray/serve/generated/regenerate.sh
echo "gen-proto: generated python/ray/serve/generated/serve_pb2*.py"
