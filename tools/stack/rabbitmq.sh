#!/usr/bin/env bash
# RabbitMQ for local development and integration tests: start | stop | status.
#
# The Debian package's server, bound to 127.0.0.1: AMQP 5672, management 15672, Prometheus 15692; the
# guest/guest account (allowed from localhost only). Its data stays where Debian keeps it
# (/var/lib/rabbitmq); the configuration is written to /etc/rabbitmq before the server starts, because
# the listeners are fixed at boot.
set -euo pipefail

STACK_COMPONENT=rabbitmq
# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AMQP_PORT=5672
MANAGEMENT_PORT=15672
PROMETHEUS_PORT=15692
# Workers acknowledge a job only when it is done, and RabbitMQ closes the channel of a delivery left
# unacknowledged past consumer_timeout (30 min by default), which would re-run every long CASA job
# forever. RabbitMQ 3.10 (Debian 12) can set it only globally, here; 8 h in ms.
CONSUMER_TIMEOUT_MS=28800000
# A fixed node name on "localhost" (not the host name): the CLI tools then reach the node on 127.0.0.1
# even where the host name does not resolve, and the Erlang distribution port can bind to loopback.
NODE_NAME=rabbit@localhost
CONFIG_DIR=/etc/rabbitmq
LOG_DIR=/var/log/rabbitmq
PID_FILE="/var/lib/rabbitmq/mnesia/$NODE_NAME.pid"
STARTUP_TIMEOUT_S=90
SHUTDOWN_TIMEOUT_S=60

server_logs() {
    print_logs "$LOG_DIR/$NODE_NAME.log" "$LOG_DIR/startup_log" "$LOG_DIR/startup_err" "$STACK_STATE_DIR/rabbitmq/start.log"
}

env_file_content() {
    cat <<EOF
# Written by tools/stack/rabbitmq.sh: the local stack's RabbitMQ listens on 127.0.0.1 only.
NODENAME=$NODE_NAME
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=$AMQP_PORT
ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
}

config_file_content() {
    cat <<EOF
# Written by tools/stack/rabbitmq.sh: the local stack's RabbitMQ listens on 127.0.0.1 only.
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $MANAGEMENT_PORT
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $PROMETHEUS_PORT
# Jobs are acknowledged when done; a long CASA job must not hit the 30-minute default (value in ms).
consumer_timeout = $CONSUMER_TIMEOUT_MS
loopback_users.guest = true
log.file.level = info
EOF
}

# Writes FILE with CONTENT unless it already has exactly that content (keeps /etc untouched when
# nothing changed).
write_if_changed() {
    local file="$1" content="$2"
    if [[ -f "$file" ]] && [[ "$(cat "$file")" == "$content" ]]; then
        return 0
    fi
    if [[ -f "$file" ]] && ! grep -q 'Written by tools/stack/rabbitmq.sh' "$file"; then
        as_root cp -p "$file" "$file.before-aperture-stack"
        log "kept the previous $file as $file.before-aperture-stack"
    fi
    printf '%s\n' "$content" | as_root tee "$file" >/dev/null
    log "wrote $file"
}

write_configuration() {
    as_root mkdir -p "$CONFIG_DIR"
    write_if_changed "$CONFIG_DIR/rabbitmq-env.conf" "$(env_file_content)"
    write_if_changed "$CONFIG_DIR/rabbitmq.conf" "$(config_file_content)"
    # --offline edits enabled_plugins without a running node.
    as_root rabbitmq-plugins enable --offline rabbitmq_management rabbitmq_prometheus >/dev/null
}

server_pid() {
    local pid
    can_be_root || return 1
    pid="$(as_root cat "$PID_FILE" 2>/dev/null || true)"
    pid_runs "$pid" beam.smp && printf '%s\n' "$pid"
}

# Warns when a reused broker has another consumer timeout: long jobs would then be redelivered.
check_consumer_timeout() {
    local value
    can_be_root || return 0
    value="$(as_root timeout 20 rabbitmqctl -q eval 'application:get_env(rabbit, consumer_timeout).' 2>/dev/null || true)"
    if [[ "$value" != "{ok,$CONSUMER_TIMEOUT_MS}" ]]; then
        log "WARNING: this broker's consumer_timeout is '${value:-unknown}', not {ok,$CONSUMER_TIMEOUT_MS}:" \
            "jobs running longer than it will be redelivered"
    fi
}

