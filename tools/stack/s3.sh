#!/usr/bin/env bash
# A real S3 server for local development and integration tests: start | stop | status.
#
# No registry carries a MinIO server, so this is Ceph's RADOS gateway on a one-node cluster: one monitor,
# one bluestore OSD on a sparse file, radosgw (beast) on 127.0.0.1:7480. No ceph-mgr: nothing here needs
# it. Everything lives in $STACK_STATE_DIR/s3 (default <repo>/var/s3): a re-start reuses the cluster in
# a few seconds, a folder that no longer starts is wiped and created afresh (it holds test data only).
set -euo pipefail

STACK_COMPONENT=s3
# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RGW_PORT=7480
MON_PORT=6789
ACCESS_KEY="${APERTURE_S3_ACCESS_KEY:-aperture}"
SECRET_KEY="${APERTURE_S3_SECRET_KEY:-aperture-dev-secret}"
S3_USER_ID=aperture
S3_DIR="$STACK_STATE_DIR/s3"
CONF="$S3_DIR/ceph.conf"
# Written once the cluster has been created completely (daemons, pools, user); a folder without it is
# a half-made cluster and is recreated.
CREATED_FLAG="$S3_DIR/cluster.created"
OSD_ID_FILE="$S3_DIR/osd.id"
RGW_NAME=client.rgw.a
# The sparse block file of the OSD: 20 GiB addressable, a few hundred MB actually used.
BLOCK_SIZE_BYTES=21474836480

MON_TIMEOUT_S=30
OSD_UP_TIMEOUT_S=40
OSD_START_ATTEMPTS=3
RGW_TIMEOUT_S=90
# Every ceph/radosgw-admin call is bounded: with the monitor down they would retry for ever.
CLI_TIMEOUT_S=30

export CEPH_CONF="$CONF"

ceph_cli() {
    timeout "$CLI_TIMEOUT_S" ceph --conf "$CONF" --connect-timeout 10 "$@"
}

rgw_admin() {
    timeout "$CLI_TIMEOUT_S" radosgw-admin --conf "$CONF" "$@"
}

