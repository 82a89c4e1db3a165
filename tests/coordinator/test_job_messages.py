"""Job messages carry what the jobs they depend on produced: ingest's MSs reach calibration, the calibrated
MSs reach every findcont job, the continuum-subtracted MSs every cube and cube chunk, and the chunks'
images the cube job that joins them (on SQLite and PostgreSQL)."""

import random

import pytest
from aperture_contracts.enums import ErrorClass, ImagingKind, JobState, Stage
from aperture_contracts.events import CalibrationResult, ImagingResult, IngestResult
from aperture_contracts.flux import FluxModel
from aperture_contracts.imaging import Beam, ChannelChunk, CubeChunkImage, ImageProduct
from aperture_contracts.jobs import CalibrationJob, FindcontJob, ImagingJob
from aperture_coordinator.db import Database
from aperture_coordinator.job_messages import MissingInput, dependency_result
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator, Submission

from .conftest import FakeClock
from .factories import (
    MOUS_ID,
    failed,
    ingest_succeeded,
    job_states,
    load_job,
    metadata_for,
    object_ref,
    outbox,
    stage_succeeded,
    started,
)

PACKAGE = object_ref("mous/uid___A001_X2fa_X2dd/input/p.tar", b"package")


@pytest.fixture
def through_findcont(database: Database, settings: CoordinatorSettings, clock: FakeClock) -> Coordinator:
    deployed = settings.model_copy(update={"enabled_stages": [Stage.INGEST, Stage.CALIBRATION, Stage.FINDCONT]})
    return Coordinator(database, deployed, clock=clock, rng=random.Random(3))


def messages(database: Database, stage: Stage) -> list[str]:
    return [row.body for row in outbox(database) if row.routing_key == stage.value]


def test_calibration_gets_the_ingested_measurement_sets_and_metadata(
    through_findcont: Coordinator, database: Database, clock: FakeClock
) -> None:
    through_findcont.submit(Submission(MOUS_ID, PACKAGE, "p.tar"))
    metadata = metadata_for({"NGC 1068": [25, 27]})
    ingested = ingest_succeeded(at=clock.advance(1), metadata=metadata)
    through_findcont.apply_event(started("r1.ingest", at=clock.advance(1)))
    through_findcont.apply_event(ingested)

    (body,) = messages(database, Stage.CALIBRATION)
    job = CalibrationJob.model_validate_json(body)
    assert job.measurement_sets == ingested.result.measurement_sets
    assert job.metadata == metadata
    assert job.output_prefix == "mous/uid___A001_X2fa_X2dd/work/r1.calibration/"


def test_calibration_gets_the_flux_models_of_the_packages_flux_csv(
    through_findcont: Coordinator, database: Database, clock: FakeClock
) -> None:
    through_findcont.submit(Submission(MOUS_ID, PACKAGE, "p.tar"))
    ingested = ingest_succeeded(at=clock.advance(1), metadata=metadata_for({"NGC 1068": [25, 27]}))
    assert isinstance(ingested.result, IngestResult)
    models = [FluxModel(field="J0423-0120", flux_jy=1.2, reference_frequency_hz=343e9, spectral_index=-0.5)]
    ingested.result.flux_models = models
    through_findcont.apply_event(started("r1.ingest", at=clock.advance(1)))
    through_findcont.apply_event(ingested)

    (body,) = messages(database, Stage.CALIBRATION)
    assert CalibrationJob.model_validate_json(body).flux_models == models


