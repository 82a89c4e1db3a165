"""The ingest worker's settings (environment, prefix APERTURE_)."""

from aperture_shared.settings import WorkerSettings
from pydantic import Field


class IngestSettings(WorkerSettings):
    service_name: str = "ingest-worker"
    # Flagged fraction above which the ingest QA score falls into the warning band and below.
    flagged_fraction_warning: float = Field(0.3, ge=0, le=1)
