#!/usr/bin/env bash
# The local Prometheus: `hack/prometheus.sh up|down|config`. cluster-up.sh runs `up` once the
# cluster is ready, cluster-down.sh runs `down`; both are idempotent and touch nothing else.
#
#   up      build it if needed (hack/build-binaries.sh prometheus), give it a client
#           certificate and read-only RBAC of its own, write its configuration, start it
#           (PID in .local/run/prometheus.pid, log in .local/logs/prometheus.log, data in
#           .local/state/prometheus/data), wait until it is ready and add PROMETHEUS_URL to
#           .local/env. A running one whose configuration changed is reloaded, not restarted.
#   down    stop it by its PID file (data is kept).
#   config  print the configuration it would run with.
#
# Processes run on this machine (a test's own operator or API) are scraped too when a file
# `*.json` in $PROMETHEUS_TARGETS_DIR (.local/state/prometheus/targets, in .local/env) lists
# them, in Prometheus' file_sd format: [{"targets": ["127.0.0.1:PORT"], "labels": {"job": ...}}].
# Name their job something else than the release's (e.g. mediaflow-operator-test), or the
# release's alerts would count them.
#
# It scrapes every 5 s: the kube-apiserver's /metrics (job kube-apiserver) with its own client
# certificate, and the pods that carry `prometheus.io/scrape: "true"` and the chart's labels,
# found through the Kubernetes API (role pod) and relabelled to job mediaflow-operator or
# mediaflow-api (from app.kubernetes.io/component). This machine is the node, so pod
# addresses are reachable from here. It evaluates the chart's alert rules
# (charts/mediaflow/files/prometheus/alerts.yaml); there is no Alertmanager: alerts are read
# from its API (/api/v1/alerts, /api/v1/rules). Only the HTTP API and /metrics are served: the
# web UI's assets are not part of the Go module build.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=pki.sh
source "$HACK_DIR/pki.sh"

PROMETHEUS_PORT=${MEDIAFLOW_PROMETHEUS_PORT:-9090}
PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
PROMETHEUS_DIR=$STATE_DIR/prometheus
PROMETHEUS_CONFIG=$PROMETHEUS_DIR/prometheus.yml
PROMETHEUS_PIDFILE=$RUN_DIR/prometheus.pid
PROMETHEUS_TARGETS_DIR=$PROMETHEUS_DIR/targets
ALERT_RULES=$REPO_DIR/charts/mediaflow/files/prometheus/alerts.yaml

kubectl() { "$KUBE_BIN/kubectl" --kubeconfig "$PKI_DIR/admin.kubeconfig" "$@"; }

running() { [ -f "$PROMETHEUS_PIDFILE" ] && alive "$(cat "$PROMETHEUS_PIDFILE")"; }

print_config() {
	cat <<YAML
# Written by hack/prometheus.sh (do not edit: it is rewritten on every \`make up\`).
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
rule_files:
- $ALERT_RULES
scrape_configs:
- job_name: prometheus
  static_configs:
  - targets: [127.0.0.1:$PROMETHEUS_PORT]
- job_name: kube-apiserver
  scheme: https
  tls_config:
    ca_file: $PKI_DIR/ca.crt
    cert_file: $PKI_DIR/prometheus.crt
    key_file: $PKI_DIR/prometheus.key
  static_configs:
  - targets: [$NODE_IP:$APISERVER_PORT]
# The release's operator and API pods (any release, any namespace): the chart's
# prometheus.io/* annotations say where their /metrics is.
- job_name: mediaflow
  kubernetes_sd_configs:
  - role: pod
    kubeconfig_file: $PKI_DIR/prometheus.kubeconfig
  relabel_configs:
  - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
    regex: "true"
    action: keep
  - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_part_of, __meta_kubernetes_pod_label_app_kubernetes_io_component]
    regex: mediaflow;(operator|api)
    action: keep
  - source_labels: [__meta_kubernetes_pod_phase]
    regex: Pending|Running
    action: keep
  # One target per pod: role pod makes one per container port (and per port-less container);
  # they all become the same address below and Prometheus keeps one of identical targets.
  - source_labels: [__meta_kubernetes_pod_container_init]
    regex: "true"
    action: drop
  - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
    regex: (.+)
    target_label: __metrics_path__
  - source_labels: [__meta_kubernetes_pod_ip, __meta_kubernetes_pod_annotation_prometheus_io_port]
    regex: (.+);(\\d+)
    replacement: \$1:\$2
    target_label: __address__
  - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
    regex: (.+)
    replacement: mediaflow-\$1
    target_label: job
  # Not \`namespace\` and \`pod\`: the operator's series have a \`namespace\` label of their own
  # (the MediaJob's), which a target label of that name would rename to exported_namespace.
  - source_labels: [__meta_kubernetes_namespace]
    target_label: kubernetes_namespace
  - source_labels: [__meta_kubernetes_pod_name]
    target_label: kubernetes_pod
  - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_instance]
    target_label: release
