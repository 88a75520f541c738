#!/usr/bin/env bash
# Build the MediaFlow image on the locally made Debian base and, when the local cluster's
# containerd is running, import it there (kubelet never pulls it: there is no registry).
#   BASE_IMAGE   the Debian bookworm base (default: the locally made one; elsewhere e.g.
#                debian:bookworm-slim, the Dockerfile's default)
#   IMAGE_LOAD_LOCAL=0   build only: do not import into the local cluster's containerd
#   BUILD_CONTEXT  the source tree to build (default: this repository; the upgrade test builds
#                  the previous release's image from its commit)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BASE_IMAGE=${BASE_IMAGE:-$BASE_IMAGE_LOCAL}
mkdir -p "$LOG_DIR"
if [ "$BASE_IMAGE" = "$BASE_IMAGE_LOCAL" ]; then
	bash "$HACK_DIR/base-image.sh"
else
	ensure_docker
fi
log "building $MEDIAFLOW_IMAGE (log: $LOG_DIR/image-build.log)"
# Trust, while building, the extra CAs this machine trusts (a TLS-intercepting proxy to PyPI).
extra_ca=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
"$DOCKER" build --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "EXTRA_CA_CERTS=$extra_ca" -t "$MEDIAFLOW_IMAGE" "${BUILD_CONTEXT:-$REPO_DIR}" \
	>"$LOG_DIR/image-build.log" 2>&1 || { tail -n 30 "$LOG_DIR/image-build.log" >&2; die "image build failed"; }
if [ "${IMAGE_LOAD_LOCAL:-1}" = 1 ] && [ -S "$CONTAINERD_SOCK" ]; then
	bash "$HACK_DIR/load-image.sh" "$MEDIAFLOW_IMAGE"
fi
