#!/usr/bin/env bash
# current-cluster.sh up|down: `make up CLUSTER=current` / `make down CLUSTER=current`.
#
# up: MediaFlow with its bundled MinIO in the cluster of the current kube-context (kind, k3d,
# a cloud cluster, ...), never starting or stopping a cluster: build the images with Docker,
# load them the way that cluster needs, `helm upgrade --install --wait`, then forward the API
# and the MinIO to 127.0.0.1 with `kubectl port-forward` in the background. Result URLs are
# signed for the forwarded MinIO address, so they open from this machine. Idempotent.
# down: stop the port-forwards; with UNINSTALL=1 also delete the release's MediaJobs, uninstall
# the release, and delete its namespace if `up` created it. The cluster itself is left alone.
#
# Settings (environment; the Makefile passes its variables of the same names):
#   RELEASE, NAMESPACE   default mediaflow, mediaflow
#   CONTEXT              kube-context (default: the current one), used for every command
#   IMAGE_LOAD           kind | k3d | registry | containerd | none (default: from the context:
#                        kind-* -> kind, k3d-* -> k3d, this repository's local cluster ->
#                        containerd, REGISTRY set -> registry, otherwise an error)
#   REGISTRY             host[:port]/path to push the images to (IMAGE_LOAD=registry)
#   IMAGE                the MediaFlow image to build (default mediaflow.local/mediaflow:dev)
#   BASE_IMAGE           its Debian base (default: the Dockerfile's, debian:bookworm-slim; the
#                        locally made mediaflow.local/debian:bookworm where it exists)
#   MINIO_IMAGE          use this MinIO image as is, pulled by the cluster (default: build the
#                        pinned MinIO with hack/minio-image.sh and load it like IMAGE)
#   BUILD=0              do not build: IMAGE (and the MinIO image) exist already (in Docker, to be
#                        loaded or pushed; with IMAGE_LOAD=none, where the cluster pulls them)
#   API_PORT, STORAGE_PORT   local ports of the port-forwards (default: the previous run's,
#                        else the first free from 8000 and 9000)
#   ENV_FILE             where MEDIAFLOW_API_URL and MINIO_* go (default .local/env, or
#                        .local/env-current when .local/env belongs to the local cluster)
#   DRY_RUN=1            print the plan (image loading, values, helm, port-forwards); change nothing
#   UNINSTALL=1          (down) also remove the release, its MediaJobs and the namespace up made
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=release-lib.sh
source "$HACK_DIR/release-lib.sh"

ACTION=${1:-}
RELEASE=${RELEASE:-mediaflow}
NAMESPACE=${NAMESPACE:-mediaflow}
DRY_RUN=${DRY_RUN:-0}
SLUG=$NAMESPACE-$RELEASE
STATE_FILE=$STATE_DIR/current-$SLUG.env
CREATED_LABEL=mediaflow.io/created-by
LOCAL_SERVER=https://$NODE_IP:$APISERVER_PORT

# run CMD...: run it, or print it under DRY_RUN=1.
run() {
	if [ "$DRY_RUN" = 1 ]; then
		{
			printf '+'
			printf ' %q' "$@"
			printf '\n'
		} >&2
	else
		"$@"
	fi
}

# image_load_mode CONTEXT SERVER: how images reach the cluster (IMAGE_LOAD, else guessed).
image_load_mode() {
	local context=$1 server=$2
	if [ -n "${IMAGE_LOAD:-}" ]; then
		case $IMAGE_LOAD in
		kind | k3d | registry | containerd | none) echo "$IMAGE_LOAD" ;;
		*) die "IMAGE_LOAD=$IMAGE_LOAD: use kind, k3d, registry, containerd or none" ;;
		esac
	elif [ -n "${REGISTRY:-}" ]; then
		echo registry
	elif [[ $context == kind-* ]]; then
		echo kind
	elif [[ $context == k3d-* ]]; then
		echo k3d
	elif [ "$server" = "$LOCAL_SERVER" ]; then
		echo containerd
	else
		die "cannot tell how to get images into the cluster of context '$context' ($server):
  set REGISTRY=host[:port]/path to push them to a registry the cluster pulls from,
  or IMAGE_LOAD=none if IMAGE is already where the cluster can pull it
  (kind-* and k3d-* contexts and this repository's local cluster are recognised)"
	fi
}

