#!/usr/bin/env bash
# Start the local single-node Kubernetes cluster and MinIO. Idempotent: what already runs is
# left alone, so a second call returns in seconds.
#
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
#   kube-router (NetworkPolicy only), CoreDNS and MinIO run as host processes (logs in
#   .local/logs/, PIDs in .local/run/);
#   containerd (Debian's package) runs with a configuration and state of its own;
#   pods live on the bridge $POD_BRIDGE ($POD_CIDR), services in $SERVICE_CIDR;
#   Prometheus (hack/prometheus.sh) scrapes the API server and the release's pods.
# Every address used here exists only on this machine.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/pki.sh"

# running NAME: whether the process recorded in $RUN_DIR/NAME.pid is alive.
running() { [ -f "$RUN_DIR/$1.pid" ] && alive "$(cat "$RUN_DIR/$1.pid")"; }

export PATH="$KUBE_BIN:$HELM_BIN:$CRICTL_BIN:$PATH"
kubectl() { command kubectl --kubeconfig "$PKI_DIR/admin.kubeconfig" "$@"; }

# start NAME CMD...: start CMD in its own session unless it already runs; log to NAME.log.
start() {
	local name=$1; shift
	running "$name" && return 0
	log "starting $name"
	setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
	echo $! >"$RUN_DIR/$name.pid"
}

