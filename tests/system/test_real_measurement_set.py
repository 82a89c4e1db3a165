"""A real, non-simulated Measurement Set through the whole science chain.

The MS is a minute of VLA Ka-band data on the quasar J1008+0730 (project TDEM0003, from the pyuvdata 2.4.5
wheel): two 64-channel spws near 36.3 GHz, 28 antennas with 25 m dishes, circular polarisations, some rows
flagged, and no STATE table, so no scan intents at all. Everything a simulation of ours would get right by
construction is different here, which is the point: the chain must treat the lone field as the target,
say plainly that nothing could calibrate it, and still give images with valid headers.

Its DATA are raw: amplitudes are correlation coefficients (~1.3e-3) and the baselines' phases, steady in
time, scatter by ~80 degrees from one baseline to the next, so the quasar does not appear in the images.
That is the right result for uncalibrated data; what is checked is that the chain says so and delivers.
"""

import shutil
import time

import numpy as np
import pytest
from aperture_contracts.enums import JobState, MousState, Stage
from aperture_contracts.qa import QABand
from astropy.io import fits
from astropy.wcs import WCS

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

REAL_MS = "day2_TDEM0003_10s_norx_1scan.ms"
TARGET = "J1008+0730"
STAGES = ["ingest", "calibration", "findcont", "imaging"]


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
def test_a_real_vla_measurement_set_comes_out_as_images(system, casa_tools, pyuvdata_data, tmp_path):
    package = tmp_path / "package" / REAL_MS
    shutil.copytree(pyuvdata_data / REAL_MS, package)
    system.env["APERTURE_ENABLED_STAGES"] = ",".join(STAGES)
    system.start_coordinator()
    for stage in STAGES:
        system.start_worker(stage)
    with system.client() as client:
        submitted = client.submit(package.parent)
        mous_id = submitted.summary.mous_id
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            detail = client.get_mous(mous_id)
            if detail.state in {MousState.WAITING_FOR_SERVICE, MousState.FAILED, MousState.COMPLETED}:
                break
            time.sleep(2)
        assert detail.state is MousState.WAITING_FOR_SERVICE, (detail.reason, detail.errors)
        products = client.download_products(mous_id, tmp_path / "products")
    jobs = {job.job_id: job for job in detail.jobs}
    assert all(job.state is JobState.SUCCEEDED for job in jobs.values() if job.stage in
               (Stage.INGEST, Stage.CALIBRATION, Stage.FINDCONT, Stage.IMAGING))

    # No intents and no calibrators: the calibration stage says so, and that QA is not green.
    calibrator_scores = [score for score in detail.qa if "calibrator" in score.message.lower()]
    assert calibrator_scores, [score.message for score in detail.qa]
    assert all(score.band is not QABand.GOOD for score in calibrator_scores), calibrator_scores

    names = sorted(path.name for path in (tmp_path / "products").iterdir())
    images = [name for name in names if name.endswith(".pbcor.fits") and TARGET in name]
    assert any(".mfs." in name for name in images), names
    assert any(".cube." in name for name in images), names
    assert any(name.endswith(".cont.dat") for name in names), names
    for name in images:
        with fits.open(tmp_path / "products" / name) as hdus:
            header, data = hdus[0].header, hdus[0].data
            assert WCS(header).has_celestial, name
            assert header["OBJECT"] == TARGET and header["TELESCOP"] in {"EVLA", "VLA"}, name
            assert header.get("BMAJ", 0) > 0 or "BEAMS" in hdus, f"{name} carries no beam"
            assert 36.0e9 < header["CRVAL3"] < 36.6e9 or header["CTYPE3"] != "FREQ", name
            assert data is not None and np.isfinite(data).any() and np.nanstd(data) > 0, f"{name} is empty"
    assert products
