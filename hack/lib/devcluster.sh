# Shared by hack/run.sh and hack/e2e.sh (source it): start the local cluster in the background,
# install the operator with Helm, stop everything again. Needs root (the cluster does).
#
# Reads ROOT; sets BIN, STATE_DIR, KUBECONFIG, DC_PID, DC_LOG.

BIN="$ROOT/bin"
STATE_DIR="${DEVCLUSTER_STATE_DIR:-$ROOT/.cache/devcluster}"
export KUBECONFIG="$STATE_DIR/kubeconfig"
DC_LOG="${DEVCLUSTER_LOG:-$ROOT/.cache/devcluster-up.log}"
DC_PID=""
OPERATOR_RELEASE="${OPERATOR_RELEASE:-rayk8s-operator}"
OPERATOR_NAMESPACE="${OPERATOR_NAMESPACE:-rayk8s-system}"

dc::require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "The local cluster needs root (a bridge, network and mount namespaces, nftables): run it as root, e.g. \`sudo -E make ${1:-run}\`." >&2
    exit 1
  fi
}

# dc::build_tools builds what the local cluster runs besides `make tools`: kube-proxy and
# CoreDNS (cached: a no-op when bin/ is current).
dc::build_tools() {
  bash "$ROOT/hack/tools.sh" kube-proxy coredns
}

# dc::up starts `devcluster up` (no host manager: the operator runs as a pod) in the background
# and waits until it reports Ready.
dc::up() {
  mkdir -p "$(dirname "$DC_LOG")"
  echo ">> starting the local cluster (log: $DC_LOG)"
  # Truncate here: the background job's own redirection may happen after the first poll below.
  : >"$DC_LOG"
  "$BIN/devcluster" up --repo "$ROOT" --state-dir "$STATE_DIR" --manager=none "$@" >>"$DC_LOG" 2>&1 &
  DC_PID=$!
  local i
  for ((i = 0; i < 1200; i++)); do
    if grep -q '^Ready\.' "$DC_LOG"; then
      sed -n '/^Local cluster/,/^  kubeconfig/p' "$DC_LOG"
      return 0
    fi
    if ! kill -0 "$DC_PID" 2>/dev/null; then
      echo "devcluster up failed; last lines of $DC_LOG:" >&2
      tail -n 30 "$DC_LOG" >&2
      DC_PID=""
      return 1
    fi
    sleep 0.5
  done
  echo "devcluster up did not get ready in 10 minutes; see $DC_LOG" >&2
  return 1
}

# dc::down stops the cluster started by dc::up (SIGTERM, as Ctrl-C would) and then runs
# `devcluster down`, which removes whatever is left either way.
dc::down() {
  if [[ -n "$DC_PID" ]] && kill -0 "$DC_PID" 2>/dev/null; then
    echo ">> stopping the local cluster"
    kill -TERM "$DC_PID" 2>/dev/null || true
    local i=0
    while kill -0 "$DC_PID" 2>/dev/null && ((i++ < 120)); do sleep 0.5; done
    # Still there after a minute: `devcluster down` below removes what it leaves.
    kill -KILL "$DC_PID" 2>/dev/null || true
    wait "$DC_PID" 2>/dev/null || true
  fi
  DC_PID=""
  "$BIN/devcluster" down --repo "$ROOT" --state-dir "$STATE_DIR" >/dev/null
}

# dc::helm_install installs (or upgrades) the operator from charts/rayk8s-operator and waits for
# it to be ready. The process node ignores images (the container's /manager is bin/manager), so
# the image values name something that can never be pulled.
dc::helm_install() {
  echo ">> helm install $OPERATOR_RELEASE charts/rayk8s-operator (namespace $OPERATOR_NAMESPACE)"
  "$BIN/helm" upgrade --install "$OPERATOR_RELEASE" "$ROOT/charts/rayk8s-operator" \
    --namespace "$OPERATOR_NAMESPACE" --create-namespace \
    --set image.repository=process-node.invalid/rayk8s --set image.tag=bin-manager --set image.pullPolicy=Never \
    --set logging.stdoutEncoder=console \
    --wait --timeout 5m "$@"
}

# dc::leftovers prints what of a local cluster is still on the machine (nothing when clean):
# nftables tables, links, network namespaces and processes of ours.
dc::leftovers() {
  local prefix="${DEVCLUSTER_PREFIX:-rk8s}"
  nft list tables 2>/dev/null | grep -E 'kube-proxy|rayk8s_' | sed 's/^/nftables: /' || true
  ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^${prefix}" | sed 's/^/link: /' || true
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}" | sed 's/^/netns: /' || true
  local p exe
  for p in /proc/[0-9]*; do
    exe="$(readlink "$p/exe" 2>/dev/null)" || continue
    case "$exe" in
    "$BIN"/devcluster | "$BIN"/coredns | "$BIN"/kube-proxy | "$BIN"/manager | "$BIN"/ray)
      echo "process: ${p#/proc/} $exe" ;;
    "$BIN"/*)
      if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$STATE_DIR"; then echo "process: ${p#/proc/} $exe"; fi ;;
    esac
  done
  [[ -e "$STATE_DIR" ]] && echo "state: $STATE_DIR" || true
}
