#!/usr/bin/env bash
# Build the MinIO image the chart's bundled object storage runs locally
# (mediaflow.local/minio:<version>) from the MinIO binary hack/build-binaries.sh built, on the
# locally made Debian base, and import it into the local cluster's containerd when it runs.
# Nothing is pulled: no registry is reachable here. Prints the image name on stdout.
#   BASE_IMAGE   the Debian base (default: the locally made one; elsewhere debian:bookworm-slim)
#   IMAGE_LOAD_LOCAL=0   build only: do not import into the local cluster's containerd
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MINIO_IMAGE=${MINIO_IMAGE:-mediaflow.local/minio:$MINIO_VERSION}
BASE_IMAGE=${BASE_IMAGE:-$BASE_IMAGE_LOCAL}
mkdir -p "$LOG_DIR"
[ -x "$MINIO_BIN/minio" ] || bash "$HACK_DIR/build-binaries.sh" minio
if [ "$BASE_IMAGE" = "$BASE_IMAGE_LOCAL" ]; then
	bash "$HACK_DIR/base-image.sh"
else
	ensure_docker
fi
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
install -m 0755 "$MINIO_BIN/minio" "$context/minio"
cat >"$context/Dockerfile" <<DOCKERFILE
FROM $BASE_IMAGE
COPY minio /usr/local/bin/minio
# Numeric, so that Kubernetes can verify runAsNonRoot; /data is where the chart mounts storage.
RUN mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
ENV MINIO_BROWSER=off MINIO_UPDATE=off HOME=/tmp
WORKDIR /tmp
EXPOSE 9000
ENTRYPOINT ["/usr/local/bin/minio"]
CMD ["server", "/data", "--address", ":9000"]
DOCKERFILE
log "building $MINIO_IMAGE (log: $LOG_DIR/minio-image-build.log)"
"$DOCKER" build -t "$MINIO_IMAGE" "$context" >"$LOG_DIR/minio-image-build.log" 2>&1 ||
	{ tail -n 30 "$LOG_DIR/minio-image-build.log" >&2; die "MinIO image build failed"; }
if [ "${IMAGE_LOAD_LOCAL:-1}" = 1 ] && [ -S "$CONTAINERD_SOCK" ]; then
	bash "$HACK_DIR/load-image.sh" "$MINIO_IMAGE"
fi
echo "$MINIO_IMAGE"
