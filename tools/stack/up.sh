#!/usr/bin/env bash
# Starts the local stack: installs what is missing, then RabbitMQ and the S3 server (in parallel: they
# share nothing), and PostgreSQL with --with-postgres. Servers already running are reused, not owned.
# Ends with one line per server saying where it is; exits non-zero when any of them is not healthy.
set -euo pipefail

STACK_COMPONENT=up
# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    printf 'usage: %s [--with-postgres]\n' "$0" >&2
    exit 2
}

main() {
    local servers=(rabbitmq s3)
    case "${1:-}" in
        "") ;;
        --with-postgres) servers+=(postgres) ;;
        *) usage ;;
    esac
    (($# <= 1)) || usage

    local started=$SECONDS
    "$STACK_SCRIPT_DIR/install.sh"

    local -A pid_of_server=()
    local server failed=()
    for server in "${servers[@]}"; do
        "$STACK_SCRIPT_DIR/$server.sh" start &
        pid_of_server[$server]=$!
    done
    for server in "${servers[@]}"; do
        wait "${pid_of_server[$server]}" || failed+=("$server")
    done
    if ((${#failed[@]} > 0)); then
        die "could not start: ${failed[*]} (see above; the others were left running: run down.sh to stop them)"
    fi

    log "stack up in $((SECONDS - started))s:"
    local unhealthy=()
    for server in "${servers[@]}"; do
        "$STACK_SCRIPT_DIR/$server.sh" status || unhealthy+=("$server")
    done
    ((${#unhealthy[@]} == 0)) || die "not healthy: ${unhealthy[*]}"
}

main "$@"
