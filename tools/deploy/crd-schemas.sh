#!/usr/bin/env bash
# Installs (npm ci, only when package-lock.json changed) the npm packages that carry the CRD schemas of
# KEDA and the Prometheus Operator, with which tests/deploy/test_k8s_overlays.py checks the custom
# resources of k8s/overlays offline (tools/deploy/crd-schemas.cjs prints them). npm itself comes from
# Debian (tools/stack/install.sh --node) when it is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
stamp="$here/node_modules/.installed"

if [[ -f "$stamp" && "$stamp" -nt "$here/package-lock.json" ]]; then
    exit 0
fi
"$root/tools/stack/install.sh" --node
(cd "$here" && npm ci --no-audit --no-fund)
touch "$stamp"
