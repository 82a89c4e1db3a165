"""The whole chain through the real system: ingest -> calibration -> findcont -> continuum subtraction and
imaging -> previews, footprints -> export, each stage its own worker process, with several imaging workers
taking the fanned-out jobs; the cubes are imaged in two channel chunks each and joined. The package that
comes out is downloaded as a person would, and checked (product_checks)."""

import ast
import json
import time

import pytest
from aperture_contracts.enums import JobState, MousState, Stage
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from product_checks import (
    check_fits_products,
    check_footprints,
    check_hips,
    check_manifest,
    check_pages_in_browser,
)

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

MOUS_UID = "uid://A001/X3a1/X7"
KEY = "uid___A001_X3a1_X7"
STAGES = ["ingest", "calibration", "findcont", "imaging", "previews", "footprint", "export"]


# astropy notes that it derived MJD-OBS from DATE-OBS: a fix-up, not a fault of the product.
@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
def test_an_mous_comes_out_as_primary_beam_corrected_images(system, generated_mous, tmp_path):
    system.env["APERTURE_ENABLED_STAGES"] = ",".join(STAGES)
    system.env["APERTURE_CUBE_CHUNK_CHANNELS"] = "32"  # the 64-channel cubes in two chunks each
    system.start_coordinator()
    for stage in STAGES:
        system.start_worker(stage)
    system.start_worker("imaging")  # the image jobs fan out over two imaging workers
    with system.client() as client:
        client.submit(generated_mous.package)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            detail = client.get_mous(MOUS_UID)
            if detail.state in {MousState.WAITING_FOR_SERVICE, MousState.FAILED, MousState.COMPLETED}:
                break
            time.sleep(2)
        assert detail.state is MousState.COMPLETED, (detail.reason, detail.errors)
        downloads = client.download_products(MOUS_UID, tmp_path / "products")
    jobs = {job.job_id: job for job in detail.jobs}
    done = {job_id for job_id, job in jobs.items() if job.state is JobState.SUCCEEDED}
    assert set(jobs) == done
    workers = {job.attempts[-1].worker for job in jobs.values() if job.stage is Stage.IMAGING}
    assert len(workers) == 2, "the imaging jobs should have been shared by both imaging workers"
    truth = generated_mous.truth
    target = next(f for f in truth.fields if any(i.startswith("OBSERVE_TARGET") for i in f.intents))
    slug = target.name.lower()
    for spw in truth.spws:
        chunks = [f"r1.imaging.cube_chunk.{slug}.spw{spw.spw_id}.c{number}of2" for number in (1, 2)]
        assert set(chunks) <= done
        assert jobs[f"r1.imaging.cube.{slug}.spw{spw.spw_id}"].depends_on == chunks
    chunk_workers = {job.attempts[-1].worker for job in jobs.values() if job.kind == "cube_chunk"}
    print(
        "imaging jobs (s): " + ", ".join(
            f"{job_id.removeprefix('r1.imaging.')} "
            f"{(job.attempts[-1].ended_at - job.attempts[-1].started_at).total_seconds():.1f}"
            for job_id, job in jobs.items() if job.stage is Stage.IMAGING
        ) + f"; chunks ran on {len(chunk_workers)} worker(s)"
    )

    names = {path.name for path in (tmp_path / "products").iterdir()}
    # Chunk images are intermediates: only the joined cube, named as a cube made in one job, is a product.
    assert not [name for name in names if "chunk" in name]
    for spw in truth.spws:
        assert f"{KEY}.{target.name}_sci.spw{spw.spw_id}.mfs.I.pbcor.fits" in names
        assert f"{KEY}.{target.name}_sci.spw{spw.spw_id}.cube.I.pbcor.fits" in names
        assert f"{KEY}.{target.name}_sci.spw{spw.spw_id}.cont.dat" in names
    products = tmp_path / "products"
    point = next(c for c in target.components if c.shape == "point")
    disc = next(c for c in target.components if c.lines)
    mfs = products / f"{KEY}.{target.name}_sci.spw0.mfs.I.pbcor.fits"
    with fits.open(mfs) as hdus:
        header, data = hdus[0].header, hdus[0].data
        wcs = WCS(header)
        assert wcs.has_celestial and header["BMAJ"] > 0 and header["BMIN"] > 0
        assert header["OBJECT"] == target.name
        # The point source is where the simulation put it, with its flux (primary-beam corrected).
        x, y = (float(v) for v in wcs.celestial.world_to_pixel_values(point.ra_deg, point.dec_deg))
        plane = data[0, 0]
        peak = plane[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3].max()
        frequency = header["CRVAL3"]
        expected = point.flux_jy * (frequency / point.reference_frequency_hz) ** point.spectral_index
        assert abs(peak - expected) < 0.2 * expected, (peak, expected)
    line = disc.lines[0]
    cube = products / f"{KEY}.{target.name}_sci.spw{line.spw_id}.cube.I.pbcor.fits"
    with fits.open(cube) as hdus:
        header, data = hdus[0].header, hdus[0].data
        assert header["SPECSYS"] == "LSRK"
        assert header["NAXIS3"] == 64 and len(hdus["BEAMS"].data) == 64
        wcs = WCS(header)
        x, y = (float(v) for v in wcs.celestial.world_to_pixel_values(disc.ra_deg, disc.dec_deg))
        spectrum = data[0, :, int(round(y)), int(round(x))]
        channel = int(spectrum.argmax())
        found_hz = float(wcs.spectral.pixel_to_world_values(channel))
        width_hz = abs(header["CDELT3"])
        # The line sits where it should, and the continuum was subtracted away from it.
        assert abs(found_hz - line.centre_frequency_lsrk_hz) <= 1.5 * width_hz, (found_hz, line)
        assert abs(float(spectrum[:5].mean())) < 0.2 * float(spectrum.max())
    assert downloads

    # The package (issue 4): names, WCS and beams; the manifest; footprints; HiPS; pages in a browser.
    images = check_fits_products(products)
    manifest = check_manifest(products, KEY)
    listed = {file.name for file in manifest.files}
    assert f"{KEY}.casa_commands.log" in listed and "weblog/index.html" in listed
    parameters = json.loads((products / f"{KEY}.job_parameters.json").read_text())
    assert set(parameters["jobs"]) == set(jobs) - {"r1.export"}
    commands = (products / f"{KEY}.casa_commands.log").read_text()
    ast.parse(commands)  # runnable Python: every call, with its parameters, can be pasted into CASA
    assert all(f"\n{task}(" in commands for task in ("flagdata", "applycal", "tclean", "exportfits"))
    for spw in truth.spws:  # each cube's moment maps and spectrum, each image's quick-look and thumbnail
        cube = f"{KEY}.{target.name}_sci.spw{spw.spw_id}.cube.I.pbcor"
        assert {f"{cube}.mom0.fits", f"{cube}.mom8.fits", f"{cube}.spectrum.png", f"{cube}.png"} <= listed
        assert f"{KEY}.{target.name}_sci.spw{spw.spw_id}.mfs.I.pbcor.thumb.png" in listed
    position = SkyCoord(target.ra_deg, target.dec_deg, unit="deg")
    footprints = check_footprints(products, position)
    assert footprints == len([job for job in jobs.values() if job.stage is Stage.FOOTPRINT])
    (hips,) = check_hips(products)
    tile_requested = "() => performance.getEntriesByType('resource').some(r => r.name.includes('Norder'))"
    check_pages_in_browser(hips, ["index.html"], wait_for=tile_requested)
    weblog_pages = sorted(p.relative_to(products).as_posix() for p in (products / "weblog").rglob("*.html"))
    check_pages_in_browser(products, weblog_pages)
    print(f"package: {len(manifest.files)} files, {images} FITS images, {footprints} footprints, "
          f"{len(weblog_pages)} weblog pages, HiPS {hips.name}")
