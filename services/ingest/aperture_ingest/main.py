"""The ingest/restore worker: `aperture-ingest`."""

from aperture_contracts.enums import Stage
from aperture_contracts.jobs import IngestJob
from aperture_shared.worker import run_stage_worker

from aperture_ingest.handler import ingest
from aperture_ingest.settings import IngestSettings


def main() -> None:
    run_stage_worker(Stage.INGEST, IngestJob, ingest, IngestSettings())


if __name__ == "__main__":
    main()
