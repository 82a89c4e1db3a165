#!/usr/bin/env bash
# Starts the local stack: installs what is missing, then RabbitMQ and the S3 server (in parallel: they
# share nothing), and PostgreSQL with --with-postgres. Servers already running are reused, not owned.
# Ends with one line per server saying where it is; exits non-zero when any of them is not healthy.
#
# --started-file FILE records the servers this call started itself (one name per line), so that a
# caller such as a test run can stop exactly those afterwards (down.sh --started-file FILE) and leave a
# stack that was already up, even one an earlier up.sh started, running for others.
set -euo pipefail

STACK_COMPONENT=up
# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    printf 'usage: %s [--with-postgres] [--started-file FILE]\n' "$0" >&2
    exit 2
}

main() {
    local servers=(rabbitmq s3) started_file=""
    while (($# > 0)); do
        case "$1" in
            --with-postgres) servers+=(postgres) ;;
            --started-file)
                (($# >= 2)) || usage
                started_file="$2"
                shift
                ;;
            *) usage ;;
        esac
        shift
    done

    local started=$SECONDS
    "$STACK_SCRIPT_DIR/install.sh"

    local -A pid_of_server=() owned_before=()
    local server failed=() started_now=()
    for server in "${servers[@]}"; do
        has_marker "$server" && owned_before[$server]=1
        "$STACK_SCRIPT_DIR/$server.sh" start &
        pid_of_server[$server]=$!
    done
    for server in "${servers[@]}"; do
        wait "${pid_of_server[$server]}" || failed+=("$server")
        if [[ -z "${owned_before[$server]:-}" ]] && has_marker "$server"; then
            started_now+=("$server")
        fi
    done
    if [[ -n "$started_file" ]]; then
        mkdir -p "$(dirname "$started_file")"
        : >"$started_file"
        ((${#started_now[@]} == 0)) || printf '%s\n' "${started_now[@]}" >"$started_file"
    fi
    if ((${#failed[@]} > 0)); then
        die "could not start: ${failed[*]} (see above; the others were left running: run down.sh to stop them)"
    fi

    log "stack up in $((SECONDS - started))s; started by this call: ${started_now[*]:-none}"
    local unhealthy=()
    for server in "${servers[@]}"; do
        "$STACK_SCRIPT_DIR/$server.sh" status || unhealthy+=("$server")
    done
    ((${#unhealthy[@]} == 0)) || die "not healthy: ${unhealthy[*]}"
}

main "$@"
