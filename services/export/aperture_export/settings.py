"""The export worker's settings (environment, prefix APERTURE_)."""

from aperture_shared.settings import WorkerSettings


class ExportSettings(WorkerSettings):
    service_name: str = "export-worker"
