"""The previews worker's settings (environment, prefix APERTURE_)."""

from pathlib import Path

from aperture_shared.settings import WorkerSettings
from pydantic import Field

from aperture_previews.viewer_page import ALADIN_LITE_PACKAGE


class PreviewsSettings(WorkerSettings):
    service_name: str = "previews-worker"
    aladin_lite_dir: Path = Field(
        ALADIN_LITE_PACKAGE, description="the npm package aladin-lite (its dist/aladin.js is copied beside each "
        "HiPS); by default where `make venv` installs it in the checkout, in the image where its Dockerfile does"
    )
