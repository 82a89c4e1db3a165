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

Categories: members fall into categories by array, ALMA band, spws, channels, mosaic or single field and
package size, as far as these are known (a member may give them up front in `attributes`, e.g. from the
archive's database; the rest is learned from the store and, once its MOUS is ingested, from its metadata).
A category is a key such as "12m/B6/4spw/le1kch/single/lt1GB", "unknown" where a part is not known.
With `sample_per_category`, only that many members of each category run first; the rest is held until an
operator has looked at the samples and releases their categories (POST /campaigns/{id}/release).
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, model_validator

from aperture_contracts.enums import ErrorClass, Recipe
from aperture_contracts.ids import MousId
from aperture_contracts.run_parameters import RunParameters

# Names are the campaign's identity (submitting the same name again adds to it), so they are plain words.
CAMPAIGN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
PACKAGE_SUFFIXES = (".tar", ".tar.gz", ".tgz")


class CampaignState(StrEnum):
    """A campaign's life. Terminal: cancelled; a completed campaign becomes active again when members are
    added to it or its failures are retried."""

    ACTIVE = "active"  # the feeder submits its pending members as room frees up
    PAUSED = "paused"  # nothing new is submitted; members in flight run on
    # Every sample (and every released member) has ended; the held members wait for an operator's release.
    AWAITING_VALIDATION = "awaiting_validation"
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


# A part of a category key: no slash (it separates the parts).
CATEGORY_PART_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9+._-]{0,31}$"
CATEGORY_MAX_LENGTH = 128
CategoryKey = Annotated[str, StringConstraints(min_length=1, max_length=CATEGORY_MAX_LENGTH)]


class MemberAttributes(BaseModel):
    """What puts a member in a category, each None while not known. Given up front they are taken as they
    are; the unknown ones are filled from the package's size and the MOUS's metadata once it is ingested."""

    model_config = ConfigDict(extra="forbid")

    array: str | None = Field(
        None, pattern=CATEGORY_PART_PATTERN, description="ALMA: 12m, 7m or TP; other observatories: their name",
        examples=["12m"],
    )
    band: int | None = Field(None, ge=1, le=10, description="the ALMA receiver band of the representative spw")
    spws: int | None = Field(None, ge=1, description="science spectral windows")
    max_channels: int | None = Field(None, ge=1, description="channels of the widest science spw")
    fields: int | None = Field(
        None, ge=1, description="pointings of the science target with the most: more than one is a mosaic"
    )
    size_bytes: int | None = Field(None, ge=0, description="the package's size")


class CampaignMember(BaseModel):
    """A package to process, and the MOUS it is (read from the package's name when not given)."""

    model_config = ConfigDict(extra="forbid")

    mous_id: MousId | None = Field(None, description="default: from the package's name (uid___A_B_C)")
    object_key: str = Field(
        min_length=1, max_length=1024, examples=["archive/cycle10/uid___A001_X2fa_X2dd.ms.tar"]
    )
    attributes: MemberAttributes | None = Field(None, description="what is known of it up front (its category)")


class CampaignCreate(BaseModel):
    """Submit a campaign. The name is its identity: submitting the same name again with the same pipeline
    version and parameters adds only the members it did not have (none, when the set is the same)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=CAMPAIGN_NAME_PATTERN, examples=["cycle10-reimage"])
    pipeline_version: str = Field(min_length=1, max_length=64, examples=["2026.1"])
    parameters: dict[str, JsonValue] = Field(
        default_factory=dict, description="a RunParameters object: carried by every run's job messages"
    )
    recipe: Recipe = Field(Recipe.FULL, description="what each run makes: full, or quicklook (continuum only)")
    members: list[CampaignMember] | None = Field(None, max_length=100_000)
    manifest_key: str | None = Field(
        None, min_length=1, max_length=1024, description="an object of JSON lines, one CampaignMember each"
    )
    scan_prefix: str | None = Field(
        None, min_length=1, max_length=1024, description="every *.tar, *.tar.gz and *.tgz under it"
    )
    max_in_flight: int = Field(10, ge=1, le=10_000, description="MOUS of the campaign submitted at once, at most")
    sample_per_category: int | None = Field(
        None, ge=1, le=10_000,
        description="run only this many members of each category first; the rest waits for a release",
    )

    @model_validator(mode="after")
    def _known_parameters(self) -> Self:
        RunParameters.model_validate(self.parameters)  # its errors name the parameter that is wrong
        return self

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
    sample_per_category: int | None = Field(None, description="None: every member runs without a sample first")
    members: dict[MemberState, int] = Field(description="how many members are in each state (every state)")
    total: int
    held: int = Field(0, ge=0, description="pending members held until their category is released")
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


class CampaignRelease(BaseModel):
    """The body of POST /campaigns/{id}/release (optional): which held categories to release."""

    model_config = ConfigDict(extra="forbid")

    categories: list[CategoryKey] | None = Field(
        None, min_length=1, max_length=1000, description="None: every held category",
        examples=[["12m/B6/4spw/le1kch/single/lt1GB"]],
    )


class CampaignReleased(BaseModel):
    """What POST /campaigns/{id}/release answers."""

    campaign: CampaignView
    released: dict[str, int] = Field(description="members released per category (0: none of it was held)")
    members_released: int = Field(ge=0)


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


class CategoryCount(BaseModel):
    """The members of one category: by state, how many were in the sample and how many of those failed.
    A member counts under its category as known now: samples of a category known only in part (say by
    size) show under the categories their metadata revealed."""

    category: str = Field(examples=["12m/B6/4spw/le1kch/single/lt1GB"])
    members: dict[MemberState, int] = Field(description="every state")
    total: int = Field(ge=1)
    sampled: int = Field(0, ge=0, description="members run as the category's sample")
    sample_failed: int = Field(0, ge=0)
    held: int = Field(0, ge=0, description="pending until the category is released")


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
    categories: list[CategoryCount] = Field(default_factory=list, description="most members first")
