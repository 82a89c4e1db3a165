"""The calibration worker: `aperture-calibration`."""

from functools import partial

from aperture_contracts.enums import Stage
from aperture_contracts.jobs import CalibrationJob
from aperture_shared.worker import run_stage_worker

from aperture_calibration.handler import calibrate
from aperture_calibration.settings import CalibrationSettings


def main() -> None:
    settings = CalibrationSettings()
    run_stage_worker(Stage.CALIBRATION, CalibrationJob, partial(calibrate, options=settings.options()), settings)


if __name__ == "__main__":
    main()
