# One image for the operator and the Ray runtime: /manager runs the operator; /usr/local/bin/ray is
# the Go-native runtime every Ray pod starts (`ray start …`); python3 runs Serve replica code through
# the stdlib-only SDK in python/rayk8s. Not buildable on our CI machines (no Docker engine).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
COPY proto/ proto/
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/manager ./cmd/manager \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ray ./cmd/ray

FROM python:3.11-slim-bookworm
# KubeRay runs Ray containers as `/bin/bash -c -- "ulimit -n …; ray start …"` and probes with wget-free
# exec commands, so bash is all the shell tooling the image needs (it is in the base image).
RUN useradd --uid 1000 --create-home --shell /bin/bash ray
COPY --from=build /out/manager /manager
COPY --from=build /out/ray /usr/local/bin/ray
COPY python/ /opt/rayk8s/python/
ENV PYTHONPATH=/opt/rayk8s/python
USER 1000:1000
WORKDIR /home/ray
ENTRYPOINT ["/manager"]
