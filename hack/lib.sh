# Shared settings for hack/ scripts. Source it; do not run it.
# shellcheck shell=bash
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$HACK_DIR/.." && pwd)
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"

MEDIAFLOW_CACHE=${MEDIAFLOW_CACHE:-$HOME/.cache/mediaflow}
LOCAL_DIR=${MEDIAFLOW_LOCAL_DIR:-$REPO_DIR/.local}
LOG_DIR=$LOCAL_DIR/logs
STATE_DIR=$LOCAL_DIR/state
RUN_DIR=$LOCAL_DIR/run

KUBE_BIN=$MEDIAFLOW_CACHE/kubernetes-$KUBE_VERSION
ETCD_BIN=$MEDIAFLOW_CACHE/etcd-$ETCD_VERSION
COREDNS_BIN=$MEDIAFLOW_CACHE/coredns-$COREDNS_VERSION
HELM_BIN=$MEDIAFLOW_CACHE/helm-$HELM_VERSION
MINIO_BIN=$MEDIAFLOW_CACHE/minio-$MINIO_VERSION
CRICTL_BIN=$MEDIAFLOW_CACHE/crictl-$CRICTL_VERSION
KUBE_ROUTER_BIN=$MEDIAFLOW_CACHE/kube-router-$KUBE_ROUTER_VERSION
KWOK_BIN=$MEDIAFLOW_CACHE/kwok-$KWOK_VERSION
PROMETHEUS_BIN=$MEDIAFLOW_CACHE/prometheus-$PROMETHEUS_VERSION

log() { printf '\033[1m[%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '\033[31merror: %s\033[0m\n' "$*" >&2; exit 1; }

# Names of locally built images. Nothing is pulled: these exist only on this machine.
BASE_IMAGE_LOCAL=mediaflow.local/debian:bookworm
PAUSE_IMAGE=mediaflow.local/pause:1.0
MEDIAFLOW_IMAGE=${MEDIAFLOW_IMAGE:-mediaflow.local/mediaflow:dev}

# The local cluster: addresses that exist only on this machine.
NODE_NAME=mediaflow-node
POD_BRIDGE=mediaflow0
# A /16, so that pod addresses are not reused within a run. After a few hundred pods had
# wrapped a /24, a new pod once spent 48 s in connect timeouts to MinIO; the likely cause is
# the host's neighbour entry for a reused address still naming the deleted pod's MAC.
POD_CIDR=10.244.0.0/16
NODE_IP=10.244.0.1          # the bridge's address: pods reach host services here
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
CLUSTER_DNS_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443
MINIO_PORT=9000
MINIO_CONSOLE_PORT=9001
KUBE_ROUTER_HEALTH_PORT=20244
MINIO_BUCKET=${MINIO_BUCKET:-mediaflow}
# Sockets live under a short path: unix socket paths are limited to 108 bytes.
CONTAINERD_RUN=/run/mediaflow/containerd
CONTAINERD_SOCK=$CONTAINERD_RUN/containerd.sock

# No pipe into head: with pipefail, command -v could die of SIGPIPE (exit 141) now and then.
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker || true)}

# ensure_docker: use a running Docker engine, or start Debian's dockerd and remember its PID
# so that cluster-down stops it again.
ensure_docker() {
	[ -n "$DOCKER" ] || die "docker is not installed (hack/install-deps.sh installs docker.io)"
	"$DOCKER" info >/dev/null 2>&1 && return 0
	command -v dockerd >/dev/null || die "dockerd is not installed (hack/install-deps.sh installs docker.io)"
	mkdir -p "$LOG_DIR" "$RUN_DIR"
	log "starting dockerd (log: $LOG_DIR/dockerd.log)"
	setsid dockerd --pidfile "$RUN_DIR/dockerd.pid" >"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
	for _ in $(seq 60); do
		"$DOCKER" info >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	die "dockerd did not start; see $LOG_DIR/dockerd.log"
}

# alive PID: the process exists and is not a zombie waiting to be reaped.
# host_addresses: this machine's global IPv4 addresses as CIDRs, comma-separated (for YAML lists).
host_addresses() {
	ip -4 -o addr show scope global | awk '{split($4, a, "/"); printf "%s%s/32", sep, a[1]; sep = ", "}'
}

alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# stop_pidfile FILE [NAME]: stop the process whose PID we recorded, wait for it, remove FILE.
stop_pidfile() {
	local file=$1 name=${2:-$(basename "$1" .pid)} pid
	[ -f "$file" ] || return 0
	pid=$(cat "$file")
	if alive "$pid"; then
		log "stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 150); do alive "$pid" || break; sleep 0.1; done
		alive "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$file"
}
