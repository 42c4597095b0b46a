#!/usr/bin/env bash
# `make run`: a local Kubernetes cluster (bin/devcluster) with the operator installed by Helm as a
# pod on the process node, the sample RayCluster applied and ready, the sample RayService serving
# HTTP through its serve Service, and what to try next.
# Ctrl-C stops and removes everything. `make run` builds everything first (deps tools build);
# this script only builds kube-proxy and CoreDNS when missing.
#
#   SAMPLE=path/to/raycluster.yaml          the RayCluster to apply (default config/samples/ray-cluster.sample.yaml)
#   SERVE_SAMPLE=path/to/rayservice.yaml    the RayService to apply (default config/samples/ray-service.sample.yaml)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/lib/devcluster.sh
source "$ROOT/hack/lib/devcluster.sh"
SAMPLE="${SAMPLE:-$ROOT/config/samples/ray-cluster.sample.yaml}"
SERVE_SAMPLE="${SERVE_SAMPLE:-$ROOT/config/samples/ray-service.sample.yaml}"
KUBECTL="$BIN/kubectl"

dc::require_root run
for b in devcluster manager ray kubectl helm; do
  [[ -x "$BIN/$b" ]] || { echo "$BIN/$b is missing: run \`make run\` (it builds everything)" >&2; exit 1; }
done
dc::build_tools

trap 'dc::down; echo "Stopped; nothing left behind."' EXIT
trap 'echo; exit 130' INT TERM

dc::up
dc::helm_install

name="$("$KUBECTL" create --dry-run=client -o jsonpath='{.metadata.name}' -f "$SAMPLE")"
ns="$("$KUBECTL" create --dry-run=client -o jsonpath='{.metadata.namespace}' -f "$SAMPLE")"
ns="${ns:-default}"
echo ">> kubectl apply -f ${SAMPLE#"$ROOT"/}"
"$KUBECTL" apply -n "$ns" -f "$SAMPLE"
echo ">> waiting for RayCluster $name to be ready"
"$KUBECTL" wait -n "$ns" "raycluster/$name" --for=jsonpath='{.status.state}'=ready --timeout=10m

head="$("$KUBECTL" get pods -n "$ns" -l "ray.io/cluster=$name,ray.io/node-type=head" -o jsonpath='{.items[0].metadata.name}')"
headIP="$("$KUBECTL" get pod -n "$ns" "$head" -o jsonpath='{.status.podIP}')"
svc="$("$KUBECTL" get svc -n "$ns" -l "ray.io/cluster=$name,ray.io/node-type=head" -o jsonpath='{.items[0].metadata.name}')"
workers="$("$KUBECTL" get raycluster -n "$ns" "$name" -o jsonpath='{.status.desiredWorkerReplicas}')"

echo ">> the head's dashboard, through the API server's service proxy: /api/version"
"$KUBECTL" get --raw "/api/v1/namespaces/$ns/services/$svc:dashboard/proxy/api/version"
echo
echo ">> waiting for 1 head + ${workers:-0} worker nodes alive (kubectl exec $head -- ray status)"
want=$((1 + ${workers:-0}))
for ((i = 0; ; i++)); do
  status="$("$KUBECTL" exec -n "$ns" "$head" -- ray status 2>&1 || true)"
  alive="$(awk '$4 == "ALIVE" && ($3 == "head" || $3 == "worker")' <<<"$status" | wc -l)"
  ((alive >= want)) && break
  if ((i >= 120)); then
    echo "$status" >&2
    echo "only $alive of $want Ray nodes are alive after 2 minutes" >&2
    exit 1
  fi
  sleep 1
done
echo "$status"

rs="$("$KUBECTL" create --dry-run=client -o jsonpath='{.metadata.name}' -f "$SERVE_SAMPLE")"
echo ">> kubectl apply -f ${SERVE_SAMPLE#"$ROOT"/}"
"$KUBECTL" apply -n "$ns" -f "$SERVE_SAMPLE"
echo ">> waiting for RayService $rs to be Ready (its cluster up, Serve applications RUNNING, serve endpoints)"
"$KUBECTL" wait -n "$ns" "rayservice/$rs" --for=condition=Ready --timeout=10m
serveSvc="$rs-serve-svc"
serveIP="$("$KUBECTL" get svc -n "$ns" "$serveSvc" -o jsonpath='{.spec.clusterIP}')"
echo ">> a request to the serve Service's ClusterIP: curl http://$serveIP:8000/"
for ((i = 0; ; i++)); do
  if out="$(curl -fsS --max-time 5 "http://$serveIP:8000/" 2>&1)"; then
    echo "$out"
    break
  fi
  if ((i >= 30)); then
    echo "$out" >&2
    echo "the serve Service does not answer after 30 s" >&2
    exit 1
  fi
  sleep 1
done

cat <<EOF

RayCluster $ns/$name is ready: 1 head + ${workers:-0} worker(s) alive, and RayService $ns/$rs serves
HTTP on its Service $serveSvc. The operator runs as a pod (helm release $OPERATOR_RELEASE in
$OPERATOR_NAMESPACE); every pod is a set of processes on this machine.

  export KUBECONFIG=$KUBECONFIG
  bin/kubectl get rayclusters,rayservices,pods,svc -o wide

Serve (ClusterIPs are reachable from this host):
  curl http://$serveIP:8000/
  bin/kubectl get --raw /api/v1/namespaces/$ns/services/$serveSvc:serve/proxy/

Dashboard API (the bridge is reachable from this host):
  curl http://$headIP:8265/api/version
  bin/kubectl port-forward -n $ns svc/$svc 8265:8265     # then http://127.0.0.1:8265

Next:
  bin/kubectl exec -n $ns $head -- ray status
  bin/kubectl patch raycluster $name -n $ns --type json -p '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":2}]'
  bin/ray job submit --address http://$headIP:8265 -- echo hello     # a Ray job on the cluster
  bin/kubectl apply -f config/samples/ray-job.sample.yaml
  bin/kubectl logs -n $OPERATOR_NAMESPACE deploy/$OPERATOR_RELEASE
  bin/devcluster status

Press Ctrl-C to stop everything.
EOF
wait "$DC_PID"