# write_file PATH: write stdin to PATH unless PATH already holds exactly that. Components
# watch their configuration (kube-proxy exits when its file is rewritten), so a second
# cluster-up must not touch an unchanged file.
write_file() {
	local tmp; tmp=$(mktemp "$1.XXXXXX")
	cat >"$tmp"
	if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

# wait_for WHAT SECONDS CMD...: retry CMD until it succeeds; on timeout, show the log.
wait_for() {
	local what=$1 seconds=$2; shift 2
	for _ in $(seq $((seconds * 2))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	[ -f "$LOG_DIR/$what.log" ] && tail -n 40 "$LOG_DIR/$what.log" >&2
	die "$what did not become ready within ${seconds}s (log: $LOG_DIR/$what.log)"
}

host_network() {
	modprobe br_netfilter 2>/dev/null || true
	modprobe overlay 2>/dev/null || true
	[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || die "br_netfilter is not available in this kernel"
	sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
	if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
		log "creating bridge $POD_BRIDGE ($NODE_IP on $POD_CIDR)"
		ip link add "$POD_BRIDGE" type bridge
	fi
	ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$POD_BRIDGE"
	ip link set "$POD_BRIDGE" up
	# Docker sets the FORWARD policy to DROP; let pod traffic through. MinIO listens on all
	# addresses so pods can reach it at $NODE_IP: refuse its port from anywhere else.
	ensure_rule filter FORWARD -i "$POD_BRIDGE" -j ACCEPT
	ensure_rule filter FORWARD -o "$POD_BRIDGE" -j ACCEPT
	ensure_rule filter INPUT -p tcp --dport "$MINIO_PORT" ! -s "$POD_CIDR" -m addrtype ! --src-type LOCAL -j DROP
	# kube-router's health endpoint listens on all addresses (it has no flag for one): this
	# machine only.
	ensure_rule filter INPUT -p tcp --dport "$KUBE_ROUTER_HEALTH_PORT" -m addrtype ! --src-type LOCAL -j DROP
}

# ensure_rule TABLE CHAIN RULE...: insert RULE (tagged, so cluster-down can find it) once.
ensure_rule() {
	local table=$1 chain=$2; shift 2
	iptables -t "$table" -C "$chain" "$@" -m comment --comment mediaflow-local 2>/dev/null ||
		iptables -t "$table" -I "$chain" 1 "$@" -m comment --comment mediaflow-local
}

start_containerd() {
	mkdir -p "$STATE_DIR/containerd" "$STATE_DIR/cni/net.d" "$STATE_DIR/cni/ipam"
	write_file "$STATE_DIR/containerd.toml" <<TOML
version = 2
root = "$STATE_DIR/containerd"
state = "$CONTAINERD_RUN/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  enable_unprivileged_ports = false
  # Root on this VM lacks CAP_SYS_RESOURCE, so no process may lower its oom_score_adj below
  # containerd's own; without this every sandbox fails ("oom_score_adj: Permission denied").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni/net.d"
TOML
	# No masquerading: pod traffic has nowhere to go but this machine.
	write_file "$STATE_DIR/cni/net.d/10-mediaflow.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "mediaflow",
  "plugins": [
    {
      "type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$STATE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
	start containerd containerd --config "$STATE_DIR/containerd.toml"
	wait_for containerd 30 ctr -a "$CONTAINERD_SOCK" version
}

# The sandbox image every pod needs, built from hack/tools/pause (no registry to pull from).
load_pause_image() {
	ensure_docker
	if ! "$DOCKER" image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
		local dir; dir=$(mktemp -d)
		(cd "$HACK_DIR/tools/pause" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/pause" .)
		tar -C "$dir" -c pause | "$DOCKER" import --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' - "$PAUSE_IMAGE" >/dev/null
		rm -rf "$dir"
	fi
	bash "$HACK_DIR/load-image.sh" "$PAUSE_IMAGE"
}

start_etcd() {
	mkdir -p "$STATE_DIR/etcd" && chmod 700 "$STATE_DIR/etcd"
	start etcd "$ETCD_BIN/etcd" --name mediaflow-local --data-dir "$STATE_DIR/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster mediaflow-local=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
		--quota-backend-bytes 2147483648 --log-level warn
	wait_for etcd 30 curl -fsS http://127.0.0.1:2381/health
}

start_control_plane() {
	start kube-apiserver "$KUBE_BIN/kube-apiserver" \
		--etcd-servers http://127.0.0.1:2379 \
		--bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--client-ca-file "$PKI_DIR/ca.crt" \
		--tls-cert-file "$PKI_DIR/apiserver.crt" --tls-private-key-file "$PKI_DIR/apiserver.key" \
		--kubelet-client-certificate "$PKI_DIR/apiserver-kubelet-client.crt" \
		--kubelet-client-key "$PKI_DIR/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority "$PKI_DIR/ca.crt" \
		--kubelet-preferred-address-types InternalIP \
		--service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
		--service-account-key-file "$PKI_DIR/sa.pub" --service-account-signing-key-file "$PKI_DIR/sa.key" \
		--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
		--profiling=false
	wait_for kube-apiserver 90 kubectl get --raw /readyz
	start kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
		--kubeconfig "$PKI_DIR/controller-manager.kubeconfig" \
		--authentication-kubeconfig "$PKI_DIR/controller-manager.kubeconfig" \
		--authorization-kubeconfig "$PKI_DIR/controller-manager.kubeconfig" \
		--bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
		--service-account-private-key-file "$PKI_DIR/sa.key" --root-ca-file "$PKI_DIR/ca.crt" \
		--cluster-signing-cert-file "$PKI_DIR/ca.crt" --cluster-signing-key-file "$PKI_DIR/ca.key" \
		--service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
	start kube-scheduler "$KUBE_BIN/kube-scheduler" \
		--kubeconfig "$PKI_DIR/scheduler.kubeconfig" \
		--authentication-kubeconfig "$PKI_DIR/scheduler.kubeconfig" \
		--authorization-kubeconfig "$PKI_DIR/scheduler.kubeconfig" \
		--bind-address 127.0.0.1 --leader-elect=false --profiling=false
}

start_node() {
	mkdir -p "$STATE_DIR/kubelet"
	write_file "$STATE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI_DIR/kubelet-serving.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet-serving.key
# This VM has cgroup v1 and no systemd as init.
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
clusterDNS: [$CLUSTER_DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
# Pods get no resolver of the host's: names resolve inside the cluster only.
resolvConf: ""
podCIDR: $POD_CIDR
failSwapOn: false
# Images cannot be pulled again here, so never garbage-collect them; evict only when truly full.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
serializeImagePulls: false
YAML
	start kubelet "$KUBE_BIN/kubelet" --config "$STATE_DIR/kubelet.yaml" \
		--kubeconfig "$PKI_DIR/kubelet.kubeconfig" --root-dir "$STATE_DIR/kubelet" \
		--hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
	write_file "$STATE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PKI_DIR/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
conntrack: {maxPerCore: 0}
# The default (-999) needs CAP_SYS_RESOURCE, which root lacks on this VM.
oomScoreAdj: 0
YAML
	start kube-proxy "$KUBE_BIN/kube-proxy" --config "$STATE_DIR/kube-proxy.yaml"
}

# CoreDNS runs on the host and answers for $CLUSTER_DOMAIN only (nothing is forwarded off this
# machine); the kube-dns Service points at it through a hand-made EndpointSlice.
start_coredns() {
	kubectl apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns"}]
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $CLUSTER_DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: mediaflow-local
addressType: IPv4
endpoints:
- addresses: ["$NODE_IP"]
  conditions: {ready: true}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
YAML
	write_file "$STATE_DIR/Corefile" <<COREFILE
$CLUSTER_DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $PKI_DIR/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
    loadbalance
}
COREFILE
	start coredns "$COREDNS_BIN/coredns" -conf "$STATE_DIR/Corefile"
	wait_for coredns 30 curl -fsS http://127.0.0.1:18181/ready
}

# MinIO for tests: generated credentials (kept with its data), a bucket, reachable from the
# host at 127.0.0.1 and from pods at $NODE_IP.
start_minio() {
	local creds=$STATE_DIR/minio/credentials
	mkdir -p "$STATE_DIR/minio/data" && chmod 700 "$STATE_DIR/minio"
	if [ ! -f "$creds" ]; then
		(umask 077; printf 'MINIO_ROOT_USER=mf%s\nMINIO_ROOT_PASSWORD=%s\n' \
			"$(openssl rand -hex 8)" "$(openssl rand -hex 24)" >"$creds")
	fi
	# shellcheck source=/dev/null
	source "$creds"
	export MINIO_ROOT_USER MINIO_ROOT_PASSWORD
	MINIO_BROWSER=off MINIO_UPDATE=off start minio "$MINIO_BIN/minio" server "$STATE_DIR/minio/data" \
		--address ":$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" --quiet
	wait_for minio 60 curl -fsS "http://127.0.0.1:$MINIO_PORT/minio/health/ready"
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD" "http://127.0.0.1:$MINIO_PORT/$MINIO_BUCKET")
	case $code in 200 | 409) ;; *) die "creating bucket $MINIO_BUCKET failed with HTTP $code" ;; esac
}

wait_for_node() {
	wait_for kubelet 60 curl -fsS http://127.0.0.1:10248/healthz
	wait_for kube-proxy 60 curl -fsS http://127.0.0.1:10256/healthz
	wait_for kubelet 120 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
	# Pods can be created once the service account controller made the default account.
	wait_for kube-controller-manager 60 kubectl -n default get serviceaccount default
}

# kube-router's network policy controller, and nothing else of kube-router: it enforces
# NetworkPolicy with iptables (chains KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*) and ipsets
# (KUBE-SRC-*, KUBE-DST-*). Pod traffic crosses the host's iptables even between pods on the
# bridge (net.bridge.bridge-nf-call-iptables=1, set in host_network), so the plain bridge CNI
# is enough. It starts once the node is registered (it reads its address from the Node).
start_kube_router() {
	command -v ipset >/dev/null || die "ipset is not installed (hack/install-deps.sh installs it)"
	client_cert kube-router system:kube-router
	write_kubeconfig "$PKI_DIR/kube-router.kubeconfig" kube-router
	kubectl apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:kube-router"}
rules:
# Its informers: policies and what they select, plus the ones kube-router starts for all of
# its controllers (it waits for every cache to sync, even those only its proxy would use).
- apiGroups: [""]
  resources: [pods, namespaces, nodes, services, endpoints]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:kube-router"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:kube-router"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:kube-router"}]
YAML
	start kube-router "$KUBE_ROUTER_BIN/kube-router" \
		--kubeconfig "$PKI_DIR/kube-router.kubeconfig" --hostname-override "$NODE_NAME" \
		--run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
		--enable-cni=false --enable-pod-egress=false \
		--service-cluster-ip-range "$SERVICE_CIDR" --iptables-sync-period 1m \
		--health-port "$KUBE_ROUTER_HEALTH_PORT" --metrics-port 0
	wait_for kube-router 60 curl -fsS "http://127.0.0.1:$KUBE_ROUTER_HEALTH_PORT/healthz"
}

write_env() {
	cp "$PKI_DIR/admin.kubeconfig" "$LOCAL_DIR/kubeconfig"
	# shellcheck source=/dev/null
	source "$STATE_DIR/minio/credentials"
	cat >"$LOCAL_DIR/env.tmp" <<ENV
# Written by hack/cluster-up.sh: \`source .local/env\` in any shell.
export KUBECONFIG=$LOCAL_DIR/kubeconfig
export PATH=$KUBE_BIN:$HELM_BIN:$CRICTL_BIN:\$PATH
export CONTAINER_RUNTIME_ENDPOINT=unix://$CONTAINERD_SOCK
export MINIO_ENDPOINT=http://127.0.0.1:$MINIO_PORT
export MINIO_INTERNAL_ENDPOINT=http://$NODE_IP:$MINIO_PORT
export MINIO_ACCESS_KEY=$MINIO_ROOT_USER
export MINIO_SECRET_KEY=$MINIO_ROOT_PASSWORD
export MINIO_BUCKET=$MINIO_BUCKET
export MINIO_REGION=us-east-1
export MEDIAFLOW_IMAGE=$MEDIAFLOW_IMAGE
# The operator's settings when run from this machine (hack/run-operator.sh, the tests).
export MEDIAFLOW_S3_ENDPOINT=http://$NODE_IP:$MINIO_PORT
export MEDIAFLOW_S3_PUBLIC_ENDPOINT=http://127.0.0.1:$MINIO_PORT
export MEDIAFLOW_S3_ACCESS_KEY=$MINIO_ROOT_USER
export MEDIAFLOW_S3_SECRET_KEY=$MINIO_ROOT_PASSWORD
export MEDIAFLOW_S3_BUCKET=$MINIO_BUCKET
ENV
	chmod 600 "$LOCAL_DIR/env.tmp" && mv "$LOCAL_DIR/env.tmp" "$LOCAL_DIR/env"
}

main() {
	[ "$(id -u)" = 0 ] || die "the local cluster needs root (kubelet, containerd, iptables)"
	# A containerd of ours that is gone (killed, machine restarted) may have left runtime state
	# and mounts behind; they would confuse the next one.
	if [ -d /run/mediaflow ] && ! running containerd; then
		findmnt -rn -o TARGET | grep -E '^/run/mediaflow/' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
		rm -rf /run/mediaflow
	fi
	mkdir -p "$LOG_DIR" "$STATE_DIR" "$RUN_DIR" "$CONTAINERD_RUN"

	bash "$HACK_DIR/build-binaries.sh"

	local started=$SECONDS
	make_pki
	host_network
	start_containerd
	load_pause_image
	start_etcd
	start_control_plane
	start_node
	start_coredns
	start_minio
	wait_for_node
	start_kube_router
	write_env
	# After write_env: it adds PROMETHEUS_URL to the fresh .local/env.
	bash "$HACK_DIR/prometheus.sh" up
	log "cluster ready in $((SECONDS - started))s: source $LOCAL_DIR/env; kubectl get nodes"
}

# Sourcing this file (to run single steps while debugging) defines the steps only.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; fi