def test_every_findcont_job_gets_the_calibrated_measurement_sets_and_its_target_and_spw(
    through_findcont: Coordinator, database: Database, clock: FakeClock
) -> None:
    through_findcont.submit(Submission(MOUS_ID, PACKAGE, "p.tar"))
    through_findcont.apply_event(started("r1.ingest", at=clock.advance(1)))
    through_findcont.apply_event(ingest_succeeded(at=clock.advance(1), metadata=metadata_for({"NGC 1068": [25, 27]})))
    through_findcont.apply_event(
        started("r1.calibration", at=clock.advance(1), stage=Stage.CALIBRATION, worker="calibration:1")
    )
    calibrated = stage_succeeded("r1.calibration", Stage.CALIBRATION, at=clock.advance(1))
    through_findcont.apply_event(calibrated)

    jobs = sorted((FindcontJob.model_validate_json(body) for body in messages(database, Stage.FINDCONT)),
                  key=lambda job: job.spw_id)
    assert [(job.target, job.spw_id) for job in jobs] == [("NGC 1068", 25), ("NGC 1068", 27)]
    assert isinstance(calibrated.result, CalibrationResult)
    assert all(job.measurement_sets == calibrated.result.measurement_sets for job in jobs)
    # Imaging is not deployed: its jobs wait, with the reason.
    states = job_states(database)
    assert states["r1.imaging.mfs.ngc_1068.spw25"] == JobState.PLANNED
    assert {states[job.job_id] for job in jobs} == {JobState.DISPATCHED}


def test_a_job_whose_dependency_left_no_result_is_a_clear_internal_error(
    through_findcont: Coordinator, database: Database
) -> None:
    through_findcont.submit(Submission(MOUS_ID, PACKAGE, "p.tar"))
    with database.transaction() as session:
        job = load_job(database, "r1.ingest")
        job = session.merge(job)
        with pytest.raises(MissingInput, match="r1.ingest has no succeeded calibration job"):
            dependency_result(job, Stage.CALIBRATION, CalibrationResult)


@pytest.fixture
def through_imaging(database: Database, settings: CoordinatorSettings, clock: FakeClock) -> Coordinator:
    stages = [Stage.INGEST, Stage.CALIBRATION, Stage.FINDCONT, Stage.IMAGING]
    return Coordinator(database, settings.model_copy(update={"enabled_stages": stages}), clock=clock,
                       rng=random.Random(4))


def finish(coordinator: Coordinator, database: Database, clock: FakeClock, job_id: str):
    job = load_job(database, job_id)
    coordinator.apply_event(started(job_id, at=clock.advance(1), stage=job.stage, worker=f"{job.stage.value}:1"))
    event = stage_succeeded(job_id, job.stage, at=clock.advance(1), target=job.target, spw_id=job.spw_id,
                            kind=job.kind)
    coordinator.apply_event(event)
    return event


def test_imaging_jobs_read_calibrated_data_and_cubes_read_the_continuum_subtracted_data(
    through_imaging: Coordinator, database: Database, clock: FakeClock
) -> None:
    through_imaging.submit(Submission(MOUS_ID, PACKAGE, "p.tar"))
    through_imaging.apply_event(started("r1.ingest", at=clock.advance(1)))
    through_imaging.apply_event(ingest_succeeded(at=clock.advance(1), metadata=metadata_for({"NGC 1068": [25, 27]})))
    calibrated = finish(through_imaging, database, clock, "r1.calibration").result
    finish(through_imaging, database, clock, "r1.findcont.ngc_1068.spw25")
    finish(through_imaging, database, clock, "r1.findcont.ngc_1068.spw27")

    by_id = {job.job_id: job for job in map(ImagingJob.model_validate_json, messages(database, Stage.IMAGING))}
    assert set(by_id) == {"r1.imaging.contsub.ngc_1068", "r1.imaging.mfs.ngc_1068.spw25",
                          "r1.imaging.mfs.ngc_1068.spw27", "r1.imaging.cont.ngc_1068"}
    for job in by_id.values():
        assert job.measurement_sets == calibrated.measurement_sets
    assert by_id["r1.imaging.mfs.ngc_1068.spw27"].spw_ids == [27]
    assert [c.spw_id for c in by_id["r1.imaging.mfs.ngc_1068.spw27"].continuum] == [27]
    assert by_id["r1.imaging.cont.ngc_1068"].spw_ids == [25, 27]
    assert by_id["r1.imaging.contsub.ngc_1068"].kind is ImagingKind.CONTSUB

    subtracted = finish(through_imaging, database, clock, "r1.imaging.contsub.ngc_1068").result
    cubes = [job for job in map(ImagingJob.model_validate_json, messages(database, Stage.IMAGING))
             if job.kind is ImagingKind.CUBE]
    assert sorted(job.spw_ids[0] for job in cubes) == [25, 27]
    assert all(job.measurement_sets == subtracted.measurement_sets for job in cubes)
    assert all([c.spw_id for c in job.continuum] == job.spw_ids for job in cubes)


