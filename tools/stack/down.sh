#!/usr/bin/env bash
# Stops what up.sh started (servers it found already running and reused are left alone), in parallel.
# The S3 cluster's data stays in var/s3 for the next, faster start.
set -euo pipefail

STACK_COMPONENT=down
# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
    (($# == 0)) || { printf 'usage: %s\n' "$0" >&2; exit 2; }
    local started=$SECONDS server failed=()
    local -A pid_of_server=()
    for server in rabbitmq s3 postgres; do
        "$STACK_SCRIPT_DIR/$server.sh" stop &
        pid_of_server[$server]=$!
    done
    for server in rabbitmq s3 postgres; do
        wait "${pid_of_server[$server]}" || failed+=("$server")
    done
    ((${#failed[@]} == 0)) || die "could not stop: ${failed[*]}"
    log "stack down in $((SECONDS - started))s"
}

main "$@"
