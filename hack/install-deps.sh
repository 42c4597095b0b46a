#!/usr/bin/env bash
# Installs the Debian packages the build needs, only when one is missing. CI runs as root on a fresh
# machine whose only network is the package registries, so everything comes from apt or Go modules.
set -euo pipefail

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
[[ -x /usr/bin/python3 ]] || need+=(python3)
# The local cluster's process node: `ip` for bridges, veths and network namespaces; nsenter for
# exec probes and `kubectl exec`.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
# Ray containers' exec probes (KubeRay's, for Ray < 2.53) call wget; `make run` calls the serve
# Service with curl.
command -v wget >/dev/null 2>&1 || need+=(wget)
command -v curl >/dev/null 2>&1 || need+=(curl)
# Its Services: kube-proxy's nftables mode drives the nft CLI.
command -v nft >/dev/null 2>&1 || need+=(nftables)
# The iris Serve sample: its tests skip without it, so install it to have them run. Replicas find
# Debian's interpreter at /usr/bin/python3 even where another python3 comes first on PATH.
/usr/bin/python3 -c 'import sklearn' >/dev/null 2>&1 || need+=(python3-sklearn)
# gRPC on Serve: Python replicas decode requests with the user's generated classes (grpcio and
# protobuf); grpc_tools regenerates python/examples/greeter_pb2*.py. Their tests skip without them.
/usr/bin/python3 -c 'import grpc, google.protobuf' >/dev/null 2>&1 || need+=(python3-grpcio python3-protobuf)
/usr/bin/python3 -c 'import grpc_tools' >/dev/null 2>&1 || need+=(python3-grpc-tools)
# GCS fault tolerance: the storage tests (Go and python/tests) run a real redis-server, and skip
# without it; the local cluster runs it for pods of the redis image.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Ray core (python/ray) pickles functions, classes and values with cloudpickle, as Ray does.
/usr/bin/python3 -c 'import cloudpickle' >/dev/null 2>&1 || need+=(python3-cloudpickle)
# Ray core's tests pass numpy arrays between nodes (pickle protocol 5, out-of-band buffers).
/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || need+=(python3-numpy)
# KubeRay's RayJob sample imports requests and runs `python`, which the process node's PATH must
# resolve to Debian's interpreter.
/usr/bin/python3 -c 'import requests' >/dev/null 2>&1 || need+=(python3-requests)
[[ -x /usr/bin/python ]] || need+=(python-is-python3)
# Ray Serve apps type-hint starlette's Request and return its Responses; the serve CLI reads YAML.
/usr/bin/python3 -c 'import starlette' >/dev/null 2>&1 || need+=(python3-starlette)
/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || need+=(python3-yaml)
# @serve.ingress serves FastAPI apps; the driver-script suite has one.
/usr/bin/python3 -c 'import fastapi' >/dev/null 2>&1 || need+=(python3-fastapi)
# Python Serve replicas run their event loop on uvloop when it is importable (asyncio's otherwise);
# the replica tests run both loops.
/usr/bin/python3 -c 'import uvloop' >/dev/null 2>&1 || need+=(python3-uvloop)
# runtime_env pip: `python3 -m venv` builds a job's venv and ensurepip gives it pip; Debian ships both
# in python3-venv (with pip's wheel), not in python3.
/usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
[[ ${#need[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "missing packages: ${need[*]} — install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo ">> installing ${need[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
