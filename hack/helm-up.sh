#!/usr/bin/env bash
# Install (or upgrade) the MediaFlow Helm release into the local cluster and make it reachable
# from this machine. Run by `make up` after cluster-up, image and minio-image. Idempotent.
#
#   release `mediaflow` in namespace `mediaflow` (Pod Security `restricted` enforced);
#   object storage: the environment's MinIO (the host process cluster-up starts), as
#   `storage.mode: external`, so that one MinIO holds what tests, samples and the release
#   write and the MINIO_* variables of .local/env already point at it;
#   the API as a NodePort on the node address; MEDIAFLOW_API_URL appended to .local/env.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=release-lib.sh
source "$HACK_DIR/release-lib.sh"
[ -f "$LOCAL_DIR/env" ] || die "no $LOCAL_DIR/env: run make cluster-up first"
# shellcheck source=/dev/null
source "$LOCAL_DIR/env"

RELEASE=${MEDIAFLOW_RELEASE:-mediaflow}
NAMESPACE=${MEDIAFLOW_NAMESPACE:-mediaflow}
API_NODE_PORT=${MEDIAFLOW_API_NODE_PORT:-30080}
API_URL=http://$NODE_IP:$API_NODE_PORT
# Pods and this machine both reach the host MinIO at the bridge address, so URLs signed for it
# open everywhere (presigned URLs are bound to the host they were signed for).
STORAGE_ENDPOINT=http://$NODE_IP:$MINIO_PORT
STORAGE_SECRET=$RELEASE-s3

ensure_docker
image_id=$("$DOCKER" image inspect --format '{{.Id}}' "$MEDIAFLOW_IMAGE") ||
	die "no image $MEDIAFLOW_IMAGE: run make image"

apply_restricted_namespace "$NAMESPACE"

# The credentials of the environment's MinIO, from a file (never on a command line).
creds=$(mktemp)
trap 'rm -f "$creds"' EXIT
chmod 600 "$creds"
printf 'accessKey=%s\nsecretKey=%s\n' "$MINIO_ACCESS_KEY" "$MINIO_SECRET_KEY" >"$creds"
kubectl -n "$NAMESPACE" create secret generic "$STORAGE_SECRET" --from-env-file="$creds" \
	--dry-run=client -o yaml | kubectl apply -f - >/dev/null

apply_crds

mkdir -p "$LOCAL_DIR"
values=$LOCAL_DIR/helm-values.yaml
cat >"$values" <<YAML
# Written by hack/helm-up.sh: the local release's values.
image:
  repository: ${MEDIAFLOW_IMAGE%:*}
  tag: "${MEDIAFLOW_IMAGE##*:}"
  pullPolicy: IfNotPresent
# The image is rebuilt under the same tag: restart the pods when it changes.
podAnnotations:
  mediaflow.io/image-id: "$image_id"
api:
  service: {type: NodePort, nodePort: $API_NODE_PORT}
  # Every client of the local release (tests, benchmarks, you) comes from this machine's one
  # address: a per-address budget this large lets the login-flood e2e test reach the password
  # hashing gate. The per-address limit itself is proven against an API process of its own.
  authRateLimit: {burst: 1000, perMinute: 1000}
operator:
  webhooks:
    # Tests' webhook receivers listen on this machine at the bridge address (pods reach it);
    # every other private and special-purpose address stays refused.
    allowedNetworks: [$NODE_IP/32]
storage:
  mode: external
  bucket: $MINIO_BUCKET
  region: $MINIO_REGION
  publicEndpoint: $STORAGE_ENDPOINT
  external:
    endpoint: $STORAGE_ENDPOINT
    existingSecret: $STORAGE_SECRET
worker:
  networkPolicy:
    podCIDR: $POD_CIDR
    serviceCIDR: $SERVICE_CIDR
    # MinIO and CoreDNS run on this machine, at the bridge address.
    storageIpBlocks: [$NODE_IP/32]
    storagePorts: [$MINIO_PORT]
    dns: {ipBlocks: [$NODE_IP/32]}
    # This machine's own addresses: its services listen there too (MinIO, the kubelet...).
    extraExcept: [$(host_addresses)]
YAML

helm_install "$RELEASE" "$NAMESPACE" "$values" "$LOG_DIR/helm-up.log"
wait_http "$API_URL/api/v1/health" "the API"

# cluster-up rewrites .local/env on every start; (re)add the API URL after it.
sed -i '/^export MEDIAFLOW_API_URL=/d; /^# The Helm release (hack\/helm-up.sh)/d' "$LOCAL_DIR/env"
cat >>"$LOCAL_DIR/env" <<ENV
# The Helm release (hack/helm-up.sh): its API, from this machine.
export MEDIAFLOW_API_URL=$API_URL
ENV

print_release_usage "$RELEASE" "$NAMESPACE" "$API_URL" \
	"$STORAGE_ENDPOINT, bucket $MINIO_BUCKET" "$LOCAL_DIR/env" "${PROMETHEUS_URL:-}"
