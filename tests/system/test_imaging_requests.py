"""A user's imaging request through the real system: the `fine_channels` MOUS (CO(2-1) at +50 km/s in 2.54
km/s channels) is processed by every stage, then an astronomer asks for a velocity cube of 20 channels of
5 km/s in LSRK, which the imaging and previews workers make from the run's calibrated and continuum-subtracted
data; the delivered FITS cube has exactly that spectral axis and the line where the truth puts it. A second
request is cancelled while its cube is being imaged: the CASA process working on it is stopped, its scratch
is gone, nothing is listed and what it had stored is removed."""

import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from aperture_contracts.enums import JobState, MousState
from aperture_contracts.requests import ProductList, RequestState, RequestView
from astropy.io import fits
from astropy.wcs import WCS

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

MOUS_UID = "uid://A001/X3a1/X7"
KEY = "uid___A001_X3a1_X7"
STAGES = ["ingest", "calibration", "findcont", "imaging", "previews", "footprint", "export"]
CO_REST_HZ = 230.538e9
C_KMS = 299_792.458
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
TOKENS = '{"alice-token": {"user": "alice"}, "bob-token": {"user": "bob"}}'


@pytest.fixture(scope="module")
def fine_mous(casa_tools, tmp_path_factory):
    from aperture_testdata.generator import generate_mous

    root: Path = tmp_path_factory.mktemp("fine-request-mous")
    generated = generate_mous(root / "mous", seed=1, scenario="fine_channels", package=root / "mous.tar.gz")
    print(f"fine_channels MOUS simulated in {generated.seconds:.1f} s")
    return generated


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def request_view(api: httpx.Client, request_id: str) -> RequestView:
    response = api.get(f"/api/v1/requests/{request_id}", headers=ALICE)
    assert response.status_code == 200, response.text
    return RequestView.model_validate(response.json())


def cube_request(start_kms: float, width_kms: float, nchan: int) -> dict:
    axis = {"mode": "velocity", "start": start_kms, "width": width_kms, "nchan": nchan,
            "rest_frequency_hz": CO_REST_HZ, "velocity_convention": "radio", "frame": "LSRK"}
    return {"mous_id": MOUS_UID, "cubes": [{"spw_id": 0, "spectral_axis": axis}]}


