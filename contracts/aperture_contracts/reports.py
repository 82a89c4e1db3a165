"""Reports that are products of an MOUS (downloadable files with a documented schema)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from aperture_contracts.events import CasaCall
from aperture_contracts.ids import MousId
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.qa import QAScore
from aperture_contracts.storage import ObjectRef
from aperture_contracts.version import SchemaVersion


class RestoredMeasurementSetRecord(BaseModel):
    name: str
    calibrated: bool = Field(description="calibration tables were applied to it")
    flagged_fraction_before: float | None = None
    flagged_fraction_after: float | None = None


class IngestReport(BaseModel):
    """`<mous>.ingest_report.json`: what was submitted, what it holds, and what ingest did to it."""

    schema_version: SchemaVersion = "1.0"
    kind: Literal["aperture.ingest-report"] = "aperture.ingest-report"
    mous_id: MousId
    package: ObjectRef
    package_name: str
    created_at: datetime
    metadata: MousMetadata
    restored: list[RestoredMeasurementSetRecord]
    applied_tables: list[str] = Field(description="calibration tables applied, in order (restore path)")
    qa: list[QAScore]
    casa_calls: list[CasaCall]
