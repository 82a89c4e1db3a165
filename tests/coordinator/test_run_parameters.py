"""A campaign's parameters (RunParameters) reach every job of the runs it starts: on SQLite and PostgreSQL
through the real state machine, and refused at submission when a name is unknown."""

import random

import pytest
from aperture_contracts.campaigns import CampaignCreate
from aperture_contracts.enums import Stage
from aperture_contracts.imaging import ProductSizeLimits
from aperture_contracts.jobs import ImagingJob
from aperture_contracts.run_parameters import RunParameters
from aperture_coordinator.db import Database
from aperture_coordinator.state import Coordinator, Submission
from pydantic import ValidationError

from .conftest import FakeClock, make_settings
from .factories import MOUS_ID, load_mous, object_ref, outbox, run_wave

PACKAGE = object_ref("mous/uid___A001_X2fa_X2dd/input/uid___A001_X2fa_X2dd.ms.tar", b"package bytes")
SMALL = ProductSizeLimits(max_cube_bytes=2_000_000, max_cube_hard_bytes=3_000_000, max_mous_bytes=10**9)


def imaging_messages(database: Database) -> list[ImagingJob]:
    return [ImagingJob.model_validate_json(row.body) for row in outbox(database) if row.routing_key == "imaging"]


@pytest.mark.parametrize("parameters", [RunParameters(size_limits=SMALL), RunParameters()])
def test_every_imaging_job_of_the_run_carries_the_campaigns_size_limits(
    parameters: RunParameters, database_url: str, database: Database, clock: FakeClock
) -> None:
    settings = make_settings(database_url, enabled_stages=list(Stage))
    coordinator = Coordinator(database, settings, clock=clock, rng=random.Random(3))
    coordinator.submit(Submission(MOUS_ID, PACKAGE, "uid___A001_X2fa_X2dd.ms.tar", campaign_id="camp-1",
                                  parameters=parameters))
    assert load_mous(database).parameters == parameters.model_dump(mode="json", exclude_none=True)
    while not imaging_messages(database) and run_wave(coordinator, database, clock):
        pass

    messages = imaging_messages(database)
    assert messages, "no imaging job was dispatched"
    expected = parameters.size_limits or ProductSizeLimits()
    assert [message.size_limits for message in messages] == [expected] * len(messages)


def test_a_campaign_with_an_unknown_or_wrong_parameter_is_refused_naming_it() -> None:
    members = [{"mous_id": "uid://A001/X1/X1", "object_key": "archive/a.ms.tar"}]
    CampaignCreate(name="ok", pipeline_version="1", members=members,
                   parameters={"size_limits": {"max_cube_bytes": 10**9}})
    with pytest.raises(ValidationError, match="size_limit"):
        CampaignCreate(name="typo", pipeline_version="1", members=members, parameters={"size_limit": {}})
    with pytest.raises(ValidationError, match="max_cube_bytes"):
        CampaignCreate(name="negative", pipeline_version="1", members=members,
                       parameters={"size_limits": {"max_cube_bytes": -1}})