def test_an_operators_cont_dat_from_the_package_reaches_every_findcont_job(
    through_findcont: Coordinator, database: Database, clock: FakeClock
) -> None:
    through_findcont.submit(Submission(MOUS_ID, PACKAGE, "p.tar"))
    through_findcont.apply_event(started("r1.ingest", at=clock.advance(1)))
    ingested = ingest_succeeded(at=clock.advance(1), metadata=metadata_for({"NGC 1068": [25, 27]}))
    cont_dat = object_ref("mous/uid___A001_X2fa_X2dd/work/r1.ingest/operator/cont.dat", b"Field: NGC 1068")
    with_cont_dat = ingested.result.model_copy(update={"operator_cont_dat": cont_dat})
    ingested = ingested.model_copy(update={"result": with_cont_dat})
    through_findcont.apply_event(ingested)
    finish(through_findcont, database, clock, "r1.calibration")

    jobs = [FindcontJob.model_validate_json(body) for body in messages(database, Stage.FINDCONT)]
    assert len(jobs) == 2 and all(job.operator_cont_dat == cont_dat for job in jobs)


def chunk_succeeded(database: Database, clock: FakeClock, job_id: str):
    """A chunk job's success with its intermediate image, as the imaging worker reports it."""
    job = load_job(database, job_id)
    chunk = ChannelChunk.model_validate(job.params["chunk"])
    work = f"mous/uid___A001_X2fa_X2dd/work/{job_id}/"
    refs = {role: object_ref(f"{work}x.chunk{chunk.index + 1}of{chunk.count}.{role}.im.tar", job_id.encode())
            for role in ("pbcor", "image", "pb")}
    image = ImageProduct(
        kind=ImagingKind.CUBE_CHUNK, target=job.target, spw_ids=[job.spw_id], **refs,
        beam=Beam(major_arcsec=1.4, minor_arcsec=1.2, position_angle_deg=80), cell_arcsec=0.25, imsize=[180, 180],
        num_channels=chunk.num_channels, frequency_min_hz=230e9, frequency_max_hz=231e9, rms_jy=1e-3, peak_jy=0.1,
        theoretical_sensitivity_jy=1e-3, threshold_jy=4e-3,
        chunk=CubeChunkImage(
            chunk=chunk, first_output_channel=chunk.first_channel, cube_channels=chunk.total_channels,
            channel_binning=1, deconvolver="hogbom", pb_level=0.2, expected_beam_arcsec=1.3, dirty_peak_jy=0.1,
            niter=1000, iterations=10, stopcode=2, stop_description="threshold", peak_residual_growth=1.0,
        ),
    )
    coordinator_event = stage_succeeded(job_id, Stage.IMAGING, at=clock.advance(1), target=job.target,
                                        spw_id=job.spw_id, kind=job.kind)
    result = ImagingResult(kind=ImagingKind.CUBE_CHUNK, target=job.target, spw_ids=[job.spw_id], images=[image])
    return coordinator_event.model_copy(update={"result": result, "outputs": list(refs.values())}), image


@pytest.fixture
def chunking(database: Database, settings: CoordinatorSettings, clock: FakeClock) -> Coordinator:
    """Every built stage deployed; cubes of more than 64 channels in chunks (metadata_for's spws have 128)."""
    stages = [Stage.INGEST, Stage.CALIBRATION, Stage.FINDCONT, Stage.IMAGING]
    return Coordinator(
        database, settings.model_copy(update={"enabled_stages": stages, "cube_chunk_channels": 64}), clock=clock,
        rng=random.Random(5),
    )


