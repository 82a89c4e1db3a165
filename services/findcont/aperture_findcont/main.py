"""The findcont worker: `aperture-findcont`."""

from aperture_contracts.enums import Stage
from aperture_contracts.jobs import FindcontJob
from aperture_shared.worker import run_stage_worker

from aperture_findcont.handler import find_continuum
from aperture_findcont.settings import FindcontSettings


def main() -> None:
    run_stage_worker(Stage.FINDCONT, FindcontJob, find_continuum, FindcontSettings())


if __name__ == "__main__":
    main()
