"""The contracts package: generated documents stay in step with the models; ids and messages validate."""

import json

import pytest
from aperture_contracts import SCHEMA_VERSION
from aperture_contracts.enums import ErrorClass, Stage
from aperture_contracts.events import JobEvent, JobFailed
from aperture_contracts.generate import ASYNCAPI_PATH, rendered, stale_files
from aperture_contracts.ids import canonical_mous_id, mous_key
from aperture_contracts.jobs import IngestJob
from aperture_contracts.packaging import RestoreManifest
from pydantic import TypeAdapter, ValidationError


def test_checked_in_schemas_and_asyncapi_match_the_models():
    assert stale_files() == [], "run `make contracts` and commit the result"


def test_asyncapi_names_every_stage_queue_and_the_event_queue():
    document = json.loads(ASYNCAPI_PATH.read_text())
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {f"aperture.jobs.{stage.value}" for stage in Stage} <= addresses
    assert "aperture.events.coordinator" in addresses
    assert document["components"]["messages"]["IngestJob"]["payload"]["$ref"] == "#/components/schemas/IngestJob"


def test_every_schema_file_has_a_versioned_id():
    for path, text in rendered().items():
        if path.name.startswith("aperture."):
            assert json.loads(text)["$id"].endswith(f"/v{SCHEMA_VERSION}/{path.name.split('.')[1]}.json")


@pytest.mark.parametrize(
    ("given", "canonical", "key"),
    [
        ("uid://A001/X2fa/X2dd", "uid://A001/X2fa/X2dd", "uid___A001_X2fa_X2dd"),
        ("uid___A001_X2fa_X2dd", "uid://A001/X2fa/X2dd", "uid___A001_X2fa_X2dd"),
        ("aperture-0123456789ab", "aperture-0123456789ab", "aperture-0123456789ab"),
    ],
)
def test_mous_ids_have_one_canonical_form_and_one_key_form(given, canonical, key):
    assert canonical_mous_id(given) == canonical
    assert mous_key(canonical) == key


def _ingest_job(**changes):
    fields = dict(
        mous_id="uid://A001/X2fa/X2dd", job_id="r1.ingest", attempt=1,
        output_prefix="mous/uid___A001_X2fa_X2dd/work/r1.ingest/",
        products_prefix="mous/uid___A001_X2fa_X2dd/products/", time_limit_s=600,
        created_at="2026-11-21T08:00:00Z",
        package={"key": "mous/uid___A001_X2fa_X2dd/input/p.tar", "sha256": "a" * 64, "size": 10},
        package_name="p.tar",
    )
    fields.update(changes)
    return IngestJob.model_validate(fields)


def test_a_job_message_carries_its_schema_version_and_ids():
    message = json.loads(_ingest_job().model_dump_json())
    assert message["schema_version"] == SCHEMA_VERSION
    assert message["message_type"] == "ingest.job"
    assert (message["mous_id"], message["job_id"], message["attempt"]) == ("uid://A001/X2fa/X2dd", "r1.ingest", 1)


@pytest.mark.parametrize(
    "changes",
    [
        {"mous_id": "not-an-id"},
        {"attempt": 0},
        {"job_id": "Has Spaces"},
        {"schema_version": "2.0"},
        {"package": {"key": "k", "sha256": "xyz", "size": 1}},
        {"unexpected": 1},
    ],
)
def test_malformed_job_messages_are_refused(changes):
    with pytest.raises(ValidationError):
        _ingest_job(**changes)


def test_events_decode_by_their_type():
    failed = JobFailed(
        mous_id="uid://A001/X2fa/X2dd", job_id="r1.ingest", attempt=2, stage=Stage.INGEST, worker="w:1",
        at="2026-11-21T08:00:00Z", duration_s=1.5, error_class=ErrorClass.BAD_INPUT, message="not an MS",
    )
    decoded = TypeAdapter(JobEvent).validate_json(failed.model_dump_json())
    assert isinstance(decoded, JobFailed) and decoded.error_class is ErrorClass.BAD_INPUT


def test_restore_manifest_refuses_unknown_fields():
    with pytest.raises(ValidationError, match="tabels"):
        RestoreManifest.model_validate({"tabels": []})
