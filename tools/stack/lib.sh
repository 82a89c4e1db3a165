# Shared by the tools/stack/*.sh scripts; source it, do not run it.
#
# Conventions every server script follows:
# - `start` reuses a server that already answers on its port and then does not own it; when it starts the
#   server itself it writes the marker $STACK_MARKER_DIR/<name>.started, so that `stop` stops only what
#   the stack started (a developer's own RabbitMQ or PostgreSQL is never shut down by `make down`).
# - Every wait is bounded; on failure the server's log is printed so the cause is on screen.
# - State lives under $STACK_STATE_DIR (default <repo>/var, git-ignored; override with APERTURE_STACK_DIR).

STACK_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STACK_REPO_ROOT="$(cd "$STACK_SCRIPT_DIR/../.." && pwd)"
STACK_STATE_DIR="${APERTURE_STACK_DIR:-$STACK_REPO_ROOT/var}"
STACK_MARKER_DIR="$STACK_STATE_DIR/stack"

# The name a script logs under; each script sets it before logging.
STACK_COMPONENT="${STACK_COMPONENT:-stack}"

log() {
    printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "$STACK_COMPONENT" "$*" >&2
}

die() {
    log "ERROR: $*"
    exit 1
}

# Runs a command as root: directly when we are root, through password-less sudo otherwise. The system
# services (RabbitMQ's /etc config, the Debian PostgreSQL cluster, apt) need it; the S3 cluster does not.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "'$*' needs root: run this script as root or give this user password-less sudo"
    fi
}

# Succeeds when as_root can run without asking for a password.
can_be_root() {
    [[ $EUID -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }
}

# Succeeds when PID is alive and runs the program COMMAND_NAME: a pid file left from before a reboot
# may name a pid that now belongs to an unrelated process, which must never be signalled.
pid_runs() {
    local pid="$1" command_name="$2"
    [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$command_name" ]] || return 1
    # A killed daemon stays a zombie (same name) until its parent reaps it; it is not running.
    local state
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != Z ]]
}

# Succeeds when something accepts TCP connections on 127.0.0.1:PORT (bash's /dev/tcp; no nc/curl needed).
port_answers() {
    local port="$1"
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null
}

# Waits until port_answers PORT, at most TIMEOUT_S seconds; fails otherwise. Gives up early when the
# optional PID (the server process) dies, since waiting longer cannot help then.
wait_for_port() {
    local port="$1" timeout_s="$2" pid="${3:-}"
    local deadline=$((SECONDS + timeout_s))
    while ((SECONDS < deadline)); do
        if port_answers "$port"; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            log "process $pid exited before 127.0.0.1:$port answered"
            return 1
        fi
        sleep 0.5
    done
    log "127.0.0.1:$port did not answer within ${timeout_s}s"
    return 1
}

# Prints the HTTP status code of GET http://127.0.0.1:PORT/PATH (or 000 when nothing answers). Plain
# bash, so that a fresh machine needs no curl to run the stack.
http_status() {
    local port="$1" path="${2:-/}"
    timeout 5 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
        printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "'"$path"'" >&3
        read -r _protocol code _rest <&3 && printf "%s\n" "$code"
    ' 2>/dev/null || printf '000\n'
}

# Waits until `COMMAND...` succeeds, at most TIMEOUT_S seconds, retrying every second.
wait_until() {
    local timeout_s="$1"
    shift
    local deadline=$((SECONDS + timeout_s))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 1
    done
}

# Waits until process PID has exited, at most TIMEOUT_S seconds.
wait_for_exit() {
    local pid="$1" timeout_s="$2"
    local deadline=$((SECONDS + timeout_s))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

# Sends SIGTERM to PID, waits up to TIMEOUT_S seconds, then SIGKILL (a stop must always finish).
terminate_pid() {
    local pid="$1" timeout_s="$2" what="$3"
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for_exit "$pid" "$timeout_s"; then
        log "$what (pid $pid) ignored SIGTERM for ${timeout_s}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        wait_for_exit "$pid" 5 || log "$what (pid $pid) still present after SIGKILL"
    fi
}

# Prints the last lines of each given log file that exists, framed, to stderr.
print_logs() {
    local lines="${LOG_LINES:-60}" file
    for file in "$@"; do
        [[ -s "$file" ]] || continue
        printf '\n----- last %s lines of %s -----\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" >&2 || true
    done
    printf -- '----- end of logs -----\n' >&2
}

marker_path() {
    printf '%s/%s.started\n' "$STACK_MARKER_DIR" "$1"
}

has_marker() {
    [[ -f "$(marker_path "$1")" ]]
}

write_marker() {
    mkdir -p "$STACK_MARKER_DIR"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$(marker_path "$1")"
}

remove_marker() {
    rm -f "$(marker_path "$1")"
}

# Resident memory (MiB) of the given pids together, for the status lines.
resident_mib() {
    local total_kib=0 pid kib
    for pid in "$@"; do
        kib="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
        total_kib=$((total_kib + ${kib:-0}))
    done
    printf '%s\n' $((total_kib / 1024))
}

# The argument parsing every server script shares: start | stop | status.
dispatch_action() {
    local script="$1"
    shift
    case "${1:-}" in
        start | stop | status)
            "do_$1"
            ;;
        *)
            printf 'usage: %s start|stop|status\n' "$script" >&2
            exit 2
            ;;
    esac
}
