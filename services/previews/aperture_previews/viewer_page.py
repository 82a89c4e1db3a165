"""An offline viewer for a HiPS: `index.html` in the HiPS root and a copy of Aladin Lite beside it.

Aladin Lite 3 comes from the npm registry (services/previews/viewer, installed by
`cd services/previews/viewer && npm ci`); its one file `dist/aladin.js` is an ES module with the WASM core
and the icons inlined, so copying it is all the page needs. Out of the box Aladin Lite reaches other hosts
on start: it logs usage to alasky (`log`), lists surveys from the CDS MOC server (`hipsList`), shows DSS
(`survey`), and treats a survey name that is not an absolute URL as a CDS id to look up. The page turns
each off: `log: false`, `hipsList: []`, the local HiPS as the only survey, given as an absolute URL built
from the page's own location. The controls whose actions query remote services (layers menu with its
survey and catalogue lists, SIMBAD pointer, share, context menu, SAMP) are hidden.

Until Aladin Lite has read the HiPS's Moc.fits it asks for every tile in view, and each one outside the
image is a 404 (and a console error); on a busy machine the first view's tiles go out before the MOC is
read. So the page opens zoomed in on a point deep inside the data (every tile there exists) and shows
the whole image once the MOC has arrived.

The page needs HTTP (any static server, e.g. `python -m http.server` in the HiPS folder): browsers refuse
ES modules and fetch() from file:// pages, and Aladin Lite fetches every tile.

Aladin Lite is GPL-3; its licence text is copied with it.
"""

import html
import json
import shutil
from pathlib import Path

from aperture_previews.hips import HipsSurvey

# Where `npm ci` puts Aladin Lite in a checkout; the service's settings may point elsewhere.
ALADIN_LITE_PACKAGE = Path(__file__).resolve().parents[1] / "viewer" / "node_modules" / "aladin-lite"
INSTALL_COMMAND = "cd services/previews/viewer && npm ci"
VIEWER_FOLDER = "aladin-lite"  # in the HiPS root
TARGET_COLOUR = "#ff5a5a"

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, height=device-height, initial-scale=1.0, user-scalable=no">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>
  html, body {{ margin: 0; height: 100%; background: #1e1e1e; color: #ddd; font-family: sans-serif; }}
  header {{ padding: 0.4em 0.8em; font-size: 0.95em; }}
  #aladin-lite-div {{ position: absolute; top: 2.2em; bottom: 0; left: 0; right: 0; }}
  #viewer-status {{ color: #f88; }}
</style>
</head>
<body>
<header>{title} <span id="viewer-status"></span></header>
<div id="aladin-lite-div"></div>
<script type="application/json" id="viewer-config">{config}</script>
<script>
  // Browsers load no ES module and fetch no tile from a file:// page: say what to do instead.
  if (window.location.protocol === 'file:') {{
    document.getElementById('viewer-status').textContent =
      'This page needs an HTTP server: run "python3 -m http.server" in its folder and open http://localhost:8000/';
  }}
</script>
<script type="module">
import A from './{viewer_folder}/aladin.js';

const config = JSON.parse(document.getElementById('viewer-config').textContent);
window.apertureViewer = {{ ready: false }};

const MOC_WAIT_MS = 5000;
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));
const mocFetched = () => performance.getEntriesByType('resource').some((entry) => entry.name.endsWith('/Moc.fits'));

async function afterTheMocIsIn() {{
  const deadline = performance.now() + MOC_WAIT_MS;
  while (!mocFetched() && performance.now() < deadline) await nextFrame();
  // Aladin Lite reads the MOC's body, then applies it on one of its next frames.
  for (let frame = 0; frame < 3; frame++) await nextFrame();
  await new Promise((resolve) => setTimeout(resolve, 100));
}}

