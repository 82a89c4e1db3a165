"""Archive re-processing campaigns: many MOUS run with one pipeline version, a bounded number at a time
(the HTTP bodies of /api/v1/campaigns, an operator's business).

A campaign's members come from exactly one source:
- `members`: a list of {mous_id, object_key};
- `manifest_key`: an object in the store holding JSON lines, one member per line, in the same form
  ({"mous_id": "uid://A001/X2fa/X2dd", "object_key": "archive/uid___A001_X2fa_X2dd.ms.tar"}; blank lines
  are skipped);
- `scan_prefix`: every package (*.tar, *.tar.gz, *.tgz) under a prefix of the store.

A member's `mous_id` may be left out: it is then read from the package's name as uploads read it
(uid___A001_X2fa_X2dd in the name), else it is `aperture-<12 hex>` made from the object key, so that the
same package always stands for the same MOUS and submitting the campaign again adds nothing.
"""

from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from aperture_contracts.enums import ErrorClass, Recipe
from aperture_contracts.ids import MousId

# Names are the campaign's identity (submitting the same name again adds to it), so they are plain words.
CAMPAIGN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
PACKAGE_SUFFIXES = (".tar", ".tar.gz", ".tgz")


class CampaignState(StrEnum):
    """A campaign's life. Terminal: cancelled; a completed campaign becomes active again when members are
    added to it or its failures are retried."""

    ACTIVE = "active"  # the feeder submits its pending members as room frees up
    PAUSED = "paused"  # nothing new is submitted; members in flight run on
    CANCELLED = "cancelled"
    COMPLETED = "completed"  # no member is pending or in flight (some may have failed)


class MemberState(StrEnum):
    """One MOUS of a campaign. In flight: submitted. Ended: completed, failed, cancelled."""

    PENDING = "pending"  # not submitted yet (or put back by a retry)
    SUBMITTED = "submitted"  # its run is queued or processing
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (MemberState.COMPLETED, MemberState.FAILED, MemberState.CANCELLED)


class CampaignMember(BaseModel):
    """A package to process, and the MOUS it is (read from the package's name when not given)."""

    model_config = ConfigDict(extra="forbid")

    mous_id: MousId | None = Field(None, description="default: from the package's name (uid___A_B_C)")
    object_key: str = Field(
        min_length=1, max_length=1024, examples=["archive/cycle10/uid___A001_X2fa_X2dd.ms.tar"]
    )


class CampaignCreate(BaseModel):
    """Submit a campaign. The name is its identity: submitting the same name again with the same pipeline
    version and parameters adds only the members it did not have (none, when the set is the same)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=CAMPAIGN_NAME_PATTERN, examples=["cycle10-reimage"])
    pipeline_version: str = Field(min_length=1, max_length=64, examples=["2026.1"])
    parameters: dict[str, JsonValue] = Field(default_factory=dict, description="recorded with the campaign")
    recipe: Recipe = Field(Recipe.FULL, description="what each run makes: full, or quicklook (continuum only)")
    members: list[CampaignMember] | None = Field(None, max_length=100_000)
    manifest_key: str | None = Field(
        None, min_length=1, max_length=1024, description="an object of JSON lines, one CampaignMember each"
    )
    scan_prefix: str | None = Field(
        None, min_length=1, max_length=1024, description="every *.tar, *.tar.gz and *.tgz under it"
    )
    max_in_flight: int = Field(10, ge=1, le=10_000, description="MOUS of the campaign submitted at once, at most")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [name for name in ("members", "manifest_key", "scan_prefix") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of members, manifest_key and scan_prefix"
                + (f" (this gives {' and '.join(given)})" if given else "")
            )
        if self.members is not None and not self.members:
            raise ValueError("members is empty: list at least one {mous_id, object_key}")
        return self


class CampaignView(BaseModel):
    campaign_id: str = Field(examples=["camp-3f9a1c0b7d2e"])
    name: str
    state: CampaignState
    reason: str = Field(description="why it is in this state, for a person")
    pipeline_version: str
    recipe: Recipe = Recipe.FULL
    parameters: dict[str, JsonValue]
    max_in_flight: int
    members: dict[MemberState, int] = Field(description="how many members are in each state (every state)")
    total: int
    created_at: datetime
    updated_at: datetime


class CampaignSubmitted(BaseModel):
    """What POST /campaigns answers: the campaign, and what this submission changed."""

    campaign: CampaignView
    created: bool = Field(description="False when a campaign of that name existed")
    members_added: int = Field(ge=0)
    members_known: int = Field(ge=0, description="members of the submission the campaign already had")


class CampaignList(BaseModel):
    campaigns: list[CampaignView]
    total: int
    offset: int
    limit: int


class CampaignRetried(BaseModel):
    """What POST /campaigns/{id}/retry answers."""

    campaign: CampaignView
    error_class: ErrorClass
    members_requeued: int = Field(ge=0, description="failed members of that class put back to pending")


class FailureExample(BaseModel):
    mous_id: str
    job_id: str | None = Field(None, description="the first job of the run that failed for good")
    message: str


class FailureClass(BaseModel):
    error_class: ErrorClass
    count: int = Field(ge=1)
    examples: list[FailureExample] = Field(max_length=3)


class Throughput(BaseModel):
    """Completed MOUS per hour."""

    last_hour: float = Field(ge=0, description="MOUS completed in the hour before the report")
    overall_per_hour: float | None = Field(
        None, ge=0, description="since the first submission (to the last end, once nothing is in flight)"
    )


class Durations(BaseModel):
    """Wall time per completed MOUS, from its submission by the campaign to its completion."""

    count: int = Field(ge=0)
    median_s: float | None = None
    mean_s: float | None = None


class SizeBucket(Durations):
    """Durations of the completed MOUS whose package is in [min_bytes, max_bytes)."""

    label: str = Field(examples=["100 MB - 1 GB"])
    min_bytes: int = Field(ge=0)
    max_bytes: int | None = Field(None, description="None: no upper bound")


class CampaignReport(BaseModel):
    campaign: CampaignView
    failures: list[FailureClass] = Field(description="failed members by error class, most frequent first")
    throughput: Throughput
    time_per_mous: Durations
    time_per_mous_by_size: list[SizeBucket] = Field(description="only the size buckets that have members")
    remaining: int = Field(ge=0, description="members pending or in flight")
    expected_completion_at: datetime | None = Field(
        None, description="from the rate members ended at (last hour, else overall); None without one"
    )
    products: int = Field(ge=0, description="products of the completed members' current runs")
    product_bytes: int = Field(ge=0)
    generated_at: datetime
