# MediaFlow. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PYTEST_ARGS ?=

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
binaries: ## Build the pinned Kubernetes, etcd, CoreDNS, Helm, crictl and MinIO binaries (cached)
	@bash hack/build-binaries.sh

.PHONY: cluster-up
cluster-up: deps ## Start the local cluster and MinIO (idempotent); writes .local/env
	@bash hack/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster, MinIO and the dockerd we started (idempotent)
	@bash hack/cluster-down.sh

.PHONY: image
image: deps ## Build the MediaFlow image and load it into the cluster's containerd
	@bash hack/image.sh

.PHONY: up
up: cluster-up image ## Set up everything: cluster, MinIO, image
	@echo "Environment ready. In a shell: source .local/env && kubectl get nodes"

.PHONY: down
down: cluster-down ## Undo `make up`

.PHONY: clean
clean: cluster-down ## Stop everything and delete .local/ (state, logs, credentials)
	rm -rf .local

##@ Development

.PHONY: crds
crds: ## Generate crds/ and the chart's crds/ from the MediaJob models
	$(UV) run --frozen python -m mediaflow_operator.resources.crd --write

.PHONY: run-operator
run-operator: ## Run the operator from this tree against the local cluster
	@bash hack/run-operator.sh

.PHONY: lint
lint: ## Lint and check formatting (ruff)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

.PHONY: fmt
fmt: ## Format and fix what ruff can
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

.PHONY: test-unit
test-unit: deps ## Unit tests only (no environment needed)
	$(UV) run --frozen pytest -m unit $(PYTEST_ARGS)

.PHONY: test
test: deps lint up ## Every test (unit, integration, e2e), bringing the environment up if needed
	source .local/env && $(UV) run --frozen pytest $(PYTEST_ARGS)
