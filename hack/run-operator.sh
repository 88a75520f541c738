#!/usr/bin/env bash
# Run the operator from the working tree against the local cluster (for development).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -f "$LOCAL_DIR/env" ] || die "no $LOCAL_DIR/env: run make cluster-up first"
# shellcheck source=/dev/null
source "$LOCAL_DIR/env"
cd "$REPO_DIR" && exec uv run --frozen mediaflow-operator "$@"
