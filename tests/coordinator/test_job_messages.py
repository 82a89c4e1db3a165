"""Job messages carry what the jobs they depend on produced: ingest's MSs reach calibration, the calibrated
MSs reach every findcont job (on SQLite and PostgreSQL)."""

import random

import pytest
from aperture_contracts.enums import ImagingKind, JobState, Stage
from aperture_contracts.events import CalibrationResult
from aperture_contracts.jobs import CalibrationJob, FindcontJob, ImagingJob
from aperture_coordinator.db import Database
from aperture_coordinator.job_messages import MissingInput, dependency_result
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator, Submission

from .conftest import FakeClock
from .factories import (
    MOUS_ID,
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
