#!/usr/bin/env bash
# Stop the local cluster and MinIO. Idempotent. Leaves no processes, mounts, network
# interfaces or iptables rules of ours behind; keeps state (etcd data, certificates, images,
# MinIO data) in .local/state so the next cluster-up is quick. `make clean` removes that too.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ "$(id -u)" = 0 ] || die "needs root"

bash "$HACK_DIR/prometheus.sh" down
# kube-router goes first so that it does not bring back the rules removed below; the kubelet
# next so that it does not restart the pods removed below.
for name in kube-router kubelet kube-proxy coredns kube-scheduler kube-controller-manager kube-apiserver etcd minio; do
	stop_pidfile "$RUN_DIR/$name.pid"
done
[ -x "$KUBE_BIN/kube-proxy" ] && "$KUBE_BIN/kube-proxy" --cleanup >>"$LOG_DIR/kube-proxy.log" 2>&1 || true

if [ -S "$CONTAINERD_SOCK" ] && [ -f "$RUN_DIR/containerd.pid" ] && alive "$(cat "$RUN_DIR/containerd.pid")"; then
	# Through the CRI, so that CNI tears down each pod's network namespace and veth.
	log "removing pod sandboxes"
	"$CRICTL_BIN/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 30s rmp --all --force \
		>>"$LOG_DIR/cluster-down.log" 2>&1 || true
fi
stop_pidfile "$RUN_DIR/containerd.pid"

# Shims outlive containerd by design. Ours are the ones started with our socket address.
for dir in /proc/[0-9]*; do
	if tr '\0' ' ' <"$dir/cmdline" 2>/dev/null | grep -qF -- "-address $CONTAINERD_SOCK "; then
		log "stopping leftover shim ${dir#/proc/}"
		kill -KILL "${dir#/proc/}" 2>/dev/null || true
	fi
done

# Mounts made by the kubelet (volumes) and containerd (rootfs, shm), deepest first.
{ findmnt -rn -o TARGET | grep -E "^($STATE_DIR|/run/mediaflow)(/|$)" || true; } | sort -r | while read -r target; do
	umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
done
rm -rf /run/mediaflow

if ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
	log "deleting bridge $POD_BRIDGE"
	ip link delete "$POD_BRIDGE"
fi
# Our tagged rules, in every table they may be in.
for table in filter nat; do
	{ iptables -t "$table" -S 2>/dev/null | grep -F -- '--comment mediaflow-local' || true; } |
		sed 's/^-A /-D /' | while read -r rule; do eval "iptables -t $table $rule"; done
done

# kube-router's NetworkPolicy rules and address sets (its --cleanup-config leaves them in
# v2.1.0). Jumps from the built-in chains first, then its chains, then the ipsets they used.
kube_router_chains='^(KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-)'
{ iptables -t filter -S 2>/dev/null | grep -E -- "^-A (INPUT|FORWARD|OUTPUT) .*-j (KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-)" || true; } |
	sed 's/^-A /-D /' | while read -r rule; do eval "iptables -t filter $rule"; done
chains=$({ iptables -t filter -S 2>/dev/null || true; } | awk '$1 == "-N" {print $2}' | { grep -E "$kube_router_chains" || true; })
if [ -n "$chains" ]; then
	log "removing kube-router's iptables chains"
	for chain in $chains; do iptables -t filter -F "$chain"; done
	for chain in $chains; do iptables -t filter -X "$chain"; done
fi
# The kubelet's own chains (KUBE-FIREWALL drops non-loopback traffic to 127/8, the canaries
# detect flushes), in iptables and ip6tables: ours to remove once no kubelet runs here.
if ! pgrep -x kubelet >/dev/null; then
	for cmd in iptables ip6tables; do
		command -v "$cmd" >/dev/null || continue
		for jump in "INPUT -j KUBE-FIREWALL" "OUTPUT -j KUBE-FIREWALL"; do
			# shellcheck disable=SC2086 # the rule is words on purpose
			while "$cmd" -t filter -C ${jump} 2>/dev/null; do "$cmd" -t filter -D ${jump}; done
		done
		for table in filter nat mangle; do
			for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
				if "$cmd" -t "$table" -S "$chain" >/dev/null 2>&1; then
					"$cmd" -t "$table" -F "$chain"
					"$cmd" -t "$table" -X "$chain" 2>/dev/null || true
				fi
			done
		done
	done
fi
if command -v ipset >/dev/null; then
	for set in $({ ipset list -n 2>/dev/null || true; } | { grep -E '^(inet6:)?KUBE-(SRC|DST)-' || true; }); do
		ipset destroy "$set"
	done
fi

if [ -f "$RUN_DIR/dockerd.pid" ]; then
	# We started dockerd, so its bridge is ours to remove too (it makes it again on start).
	stop_pidfile "$RUN_DIR/dockerd.pid" dockerd
	ip link delete docker0 2>/dev/null || true
fi
log "cluster stopped"
