# One image for the operator and the Ray runtime: /manager runs the operator; /usr/local/bin/ray is
# the Go-native runtime every Ray pod starts (`ray start …`); python3 (Debian's, with python3-sklearn
# for the iris sample) runs Serve replica code through the stdlib-only SDK in python/rayk8s.
# Not buildable on our CI machines (no Docker engine).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
COPY proto/ proto/
COPY test/e2e/loadclient/ test/e2e/loadclient/
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/manager ./cmd/manager \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ray ./cmd/ray \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/rayk8s-e2e-loadclient ./test/e2e/loadclient

FROM debian:bookworm-slim
# One interpreter: Debian's python3 sees Debian's python3-sklearn; Ray core (python/ray) pickles with
# python3-cloudpickle; KubeRay's RayJob sample imports requests and runs `python`, and the operator's Redis
# clean-up Job runs `python -c "from ray._private.gcs_utils import …"`. KubeRay runs Ray containers as
# `/bin/bash -c -- "ulimit -n …; ray start …"`, and bash is in the base image. openssl runs the
# wait-for-tls-ip-san init container of mTLS clusters; Serve apps may wrap a FastAPI app with
# `@serve.ingress`. runtime_env pip builds venvs with `python3 -m venv` (python3-venv brings ensurepip
# and pip's wheel). Serve replicas run on python3-uvloop's event loop.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-sklearn python3-cloudpickle python3-numpy python3-requests python-is-python3 openssl \
    python3-starlette python3-fastapi python3-yaml python3-grpcio python3-protobuf python3-venv python3-uvloop \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --uid 1000 --create-home --shell /bin/bash ray
COPY --from=build /out/manager /manager
COPY --from=build /out/ray /usr/local/bin/ray
# The e2e suite's load client (a few MB), so `make e2e-kind` can run it from this image.
COPY --from=build /out/rayk8s-e2e-loadclient /usr/local/bin/rayk8s-e2e-loadclient
COPY python/ /opt/rayk8s/python/
ENV PYTHONPATH=/opt/rayk8s/python
# Ray Serve's CLI (serve deploy/status/config/shutdown/run/build).
RUN ln -s /opt/rayk8s/python/bin/serve /usr/local/bin/serve
USER 1000:1000
WORKDIR /home/ray
ENTRYPOINT ["/manager"]
