"""The footprint worker's settings (environment, prefix APERTURE_)."""

from aperture_shared.settings import WorkerSettings


class FootprintSettings(WorkerSettings):
    service_name: str = "footprint-worker"
