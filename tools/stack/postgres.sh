#!/usr/bin/env bash
# PostgreSQL for the coordinator's local development and integration tests: start | stop | status.
#
# The Debian cluster (15/main by default) listening on 127.0.0.1:5432, with the role aperture/aperture
# (LOGIN, CREATEDB) owning the databases `aperture` and `aperture_test`. The cluster's data stays where
# Debian keeps it; the listen address is given on the command line, so /etc/postgresql is not edited.
set -euo pipefail

STACK_COMPONENT=postgres
# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_VERSION="${APERTURE_PG_VERSION:-15}"
PG_CLUSTER=main
PG_PORT=5432
ROLE=aperture
ROLE_PASSWORD=aperture
DATABASES=(aperture aperture_test)
STARTUP_TIMEOUT_S=60
LOG_FILE="/var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log"

accepts_connections() {
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 3
}

role_can_log_in() {
    PGPASSWORD="$ROLE_PASSWORD" PGCONNECT_TIMEOUT=5 \
        psql -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U "$ROLE" -d aperture_test -c 'select 1' >/dev/null 2>&1
}

# Columns of `pg_lsclusters -h`: version cluster port status owner datadir logfile.
cluster_field() {
    local column="$1"
    pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" -v col="$column" \
        '$1 == v && $2 == c {print $col}'
}

# Creates or updates the role (its password included) and the databases, as the postgres superuser over
# the local socket. Safe to repeat.
ensure_role_and_databases() {
    local sql database
    sql="$(
        cat <<EOF
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$ROLE_PASSWORD';
    ELSE
        ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$ROLE_PASSWORD';
    END IF;
END
\$\$;
EOF
        for database in "${DATABASES[@]}"; do
            printf "SELECT 'CREATE DATABASE %s OWNER %s' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '%s')\\\\gexec\n" \
                "$database" "$ROLE" "$database"
            printf 'ALTER DATABASE %s OWNER TO %s;\n' "$database" "$ROLE"
        done
    )"
    # runuser keeps us out of the postgres user's login scripts; -h /var/run/postgresql is the socket.
    if ! as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres <<<"$sql" >/dev/null; then
        die "could not create the role '$ROLE' and databases ${DATABASES[*]} (is this server local?)"
    fi
}

do_start() {
    if accepts_connections; then
        if has_marker postgres; then
            log "already running on 127.0.0.1:$PG_PORT (started by the stack)"
        else
            log "reusing the PostgreSQL already answering on 127.0.0.1:$PG_PORT (not started by the stack;" \
                "stop will leave it alone)"
        fi
        role_can_log_in || ensure_role_and_databases
        role_can_log_in || die "role '$ROLE' cannot log in to aperture_test on 127.0.0.1:$PG_PORT"
        return 0
    fi
    remove_marker postgres
    command -v pg_ctlcluster >/dev/null 2>&1 || die "pg_ctlcluster not found: run tools/stack/install.sh"

    local started=$SECONDS
    if [[ -z "$(cluster_field 1)" ]]; then
        log "creating the cluster $PG_VERSION/$PG_CLUSTER"
        as_root pg_createcluster --port "$PG_PORT" "$PG_VERSION" "$PG_CLUSTER" >/dev/null
    fi
    local cluster_port
    cluster_port="$(cluster_field 3)"
    [[ "$cluster_port" == "$PG_PORT" ]] ||
        die "cluster $PG_VERSION/$PG_CLUSTER is configured for port $cluster_port, not $PG_PORT; change its postgresql.conf"

    log "starting cluster $PG_VERSION/$PG_CLUSTER"
    # Only on 127.0.0.1 (Debian's default 'localhost' would add ::1).
    if ! as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start \
        -- -o "-c listen_addresses=127.0.0.1" -t "$STARTUP_TIMEOUT_S"; then
        print_logs "$LOG_FILE"
        die "pg_ctlcluster could not start $PG_VERSION/$PG_CLUSTER; see the log above"
    fi
    if ! wait_until "$STARTUP_TIMEOUT_S" accepts_connections; then
        print_logs "$LOG_FILE"
        die "PostgreSQL did not accept connections on 127.0.0.1:$PG_PORT within ${STARTUP_TIMEOUT_S}s"
    fi
    write_marker postgres
    ensure_role_and_databases
    role_can_log_in || die "role '$ROLE' cannot log in to aperture_test on 127.0.0.1:$PG_PORT (check pg_hba.conf)"
    log "ready in $((SECONDS - started))s: postgresql://$ROLE:$ROLE_PASSWORD@127.0.0.1:$PG_PORT/aperture" \
        "(and /aperture_test)"
}

do_stop() {
    if ! has_marker postgres; then
        log "not started by the stack (no marker $(marker_path postgres)); nothing to stop"
        return 0
    fi
    if [[ "$(cluster_field 4)" == online ]]; then
        log "stopping cluster $PG_VERSION/$PG_CLUSTER"
        if ! as_root pg_ctlcluster --skip-systemctl-redirect --force "$PG_VERSION" "$PG_CLUSTER" stop; then
            print_logs "$LOG_FILE"
            die "could not stop $PG_VERSION/$PG_CLUSTER"
        fi
    else
        log "cluster $PG_VERSION/$PG_CLUSTER was no longer running"
    fi
    remove_marker postgres
    log "stopped"
}

# The postmaster and its children (backends, checkpointer, ...): their resident memory summed.
server_memory_mib() {
    local data_dir postmaster
    data_dir="$(cluster_field 6)"
    postmaster="$(as_root head -n 1 "$data_dir/postmaster.pid" 2>/dev/null || true)"
    [[ -n "$postmaster" ]] || return 1
    # shellcheck disable=SC2046
    resident_mib "$postmaster" $(ps -o pid= --ppid "$postmaster")
}

do_status() {
    local owner="not started by the stack" memory=""
    has_marker postgres && owner="started by the stack"
    if ! accepts_connections; then
        log "DOWN: PostgreSQL does not accept connections on 127.0.0.1:$PG_PORT"
        return 1
    fi
    if ! role_can_log_in; then
        log "UNHEALTHY: 127.0.0.1:$PG_PORT answers but role '$ROLE' cannot log in to aperture_test" \
            "(run tools/stack/postgres.sh start)"
        return 1
    fi
    memory="$(server_memory_mib || true)"
    [[ -n "$memory" ]] && memory=", $memory MiB resident summed over its processes"
    log "UP: postgresql://$ROLE:$ROLE_PASSWORD@127.0.0.1:$PG_PORT/aperture and /aperture_test ($owner$memory)"
}

dispatch_action "$0" "$@"
