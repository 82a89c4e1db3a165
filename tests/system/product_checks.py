"""Checks of a downloaded export package (issue 4's "what must be shown"), each raising AssertionError with
what is wrong: FITS products open with a celestial WCS and a beam under ALMA names; the manifest matches the
files; footprints contain the target and exclude a far point; the HiPS is valid; the HiPS viewer and the
weblog load in a real browser with no errors, broken links or remote requests."""

import json
import re
import warnings
from pathlib import Path

import numpy as np
from aperture_contracts.manifest import Manifest
from aperture_export.manifest import verify_manifest
from aperture_footprint.stcs import parse_stcs_polygon
from aperture_previews.hips_validation import validate_hips
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from mocpy import MOC
from support.browser import headless_browser, record_page, serve_folder

# <mous>.<target>_sci.spw<ids>.<kind>.I[.tt0].<role>.fits, and the cube maps made of a cube
IMAGE_NAME = re.compile(
    r"^uid___[A-Za-z0-9_]+\.[A-Za-z0-9+.-]+_sci\.spw\d+(_\d+)*\.(mfs|cont|cube)\.I\.(tt0\.)?"
    r"(pbcor|image|pb|residual|mask|alpha)\.fits$"
)
CUBE_MAP_NAME = re.compile(r"\.cube\.I\.pbcor\.(mom0|mom8)\.fits$")


def image_fits(folder: Path) -> list[Path]:
    """The FITS images of the package (not MOCs, not HiPS tiles)."""
    return sorted(p for p in folder.glob("*.fits") if not p.name.endswith(".moc.fits"))


def check_fits_products(folder: Path) -> int:
    """Every FITS image has an ALMA name, a celestial WCS and a beam; returns how many were checked."""
    images = image_fits(folder)
    assert images, f"no FITS image in {folder}"
    for path in images:
        assert IMAGE_NAME.match(path.name) or CUBE_MAP_NAME.search(path.name), f"{path.name}: not an ALMA name"
        with fits.open(path) as hdus, warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            header = hdus[0].header
            assert WCS(header).has_celestial, f"{path.name}: no celestial WCS"
            beams = "BEAMS" in hdus and len(hdus["BEAMS"].data) > 0
            assert beams or header.get("BMAJ", 0) > 0, f"{path.name}: no restoring beam"
    return len(images)


def check_manifest(folder: Path, mous_key: str) -> Manifest:
    manifest = Manifest.model_validate_json((folder / f"{mous_key}.manifest.json").read_text())
    problems = verify_manifest(folder, manifest)
    assert not problems, [f"{p.kind}: {p.name} ({p.detail})" for p in problems]
    return manifest


def check_footprints(folder: Path, target: SkyCoord) -> int:
    """Each MOC and each s_region contains the target and excludes a point 2 arcmin away (beyond the
    ~25" band-6 primary beam); returns how many footprints were checked."""
    far = target.directional_offset_by(0 * u.deg, 2 * u.arcmin)
    mocs = sorted(folder.glob("*.moc.fits"))
    assert mocs, "no MOC"
    for path in mocs:
        moc = MOC.from_fits(path)
        inside = moc.contains_lonlat(target.ra, target.dec)
        outside = moc.contains_lonlat(far.ra, far.dec)
        assert bool(np.all(inside)) and not bool(np.any(outside)), f"{path.name}: footprint misses the target"
        record = json.loads((folder / path.name.replace(".moc.fits", ".obscore.json")).read_text())[0]
        polygon = parse_stcs_polygon(record["s_region"])
        assert polygon.contains(target.ra.deg, target.dec.deg).all(), f"{path.name}: s_region misses the target"
        assert not polygon.contains(far.ra.deg, far.dec.deg).any(), f"{path.name}: s_region reaches 2' away"
    return len(mocs)


def check_hips(folder: Path) -> list[Path]:
    roots = sorted(p for p in folder.glob("*.hips") if p.is_dir())
    assert roots, "no HiPS"
    for root in roots:
        problems = validate_hips(root)
        assert not problems, (root.name, problems)
    return roots


def check_pages_in_browser(base_folder: Path, pages: list[str], wait_for: str | None = None) -> None:
    """Open each page (relative to base_folder) from a local server: no console or page errors, no failed
    requests, no 4xx/5xx, nothing from other hosts, every image decoded."""
    with serve_folder(base_folder) as base, headless_browser() as browser:
        for page_name in pages:
            page = browser.new_page()
            record = record_page(page)
            page.goto(f"{base}/{page_name}", wait_until="networkidle")
            if wait_for:
                page.wait_for_function(wait_for, timeout=30_000)
            broken = page.evaluate(
                "() => [...document.images].filter(i => i.loading !== 'lazy' && !(i.complete && i.naturalWidth > 0))"
                ".map(i => i.src)"
            )
            problems = {
                "console errors": record.console_errors, "page errors": record.page_errors,
                "failed requests": record.failed_requests, "bad responses": record.bad_responses,
                "remote requests": record.remote_requests, "broken images": broken,
            }
            assert not any(problems.values()), (page_name, {k: v for k, v in problems.items() if v})
            page.close()
