# rayk8s — see README.md. Two commands matter on a fresh machine: `make run` and `make test`.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

ROOT := $(shell pwd)
BIN := $(ROOT)/bin
IMG ?= rayk8s/rayk8s:latest
GO_TEST_FLAGS ?=
# Packages with tests; the hack/tools modules are separate modules and never tested here.
PKGS := ./...

CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT := $(BIN)/golangci-lint
KUBECTL := $(BIN)/kubectl

export PATH := $(BIN):$(PATH)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: deps
deps: ## Install the Debian packages the build needs (protoc); runs apt-get only when something is missing.
	@bash hack/install-deps.sh

.PHONY: tools
tools: ## Build the Kubernetes binaries, CoreDNS, helm and the code generators from Go modules into bin/ (cached).
	@bash hack/tools.sh kube-apiserver etcd kubectl kube-controller-manager kube-scheduler kube-proxy coredns helm controller-gen protoc-gen-go protoc-gen-go-grpc

.PHONY: lint-tool
lint-tool:
	@bash hack/tools.sh golangci-lint

.PHONY: generate
generate: tools ## Generate deepcopy code for api/.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: tools ## Generate CRDs and RBAC from markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:generateEmbeddedObjectMeta=true,allowDangerousTypes=true,maxDescLen=0 paths=./api/... paths=./internal/controller/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: chart-sync
chart-sync: manifests ## Copy the CRDs and the manager's RBAC rules into the Helm chart.
	@bash charts/sync.sh

.PHONY: helm-lint
helm-lint: tools ## Lint the Helm chart.
	$(BIN)/helm lint --strict charts/rayk8s-operator

.PHONY: proto
proto: deps tools ## Generate Go code from proto/ (and ray.serve.generated's Python modules).
	@bash hack/gen-proto.sh

.PHONY: verify
verify: ## Fail when anything generated (deepcopy, CRDs, RBAC, protobuf) or go.mod is stale.
	@bash hack/verify.sh

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet $(PKGS)

.PHONY: lint
lint: lint-tool ## Run golangci-lint.
	$(GOLANGCI_LINT) run --timeout 10m $(PKGS)

##@ Test

.PHONY: test
test: deps tools verify lint unit e2e ## Everything CI runs: generated code fresh, lint (incl. vet), all tests (incl. helm lint), e2e.

.PHONY: unit
unit: tools build python-test ## Run every Go test (envtest ones start a real kube-apiserver + etcd from bin/).
	RAYK8S_RAY_BIN=$(BIN)/ray go test $(GO_TEST_FLAGS) -count=1 $(PKGS)

.PHONY: python-test
python-test: deps ## Run the Python Serve SDK's tests with the system python3.
	/usr/bin/python3 -m unittest discover -s python/tests

##@ Build

.PHONY: build
build: ## Build the manager, ray and devcluster binaries into bin/.
	go build -o $(BIN)/manager ./cmd/manager
	go build -o $(BIN)/ray ./cmd/ray
	go build -o $(BIN)/devcluster ./cmd/devcluster
	ln -sf $(CURDIR)/python/bin/serve $(BIN)/serve

.PHONY: run
run: deps tools build ## Local cluster + the operator installed by Helm + the sample RayCluster, ready; Ctrl-C stops everything.
	@bash hack/run.sh

.PHONY: cluster
cluster: deps tools build ## Local cluster with bin/manager as a host process (operator development); Ctrl-C stops it.
	$(BIN)/devcluster up --repo $(ROOT)

.PHONY: e2e
e2e: deps tools build ## Local cluster, helm install, test/e2e, down, and a check that nothing is left behind.
	@bash hack/e2e.sh

.PHONY: e2e-kind
e2e-kind: ## test/e2e on a kind cluster (needs Docker; not runnable on our machines).
	@bash hack/e2e-kind.sh

.PHONY: down
down: ## Stop the local cluster and remove everything it created.
	$(BIN)/devcluster down --repo $(ROOT)

.PHONY: status
status: ## Show what the local cluster runs.
	$(BIN)/devcluster status --repo $(ROOT)

.PHONY: docker-build
docker-build: ## Build the image (needs a Docker engine; none exists on our CI machines).
	docker build -t $(IMG) .

##@ Deployment (to the cluster in $$KUBECONFIG)

.PHONY: install
install: tools ## Install the CRDs.
	$(KUBECTL) apply --server-side -f config/crd/bases

.PHONY: uninstall
uninstall: tools ## Remove the CRDs (and with them every Ray resource).
	$(KUBECTL) delete --ignore-not-found -f config/crd/bases

.PHONY: deploy
deploy: tools ## Install the CRDs, RBAC and the manager Deployment.
	$(KUBECTL) apply --server-side -k config/default

.PHONY: undeploy
undeploy: tools ## Remove what deploy installed.
	$(KUBECTL) delete --ignore-not-found -k config/default

##@ Benchmarks (report numbers; never pass/fail)

.PHONY: bench-serve
bench-serve: ## Serve side by side: Go server direct, nginx → Go (Go's default threads and one), proxy → Go and Python replicas (wrk, 16 and 64 conns, 3 rounds interleaved, ratios to nginx); gRPC, streaming, batching.
	go run ./test/bench/serve -duration 3s -rounds 3 -conns 16,64

PROFILE_DIR ?= $(ROOT)/.cache/profile-serve
.PHONY: profile-serve
profile-serve: ## pprof CPU and allocation profiles (and a 2 s execution trace) of the Serve proxy and agent under 64-connection no-op load, into PROFILE_DIR.
	go run ./test/bench/serve -profile $(PROFILE_DIR) -profile-duration 10s -conns 64 -python=false
	go tool pprof -top -nodecount=25 $(PROFILE_DIR)/cpu.pprof
	go tool pprof -top -nodecount=25 -sample_index=alloc_space -diff_base $(PROFILE_DIR)/allocs-base.pprof $(PROFILE_DIR)/allocs.pprof

.PHONY: bench-core
bench-core: build ## Ray core microbenchmark (tasks, actor calls, put/get, two nodes) with Ray's published figures beside ours.
	go run ./test/bench/core -ray $(BIN)/ray

N ?= 100
UNRELATED ?= 0
RUNS ?= 1
CONCURRENCY ?= 0
.PHONY: bench-operator
bench-operator: tools ## N RayClusters on a local control plane (and KubeRay's on the same one if KUBERAY_BIN is set; UNRELATED=10000 adds unowned pods and Secrets; RUNS=3 runs 3 interleaved rounds and prints min/median; CONCURRENCY=4 gives every operator that --reconcile-concurrency); time to pods/ready, writes per cluster, peak RSS, CPU.
	go run ./test/bench/operator -n $(N) -unrelated $(UNRELATED) -runs $(RUNS) -concurrency $(CONCURRENCY)
