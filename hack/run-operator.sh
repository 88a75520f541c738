#!/usr/bin/env bash
# Run the operator from the working tree against the local cluster (for development).
# By default it watches only the `default` namespace: the Helm release's operator (make up)
# handles `mediaflow`, and two operators must never handle the same MediaJob.
# Pass --namespace NAME (repeatable, globs allowed) to watch others.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -f "$LOCAL_DIR/env" ] || die "no $LOCAL_DIR/env: run make cluster-up first"
# shellcheck source=/dev/null
source "$LOCAL_DIR/env"
args=("$@")
[[ " ${args[*]} " == *" --namespace "* ]] || args+=(--namespace default)
cd "$REPO_DIR" && exec uv run --frozen mediaflow-operator "${args[@]}"
