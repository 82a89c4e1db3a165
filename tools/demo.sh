#!/usr/bin/env bash
# `make demo`: from a fresh clone, start the stack, make a demonstration MOUS with CASA's simulator,
# submit it, wait, download its package (images, previews, HiPS, footprints, weblog, manifest), print what
# happened, and stop what was started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bin="$root/.venv/bin"
# Tables are easier to read wider than the 80 columns rich assumes when output is not a terminal.
export COLUMNS="${COLUMNS:-140}"
demo="$root/var/demo"

# Stop only what this demo started: servers and services that were already running stay up.
started="$(mktemp)"
services_were_running=$("$root/tools/stack/services.sh" status | grep -c running || true)
cleanup() {
  if [[ "$services_were_running" == 0 ]]; then "$root/tools/stack/services.sh" stop || true; fi
  "$root/tools/stack/down.sh" --started-file "$started" || true
  rm -f "$started"
}
trap cleanup EXIT
trap "exit 130" INT TERM HUP PIPE  # so that the EXIT trap runs when interrupted too
"$root/tools/stack/up.sh" --started-file "$started"
"$root/tools/stack/services.sh" start

echo
echo "== generating a demonstration MOUS with CASA's simulator (ALMA configuration, 2 spws, calibrators)"
rm -rf "$demo"
# casacore warns once per process that its leap second table's date stamp is old (the table itself is
# current to casadata's release; see shared/aperture_shared/casa/config.py); the demo hides that one.
"$bin/aperture-make-mous" "$demo" --seed 7 --mous-uid uid://A001/X3a1/X7 --package "$demo/package.tar" \
  2> >(grep -v -e "Leap second table TAI_UTC" -e "Until the table is updated" -e "derived from UTC could be wrong" >&2)

echo
echo "== submitting it"
"$bin/aperture" submit "$demo/package.tar" --rerun --wait --download "$demo/products"

echo
echo "== its state, metadata and planned job graph"
"$bin/aperture" status uid://A001/X3a1/X7
echo
echo "products downloaded to $demo/products:"
ls -l "$demo/products"
echo
echo "the weblog: $demo/products/weblog/index.html (a browser opens it from disk);"
echo "the HiPS viewer needs http: python3 -m http.server -d $demo/products, then open <that>/*.hips/index.html"
