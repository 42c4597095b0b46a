#!/usr/bin/env bash
# Regenerates serve_pb2.py and serve_pb2_grpc.py from proto/serve/rayapi/rayserve_api.proto (Ray's
# RayServeAPIService, which the gRPC proxy answers) with grpc_tools (Debian: python3-grpc-tools).
# The proto is compiled as ray/serve/generated/serve.proto so the modules have Ray's names and the
# stub imports its messages as ray.serve.generated.serve_pb2.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/ray/serve/generated" "$tmp/out"
cp "$root/proto/serve/rayapi/rayserve_api.proto" "$tmp/src/ray/serve/generated/serve.proto"
/usr/bin/python3 -m grpc_tools.protoc -I "$tmp/src" --python_out="$tmp/out" --grpc_python_out="$tmp/out" \
  ray/serve/generated/serve.proto
cp "$tmp/out/ray/serve/generated/serve_pb2.py" "$tmp/out/ray/serve/generated/serve_pb2_grpc.py" "$here/"
