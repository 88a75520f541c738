# Steps shared by the scripts that install the Helm release: hack/helm-up.sh (this machine's
# local cluster) and hack/current-cluster.sh (`make up CLUSTER=current`, any kube-context).
# Source it after lib.sh; do not run it.
# shellcheck shell=bash

CHART=$REPO_DIR/charts/mediaflow
# The commands every step runs: current-cluster.sh pins them to one kube-context.
KUBECTL=(kubectl)
HELM_CMD=("${HELM:-helm}")

# apply_restricted_namespace NAMESPACE [LABEL=VALUE]: the namespace with Pod Security
# `restricted` enforced (kubectl apply: idempotent).
apply_restricted_namespace() {
	local namespace=$1 extra=${2:-} label=''
	[ -z "$extra" ] || label="    ${extra%%=*}: \"${extra#*=}\""
	log "namespace $namespace (Pod Security: restricted)"
	"${KUBECTL[@]}" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $namespace
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
$label
YAML
}

# apply_crds: Helm installs CRDs only on the first install; keep the cluster's CRD as the
# chart has it.
apply_crds() { "${KUBECTL[@]}" apply --server-side --force-conflicts -f "$CHART/crds/" >/dev/null; }

# helm_install RELEASE NAMESPACE VALUES LOGFILE: helm upgrade --install --wait, showing the
# end of the log and the namespace's pods when it fails.
helm_install() {
	local release=$1 namespace=$2 values=$3 logfile=$4
	log "helm upgrade --install $release (namespace $namespace; log: $logfile)"
	"${HELM_CMD[@]}" upgrade --install "$release" "$CHART" -n "$namespace" --create-namespace \
		-f "$values" --wait --timeout 5m >"$logfile" 2>&1 || {
		tail -n 30 "$logfile" >&2
		"${KUBECTL[@]}" -n "$namespace" get pods >&2 || true
		die "helm upgrade --install failed"
	}
}

# wait_http URL WHAT [SECONDS]: wait until URL answers 2xx.
wait_http() {
	local url=$1 what=$2 seconds=${3:-60}
	for _ in $(seq "$seconds"); do
		curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
		sleep 1
	done
	curl -fsS -o /dev/null "$url" || die "$what does not answer at $url"
}

# print_release_usage RELEASE NAMESPACE API_URL STORAGE ENV_FILE [PROMETHEUS_URL]: how to use
# the release, then its MediaJobs.
print_release_usage() {
	local release=$1 namespace=$2 api_url=$3 storage=$4 env_file=$5 prometheus_url=${6:-} env_name
	env_name=${env_file#"$REPO_DIR"/}
	cat <<EOF

MediaFlow is running: release $release in namespace $namespace.
  API:      $api_url   (OpenAPI: $api_url/docs)
  storage:  $storage (MINIO_* in $env_name)
${prometheus_url:+  metrics:  $prometheus_url   (Prometheus API; alerts: $prometheus_url/api/v1/alerts)
}
  source $env_name
  curl -s \$MEDIAFLOW_API_URL/api/v1/health
  curl -s -X POST \$MEDIAFLOW_API_URL/api/v1/auth/register -H 'Content-Type: application/json' \\
    -d '{"email": "me@example.com", "password": "a-long-passphrase"}'
  TOKEN=\$(curl -s -X POST \$MEDIAFLOW_API_URL/api/v1/auth/login -d username=me@example.com \\
    -d password=a-long-passphrase | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -X POST \$MEDIAFLOW_API_URL/api/v1/image/convert/webp -H "Authorization: Bearer \$TOKEN" -F file=@photo.jpg
  curl -s \$MEDIAFLOW_API_URL/api/v1/jobs -H "Authorization: Bearer \$TOKEN"   # status, result_url
  kubectl -n $namespace get mj

EOF
	"${KUBECTL[@]}" -n "$namespace" get mj
}