try {{
  await A.init;
  // Absolute, without the trailing slash (Aladin Lite appends '/properties', '/Norder...'): a name that
  // is not an absolute URL would be looked up on the CDS MOC server.
  const hipsUrl = new URL('.', window.location.href).href.replace(/\/$/, '');
  const hips = A.HiPS(hipsUrl, {{ name: config.title, imgFormat: config.imageFormat }});
  const view = document.getElementById('aladin-lite-div');
  // Aladin Lite asks for every tile in view until it has read the HiPS's Moc.fits, and a tile outside
  // the image is a 404. So it starts zoomed in on a point deep inside the data, where every tile in view
  // exists, and shows the whole image once the MOC is in.
  const aladin = A.aladin(view, {{
    survey: hips,
    hipsList: [],
    log: false,
    samp: false,
    target: `${{config.start.ra}} ${{config.start.dec}}`,
    fov: config.start.fov,
    cooFrame: 'ICRS',
    showLayersControl: false,
    showSimbadPointerControl: false,
    showShareControl: false,
    showSettingsControl: false,
    showContextMenu: false,
    showCooGridControl: true,
    showProjectionControl: false,
  }});
  const targets = A.catalog({{ name: 'Target', shape: 'cross', color: config.target.colour, sourceSize: 24 }});
  aladin.addCatalog(targets);
  targets.addSources([A.source(config.target.ra, config.target.dec, {{ name: config.target.name }})]);
  await afterTheMocIsIn();
  aladin.gotoRaDec(config.initial.ra, config.initial.dec);
  // Aladin Lite's fov spans the view's width: widen it so that the image fits the height too.
  aladin.setFoV(config.initial.fov * Math.max(1, view.clientWidth / Math.max(1, view.clientHeight)));
  window.apertureViewer = {{ ready: true, aladin }};
}} catch (error) {{
  document.getElementById('viewer-status').textContent = `The viewer could not start: ${{error}}`;
  console.error('viewer start failed', error);
}}
</script>
</body>
</html>
"""


def aladin_lite_script(package: Path = ALADIN_LITE_PACKAGE) -> Path:
    """The Aladin Lite bundle, or a FileNotFoundError that says how to install it."""
    script = package / "dist" / "aladin.js"
    if not script.is_file():
        raise FileNotFoundError(f"Aladin Lite is not installed ({script} is missing): run `{INSTALL_COMMAND}`")
    return script


def write_viewer_page(survey: HipsSurvey, package: Path = ALADIN_LITE_PACKAGE) -> Path:
    """Write `index.html` and Aladin Lite into the HiPS root; return the page's path."""
    script = aladin_lite_script(package)
    folder = survey.root / VIEWER_FOLDER
    folder.mkdir(exist_ok=True)
    shutil.copyfile(script, folder / "aladin.js")
    shutil.copyfile(package / "LICENSE", folder / "LICENSE")
    properties = survey.properties
    config = {
        "title": properties["obs_title"],
        "imageFormat": survey.tile_formats[0].value,
        "initial": {
            "ra": float(properties["hips_initial_ra"]),
            "dec": float(properties["hips_initial_dec"]),
            "fov": float(properties["hips_initial_fov"]),
        },
        # Two of the deepest pixels across: the view touches only the tiles around the interior point.
        "start": {
            "ra": survey.interior_ra_deg,
            "dec": survey.interior_dec_deg,
            "fov": 2 * float(properties["hips_pixel_scale"]),
        },
        "target": {
            "name": survey.target_name,
            "ra": survey.target_ra_deg,
            "dec": survey.target_dec_deg,
            "colour": TARGET_COLOUR,
        },
    }
    page = survey.root / "index.html"
    page.write_text(
        PAGE.format(
            title=html.escape(properties["obs_title"]),
            # '<' escaped so that no value can close the <script> element it sits in
            config=json.dumps(config).replace("<", "\\u003c"),
            viewer_folder=VIEWER_FOLDER,
        ),
        encoding="utf-8",
    )
    return page
