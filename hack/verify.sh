#!/usr/bin/env bash
# Regenerates everything that is generated and fails when the result differs from what was there
# before: a stale deepcopy, CRD, RBAC role, protobuf file or go.mod means someone forgot to regenerate.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

paths=(api config/crd config/rbac proto python/ray/serve/generated charts/rayk8s-operator/crds charts/rayk8s-operator/files go.mod go.sum hack/tools)
snapshot() { find "${paths[@]}" -type f 2>/dev/null | LC_ALL=C sort | xargs sha256sum; }

before="$(snapshot)"
make --no-print-directory generate manifests proto chart-sync >/dev/null
go mod tidy
for d in hack/tools/*/; do (cd "$d" && go mod tidy); done
after="$(snapshot)"

if [[ "$before" != "$after" ]]; then
  echo "verify: generated files or go.mod were stale and have been regenerated; review and commit these:" >&2
  diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print "  " $3}' | sort -u >&2
  exit 1
fi
echo "verify: generated code, manifests and go.mod are up to date"