# free_port PREFERRED: PREFERRED or the first port above it nothing listens on at 127.0.0.1.
free_port() {
	python3 - "$1" <<'PY'
import socket, sys
start = int(sys.argv[1])
for port in range(start, start + 200):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
else:
    sys.exit(f"no free port in {start}-{start + 199}")
PY
}

port_free() { [ "$(free_port "$1")" = "$1" ]; }

# start_port_forward NAME SERVICE LOCAL_PORT REMOTE_PORT: `kubectl port-forward` in the
# background, restarted when it exits (it does whenever the pod behind it goes away).
start_port_forward() {
	local name=$1 service=$2 local_port=$3 remote_port=$4
	local pidfile=$RUN_DIR/port-forward-$SLUG-$name.pid logfile=$LOG_DIR/port-forward-$SLUG-$name.log
	local cmd=("${KUBECTL[@]}" -n "$NAMESPACE" port-forward --address 127.0.0.1 "$service" "$local_port:$remote_port")
	if [ "$DRY_RUN" = 1 ]; then
		run "${cmd[@]}"
		return
	fi
	stop_pidfile "$pidfile"
	log "port-forward $service -> 127.0.0.1:$local_port (log: $logfile)"
	# shellcheck disable=SC2016
	nohup bash -c '
		trap "kill \$child 2>/dev/null; wait \$child; exit 0" TERM
		while :; do
			"$@" &
			child=$!
			wait "$child"
			status=$?
			echo "[$(date +%T)] kubectl port-forward exited ($status); restarting"
			sleep 1
		done' port-forward "${cmd[@]}" >"$logfile" 2>&1 </dev/null &
	echo $! >"$pidfile"
}

stop_port_forwards() {
	local pidfile
	for pidfile in "$RUN_DIR"/port-forward-"$SLUG"-{api,minio}.pid; do
		stop_pidfile "$pidfile"
	done
}

# default_base_image: the locally made base where it exists (this machine: nothing can be
# pulled), else the Dockerfile's default.
default_base_image() {
	if [ "$MODE" = containerd ] || "$DOCKER" image inspect "$BASE_IMAGE_LOCAL" >/dev/null 2>&1; then
		echo "$BASE_IMAGE_LOCAL"
	else
		sed -n 's/^ARG BASE_IMAGE=//p' "$REPO_DIR/Dockerfile"
	fi
}

# load_image LOCAL_IMAGE: get it to the cluster; prints the reference the cluster pulls.
load_image() {
	local image=$1 target
	case $MODE in
	kind) run kind load docker-image "$image" --name "${CONTEXT#kind-}" >&2 ;;
	k3d) run k3d image import "$image" --cluster "${CONTEXT#k3d-}" >&2 ;;
	containerd) run bash "$HACK_DIR/load-image.sh" "$image" >&2 ;;
	registry)
		target=${REGISTRY%/}/${image##*/}
		run "$DOCKER" tag "$image" "$target" >&2
		run "$DOCKER" push "$target" >&2
		image=$target
		;;
	none) ;;
	esac
	echo "$image"
}

