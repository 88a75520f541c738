#!/usr/bin/env bash
# Install what a fresh Debian 12 machine lacks to run the local environment and the tests:
# Debian packages, uv (from PyPI) and the project's locked Python environment.
# Go (>= 1.24) must already be present; it builds the upstream binaries (hack/build-binaries.sh).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

packages=(
	# container runtime and networking for the local node
	containerd runc containernetworking-plugins iptables iproute2 conntrack kmod util-linux
	# NetworkPolicy enforcement: kube-router's policy controller keeps its address sets in ipset
	ipset
	# image builds: Docker engine and a Debian base made with debootstrap
	docker.io debootstrap
	# TLS material, health checks, S3 requests from scripts
	openssl curl ca-certificates
	# the media tools the worker drives (tests run them on the host too)
	ffmpeg webp libavif-bin libmagic1 file
	# the web console's end-to-end tests drive Debian's Chromium with Playwright (no browser
	# download: nothing but the package registries is reachable)
	chromium
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}); run as root"
	log "installing Debian packages: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || die "Go >= 1.24 is required to build the pinned Kubernetes components"

UV_VERSION=$(sed -n 's/^ARG UV_VERSION=//p' "$REPO_DIR/Dockerfile")
if ! command -v uv >/dev/null || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
	log "installing uv $UV_VERSION"
	python3 -m pip install -q "uv==$UV_VERSION"
fi
(cd "$REPO_DIR" && uv sync --frozen --quiet)