s3_logs() {
    print_logs "$S3_DIR"/log/*.log
}

# The pid of a daemon of this folder (by its pid file), when it is still that daemon.
pid_of() {
    local name="$1" pid program
    case "$name" in
        mon.*) program=ceph-mon ;;
        osd.*) program=ceph-osd ;;
        *) program=radosgw ;;
    esac
    pid="$(cat "$S3_DIR/run/$name.pid" 2>/dev/null || true)"
    pid_runs "$pid" "$program" && printf '%s\n' "$pid"
}

osd_name() {
    printf 'osd.%s\n' "$(cat "$OSD_ID_FILE")"
}

write_ceph_conf() {
    local fsid="$1"
    # Quoted heredoc for the $cluster/$id/$name metavariables Ceph expands itself.
    {
        cat <<EOF
# Written by tools/stack/s3.sh: a one-node Ceph cluster serving S3 on 127.0.0.1:$RGW_PORT.
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim allowed = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on msgr2 not enabled = false
osd crush chooseleaf type = 0
run dir = $S3_DIR/run
keyring = $S3_DIR/keyring
EOF
        cat <<'EOF'
log file = S3DIR/log/$name.log
# RocksDB logs all its options at every start at the default level (about 1 MB per OSD start).
debug rocksdb = 1/5
pid file = S3DIR/run/$name.pid

[mon]
mon data = S3DIR/mon/$cluster-$id
# Small development disks would otherwise put the monitor into a warning or a read-only state.
mon data avail warn = 1
mon data avail crit = 0

[osd]
osd data = S3DIR/osd/$cluster-$id
osd objectstore = bluestore
bluestore block path = S3DIR/osd/$cluster-$id.block
bluestore block create = true
bluestore block size = BLOCKSIZE
# Modest memory: the defaults size the caches for a dedicated storage host.
osd memory target = 1073741824
bluestore cache autotune = false
bluestore cache size = 268435456
bluestore fsck on mount = false
# At start an OSD asks the monitor to set its device class and CRUSH location; that request sometimes
# fails with "wrong fsid" and the OSD exits. The location is set once, when the cluster is created.
osd class update on start = false
osd crush update on start = false

[client.rgw.a]
rgw data = S3DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:RGWPORT
rgw dns name = 127.0.0.1
EOF
    } | sed -e "s|S3DIR|$S3_DIR|g" -e "s|BLOCKSIZE|$BLOCK_SIZE_BYTES|g" -e "s|RGWPORT|$RGW_PORT|g" >"$CONF"
}

mon_answers() {
    ceph_cli mon dump >/dev/null 2>&1
}

osd_is_up() {
    ceph_cli osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'
}

start_mon() {
    ceph-mon -i a >>"$S3_DIR/log/daemon-start.log" 2>&1 || return 1
    if ! wait_until "$MON_TIMEOUT_S" mon_answers; then
        log "the monitor did not answer within ${MON_TIMEOUT_S}s"
        return 1
    fi
}

# Starts the OSD and waits until the monitor reports it up. It is started again (bounded) when it
# exits early, as it did at times ("wrong fsid") before the *update on start options were turned off.
start_osd() {
    local id attempt
    id="$(cat "$OSD_ID_FILE" 2>/dev/null)" || return 1
    for ((attempt = 1; attempt <= OSD_START_ATTEMPTS; attempt++)); do
        if ! pid_of "osd.$id" >/dev/null; then
            ceph-osd -i "$id" >>"$S3_DIR/log/daemon-start.log" 2>&1 ||
                log "ceph-osd -i $id exited with an error (attempt $attempt)"
        fi
        local deadline=$((SECONDS + OSD_UP_TIMEOUT_S))
        while ((SECONDS < deadline)); do
            osd_is_up && return 0
            pid_of "osd.$id" >/dev/null || break
            sleep 1
        done
        log "osd.$id not up yet (attempt $attempt of $OSD_START_ATTEMPTS)"
    done
    return 1
}

rgw_answers() {
    [[ "$(http_status "$RGW_PORT" /)" == 200 ]]
}

start_rgw() {
    radosgw -n "$RGW_NAME" >>"$S3_DIR/log/daemon-start.log" 2>&1 || return 1
    # At its first start the gateway creates its pools, which takes a few seconds before it listens.
    local deadline=$((SECONDS + RGW_TIMEOUT_S))
    until rgw_answers; do
        if ((SECONDS >= deadline)); then
            log "radosgw did not answer on 127.0.0.1:$RGW_PORT within ${RGW_TIMEOUT_S}s"
            return 1
        fi
        if ! pid_of "$RGW_NAME" >/dev/null && ((SECONDS > deadline - RGW_TIMEOUT_S + 5)); then
            log "radosgw exited"
            return 1
        fi
        sleep 0.5
    done
}

# Makes sure the S3 user has exactly this access key with this secret (creates or adds the key).
ensure_s3_user() {
    local info
    if ! info="$(rgw_admin user info --uid="$S3_USER_ID" 2>/dev/null)"; then
        rgw_admin user create --uid="$S3_USER_ID" --display-name="Aperture local stack" \
            --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null || return 1
        log "created S3 user '$S3_USER_ID' with access key '$ACCESS_KEY'"
        return 0
    fi
    if python3 -c '
import json, sys
keys = json.load(sys.stdin)["keys"]
sys.exit(0 if any(k["access_key"] == sys.argv[1] and k["secret_key"] == sys.argv[2] for k in keys) else 1)
' "$ACCESS_KEY" "$SECRET_KEY" <<<"$info"; then
        return 0
    fi
    rgw_admin key create --uid="$S3_USER_ID" --key-type=s3 \
        --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null || return 1
    log "set the key '$ACCESS_KEY' of S3 user '$S3_USER_ID'"
}

# Stops the daemons of this folder in the only order that does not hang: the gateway first (it waits
# on the cluster), then the OSD (which reports itself down to the monitor), then the monitor.
stop_daemons() {
    local pid name rgw_grace_s=30
    # With the OSD already gone radosgw hangs on SIGTERM: do not wait long for it then.
    if [[ -n "$(missing_daemons)" ]]; then
        rgw_grace_s=5
    fi
    if pid="$(pid_of "$RGW_NAME")"; then
        terminate_pid "$pid" "$rgw_grace_s" radosgw
    fi
    if [[ -f "$OSD_ID_FILE" ]] && name="$(osd_name)" && pid="$(pid_of "$name")"; then
        terminate_pid "$pid" 30 "$name"
    fi
    if pid="$(pid_of mon.a)"; then
        terminate_pid "$pid" 20 ceph-mon
    fi
}

wipe_folder() {
    stop_daemons
    # Guard against a surprising APERTURE_STACK_DIR: only ever remove a folder named s3 we made.
    [[ "$(basename "$S3_DIR")" == s3 && -d "$S3_DIR" ]] || return 0
    rm -rf -- "$S3_DIR"
}

create_cluster() {
    local fsid osd_uuid osd_id
    fsid="$(cat /proc/sys/kernel/random/uuid)"
    osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
    mkdir -p "$S3_DIR"/{run,log,mon,osd,rgw} || return 1
    write_ceph_conf "$fsid" || return 1

    log "creating a one-node Ceph cluster in $S3_DIR"
    ceph-authtool --create-keyring "$S3_DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null || return 1
    ceph-authtool "$S3_DIR/keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null || return 1
    monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$MON_PORT]" "$S3_DIR/monmap" >/dev/null || return 1
    ceph-mon --mkfs -i a --monmap "$S3_DIR/monmap" --keyring "$S3_DIR/keyring" \
        >>"$S3_DIR/log/daemon-start.log" 2>&1 || return 1
    start_mon || return 1

    osd_id="$(ceph_cli osd new "$osd_uuid")" || return 1
    [[ "$osd_id" =~ ^[0-9]+$ ]] || { log "unexpected answer from 'ceph osd new': $osd_id"; return 1; }
    printf '%s\n' "$osd_id" >"$OSD_ID_FILE"
    # Weight in TiB, as Ceph counts it (20 GiB); the only OSD under the default root holds every PG.
    ceph_cli osd crush add "osd.$osd_id" 0.02 root=default >/dev/null 2>&1 || return 1
    mkdir -p "$S3_DIR/osd/ceph-$osd_id" || return 1
    ceph-osd -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >>"$S3_DIR/log/osd-mkfs.log" 2>&1 || return 1
    start_osd || return 1
    start_rgw || return 1
    ensure_s3_user || return 1
    date -u +%Y-%m-%dT%H:%M:%SZ >"$CREATED_FLAG"
}

start_existing_cluster() {
    log "reusing the cluster in $S3_DIR"
    # Rewritten with the cluster's own fsid so that a changed template applies to existing clusters too.
    local fsid
    fsid="$(awk '$1 == "fsid" {print $3}' "$CONF")"
    [[ -n "$fsid" ]] || { log "no fsid in $CONF"; return 1; }
    write_ceph_conf "$fsid" || return 1
    start_mon || return 1
    start_osd || return 1
    start_rgw || return 1
    ensure_s3_user || return 1
}

# The names of this folder's daemons that are not running (none: the cluster is whole).
missing_daemons() {
    local name
    for name in mon.a "$( [[ -f "$OSD_ID_FILE" ]] && osd_name)" "$RGW_NAME"; do
        [[ -n "$name" ]] && ! pid_of "$name" >/dev/null && printf '%s\n' "$name"
    done
    return 0
}

do_start() {
    if rgw_answers; then
        if ! has_marker s3; then
            log "reusing the S3 server already answering on http://127.0.0.1:$RGW_PORT (not started by" \
                "the stack; stop will leave it alone; it must know access key '$ACCESS_KEY')"
            return 0
        fi
        local missing
        missing="$(missing_daemons | paste -sd ' ')"
        if [[ -z "$missing" ]]; then
            log "already running on http://127.0.0.1:$RGW_PORT (started by the stack)"
            ensure_s3_user || die "could not make sure the S3 user exists"
            return 0
        fi
        # The gateway answers GET / even when the OSD is gone, but then every write hangs.
        log "daemons of the stack's cluster are not running ($missing); restarting the cluster"
    fi
    remove_marker s3
    local command
    for command in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool python3; do
        command -v "$command" >/dev/null 2>&1 || die "$command not found: run tools/stack/install.sh"
    done

    local started=$SECONDS
    # Daemons of an earlier, half-stopped run would hold the ports; they are ours (pid files here).
    stop_daemons
    local port
    for port in "$MON_PORT" "$RGW_PORT"; do
        if port_answers "$port"; then
            die "127.0.0.1:$port is taken by another program; stop it first"
        fi
    done

    if [[ -f "$CREATED_FLAG" && -f "$CONF" ]]; then
        if ! start_existing_cluster; then
            s3_logs
            log "the cluster in $S3_DIR does not start (logs above); wiping it and creating a new one"
            wipe_folder
        fi
    elif [[ -d "$S3_DIR" ]]; then
        log "$S3_DIR holds no complete cluster; wiping it"
        wipe_folder
    fi
    if ! rgw_answers; then
        # A fresh monitor now and then refuses one of the first commands (seen once in many runs:
        # "handle_command on fsid 0000... != <fsid>" right after 'osd new'); a second, clean try succeeds.
        if ! create_cluster; then
            s3_logs
            log "creating the Ceph cluster failed; wiping it and trying once more"
            wipe_folder
            if ! create_cluster; then
                s3_logs
                stop_daemons
                die "could not create the Ceph cluster; see the logs above"
            fi
        fi
    fi
    write_marker s3
    log "ready in $((SECONDS - started))s: http://127.0.0.1:$RGW_PORT (access key '$ACCESS_KEY')"
}

do_stop() {
    if ! has_marker s3; then
        log "not started by the stack (no marker $(marker_path s3)); nothing to stop"
        return 0
    fi
    log "stopping radosgw, OSD and monitor"
    stop_daemons
    remove_marker s3
    log "stopped (data kept in $S3_DIR)"
}

do_status() {
    local owner="not started by the stack" pids=() pid name memory=""
    has_marker s3 && owner="started by the stack"
    if ! rgw_answers; then
        log "DOWN: no S3 server answers GET / on 127.0.0.1:$RGW_PORT"
        return 1
    fi
    local missing
    missing="$(missing_daemons | paste -sd ' ')"
    if has_marker s3 && [[ -n "$missing" ]]; then
        log "UNHEALTHY: radosgw answers but daemons of the stack's cluster are not running ($missing);" \
            "run tools/stack/s3.sh start"
        return 1
    fi
    for name in "$RGW_NAME" mon.a $([[ -f "$OSD_ID_FILE" ]] && osd_name); do
        pid="$(pid_of "$name" || true)"
        [[ -n "$pid" ]] && pids+=("$pid")
    done
    ((${#pids[@]} > 0)) && memory=", $(resident_mib "${pids[@]}") MiB resident in ${#pids[@]} daemons"
    log "UP: http://127.0.0.1:$RGW_PORT access key '$ACCESS_KEY' ($owner$memory)"
}

dispatch_action "$0" "$@"
