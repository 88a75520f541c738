#!/usr/bin/env bash
# load-image.sh IMAGE...: copy images from Docker into the local cluster's containerd,
# skipping those it already holds at the same image ID.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -S "$CONTAINERD_SOCK" ] || die "the local cluster's containerd is not running (make cluster-up)"
ctr_() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }
mkdir -p "$STATE_DIR/images"
for image in "$@"; do
	id=$("$DOCKER" image inspect --format '{{.Id}}' "$image")
	stamp=$STATE_DIR/images/${image//[\/:]/_}
	if [ "$(cat "$stamp" 2>/dev/null)" = "$id" ] && ctr_ images ls -q "name==$image" | grep -qxF "$image"; then
		continue
	fi
	log "loading $image into the cluster's containerd"
	"$DOCKER" save "$image" | ctr_ images import - >/dev/null
	echo "$id" >"$stamp"
done
