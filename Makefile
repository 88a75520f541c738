# MediaFlow. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PYTEST_ARGS ?=
# helm: the one cluster-up puts on PATH (.local/env), else the cached build of the pinned version.
HELM ?= $(shell command -v helm 2>/dev/null || { . hack/versions.env && echo $${MEDIAFLOW_CACHE:-$$HOME/.cache/mediaflow}/helm-$$HELM_VERSION/helm; })

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Local environment

.PHONY: deps
deps: ## Install Debian packages, uv and the locked Python environment
	@bash hack/install-deps.sh

.PHONY: binaries
binaries: ## Build the pinned Kubernetes, etcd, CoreDNS, Helm, crictl, MinIO, kube-router and Prometheus binaries (cached)
	@bash hack/build-binaries.sh

.PHONY: kwok
kwok: ## Build the pinned KWOK (simulated nodes for the scale simulation and its test; cached)
	@bash hack/build-binaries.sh kwok

.PHONY: cluster-up
cluster-up: deps ## Start the local cluster, MinIO and Prometheus (idempotent); writes .local/env
	@bash hack/cluster-up.sh

# cluster-up starts Prometheus and cluster-down stops it; these only start/reload or stop it.
.PHONY: prometheus prometheus-down
prometheus: ## Start the local Prometheus, or reload its configuration and alert rules (after cluster-up)
	@bash hack/prometheus.sh up

prometheus-down: ## Stop the local Prometheus (its data stays in .local/state/prometheus)
	@bash hack/prometheus.sh down

.PHONY: cluster-down
cluster-down: ## Stop the local cluster, MinIO, Prometheus and the dockerd we started (idempotent)
	@bash hack/cluster-down.sh

.PHONY: image
image: deps ## Build the MediaFlow image and load it into the cluster's containerd
	@bash hack/image.sh

.PHONY: minio-image
minio-image: ## Build the MinIO image of the chart's bundled storage and load it into the cluster
	@bash hack/minio-image.sh >/dev/null

.PHONY: release
release: ## helm upgrade --install the chart into the local cluster (after cluster-up and image)
	@bash hack/helm-up.sh

# CLUSTER=local (default): this machine's cluster, started by cluster-up. CLUSTER=current: the
# cluster of the current kube-context (kind, k3d, a cloud cluster), never started nor stopped;
# see hack/current-cluster.sh for IMAGE_LOAD, REGISTRY, IMAGE, BASE_IMAGE, MINIO_IMAGE, BUILD,
# API_PORT, STORAGE_PORT, ENV_FILE, DRY_RUN and UNINSTALL.
CLUSTER ?= local
RELEASE ?= mediaflow
NAMESPACE ?= mediaflow
CURRENT_CLUSTER = RELEASE="$(RELEASE)" NAMESPACE="$(NAMESPACE)" HELM="$(HELM)" bash hack/current-cluster.sh

.PHONY: up down
ifeq ($(CLUSTER),local)
up: cluster-up image minio-image ## Set up everything: cluster, MinIO, images, the Helm release (CLUSTER=current: your kube-context's cluster)
	@bash hack/helm-up.sh

down: cluster-down ## Undo `make up` (CLUSTER=current: stop the port-forwards; UNINSTALL=1 removes the release)
else ifeq ($(CLUSTER),current)
up:
	@$(CURRENT_CLUSTER) up

down:
	@$(CURRENT_CLUSTER) down
else
$(error CLUSTER=$(CLUSTER): use local (this machine's cluster) or current (the current kube-context))
endif

.PHONY: clean
clean: cluster-down ## Stop everything and delete .local/ (state, logs, credentials)
	rm -rf .local

##@ Development

.PHONY: crds
crds: ## Generate crds/ and the chart's crds/ from the MediaJob and preset models
	$(UV) run --frozen python -m mediaflow_operator.crd --write

.PHONY: manifests
manifests: ## Render manifests/install.yaml from the chart (for kubectl users)
	@$(MAKE) --no-print-directory -s print-manifests >manifests/install.yaml.tmp
	@mv manifests/install.yaml.tmp manifests/install.yaml
	@echo "wrote manifests/install.yaml"

# The rendering itself, on stdout; tests/unit/test_manifests.py compares it with the file.
# Secrets are not rendered (a committed key would be everyone's): install.yaml's header says
# which to create.
define INSTALL_HEADER
# MediaFlow for kubectl users, rendered from charts/mediaflow by `make manifests` (do not edit).
# Default values: namespace mediaflow, bundled MinIO without persistence. Install:
#   kubectl apply --server-side -f install.yaml
#   kubectl -n mediaflow create secret generic mediaflow-jwt --from-literal=signingKey=$$(openssl rand -hex 32)
#   kubectl -n mediaflow create secret generic mediaflow-minio --from-literal=accessKey=mf$$(openssl rand -hex 8) --from-literal=secretKey=$$(openssl rand -hex 24)
# The pods start once both Secrets exist. Helm users: helm install (see charts/mediaflow/README.md).
apiVersion: v1
kind: Namespace
metadata:
  name: mediaflow
  labels:
    pod-security.kubernetes.io/enforce: restricted
endef
export INSTALL_HEADER

.PHONY: print-manifests
print-manifests:
	@printf '%s\n' "$$INSTALL_HEADER"
	@$(HELM) template mediaflow charts/mediaflow --namespace mediaflow --include-crds --skip-tests \
		--set api.jwt.existingSecret=mediaflow-jwt --set storage.bundled.existingSecret=mediaflow-minio

.PHONY: run-operator
run-operator: ## Run the operator from this tree against the local cluster
	@bash hack/run-operator.sh

##@ Benchmarks (against the local cluster; see docs/scale.md)

.PHONY: scale-sim bench-settle
scale-sim: N ?= 5000
scale-sim: NODES ?= 100
scale-sim: ## N MediaJobs (5000) on NODES simulated KWOK nodes (100), then N bare Jobs; builds KWOK once
	@source .local/env && $(UV) run --frozen python bench/scale_sim.py sim --jobs $(N) --nodes $(NODES)

bench-settle: N ?= 2000
bench-settle: ## N MediaJobs (2000) with a missing input from 4 kubectl streams: time to settle
	@source .local/env && $(UV) run --frozen python bench/scale_sim.py settle --jobs $(N)

##@ Checks

.PHONY: lint
lint: ## Lint and check formatting (ruff), and which package may import which (import-linter)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports

.PHONY: fmt
fmt: ## Format and fix what ruff can
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

.PHONY: test-unit
test-unit: deps ## Unit tests only (no environment needed)
	$(UV) run --frozen pytest -m unit $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: deps up ## End-to-end tests only (the Helm release in the local cluster)
	source .local/env && $(UV) run --frozen pytest -m e2e $(PYTEST_ARGS)

.PHONY: test
test: deps lint up kwok ## Every test (unit, integration, e2e), bringing the environment up if needed
	source .local/env && $(UV) run --frozen pytest --durations=40 $(PYTEST_ARGS)
