"""The coordinator's settings (environment variables with the prefix APERTURE_)."""

from pathlib import Path
from typing import Annotated, Literal

from aperture_contracts.enums import MemoryClass, Stage
from aperture_shared.settings import CommonSettings
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from aperture_coordinator.auth import ApiIdentity

# Points between a database commit and a broker publish where the relay can kill its own process, so
# that end-to-end tests can prove that neither order of failure loses or duplicates work.
FaultInjection = Literal["crash_after_commit_before_publish", "crash_after_publish_before_commit"]

DEFAULT_STAGE_TIME_LIMITS_S: dict[Stage, float] = {
    Stage.INGEST: 3600.0,
    Stage.CALIBRATION: 4 * 3600.0,
    Stage.FINDCONT: 3600.0,
    Stage.IMAGING: 12 * 3600.0,
    Stage.PREVIEWS: 1800.0,
    Stage.FOOTPRINT: 1800.0,
    Stage.EXPORT: 3600.0,
}


class CoordinatorSettings(CommonSettings):
    """What the coordinator reads at start-up. Every value has a development default."""

    service_name: str = "coordinator"
    database_url: str = Field(
        "sqlite:///var/aperture.db",
        description="SQLAlchemy URL: sqlite:///path (embedded) or postgresql+psycopg://user:pw@host/db",
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    # Stages whose worker service is deployed. Jobs of other stages wait in WAITING_FOR_SERVICE, and are
    # dispatched by the reconcile loop once the coordinator runs with their stage enabled.
    # From the environment: a comma-separated list (APERTURE_ENABLED_STAGES=ingest,calibration).
    # Default: every stage.
    enabled_stages: Annotated[list[Stage], NoDecode] = Field(default_factory=lambda: list(Stage))
    max_attempts: int = Field(3, ge=1, description="attempts of a job before a transient failure is final")
    retry_backoff_base_s: float = Field(5.0, ge=0, description="delay before attempt 2; doubled per attempt")
    retry_backoff_cap_s: float = Field(600.0, ge=0, description="longest delay between attempts")
    retry_jitter_fraction: float = Field(
        0.2, ge=0, le=1, description="delays are spread by up to this fraction so retries do not stampede"
    )
    stage_time_limits_s: dict[Stage, float] = Field(
        default_factory=lambda: dict(DEFAULT_STAGE_TIME_LIMITS_S),
        description="wall-clock limit of one job's CASA work, per stage (JSON in the environment)",
    )
    memory_classes_mb: dict[MemoryClass, int] = Field(
        default_factory=lambda: {MemoryClass.STANDARD: 8192},
        description="the worker classes deployed and the CASA memory of each, MB (JSON in the environment, "
        'e.g. {"standard": 8192, "large": 65536}); a job that runs out of memory is retried on the next larger',
    )
    # From the environment: a comma-separated list, like enabled_stages.
    memory_class_stages: Annotated[list[Stage], NoDecode] = Field(
        default_factory=lambda: [Stage.IMAGING],
        description="the stages with workers of every class in memory_classes_mb; the others run standard only",
    )
    # Cubes with more native channels than this are imaged in channel chunks by several workers and joined
    # (planner.py). A chunk repeats the cube's fixed costs (fetching its data, starting CASA, the quick PSF
    # and the sensitivity), some 10-20 s on small data, so chunks pay off only when imaging their channels
    # takes much longer than that: 256 leaves TDM-like spws (64-128 channels) whole and splits FDM spws
    # (480-3840 channels, hours of tclean each) into 2-15 chunks. 0: never chunk.
    cube_chunk_channels: int = Field(256, ge=0, description="native channels per cube chunk; 0: never chunk")
    # A running job that reports nothing for its time limit plus this grace is taken as lost (its
    # worker died and the broker gave up on the message) and fails its attempt as a timeout.
    lost_job_grace_s: float = Field(600.0, ge=0)
    reconcile_interval_s: float = Field(5.0, gt=0, description="period of the reconcile loop")
    history_retention_days: float = Field(
        7.0, ge=1.0, description="published outbox rows and processed-event keys older than this are deleted"
    )
    prune_interval_s: float = Field(3600.0, gt=0, description="how often that pruning runs")
    relay_interval_s: float = Field(
        2.0, gt=0, description="the outbox relay looks for unpublished rows at least this often"
    )
    relay_batch_size: int = Field(200, ge=1)
    events_prefetch: int = Field(16, ge=1, description="completion events handled concurrently")
    download_link_ttl_s: int = Field(3600, ge=60, le=7 * 24 * 3600)
    upload_dir: Path | None = Field(
        None, description="where uploads are spooled before they go to the object store (default: TMPDIR)"
    )
    max_upload_bytes: int = Field(
        200 * 1024**3, ge=1,
        description="largest package accepted as an upload (bytes); larger ones are submitted by object_key",
    )
    api_tokens: dict[str, ApiIdentity] = Field(
        default_factory=dict,
        description="bearer tokens of the requests API (JSON: token -> {user, role}); none: the development "
        "token only, which production mode never accepts",
    )
    request_rate_per_minute: int = Field(10, ge=1, description="new imaging requests a user may make per minute")
    max_active_requests_per_user: int = Field(5, ge=1, description="a user's requests queued or running at once")
    max_request_product_bytes: int = Field(
        50 * 10**9, ge=1, description="the estimated product size a user's request may reach"
    )
    bulk_queued_per_stage: int = Field(
        2, ge=1,
        description="campaign jobs that may wait in one stage's queue at once; users' jobs wait behind at most "
        "this many (the rest of a campaign's ready jobs are held back in the database)",
    )
    request_cleanup_grace_s: float = Field(
        30.0, ge=0,
        description="a cancelled request's outputs are deleted this long after the cancel (and after any late "
        "report from its workers), so that an upload that was under way when CASA was stopped is deleted too",
    )
    request_qa_max_rms_ratio: float = Field(
        2.0, gt=1, description="a request image passes QA when its rms is at most this times the theoretical"
    )
    request_qa_max_beam_ratio: float = Field(
        1.5, gt=1, description="... and its beam within this factor of the beam its data and taper should give"
    )
    smtp_host: str | None = Field(None, description="SMTP server for request e-mails; none: e-mails are not sent")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_starttls: bool = Field(True, description="upgrade the SMTP connection with STARTTLS before logging in")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = Field("aperture@localhost", description="the From: address of request e-mails")
    notification_timeout_s: float = Field(10.0, gt=0, description="per webhook POST or SMTP conversation")
    notification_max_attempts: int = Field(8, ge=1, description="sends of one notification before giving up")
    notify_interval_s: float = Field(2.0, gt=0, description="how often the notifier looks for messages to send")
    fault_injection: FaultInjection | None = Field(
        None, description="for tests only: the relay kills its own process once at this point"
    )

    @field_validator("enabled_stages", "memory_class_stages", mode="before")
    @classmethod
    def _split_stage_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _check_stages(self) -> "CoordinatorSettings":
        not_positive = [stage.value for stage, limit in self.stage_time_limits_s.items() if limit <= 0]
        if not_positive:
            raise ValueError(f"stage_time_limits_s must be positive; fix {', '.join(not_positive)}")
        # A partial mapping from the environment overrides the defaults of the stages it names only.
        self.stage_time_limits_s = {**DEFAULT_STAGE_TIME_LIMITS_S, **self.stage_time_limits_s}
        return self

    def time_limit_s(self, stage: Stage) -> float:
        return self.stage_time_limits_s[stage]

    def stage_enabled(self, stage: Stage) -> bool:
        return stage in self.enabled_stages