def through_contsub(coordinator: Coordinator, database: Database, clock: FakeClock):
    coordinator.submit(Submission(MOUS_ID, PACKAGE, "p.tar"))
    coordinator.apply_event(started("r1.ingest", at=clock.advance(1)))
    coordinator.apply_event(ingest_succeeded(at=clock.advance(1), metadata=metadata_for({"NGC 1068": [25]})))
    for job_id in ("r1.calibration", "r1.findcont.ngc_1068.spw25"):
        finish(coordinator, database, clock, job_id)
    return finish(coordinator, database, clock, "r1.imaging.contsub.ngc_1068").result


def test_chunks_of_a_large_cube_read_the_subtracted_data_and_its_cube_job_joins_their_images(
    chunking: Coordinator, database: Database, clock: FakeClock
) -> None:
    coordinator = chunking
    subtracted = through_contsub(coordinator, database, clock)

    # 128 channels in chunks of 64: two chunk jobs, each with its half of the spw and the subtracted data.
    sent = {job.job_id: job for job in map(ImagingJob.model_validate_json, messages(database, Stage.IMAGING))}
    chunk_ids = ["r1.imaging.cube_chunk.ngc_1068.spw25.c1of2", "r1.imaging.cube_chunk.ngc_1068.spw25.c2of2"]
    assert [sent[job_id].chunk for job_id in chunk_ids] == [
        ChannelChunk(index=0, count=2, first_channel=0, num_channels=64, total_channels=128),
        ChannelChunk(index=1, count=2, first_channel=64, num_channels=64, total_channels=128),
    ]
    assert all(sent[job_id].kind is ImagingKind.CUBE_CHUNK for job_id in chunk_ids)
    assert all(sent[job_id].measurement_sets == subtracted.measurement_sets for job_id in chunk_ids)
    assert "r1.imaging.cube.ngc_1068.spw25" not in sent

    # The cube job waits for both chunks (finished here in reverse order), then joins their images in order.
    second, second_image = chunk_succeeded(database, clock, chunk_ids[1])
    first, first_image = chunk_succeeded(database, clock, chunk_ids[0])
    for job_id, event in ((chunk_ids[1], second), (chunk_ids[0], first)):
        coordinator.apply_event(started(job_id, at=clock.advance(1), stage=Stage.IMAGING, worker="imaging:1"))
        assert job_states(database)["r1.imaging.cube.ngc_1068.spw25"] == JobState.PLANNED
        coordinator.apply_event(event)
    joins = [job for job in map(ImagingJob.model_validate_json, messages(database, Stage.IMAGING))
             if job.job_id == "r1.imaging.cube.ngc_1068.spw25"]
    assert len(joins) == 1
    (join,) = joins
    assert join.kind is ImagingKind.CUBE and join.chunk is None
    assert join.chunks == [first_image, second_image]
    assert join.measurement_sets == [] and [c.spw_id for c in join.continuum] == [25]


def test_a_chunk_that_fails_for_good_fails_its_cube_and_the_cube_is_never_joined(
    chunking: Coordinator, database: Database, clock: FakeClock
) -> None:
    through_contsub(chunking, database, clock)
    chunk = "r1.imaging.cube_chunk.ngc_1068.spw25.c2of2"
    chunking.apply_event(started(chunk, at=clock.advance(1), stage=Stage.IMAGING, worker="imaging:1"))
    chunking.apply_event(failed(chunk, ErrorClass.BAD_INPUT, at=clock.advance(1), stage=Stage.IMAGING,
                                message="too large to make"))
    states = job_states(database)
    assert states[chunk] == JobState.FAILED
    assert states["r1.imaging.cube.ngc_1068.spw25"] == JobState.CANCELLED
    assert states["r1.imaging.cube_chunk.ngc_1068.spw25.c1of2"] == JobState.DISPATCHED  # the other chunk runs on
    assert not [body for body in messages(database, Stage.IMAGING) if '"r1.imaging.cube.ngc_1068.spw25"' in body]
