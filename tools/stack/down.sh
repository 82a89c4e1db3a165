#!/usr/bin/env bash
# Stops, in parallel, the servers the stack started (those it found already running and reused are left
# alone). With --started-file FILE (written by up.sh --started-file), only the servers listed there.
# The S3 cluster's data stays in var/s3 for the next, faster start.
set -euo pipefail

STACK_COMPONENT=down
# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    printf 'usage: %s [--started-file FILE]\n' "$0" >&2
    exit 2
}

main() {
    local servers=(rabbitmq s3 postgres)
    case "$#:${1:-}" in
        0:) ;;
        2:--started-file)
            if [[ -f "$2" ]]; then
                mapfile -t servers < <(grep -xE 'rabbitmq|s3|postgres' "$2" || true)
            else
                servers=()
            fi
            ((${#servers[@]} > 0)) || { log "no server listed in $2; nothing to stop"; return 0; }
            ;;
        *) usage ;;
    esac

    local started=$SECONDS server failed=()
    local -A pid_of_server=()
    for server in "${servers[@]}"; do
        "$STACK_SCRIPT_DIR/$server.sh" stop &
        pid_of_server[$server]=$!
    done
    for server in "${servers[@]}"; do
        wait "${pid_of_server[$server]}" || failed+=("$server")
    done
    ((${#failed[@]} == 0)) || die "could not stop: ${failed[*]}"
    log "stopped ${servers[*]} in $((SECONDS - started))s"
}

main "$@"
