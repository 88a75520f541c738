#!/usr/bin/env bash
# Make the Debian base image locally (no registry is reachable here): debootstrap a minimal
# bookworm into the cache, then `docker import` it. Users with a registry never need this;
# the Dockerfile's default BASE_IMAGE is debian:bookworm-slim.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_docker
if "$DOCKER" image inspect "$BASE_IMAGE_LOCAL" >/dev/null 2>&1; then
	exit 0
fi
command -v debootstrap >/dev/null || die "debootstrap is not installed (hack/install-deps.sh)"
tarball=$MEDIAFLOW_CACHE/debian-bookworm-minbase.tar
if [ ! -f "$tarball" ]; then
	mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
	rootfs=$(mktemp -d "$MEDIAFLOW_CACHE/.rootfs.XXXXXX")
	log "debootstrap bookworm (minbase) from $mirror"
	debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$LOG_DIR/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $LOG_DIR/debootstrap.log"
	# The same apt sources as the official debian:bookworm-slim image, security updates included.
	rm -f "$rootfs/etc/apt/sources.list"
	cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
	rm -rf "$rootfs"
fi
log "importing $BASE_IMAGE_LOCAL"
"$DOCKER" import "$tarball" "$BASE_IMAGE_LOCAL" >/dev/null
