"""The findcont worker's settings (environment, prefix APERTURE_)."""

from aperture_shared.settings import WorkerSettings


class FindcontSettings(WorkerSettings):
    service_name: str = "findcont-worker"
