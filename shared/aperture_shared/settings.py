"""Settings from the environment (prefix APERTURE_). Build one object per process at start-up and pass it on."""

from pathlib import Path

from aperture_contracts.enums import MemoryClass
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every service reads: where the broker and the object store are, and how to log."""

    model_config = SettingsConfigDict(env_prefix="APERTURE_", env_file=None, extra="ignore")

    service_name: str = "aperture"
    amqp_url: SecretStr = Field(SecretStr("amqp://guest:guest@127.0.0.1:5672/"))
    s3_endpoint: str = Field("127.0.0.1:7480", description="host:port of the S3 server")
    s3_access_key: SecretStr = SecretStr("aperture")
    s3_secret_key: SecretStr = SecretStr("aperture-dev-secret")
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_bucket: str = "aperture"
    # Where people reach the store, when that differs from where the services do (compose: minio:9000
    # inside, 127.0.0.1:9000 outside). Download links are signed for this host.
    s3_public_endpoint: str | None = None
    s3_public_secure: bool | None = None
    log_level: str = "INFO"
    log_json: bool = True
    # Where the health and metrics endpoints listen (0 = pick a free port, handy in tests).
    http_host: str = "127.0.0.1"
    http_port: int = 0
    # Development defaults are refused when this is set (deployment): secrets must come from outside.
    production: bool = False

    def check_secrets(self) -> None:
        """Fail fast when a deployment runs with the development credentials."""
        if not self.production:
            return
        defaults = {
            "APERTURE_S3_SECRET_KEY": self.s3_secret_key.get_secret_value() == "aperture-dev-secret",
            "APERTURE_AMQP_URL": "guest:guest@" in self.amqp_url.get_secret_value(),
        }
        unset = [name for name, is_default in defaults.items() if is_default]
        if unset:
            raise SystemExit(f"production mode needs real secrets; set {', '.join(unset)}")


class CasaSettings(BaseSettings):
    """How CASA runs for a worker: its memory limit and where per-job scratch directories live. The time
    limit comes with each job (the coordinator's APERTURE_STAGE_TIME_LIMITS_S)."""

    model_config = SettingsConfigDict(env_prefix="APERTURE_CASA_", extra="ignore")

    memory_limit_mb: int = Field(8192, gt=0, description="resident memory of the CASA process tree")
    threads: int | None = Field(
        None, ge=1, description="OpenMP threads of each CASA process (None: CASA's choice, every core); "
        "1 when as many workers run as there are cores"
    )
    scratch_root: Path = Path("/tmp/aperture-scratch")
    steps_per_process: int = Field(
        50, ge=1, description="steps one CASA process serves before a fresh one replaces it (1: a process per "
        "step); it is replaced sooner after a failed step or when it holds half its memory limit at rest"
    )


class WorkerSettings(CommonSettings):
    """A stage worker: one job at a time per process; run more processes for more throughput."""

    prefetch: int = Field(1, ge=1)
    memory_class: MemoryClass = Field(
        MemoryClass.STANDARD,
        description="the size of this worker: it takes the jobs of its stage's queue for this class; set "
        "APERTURE_CASA_MEMORY_LIMIT_MB to the memory the class stands for",
    )
    # One-job mode, for a worker that an orchestrator starts per message (KEDA's ScaledJob): stop taking
    # messages at the Nth, finish and settle it, then exit 0; and exit 0 when no message comes at all
    # (another worker took the one this one was started for).
    exit_after_jobs: int | None = Field(None, ge=1, description="exit after handling this many messages")
    exit_after_idle_s: float | None = Field(None, gt=0, description="exit when no message came for this long")
    # RabbitMQ closes a channel whose delivery stays unacknowledged past its consumer timeout. Jobs are
    # acknowledged only when done, so the queues ask for a timeout longer than any job may run
    # (x-consumer-timeout, RabbitMQ >= 3.12); on 3.10/3.11 the broker's global consumer_timeout must be
    # set as large (the local stack and the deployment configs do so).
    consumer_timeout_s: int = Field(6 * 3600, gt=0)
