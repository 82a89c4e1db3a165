#!/usr/bin/env bash
# `make test`: start the real servers the suite needs (reusing running ones), run every test, and stop
# what this run started. Under CI=true a test whose server or CASA is missing fails instead of skipping.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
stack="$root/tools/stack"

# Stop only what this run started: servers someone else had running stay up.
started="$(mktemp)"
cleanup() { "$stack/down.sh" --started-file "$started" || true; rm -f "$started"; }
trap cleanup EXIT
trap "exit 130" INT TERM HUP PIPE  # so that the EXIT trap runs when interrupted too
"$stack/up.sh" --with-postgres --started-file "$started"

# docker-compose.yml and k8s/ are validated offline with docker-compose (client only) and kubectl; pages
# (the weblog, the HiPS viewer) are tested in a headless Chromium; the alerting rules and dashboards with
# promtool and a real Prometheus.
"$stack/install.sh" --deploy-validators --browser --monitoring
"$root/tools/deploy/crd-schemas.sh"  # npm: KEDA's and the Prometheus Operator's CRD schemas, for k8s/overlays

set +e
"$root/.venv/bin/pytest" "$@"
status=$?
set -e
# pytest's 5 means it collected nothing: that is a failure here, never a pass.
exit "$status"
