"""The imaging worker as a real process on real RabbitMQ, S3 and CASA, driven by job messages as the
coordinator sends them: a product too large for its limits fails with a clear reason, then the target's
continuum is subtracted and a cube is made from the subtracted data, its FITS stored as products."""

from datetime import UTC, datetime

import pytest
from aperture_contracts import topology
from aperture_contracts.enums import ErrorClass, ImagingKind, Stage
from aperture_contracts.imaging import ImagingOverrides, ProductSizeLimits
from aperture_contracts.jobs import ImagingJob
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.qa import QABand
from aperture_contracts.storage import ObjectRef
from aperture_shared.messaging import Broker
from imaging_truth import TARGET, truth_continuum
from support.events import EventCollector
from support.processes import stage_worker

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

MOUS = "uid://A001/X3a1/X7"
MOUS_KEY = "uid___A001_X3a1_X7"










@pytest.fixture
def worker(env, tmp_path):
    process = stage_worker("imaging", env, tmp_path / "logs").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def metadata(calibrated_mous) -> MousMetadata:
    """What ingest would have recorded for the MOUS (its own code, on the same MS)."""
    from aperture_ingest.measurement_set import describe_measurement_set, merge_metadata

    return merge_metadata([describe_measurement_set(calibrated_mous.ms)], calibrated=True)


def job(kind: ImagingKind, spws: list[int], measurement_sets: list[ObjectRef], metadata: MousMetadata, truth,
        run: int = 1, **fields) -> ImagingJob:
    suffix = f".spw{spws[0]}" if len(spws) == 1 else ""
    job_id = f"r{run}.imaging.{kind.value}.simgalaxy{suffix}"
    return ImagingJob(
        mous_id=MOUS, job_id=job_id, attempt=1, output_prefix=f"mous/{MOUS_KEY}/work/{job_id}/",
        products_prefix=f"mous/{MOUS_KEY}/products/", time_limit_s=600, created_at=datetime.now(UTC),
        kind=kind, target=TARGET, spw_ids=spws, measurement_sets=measurement_sets,
        continuum=[ranges for ranges in truth_continuum(truth) if ranges.spw_id in spws], metadata=metadata,
        **fields,
    )


async def dispatch(broker: Broker, message: ImagingJob) -> None:
    await broker.publish_model(
        topology.JOBS_EXCHANGE, Stage.IMAGING.value, message, message_id=f"{message.job_id}:{message.attempt}"
    )


async def finished(events: EventCollector, job_id: str):
    return await events.wait_for(
        lambda e: e.job_id == job_id and e.event_type in ("job.succeeded", "job.failed"), timeout=180,
        what=f"the end of {job_id}",
    )


async def test_worker_refuses_an_oversized_product_then_subtracts_the_continuum_and_makes_a_binned_cube(
    broker, events, worker, store, calibrated_mous, metadata, tmp_path, astropy_fits
):
    truth = calibrated_mous.truth
    calibrated = store.put_directory(
        f"mous/{MOUS_KEY}/work/r1.calibration/measurement_sets/{calibrated_mous.ms.name}.tar",
        calibrated_mous.ms, tmp_path,
    )

    # A cube whose limits no mitigation can meet fails as bad input, naming sizes and limits.
    oversized = job(ImagingKind.CUBE, [0], [calibrated], metadata, truth, run=0,
                    size_limits=ProductSizeLimits(max_cube_bytes=10_000, max_cube_hard_bytes=20_000))
    await dispatch(broker, oversized)
    refused = await finished(events, oversized.job_id)
    assert refused.event_type == "job.failed"
    assert refused.error_class is ErrorClass.PRODUCT_TOO_LARGE
    assert "too large to make" in refused.message and "hard limit of 2e-05 GB" in refused.message
    assert worker.alive()

    # Continuum subtraction of the target: one continuum-subtracted MS, each spw's fit reported.
    contsub = job(ImagingKind.CONTSUB, [0, 1], [calibrated], metadata, truth)
    await dispatch(broker, contsub)
    subtracted = await finished(events, contsub.job_id)
    assert subtracted.event_type == "job.succeeded", getattr(subtracted, "message", "")
    (ms_ref,) = subtracted.result.measurement_sets
    assert ms_ref.key == f"{contsub.output_prefix}measurement_sets/uid___A002_Xsim_X1.SimGalaxy.contsub.ms.tar"
    assert store.stat(ms_ref.key).sha256 == ms_ref.sha256
    assert [score.score for score in subtracted.qa] == [1.0, 1.0]
    assert [call.task for call in subtracted.casa_calls] == ["uvcontsub"]
    # For the run ledger: how much memory the job's CASA took, and which Aperture ran it.
    assert subtracted.peak_memory_mb is not None and 100 < subtracted.peak_memory_mb < 8192
    assert subtracted.software_version.startswith("aperture ")
    assert refused.peak_memory_mb is not None and refused.software_version == subtracted.software_version

    # The cube of spw 0 from the subtracted data, channels binned by 2 on request.
    cube = job(ImagingKind.CUBE, [0], subtracted.result.measurement_sets, metadata, truth,
               overrides=ImagingOverrides(channel_binning=2))
    await dispatch(broker, cube)
    imaged = await finished(events, cube.job_id)
    assert imaged.event_type == "job.succeeded", getattr(imaged, "message", "")
    (product,) = imaged.result.images
    stem = f"mous/{MOUS_KEY}/products/{MOUS_KEY}.SimGalaxy_sci.spw0.cube.I"
    assert (product.pbcor.key, product.image.key, product.pb.key) == (
        f"{stem}.pbcor.fits", f"{stem}.image.fits", f"{stem}.pb.fits"
    )
    assert sorted(ref.key.removeprefix(stem) for ref in product.extra) == [".mask.fits", ".residual.fits"]
    assert sorted(ref.key for ref in imaged.outputs) == sorted(
        ref.key for ref in [product.pbcor, product.image, product.pb, *product.extra]
    )
    assert product.num_channels == 32 and product.mitigation == []
    assert 0.5 < product.rms_jy / product.theoretical_sensitivity_jy < 2.0
    assert product.qa == imaged.qa and all(score.band != QABand.ERROR for score in imaged.qa)
    downloaded = tmp_path / "cube.pbcor.fits"
    store.get_file(product.pbcor, downloaded)
    header = astropy_fits.getheader(downloaded)
    assert header["NAXIS3"] == 32 and header["SPECSYS"] == "LSRK" and header["MOUSID"] == MOUS
    print(
        f"worker: refused in {refused.duration_s:.1f} s, contsub {subtracted.duration_s:.1f} s, "
        f"binned cube {imaged.duration_s:.1f} s"
    )