def processes_working_in(job_id: str) -> list[psutil.Process]:
    """Processes whose working directory is a scratch directory of the job (a CASA step runs there)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if job_id in process.cwd():
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
def test_a_velocity_cube_request_is_delivered_on_its_axis_and_a_cancelled_one_leaves_nothing(
    system, fine_mous, tmp_path
):
    system.env["APERTURE_ENABLED_STAGES"] = ",".join(STAGES)
    system.env["APERTURE_API_TOKENS"] = TOKENS
    system.env["APERTURE_REQUEST_CLEANUP_GRACE_S"] = "2"
    system.start_coordinator()
    for stage in STAGES:
        system.start_worker(stage)
    scratch = Path(system.env["APERTURE_CASA_SCRATCH_ROOT"])
    with system.client() as client:
        client.submit(fine_mous.package)
        detail = wait_for(
            lambda: (d := client.get_mous(MOUS_UID)).state in {MousState.COMPLETED, MousState.FAILED} and d,
            900, "the MOUS to be processed", poll_s=2,
        )
        assert detail.state is MousState.COMPLETED, (detail.reason, detail.errors)

    with httpx.Client(base_url=system.api_url, timeout=30) as api:
        # -- a velocity cube around CO(2-1), delivered and checked -------------------------------------
        asked = time.monotonic()
        created = api.post("/api/v1/requests", json=cube_request(0.0, 5.0, 20), headers=ALICE)
        assert created.status_code == 201, created.text
        request_id = created.json()["request_id"]
        version = wait_for(
            lambda: (v := request_view(api, request_id).versions[0]).state.terminal and v, 600, "the request"
        )
        print(f"request {request_id}: {version.state.value} in {time.monotonic() - asked:.1f} s "
              f"({version.progress.total} jobs, estimate {version.estimate.run_time_s:.0f} s): {version.reason}")
        assert version.state is RequestState.SUCCEEDED, version.reason
        assert version.passed_qa is True, [check.notes for check in version.qa]
        cube_check = next(check for check in version.qa if check.kind.value == "cube")
        print(f"cube QA: rms {cube_check.rms_ratio:.2f} x expected, beam {cube_check.beam_ratio} x expected")

        listing = ProductList.model_validate(
            api.get(f"/api/v1/requests/{request_id}/versions/1/products", headers=ALICE).json()
        )
        assert api.get(f"/api/v1/requests/{request_id}/versions/1/products", headers=BOB).status_code == 404
        (cube,) = [p for p in listing.products if p.image_kind and p.image_kind.value == "cube" and p.kind == "pbcor"]
        assert {p.kind for p in listing.products} >= {"pbcor", "image", "pb", "quicklook", "moment0"}
        path = tmp_path / cube.name
        path.write_bytes(httpx.get(cube.url, timeout=60).content)  # the link needs no token
        assert path.stat().st_size == cube.size

        disk, co = _co_line(fine_mous.truth)
        with fits.open(path) as hdus:
            header, data = hdus[0].header, np.array(hdus[0].data[0])
        assert header["NAXIS3"] == 20 and header["SPECSYS"] == "LSRK"
        assert header["RESTFRQ"] == pytest.approx(CO_REST_HZ)
        wcs = WCS(header)
        velocities = C_KMS * (1 - wcs.spectral.pixel_to_world_values(np.arange(20)) / CO_REST_HZ)
        error = float(np.max(np.abs(velocities - np.arange(20) * 5.0)))
        x, y = (int(round(float(v))) for v in wcs.celestial.world_to_pixel_values(disk.ra_deg, disk.dec_deg))
        spectrum = data[:, y - 2:y + 3, x - 2:x + 3].mean(axis=(1, 2))
        peak = float(velocities[int(np.argmax(spectrum))])
        print(f"delivered cube: 0..95 km/s by 5 within {error:.1e} km/s; CO peak at {peak:.1f} km/s "
              f"(truth {co.velocity_kms:.2f})")
        assert error < 1e-3
        assert abs(peak - co.velocity_kms) <= 5.0

        # -- a request cancelled while its cube is imaged ---------------------------------------------
        created = api.post("/api/v1/requests", json=cube_request(-60.0, 2.6, 60), headers=ALICE)
        assert created.status_code == 201, created.text
        doomed = created.json()["request_id"]
        cube_job = next(job.job_id for job in request_view(api, doomed).versions[0].jobs if job.kind == "cube")
        working = wait_for(lambda: processes_working_in(cube_job), 300, "CASA to work on the cube", poll_s=0.2)
        print(f"cancelling {doomed} while pids {[p.pid for p in working]} work on {cube_job}")
        cancelled = api.post(f"/api/v1/requests/{doomed}/cancel", headers=ALICE)
        assert cancelled.status_code == 200
        assert RequestView.model_validate(cancelled.json()).versions[0].state is RequestState.CANCELLED
        wait_for(lambda: not any(p.is_running() for p in working), 30, "the CASA process to be stopped", 0.2)
        wait_for(lambda: not processes_working_in(cube_job), 30, "no process in the job's scratch", 0.2)
        wait_for(lambda: not [d for d in scratch.iterdir() if cube_job in d.name], 30, "the scratch to go", 0.2)
        view = request_view(api, doomed).versions[0]
        assert all(job.state in (JobState.CANCELLED, JobState.SUCCEEDED) for job in view.jobs)
        refused = api.get(f"/api/v1/requests/{doomed}/versions/1/products", headers=ALICE)
        assert refused.status_code == 409 and "cancelled" in refused.text
        prefix = f"mous/{KEY}/requests/{doomed}/"
        store = system.store()
        wait_for(lambda: not list(store.list(prefix)), 60, "the cancelled version's outputs to be removed")
        # The first request's products are untouched.
        assert list(store.list(f"mous/{KEY}/requests/{request_id}/"))


def _co_line(truth):
    target = next(f for f in truth.fields if any(i.startswith("OBSERVE_TARGET") for i in f.intents))
    disk = next(c for c in target.components if c.lines)
    co = next(line for line in disk.lines if line.spw_id == 0)
    return disk, co
