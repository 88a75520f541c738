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
CHART=$REPO_DIR/charts/mediaflow

ensure_docker
image_id=$("$DOCKER" image inspect --format '{{.Id}}' "$MEDIAFLOW_IMAGE") ||
	die "no image $MEDIAFLOW_IMAGE: run make image"

log "namespace $NAMESPACE (Pod Security: restricted)"
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $NAMESPACE
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
YAML

# The credentials of the environment's MinIO, from a file (never on a command line).
creds=$(mktemp)
trap 'rm -f "$creds"' EXIT
chmod 600 "$creds"
printf 'accessKey=%s\nsecretKey=%s\n' "$MINIO_ACCESS_KEY" "$MINIO_SECRET_KEY" >"$creds"
kubectl -n "$NAMESPACE" create secret generic "$STORAGE_SECRET" --from-env-file="$creds" \
	--dry-run=client -o yaml | kubectl apply -f - >/dev/null

# Helm installs CRDs only on the first install; keep the cluster's CRD as the chart has it.
kubectl apply --server-side --force-conflicts -f "$CHART/crds/" >/dev/null

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
YAML

log "helm upgrade --install $RELEASE (namespace $NAMESPACE; log: $LOG_DIR/helm-up.log)"
helm upgrade --install "$RELEASE" "$CHART" -n "$NAMESPACE" --create-namespace -f "$values" \
	--wait --timeout 5m >"$LOG_DIR/helm-up.log" 2>&1 || {
	tail -n 30 "$LOG_DIR/helm-up.log" >&2
	kubectl -n "$NAMESPACE" get pods >&2 || true
	die "helm upgrade --install failed"
}

for _ in $(seq 60); do
	curl -fsS -o /dev/null "$API_URL/api/v1/health" && break
	sleep 1
done
curl -fsS -o /dev/null "$API_URL/api/v1/health" || die "the API does not answer at $API_URL"

# cluster-up rewrites .local/env on every start; (re)add the API URL after it.
sed -i '/^export MEDIAFLOW_API_URL=/d; /^# The Helm release (hack\/helm-up.sh)/d' "$LOCAL_DIR/env"
cat >>"$LOCAL_DIR/env" <<ENV
# The Helm release (hack/helm-up.sh): its API, from this machine.
export MEDIAFLOW_API_URL=$API_URL
ENV

cat <<EOF

MediaFlow is running: release $RELEASE in namespace $NAMESPACE.
  API:      $API_URL   (OpenAPI: $API_URL/docs)
  storage:  $STORAGE_ENDPOINT, bucket $MINIO_BUCKET (MINIO_* in .local/env)

  source .local/env
  curl -s \$MEDIAFLOW_API_URL/api/v1/health
  curl -s -X POST \$MEDIAFLOW_API_URL/api/v1/auth/register -H 'Content-Type: application/json' \\
    -d '{"email": "me@example.com", "password": "a-long-passphrase"}'
  TOKEN=\$(curl -s -X POST \$MEDIAFLOW_API_URL/api/v1/auth/login -d username=me@example.com \\
    -d password=a-long-passphrase | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -X POST \$MEDIAFLOW_API_URL/api/v1/image/convert/webp -H "Authorization: Bearer \$TOKEN" -F file=@photo.jpg
  curl -s \$MEDIAFLOW_API_URL/api/v1/jobs -H "Authorization: Bearer \$TOKEN"   # status, result_url
  kubectl -n $NAMESPACE get mj

EOF
kubectl -n "$NAMESPACE" get mj
