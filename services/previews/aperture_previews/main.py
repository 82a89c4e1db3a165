"""The previews worker: `aperture-previews`."""

from functools import partial

from aperture_contracts.enums import Stage
from aperture_contracts.jobs import PreviewsJob
from aperture_shared.worker import run_stage_worker

from aperture_previews.handler import make_previews
from aperture_previews.settings import PreviewsSettings


def main() -> None:
    settings = PreviewsSettings()
    run_stage_worker(
        Stage.PREVIEWS, PreviewsJob, partial(make_previews, aladin_lite_dir=settings.aladin_lite_dir), settings
    )


if __name__ == "__main__":
    main()