# dns_ip_blocks: the cluster DNS servers a NetworkPolicy podSelector cannot match, as CIDRs
# for worker.networkPolicy.dns.ipBlocks: kube-dns endpoints that are no pod (this repository's
# local cluster runs CoreDNS on the host) or a host-network pod (node IPs are outside every
# podSelector). Empty when every server is an ordinary pod, or the cluster has no kube-dns.
# Without this, workers resolve names only until the policy is enforced on them.
dns_ip_blocks() {
	local slices host_pods
	slices=$("${KUBECTL[@]}" --request-timeout=15s -n kube-system get endpointslices \
		-l kubernetes.io/service-name=kube-dns -o json 2>/dev/null) || return 0
	host_pods=$("${KUBECTL[@]}" --request-timeout=15s -n kube-system get pods \
		-o 'jsonpath={range .items[?(@.spec.hostNetwork==true)]}{.metadata.name}{" "}{end}' 2>/dev/null || true)
	python3 -c '
import ipaddress, json, sys
host_pods = set(sys.argv[1].split())
blocks = []
for piece in json.load(sys.stdin).get("items", []):
    for endpoint in piece.get("endpoints") or []:
        ref = endpoint.get("targetRef") or {}
        if ref.get("kind") == "Pod" and ref.get("name") not in host_pods:
            continue
        for address in endpoint.get("addresses") or []:
            block = str(ipaddress.ip_network(address))
            if block not in blocks:
                blocks.append(block)
print(", ".join(blocks))
' "$host_pods" <<<"$slices"
}

