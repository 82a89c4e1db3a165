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

echo
echo "== an astronomer's imaging request: a CO(2-1) velocity cube of the galaxy"
# Worked out from the simulation's truth file, as an astronomer would from the spw setup and the line's
# known velocity: the spw that holds CO(2-1), its channel width in km/s at the line's rest frequency (the API
# refuses channels finer than the data's), and 17 channels of the next multiple of 5 km/s above that,
# centred on the line: an odd count puts a channel on the line's velocity, and ~425 km/s in all lies inside
# the spw (~1300 km/s) with line-free channels at both ends of the 150 km/s wide line.
read -r cube_spw rest_hz line_kms line_fwhm_kms native_kms width_kms start_kms nchan < <(
  "$bin/python" - "$demo/truth.json" <<'PY'
import json, math, sys
truth = json.load(open(sys.argv[1]))
line = next(l for f in truth["fields"] for c in f["components"] for l in c["lines"] if l["transition"] == "CO(2-1)")
spw = next(s for s in truth["spws"] if s["spw_id"] == line["spw_id"])
native_kms = spw["channel_width_hz"] / line["rest_frequency_hz"] * 299_792.458
width_kms, nchan = 5 * math.ceil(native_kms / 5), 17
start_kms = line["velocity_kms"] - width_kms * (nchan - 1) / 2
print(spw["spw_id"], line["rest_frequency_hz"], line["velocity_kms"], line["fwhm_kms"], f"{native_kms:.2f}", width_kms,
      f"{start_kms:g}", nchan)
PY
)
cube="$cube_spw:velocity:$start_kms:$width_kms:$nchan:$rest_hz"
echo "CO(2-1) at $line_kms km/s is in spw $cube_spw, whose channels are $native_kms km/s wide at its rest frequency:"
echo "asking for $nchan channels of $width_kms km/s from $start_kms km/s (radio, LSRK): --cube $cube"
# The local coordinator has no APERTURE_API_TOKENS (tools/stack/services.sh), so it takes the development token.
export APERTURE_API_TOKEN="${APERTURE_API_TOKEN:-aperture-dev-token}"
"$bin/aperture" request create uid://A001/X3a1/X7 --cube "$cube" --estimate
echo
# stdout's first line is the new request's id; --wait exits non-zero unless the version succeeded and passed QA.
"$bin/aperture" request create uid://A001/X3a1/X7 --cube "$cube" --wait | tee "$demo/request.txt" || {
  status=$?
  echo "the imaging request did not succeed and pass QA (exit $status): see above" >&2
  exit "$status"
}
request_id="$(grep -m1 -o '^req-[0-9a-f]*' "$demo/request.txt")"

echo
echo "== the request's products (each file's size and SHA-256 checked)"
"$bin/aperture" request download "$request_id" --to "$demo/request"
cube_fits="$(ls "$demo/request/$request_id"/v*/*.cube.I.pbcor.fits)"
echo
echo "its cube's spectral axis ($(basename "$cube_fits")), and where the line peaks:"
"$bin/python" - "$cube_fits" "$line_kms" "$line_fwhm_kms" <<'PY'
import sys, warnings
import numpy as np
from astropy.io import fits
from astropy.modeling import fitting, models
from astropy.wcs import WCS
warnings.simplefilter("ignore")  # astropy's notes on CASA's header keywords
header, cube = fits.getheader(sys.argv[1]), fits.getdata(sys.argv[1])[0]  # (channel, y, x) of Stokes I
print("  " + "  ".join(f"{key}={header[key]}" for key in ("NAXIS3", "CRVAL3", "CDELT3", "SPECSYS", "RESTFRQ")))
frequencies = WCS(header).spectral.pixel_to_world_values(np.arange(cube.shape[0]))
velocities = 299_792.458 * (1 - frequencies / header["RESTFRQ"])
print(f"  channels: {velocities[0]:+.2f} to {velocities[-1]:+.2f} km/s by {velocities[1] - velocities[0]:.2f} (radio)")
# The spectrum around the brightest pixel of the channel-summed map, fitted with a Gaussian: one channel's
# maximum is a channel width coarse and moves a channel with the noise, the fitted centre does not.
y, x = np.unravel_index(np.nanargmax(np.nansum(cube, axis=0)), cube.shape[1:])
spectrum = np.nanmean(cube[:, y - 5:y + 6, x - 5:x + 6], axis=(1, 2))
peak = int(np.argmax(spectrum))
fit = fitting.TRFLSQFitter()(models.Gaussian1D(spectrum[peak], velocities[peak], 50.0), velocities, spectrum)
print(f"  the line's spectrum (11x11 pixels around x={x} y={y}): brightest in channel {peak} ({velocities[peak]:+.1f} "
      f"km/s, {spectrum[peak] * 1e3:.2f} mJy/beam); Gaussian fit: peak at {fit.mean.value:+.1f} km/s, FWHM "
      f"{fit.fwhm:.0f} km/s (simulated: {float(sys.argv[2]):+.1f} km/s, FWHM {float(sys.argv[3]):.0f} km/s)")
PY
echo
echo "the request's files: $demo/request/$request_id; \`aperture request status $request_id\` shows it again"