do_start() {
    if port_answers "$AMQP_PORT"; then
        if has_marker rabbitmq; then
            log "already running on 127.0.0.1:$AMQP_PORT (started by the stack)"
        else
            log "reusing the RabbitMQ already answering on 127.0.0.1:$AMQP_PORT (not started by the stack;" \
                "stop will leave it alone)"
            check_consumer_timeout
        fi
        return 0
    fi
    remove_marker rabbitmq
    command -v rabbitmq-server >/dev/null 2>&1 || die "rabbitmq-server is not installed: run tools/stack/install.sh"

    local started=$SECONDS
    write_configuration
    mkdir -p "$STACK_STATE_DIR/rabbitmq"
    log "starting RabbitMQ ($NODE_NAME)"
    if ! as_root rabbitmq-server -detached >"$STACK_STATE_DIR/rabbitmq/start.log" 2>&1; then
        server_logs
        die "rabbitmq-server -detached failed"
    fi
    # The node writes its pid file early; waiting gives up as soon as the node is gone.
    wait_until 20 server_pid || true
    # `rabbitmqctl await_startup` fails at once while the node is not yet reachable: wait for the
    # listener first, then let it confirm that every boot step (plugins included) has finished.
    if ! wait_for_port "$AMQP_PORT" "$STARTUP_TIMEOUT_S" "$(server_pid || true)" ||
        ! as_root timeout 60 rabbitmqctl -q await_startup; then
        server_logs
        die "RabbitMQ did not start; see the logs above"
    fi
    write_marker rabbitmq
    log "ready in $((SECONDS - started))s: amqp://guest:guest@127.0.0.1:$AMQP_PORT/," \
        "management http://127.0.0.1:$MANAGEMENT_PORT/, metrics http://127.0.0.1:$PROMETHEUS_PORT/metrics"
}

# Stops the Erlang port mapper unless another Erlang node still uses it.
stop_epmd() {
    command -v epmd >/dev/null 2>&1 || return 0
    local names
    names="$(epmd -names 2>/dev/null || true)"
    if grep -q '^name ' <<<"$names"; then
        log "epmd left running: other Erlang nodes use it"
    else
        epmd -kill >/dev/null 2>&1 || true
    fi
}

do_stop() {
    if ! has_marker rabbitmq; then
        log "not started by the stack (no marker $(marker_path rabbitmq)); nothing to stop"
        return 0
    fi
    local pid
    pid="$(server_pid || true)"
    if port_answers "$AMQP_PORT" || [[ -n "$pid" ]]; then
        log "stopping RabbitMQ"
        mkdir -p "$STACK_STATE_DIR/rabbitmq"
        if ! as_root timeout "$SHUTDOWN_TIMEOUT_S" rabbitmqctl -q shutdown >"$STACK_STATE_DIR/rabbitmq/stop.log" 2>&1; then
            cat "$STACK_STATE_DIR/rabbitmq/stop.log" >&2
            log "rabbitmqctl shutdown failed or timed out; signalling the node"
            [[ -n "$pid" ]] && as_root kill -TERM "$pid" 2>/dev/null || true
            [[ -n "$pid" ]] && ! wait_for_exit "$pid" 20 && as_root kill -KILL "$pid" 2>/dev/null || true
        fi
    else
        log "RabbitMQ was no longer running"
    fi
    stop_epmd
    remove_marker rabbitmq
    log "stopped"
}

do_status() {
    local owner="not started by the stack" pid memory=""
    has_marker rabbitmq && owner="started by the stack"
    if ! port_answers "$AMQP_PORT"; then
        log "DOWN: nothing answers on 127.0.0.1:$AMQP_PORT"
        return 1
    fi
    pid="$(server_pid || true)"
    [[ -n "$pid" ]] && memory=", $(resident_mib "$pid") MiB resident"
    log "UP: amqp://guest:guest@127.0.0.1:$AMQP_PORT/ ($owner$memory);" \
        "management HTTP $(http_status "$MANAGEMENT_PORT" /) on :$MANAGEMENT_PORT," \
        "metrics HTTP $(http_status "$PROMETHEUS_PORT" /metrics) on :$PROMETHEUS_PORT"
}

dispatch_action "$0" "$@"
