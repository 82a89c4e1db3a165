"""The export worker: `aperture-export`."""

from aperture_contracts.enums import Stage
from aperture_contracts.jobs import ExportJob
from aperture_shared.worker import run_stage_worker

from aperture_export.handler import export_products
from aperture_export.settings import ExportSettings


def main() -> None:
    run_stage_worker(Stage.EXPORT, ExportJob, export_products, ExportSettings())


if __name__ == "__main__":
    main()
