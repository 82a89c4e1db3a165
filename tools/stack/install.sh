#!/usr/bin/env bash
# Installs the Debian packages the local stack runs on, only those that are missing.
#
# A machine that has them all returns at once (dpkg-query, no apt-get update), so up.sh can call this
# every time. A fresh Debian 12 machine gets them with --no-install-recommends: the recommends of the
# Ceph packages pull in hundreds of MB that a one-node RADOS gateway does not use (and docker-compose's
# recommend is the Docker engine).
set -euo pipefail

STACK_COMPONENT=install
# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Package -> a command it provides (checked too, so a half-removed package is not taken as present).
declare -A COMMAND_OF_PACKAGE=(
    [rabbitmq-server]=rabbitmq-server
    [radosgw]=radosgw
    [ceph-mon]=ceph-mon
    [ceph-osd]=ceph-osd
    [ceph-common]=ceph
    [postgresql]=pg_ctlcluster
    [curl]=curl
)
# curl: the health checks of tools/stack/services.sh.
PACKAGES=(rabbitmq-server radosgw ceph-mon ceph-osd ceph-common postgresql curl)

# Tools whose command is enough, whichever package brought it (kubectl may come from another vendor's
# package, which Debian's kubernetes-client would conflict with).
declare -A COMMAND_IS_ENOUGH=([kubernetes-client]=1)

package_is_installed() {
    local package="$1"
    if [[ -n "${COMMAND_IS_ENOUGH[$package]:-}" ]]; then
        command -v "${COMMAND_OF_PACKAGE[$package]}" >/dev/null 2>&1
        return
    fi
    [[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" == "install ok installed" ]] &&
        PATH="$PATH:/usr/sbin:/sbin" command -v "${COMMAND_OF_PACKAGE[$package]}" >/dev/null 2>&1
}

usage() {
    printf 'usage: %s [--deploy-validators] [--node] [--browser] [--monitoring]\n' "$0" >&2
    printf '  --deploy-validators  also docker-compose (client only, no engine) and kubectl, which check\n' >&2
    printf '                       docker-compose.yml and k8s/ offline\n' >&2
    printf '  --node               also npm (it installs the HiPS viewer, Aladin Lite, from the npm registry)\n' >&2
    printf '  --browser            also Chromium (the browser tests drive it headless)\n' >&2
    printf '  --monitoring         also Prometheus and promtool (the alerting rules and dashboards are checked\n' >&2
    printf '                       with promtool, and a real Prometheus scrapes a run of the system)\n' >&2
    exit 2
}

main() {
    while (($# > 0)); do
        case "$1" in
            --deploy-validators)
                PACKAGES+=(docker-compose kubernetes-client)
                COMMAND_OF_PACKAGE[docker-compose]=docker-compose
                COMMAND_OF_PACKAGE[kubernetes-client]=kubectl
                ;;
            --node)
                PACKAGES+=(npm)
                COMMAND_OF_PACKAGE[npm]=npm
                COMMAND_IS_ENOUGH[npm]=1  # a Node.js from elsewhere (nodesource, nvm) does as well
                ;;
            --browser)
                PACKAGES+=(chromium)
                COMMAND_OF_PACKAGE[chromium]=chromium
                ;;
            --monitoring)
                # Debian's prometheus brings promtool too; Grafana has no Debian package (its dashboards
                # are checked as JSON, their queries with promtool and this Prometheus).
                PACKAGES+=(prometheus)
                COMMAND_OF_PACKAGE[prometheus]=promtool
                ;;
            *) usage ;;
        esac
        shift
    done
    command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: the stack scripts need Debian or Ubuntu"

    local missing=() package
    for package in "${PACKAGES[@]}"; do
        package_is_installed "$package" || missing+=("$package")
    done
    if ((${#missing[@]} == 0)); then
        log "all packages present (${PACKAGES[*]})"
        return 0
    fi

    log "installing: ${missing[*]}"
    local started=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    # Debian's invoke-rc.d would try to start the services on install; with no init system it only
    # complains, and the stack scripts start them bound to 127.0.0.1 anyway.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

    for package in "${missing[@]}"; do
        package_is_installed "$package" || die "package $package is still missing after apt-get install"
    done
    log "installed ${missing[*]} in $((SECONDS - started))s"
}

main "$@"
