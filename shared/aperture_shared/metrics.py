"""Prometheus metrics every service exports. Names are part of the operations contract (dashboards)."""

from prometheus_client import Counter, Histogram

JOBS = Counter(
    "aperture_jobs",
    "Jobs finished by a worker, by stage, outcome and error class",
    ["stage", "outcome", "error_class"],
)
JOB_DURATION = Histogram(
    "aperture_job_duration_seconds",
    "Wall-clock time of a job in a worker, by stage and outcome",
    ["stage", "outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800),
)
STORAGE_BYTES = Counter(
    "aperture_storage_bytes",
    "Bytes moved to (upload) and from (download) object storage",
    ["direction"],
)
MESSAGES = Counter(
    "aperture_messages",
    "Messages published and consumed, by exchange/queue and what became of them",
    ["channel", "disposition"],
)
