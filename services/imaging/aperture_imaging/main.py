"""The imaging worker: `aperture-imaging` (continuum subtraction, mfs/cont images and line cubes)."""

from aperture_contracts.enums import Stage
from aperture_contracts.jobs import ImagingJob
from aperture_shared.worker import run_stage_worker

from aperture_imaging.handler import image
from aperture_imaging.settings import ImagingSettings


def main() -> None:
    run_stage_worker(Stage.IMAGING, ImagingJob, image, ImagingSettings())


if __name__ == "__main__":
    main()
