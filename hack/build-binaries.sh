#!/usr/bin/env bash
# Build the pinned upstream binaries from their Go modules into $MEDIAFLOW_CACHE.
# Each set lands in a folder named after its version, written atomically, so a
# second run finds it and returns at once.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
command -v go >/dev/null || die "go is not installed (see README: a Go toolchain >= 1.24 is required)"

# install_atomically DEST CMD...: run CMD with $out set to a scratch folder, then move it to DEST.
install_atomically() {
	local dest=$1; shift
	[ -d "$dest" ] && return 0
	local out; out=$(mktemp -d "$MEDIAFLOW_CACHE/.build.XXXXXX") && chmod 755 "$out"
	"$@" "$out"
	mv -T "$out" "$dest"
}

build_kubernetes() {
	local out=$1 minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
	local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	local ldflags="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
	done
	log "building Kubernetes $KUBE_VERSION (kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy, kubectl)"
	(cd "$HACK_DIR/tools/kubernetes" && go build -trimpath -ldflags "$ldflags" -o "$out/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
		k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)
}

build_etcd() {
	log "building etcd $ETCD_VERSION"
	(cd "$HACK_DIR/tools/kubernetes" && go build -trimpath -ldflags "-s -w" -o "$1/etcd" go.etcd.io/etcd/server/v3)
}

# go_install MODULE@VERSION OUT: `go install` of a module that needs no replaces.
go_install() { GOBIN=$2 go install -trimpath -ldflags "-s -w" "$1"; }

build_coredns() { log "building CoreDNS $COREDNS_VERSION"; go_install "github.com/coredns/coredns@$COREDNS_VERSION" "$1"; }
build_helm() { log "building Helm $HELM_VERSION"; go_install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "$1"; }
build_crictl() { log "building crictl $CRICTL_VERSION"; go_install "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" "$1"; }
# KWOK fakes nodes and pods for the scale simulation (bench/scale_sim.py); built on demand only.
build_kwok() { log "building KWOK $KWOK_VERSION"; go_install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "$1"; }
build_minio() { log "building MinIO $MINIO_VERSION"; go_install "github.com/minio/minio@$MINIO_VERSION" "$1"; }
# kube-router reports the version stamped here (`kube-router --version`).
build_kube_router() {
	log "building kube-router $KUBE_ROUTER_VERSION"
	local pkg=github.com/cloudnativelabs/kube-router/v2/pkg/version
	GOBIN=$1 go install -trimpath -ldflags "-s -w -X $pkg.Version=$KUBE_ROUTER_VERSION -X $pkg.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		"github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
}
# Prometheus and promtool. The module's v0.3xx.y is Prometheus 3.xx.y: that is what they report.
# Tags: only the Kubernetes service discovery (the one the local Prometheus uses) is compiled
# in, which keeps the cold build to a fraction of the full one. The web UI's assets are built
# by npm upstream and are not in the Go module, so this build serves the HTTP API (/api/v1/...)
# and /metrics, but not the UI pages.
build_prometheus() {
	local minor=${PROMETHEUS_VERSION#v0.} patch; patch=${minor#*.}; minor=${minor%%.*}
	local version=3.$((10#${minor} - 300)).$patch pkg=github.com/prometheus/common/version
	log "building Prometheus $version ($PROMETHEUS_VERSION: prometheus, promtool)"
	GOBIN=$1 go install -trimpath -tags remove_all_sd,enable_kubernetes_sd \
		-ldflags "-s -w -X $pkg.Version=$version -X $pkg.Revision=$PROMETHEUS_VERSION -X $pkg.Branch=module -X $pkg.BuildUser=mediaflow -X $pkg.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)" \
		"github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
		"github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
}

mkdir -p "$MEDIAFLOW_CACHE"
what=${1:-all}
case $what in
	all)
		install_atomically "$KUBE_BIN" build_kubernetes
		install_atomically "$ETCD_BIN" build_etcd
		install_atomically "$COREDNS_BIN" build_coredns
		install_atomically "$HELM_BIN" build_helm
		install_atomically "$CRICTL_BIN" build_crictl
		install_atomically "$MINIO_BIN" build_minio
		install_atomically "$KUBE_ROUTER_BIN" build_kube_router
		install_atomically "$PROMETHEUS_BIN" build_prometheus
		;;
	kubernetes) install_atomically "$KUBE_BIN" build_kubernetes ;;
	etcd) install_atomically "$ETCD_BIN" build_etcd ;;
	coredns) install_atomically "$COREDNS_BIN" build_coredns ;;
	helm) install_atomically "$HELM_BIN" build_helm ;;
	minio) install_atomically "$MINIO_BIN" build_minio ;;
	crictl) install_atomically "$CRICTL_BIN" build_crictl ;;
	kube-router) install_atomically "$KUBE_ROUTER_BIN" build_kube_router ;;
	prometheus) install_atomically "$PROMETHEUS_BIN" build_prometheus ;;
	# Not in `all`: only the scale simulation needs it, and `make up` stays as fast.
	kwok) install_atomically "$KWOK_BIN" build_kwok ;;
	*) die "unknown component: $what" ;;
esac