up() {
	command -v kubectl >/dev/null || die "kubectl is not on PATH"
	CONTEXT=${CONTEXT:-$(kubectl config current-context 2>/dev/null)} ||
		die "no current kube-context: point KUBECONFIG at your cluster or run kubectl config use-context NAME"
	[ -n "$CONTEXT" ] || die "no current kube-context"
	KUBECTL=(kubectl --context "$CONTEXT")
	HELM_CMD=("${HELM:-helm}" --kube-context "$CONTEXT")
	local server
	server=$("${KUBECTL[@]}" config view --minify -o 'jsonpath={.clusters[0].cluster.server}' 2>/dev/null) ||
		die "kube-context '$CONTEXT' does not exist"
	if [ "$DRY_RUN" != 1 ]; then
		"${KUBECTL[@]}" cluster-info --request-timeout=15s >/dev/null 2>&1 ||
			die "the cluster of kube-context '$CONTEXT' ($server) does not answer (kubectl cluster-info);
  make up CLUSTER=current uses your current kube-context: check KUBECONFIG and kubectl config use-context"
		command -v "${HELM_CMD[0]}" >/dev/null || die "helm is not on PATH (https://helm.sh/docs/intro/install/)"
	fi
	if [ "$DRY_RUN" != 1 ]; then
		# Never turn the local cluster's `make up` release (external storage) into this one.
		local mode
		mode=$("${HELM_CMD[@]}" get values "$RELEASE" -n "$NAMESPACE" -o json 2>/dev/null |
			python3 -c 'import json,sys; print(((json.load(sys.stdin) or {}).get("storage") or {}).get("mode", ""))' 2>/dev/null || true)
		[ "$mode" != external ] || die "release $RELEASE in $NAMESPACE uses external storage (it is not one of make up CLUSTER=current's): choose another RELEASE/NAMESPACE"
	fi
	MODE=$(image_load_mode "$CONTEXT" "$server")
	log "kube-context $CONTEXT ($server); images: $MODE"
	[ "$MODE" != registry ] || [ -n "${REGISTRY:-}" ] || die "IMAGE_LOAD=registry needs REGISTRY=host[:port]/path"
	[ "$MODE" != kind ] || [ "$DRY_RUN" = 1 ] || command -v kind >/dev/null || die "kind is not on PATH"
	[ "$MODE" != k3d ] || [ "$DRY_RUN" = 1 ] || command -v k3d >/dev/null || die "k3d is not on PATH"
	mkdir -p "$LOG_DIR" "$RUN_DIR" "$STATE_DIR"

	# The previous run's ports (its URLs stay valid); its port-forwards are restarted below.
	local prev_api='' prev_storage='' prev_env=''
	if [ -f "$STATE_FILE" ]; then
		prev_api=$(sed -n 's/^API_PORT=//p' "$STATE_FILE")
		prev_storage=$(sed -n 's/^STORAGE_PORT=//p' "$STATE_FILE")
		prev_env=$(sed -n 's/^ENV_FILE=//p' "$STATE_FILE")
	fi
	[ "$DRY_RUN" = 1 ] || stop_port_forwards
	local api_port=${API_PORT:-} storage_port=${STORAGE_PORT:-}
	if [ -n "$api_port" ]; then
		port_free "$api_port" || die "API_PORT $api_port is in use"
	elif [ -n "$prev_api" ] && port_free "$prev_api"; then
		api_port=$prev_api
	else
		api_port=$(free_port 8000)
	fi
	if [ -n "$storage_port" ]; then
		port_free "$storage_port" || die "STORAGE_PORT $storage_port is in use"
	elif [ -n "$prev_storage" ] && [ "$prev_storage" != "$api_port" ] && port_free "$prev_storage"; then
		storage_port=$prev_storage
	else
		storage_port=$(free_port 9000)
		[ "$storage_port" != "$api_port" ] || storage_port=$(free_port $((api_port + 1)))
	fi
	[ "$api_port" != "$storage_port" ] || die "API_PORT and STORAGE_PORT are both $api_port"
	local api_url=http://127.0.0.1:$api_port storage_url=http://127.0.0.1:$storage_port
	local env_file=${ENV_FILE:-$prev_env}
	if [ -z "$env_file" ]; then
		env_file=$LOCAL_DIR/env
		if [ -f "$env_file" ] && [[ $(head -n 1 "$env_file") != *current-cluster.sh* ]]; then
			env_file=$LOCAL_DIR/env-current # .local/env is the local cluster's
		fi
	fi

	# The images.
	local image=${IMAGE:-$MEDIAFLOW_IMAGE} minio_image=${MINIO_IMAGE:-} image_id='' pull=IfNotPresent
	local build=${BUILD:-1} base=${BASE_IMAGE:-}
	if [ "$DRY_RUN" != 1 ] && { [ "$build" = 1 ] || [ "$MODE" != none ]; }; then
		ensure_docker
	fi
	if [ "$build" = 1 ]; then
		base=${base:-$(default_base_image)}
		log "images: build on $base"
		run env MEDIAFLOW_IMAGE="$image" BASE_IMAGE="$base" IMAGE_LOAD_LOCAL=0 bash "$HACK_DIR/image.sh"
		[ -n "$minio_image" ] ||
			run env MINIO_IMAGE="mediaflow.local/minio:$MINIO_VERSION" BASE_IMAGE="$base" \
				IMAGE_LOAD_LOCAL=0 bash "$HACK_DIR/minio-image.sh" >/dev/null
	fi
	# MINIO_IMAGE is used as given; the built one goes where the MediaFlow image goes.
	[ -n "$minio_image" ] || minio_image=$(load_image "mediaflow.local/minio:$MINIO_VERSION")
	if [ "$DRY_RUN" != 1 ] && { [ "$build" = 1 ] || [ "$MODE" != none ]; }; then
		image_id=$("$DOCKER" image inspect --format '{{.Id}}' "$image") ||
			die "no image $image in Docker (BUILD=1 builds it)"
	fi
	image=$(load_image "$image")
	# A registry tag is pushed again on every build: make nodes check for a new one.
	[ "$MODE" != registry ] || pull=Always

	# The namespace: made (and labelled as ours) only when missing; a user's is left as it is.
	if [ "$DRY_RUN" = 1 ]; then
		echo "+ ${KUBECTL[*]} apply -f -   # Namespace $NAMESPACE if missing: Pod Security restricted, $CREATED_LABEL=make-up" >&2
	elif ! "${KUBECTL[@]}" get namespace "$NAMESPACE" >/dev/null 2>&1; then
		apply_restricted_namespace "$NAMESPACE" "$CREATED_LABEL=make-up"
	fi
	if [ "$DRY_RUN" = 1 ]; then run "${KUBECTL[@]}" apply --server-side --force-conflicts -f "$CHART/crds/"; else apply_crds; fi

	local values=$LOCAL_DIR/helm-values-current-$SLUG.yaml values_text annotations=''
	if [ -n "$image_id" ]; then
		annotations="# The image is rebuilt under the same tag: restart the pods when it changes.
podAnnotations:
  mediaflow.io/image-id: \"$image_id\""
	fi
	values_text=$(
		cat <<YAML
# Written by hack/current-cluster.sh (make up CLUSTER=current): release $RELEASE in
# namespace $NAMESPACE of kube-context $CONTEXT; images: $MODE.
image:
  repository: ${image%:*}
  tag: "${image##*:}"
  pullPolicy: $pull
$annotations
storage:
  mode: bundled
  # Result URLs are signed for the port-forward of the bundled MinIO on this machine.
  publicEndpoint: $storage_url
  bundled:
    image:
      repository: ${minio_image%:*}
      tag: "${minio_image##*:}"
      pullPolicy: $pull
tests:
  # publicEndpoint is this machine's 127.0.0.1, not reachable from the test pod.
  downloadResult: false
YAML
	)
	local dns_blocks=''
	[ "$DRY_RUN" = 1 ] || dns_blocks=$(dns_ip_blocks) || log "could not look up the cluster DNS endpoints"
	if [ -n "$dns_blocks" ]; then
		log "cluster DNS outside pods: $dns_blocks (worker NetworkPolicy)"
		values_text+="
worker:
  networkPolicy:
    # kube-system/kube-dns endpoints a podSelector cannot match (not pods, or host network).
    dns: {ipBlocks: [$dns_blocks]}"
	fi
	if [ "$DRY_RUN" = 1 ]; then
		printf '%s\n' "--- $values" "$values_text" "---"
		run "${HELM_CMD[@]}" upgrade --install "$RELEASE" "$CHART" -n "$NAMESPACE" --create-namespace \
			-f "$values" --wait --timeout 5m
		start_port_forward api "svc/<$RELEASE api service>" "$api_port" 8000
		start_port_forward minio "svc/<$RELEASE minio service>" "$storage_port" 9000
		echo "env file: $env_file (MEDIAFLOW_API_URL=$api_url, MINIO_ENDPOINT=$storage_url)"
		log "dry run: nothing was changed"
		return
	fi
	printf '%s\n' "$values_text" >"$values"
	helm_install "$RELEASE" "$NAMESPACE" "$values" "$LOG_DIR/helm-up-current-$SLUG.log"

	# The Services and Secret of the release (by label: names depend on fullnameOverride).
	local selector=app.kubernetes.io/instance=$RELEASE api_svc minio_svc minio_port
	api_svc=$("${KUBECTL[@]}" -n "$NAMESPACE" get svc -l "$selector,app.kubernetes.io/component=api" -o name)
	minio_svc=$("${KUBECTL[@]}" -n "$NAMESPACE" get svc -l "$selector,app.kubernetes.io/component=minio" -o name)
	[ -n "$api_svc" ] && [ -n "$minio_svc" ] || die "no API or MinIO Service of release $RELEASE in $NAMESPACE"
	minio_port=$("${KUBECTL[@]}" -n "$NAMESPACE" get "$minio_svc" -o 'jsonpath={.spec.ports[0].port}')
	{
		echo "CONTEXT=$CONTEXT"
		echo "API_PORT=$api_port"
		echo "STORAGE_PORT=$storage_port"
		echo "ENV_FILE=$env_file"
	} >"$STATE_FILE"
	start_port_forward api "$api_svc" "$api_port" "$("${KUBECTL[@]}" -n "$NAMESPACE" get "$api_svc" -o 'jsonpath={.spec.ports[0].port}')"
	start_port_forward minio "$minio_svc" "$storage_port" "$minio_port"
	wait_http "$api_url/api/v1/health" "the API (port-forward)" 60
	wait_http "$storage_url/minio/health/live" "MinIO (port-forward)" 60

	# MEDIAFLOW_API_URL and MINIO_* of this release, readable by its user only.
	local secret access_key secret_key bucket region
	secret=$("${KUBECTL[@]}" -n "$NAMESPACE" get deploy -l "$selector,app.kubernetes.io/component=minio" \
		-o 'jsonpath={.items[0].spec.template.spec.containers[0].env[?(@.name=="MINIO_ROOT_USER")].valueFrom.secretKeyRef.name}')
	access_key=$("${KUBECTL[@]}" -n "$NAMESPACE" get secret "$secret" -o 'jsonpath={.data.accessKey}' | base64 -d)
	secret_key=$("${KUBECTL[@]}" -n "$NAMESPACE" get secret "$secret" -o 'jsonpath={.data.secretKey}' | base64 -d)
	bucket=$("${HELM_CMD[@]}" get values "$RELEASE" -n "$NAMESPACE" --all -o json |
		python3 -c 'import json,sys; s=json.load(sys.stdin)["storage"]; print(s["bucket"], s["region"])')
	region=${bucket#* } bucket=${bucket%% *}
	mkdir -p "$(dirname "$env_file")"
	(
		umask 077
		cat >"$env_file" <<ENV
# Written by hack/current-cluster.sh (make up CLUSTER=current): release $RELEASE in namespace
# $NAMESPACE of kube-context $CONTEXT, through port-forwards that make down CLUSTER=current stops.
export MEDIAFLOW_API_URL=$api_url
export MEDIAFLOW_NAMESPACE=$NAMESPACE
export MINIO_ENDPOINT=$storage_url
export MINIO_INTERNAL_ENDPOINT=http://${minio_svc#*/}.$NAMESPACE.svc:$minio_port
export MINIO_ACCESS_KEY=$access_key
export MINIO_SECRET_KEY=$secret_key
export MINIO_BUCKET=$bucket
export MINIO_REGION=$region
ENV
	)
	print_release_usage "$RELEASE" "$NAMESPACE" "$api_url" "$storage_url (bundled MinIO), bucket $bucket" "$env_file"
}

down() {
	local context='' env_file=''
	if [ -f "$STATE_FILE" ]; then
		context=$(sed -n 's/^CONTEXT=//p' "$STATE_FILE")
		env_file=$(sed -n 's/^ENV_FILE=//p' "$STATE_FILE")
	fi
	stop_port_forwards
	if [ -n "$env_file" ] && [ -f "$env_file" ] && [[ $(head -n 1 "$env_file") == *current-cluster.sh* ]]; then
		rm -f "$env_file"
	fi
	if [ "${UNINSTALL:-0}" != 1 ]; then
		rm -f "$STATE_FILE"
		log "port-forwards of $RELEASE stopped; the release stays installed in $NAMESPACE (UNINSTALL=1 removes it)"
		return
	fi
	context=${CONTEXT:-${context:-$(kubectl config current-context)}}
	KUBECTL=(kubectl --context "$context")
	HELM_CMD=("${HELM:-helm}" --kube-context "$context")
	log "uninstalling $RELEASE from namespace $NAMESPACE (kube-context $context)"
	# MediaJobs first, while the operator runs: its finalizer deletes their Jobs and results.
	if "${KUBECTL[@]}" get crd mediajobs.mediaflow.io >/dev/null 2>&1; then
		"${KUBECTL[@]}" -n "$NAMESPACE" delete mediajobs --all --timeout=120s >/dev/null ||
			log "MediaJobs of $NAMESPACE not all deleted"
	fi
	"${HELM_CMD[@]}" uninstall "$RELEASE" -n "$NAMESPACE" --ignore-not-found --wait --timeout 3m
	local created
	created=$("${KUBECTL[@]}" get namespace "$NAMESPACE" -o "jsonpath={.metadata.labels.${CREATED_LABEL//./\\.}}" 2>/dev/null || true)
	if [ "$created" = make-up ]; then
		log "deleting namespace $NAMESPACE (made by make up CLUSTER=current) and its users' $NAMESPACE-users"
		"${KUBECTL[@]}" delete namespace "$NAMESPACE" --wait=false >/dev/null
		# The chart keeps the users' namespace on uninstall (helm.sh/resource-policy: keep).
		"${KUBECTL[@]}" delete namespace "$NAMESPACE-users" --ignore-not-found --wait=false >/dev/null
	fi
	rm -f "$STATE_FILE" "$LOCAL_DIR/helm-values-current-$SLUG.yaml"
}

case $ACTION in
up) up ;;
down) down ;;
*) die "usage: $0 up|down" ;;
esac
