"""The imaging worker's settings (environment, prefix APERTURE_)."""

from aperture_shared.settings import WorkerSettings


class ImagingSettings(WorkerSettings):
    service_name: str = "imaging-worker"