# Processes on this machine that registered themselves (a file per process).
- job_name: local-processes
  file_sd_configs:
  - files: [$PROMETHEUS_TARGETS_DIR/*.json]
    refresh_interval: 5s
YAML
}

# Its identity: a client certificate (CN system:prometheus) allowed to list and watch pods
# and to read /metrics, nothing else.
identity() {
	client_cert prometheus system:prometheus
	write_kubeconfig "$PKI_DIR/prometheus.kubeconfig" prometheus
	kubectl apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:prometheus"}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- nonResourceURLs: [/metrics]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:prometheus"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:prometheus"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:prometheus"}]
YAML
}

ready() { curl -fsS "$PROMETHEUS_URL/-/ready" >/dev/null 2>&1; }

# PROMETHEUS_URL in .local/env, after what cluster-up and helm-up wrote there.
write_env() {
	sed -i '/^export PROMETHEUS_URL=/d; /^export PROMETHEUS_TARGETS_DIR=/d; /^# The local Prometheus (hack\/prometheus.sh)/d' "$LOCAL_DIR/env"
	cat >>"$LOCAL_DIR/env" <<ENV
# The local Prometheus (hack/prometheus.sh): its HTTP API, from this machine, and where local
# processes register to be scraped (file_sd JSON files).
export PROMETHEUS_URL=$PROMETHEUS_URL
export PROMETHEUS_TARGETS_DIR=$PROMETHEUS_TARGETS_DIR
ENV
}

up() {
	[ -f "$LOCAL_DIR/env" ] && [ -f "$PKI_DIR/admin.kubeconfig" ] || die "no cluster: run make cluster-up first"
	bash "$HACK_DIR/build-binaries.sh" prometheus
	mkdir -p "$PROMETHEUS_DIR/data" "$PROMETHEUS_TARGETS_DIR" "$LOG_DIR" "$RUN_DIR"
	identity
	local tmp; tmp=$(mktemp "$PROMETHEUS_CONFIG.XXXXXX")
	print_config >"$tmp"
	"$PROMETHEUS_BIN/promtool" check config --syntax-only "$tmp" >/dev/null || die "invalid Prometheus configuration: $tmp"
	"$PROMETHEUS_BIN/promtool" check rules "$ALERT_RULES" >/dev/null || die "invalid alert rules: $ALERT_RULES"
	local changed=1
	if cmp -s "$tmp" "$PROMETHEUS_CONFIG"; then changed=0; rm -f "$tmp"; else mv "$tmp" "$PROMETHEUS_CONFIG"; fi
	if running; then
		# A new configuration (or rules edited since): reload, keeping the data and targets.
		if [ "$changed" = 1 ] || [ "$ALERT_RULES" -nt "$PROMETHEUS_PIDFILE" ]; then
			log "reloading Prometheus"
			curl -fsS -X POST "$PROMETHEUS_URL/-/reload" >/dev/null || die "Prometheus refused its new configuration (log: $LOG_DIR/prometheus.log)"
			touch "$PROMETHEUS_PIDFILE"
		fi
	else
		log "starting Prometheus at $PROMETHEUS_URL (log: $LOG_DIR/prometheus.log)"
		setsid "$PROMETHEUS_BIN/prometheus" --config.file "$PROMETHEUS_CONFIG" \
			--storage.tsdb.path "$PROMETHEUS_DIR/data" --storage.tsdb.retention.time 7d \
			--web.listen-address "127.0.0.1:$PROMETHEUS_PORT" --web.enable-lifecycle \
			--log.level warn >>"$LOG_DIR/prometheus.log" 2>&1 </dev/null &
		echo $! >"$PROMETHEUS_PIDFILE"
	fi
	for _ in $(seq 120); do
		ready && break
		running || { tail -n 20 "$LOG_DIR/prometheus.log" >&2; die "Prometheus exited (log: $LOG_DIR/prometheus.log)"; }
		sleep 0.5
	done
	ready || die "Prometheus did not become ready within 60s (log: $LOG_DIR/prometheus.log)"
	write_env
}

case ${1:-} in
	up) up ;;
	down) stop_pidfile "$PROMETHEUS_PIDFILE" prometheus ;;
	config) print_config ;;
	*) die "usage: hack/prometheus.sh up|down|config" ;;
esac
