"""The footprint worker: `aperture-footprint`."""

from aperture_contracts.enums import Stage
from aperture_contracts.jobs import FootprintJob
from aperture_shared.worker import run_stage_worker

from aperture_footprint.handler import make_footprint
from aperture_footprint.settings import FootprintSettings


def main() -> None:
    run_stage_worker(Stage.FOOTPRINT, FootprintJob, make_footprint, FootprintSettings())


if __name__ == "__main__":
    main()
