"""The ingest step that runs inside the CASA child process (see aperture_shared.casa.runner).

Everything that touches CASA happens here, in one process with a time and memory limit; the handler
around it only moves files to and from storage.
"""

from pathlib import Path
from typing import Any

from aperture_contracts.flux import FluxModel
from aperture_contracts.metadata import MeasurementSetInfo, MousMetadata
from aperture_contracts.packaging import OPERATOR_CONT_DAT_NAME, OPERATOR_FLUX_CSV_NAME
from aperture_contracts.reports import RestoredMeasurementSetRecord
from aperture_shared.casa.calls import CasaCallLog
from pydantic import BaseModel

from aperture_ingest.flux_csv import read_flux_csv
from aperture_ingest.measurement_set import describe_measurement_set, merge_metadata
from aperture_ingest.package import unpack_package
from aperture_ingest.restore import read_restore_manifest, restore


class IngestStepResult(BaseModel):
    metadata: MousMetadata
    measurement_sets: list[str]  # paths of the MSs later stages read (restored ones when restored)
    restored: list[RestoredMeasurementSetRecord]
    applied_tables: list[str]
    manifest_mous_uid: str | None
    operator_cont_dat: str | None = None  # path of the package's cont.dat, when it carries one
    operator_flux_csv: str | None = None  # path of the package's flux.csv, when it carries one
    flux_models: list[FluxModel] = []  # what that flux.csv says, one power law per flux calibrator


def _operator_cont_dat(root: Path) -> str | None:
    path = root / OPERATOR_CONT_DAT_NAME
    return str(path) if path.is_file() else None


def _operator_flux(root: Path, infos: list[MeasurementSetInfo]) -> dict[str, Any]:
    """The package's flux.csv and its flux models (read now, so a broken file fails ingest, not calibration)."""
    path = root / OPERATOR_FLUX_CSV_NAME
    if not path.is_file():
        return {}
    return {"operator_flux_csv": str(path), "flux_models": read_flux_csv(path, infos)}


def ingest_package(arguments: dict[str, str], calls: CasaCallLog) -> IngestStepResult:
    """Unpack, check every MS, restore when the package says how, and describe the result."""
    unpacked = unpack_package(Path(arguments["package"]), Path(arguments["unpack_dir"]))
    # Check and describe every MS before changing anything: a broken MS fails the job up front.
    infos = [describe_measurement_set(ms) for ms in unpacked.measurement_sets]
    manifest = read_restore_manifest(unpacked.root) if unpacked.manifest else None
    if manifest is None or not manifest.apply:
        return IngestStepResult(
            metadata=merge_metadata(infos, calibrated=False),
            measurement_sets=[str(ms) for ms in unpacked.measurement_sets],
            restored=[RestoredMeasurementSetRecord(name=ms.name, calibrated=False) for ms in unpacked.measurement_sets],
            applied_tables=[],
            manifest_mous_uid=manifest.mous_uid if manifest else None,
            operator_cont_dat=_operator_cont_dat(unpacked.root),
            **_operator_flux(unpacked.root, infos),
        )
    result = restore(unpacked.measurement_sets, unpacked.root, manifest, calls, Path(arguments["output_dir"]))
    restored_infos = [describe_measurement_set(ms.path) for ms in result.measurement_sets]
    return IngestStepResult(
        metadata=merge_metadata(restored_infos, calibrated=True),
        measurement_sets=[str(ms.path) for ms in result.measurement_sets],
        restored=[
            RestoredMeasurementSetRecord(
                name=ms.name, calibrated=ms.calibrated,
                flagged_fraction_before=ms.flagged_fraction_before,
                flagged_fraction_after=ms.flagged_fraction_after,
            )
            for ms in result.measurement_sets
        ],
        applied_tables=result.applied_tables,
        manifest_mous_uid=manifest.mous_uid,
        operator_cont_dat=_operator_cont_dat(unpacked.root),
        **_operator_flux(unpacked.root, restored_infos),
    )
