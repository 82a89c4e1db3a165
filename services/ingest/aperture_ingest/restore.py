"""Restoring calibrated data from a package's calibration tables, the way an archive restore does:
applycal with every table of the manifest, in order, then split of CORRECTED_DATA into a new MS whose
DATA column holds the calibrated visibilities (every later stage reads DATA).

Runs inside the CASA child process; every CASA task goes through `CasaCallLog.task` so that the job's
casa_commands.log shows exactly what was run.
"""

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from aperture_contracts.packaging import RESTORE_MANIFEST_NAME, CalibrationApply, RestoreManifest
from aperture_shared.casa.calls import CasaCallLog
from aperture_shared.errors import BadInput
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from aperture_ingest.casa_tables import guarded_table
from aperture_ingest.measurement_set import measure_flagged_fraction
from aperture_ingest.tables_on_disk import (
    describe_file,
    describe_table_kind,
    is_calibration_table,
    is_casa_table,
)

CALIBRATION_TABLE = "calibration table"


@dataclass(frozen=True)
class RestoredMeasurementSet:
    """One MS after restore. `path` is the MS later stages read: the split-out calibrated MS when the
    manifest applies to it, else the submitted MS unchanged. Flagged fractions are of the visibilities,
    before and after the tables were applied (applycal flags data whose solutions are flagged)."""

    name: str
    path: Path
    calibrated: bool
    flagged_fraction_before: float | None = None
    flagged_fraction_after: float | None = None


@dataclass(frozen=True)
class RestoreResult:
    measurement_sets: list[RestoredMeasurementSet]
    applied_tables: list[str]  # as the manifest names them, in the order applied


def read_restore_manifest(package_root: Path) -> RestoreManifest | None:
    """The package's restore manifest, or None when it carries none. BadInput, naming the line or the
    field, when it is not valid JSON or does not match the manifest's schema."""
    path = package_root / RESTORE_MANIFEST_NAME
    if not path.exists():
        return None
    if not path.is_file():
        raise BadInput(f"{RESTORE_MANIFEST_NAME} in the package is not a file; it must be a JSON document.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(
            f"{RESTORE_MANIFEST_NAME} is not UTF-8 text ({error.reason}); save it as UTF-8 JSON."
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"{RESTORE_MANIFEST_NAME} is not valid JSON: {error.msg} "
            f"at line {error.lineno}, column {error.colno}."
        ) from None
    try:
        return RestoreManifest.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(_describe_problem(problem) for problem in error.errors())
        raise BadInput(
            f"{RESTORE_MANIFEST_NAME} does not match the restore manifest schema: {problems}. "
            f"Fields: {', '.join(RestoreManifest.model_fields)}; each entry of 'apply': "
            f"{', '.join(CalibrationApply.model_fields)}."
        ) from None


def _describe_problem(problem: ErrorDetails) -> str:
    """One validation error as `apply[0].calwt: Input should be a valid boolean`."""
    location = ""
    for part in problem["loc"]:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
    return f"{location or 'document'}: {problem['msg']}"


def validate_restore_manifest(
    manifest: RestoreManifest, package_root: Path, ms_paths: list[Path]
) -> list[tuple[CalibrationApply, Path]]:
    """Each table to apply with its path on disk. BadInput unless every table lies inside the package,
    is a CASA calibration table, and every MS the manifest names is in the package."""
    if not manifest.apply:
        raise BadInput(
            f"{RESTORE_MANIFEST_NAME} lists no calibration tables under 'apply'. List the tables to apply "
            "in order, or leave the manifest out of the package when the data is already calibrated."
        )
    available = {path.name for path in ms_paths}
    unknown = [name for name in manifest.measurement_sets if name not in available]
    if unknown:
        raise BadInput(
            f"{RESTORE_MANIFEST_NAME} names Measurement Sets that are not in the package: "
            f"{', '.join(unknown)} (the package holds {', '.join(sorted(available)) or 'none'})."
        )
    root = package_root.resolve()
    tables: list[tuple[CalibrationApply, Path]] = []
    for index, entry in enumerate(manifest.apply):
        where = f"apply[{index}].table ({entry.table!r})"
        relative = PurePosixPath(entry.table)
        if not entry.table.strip():
            raise BadInput(
                f"{RESTORE_MANIFEST_NAME}: {where} is empty; give the table's path in the package."
            )
        if relative.is_absolute() or PureWindowsPath(entry.table).is_absolute() or ".." in relative.parts:
            raise BadInput(
                f"{RESTORE_MANIFEST_NAME}: {where} must be a path inside the package, relative to its root, "
                "without '..' (e.g. 'cal/uid___A002_X1.ms.bandpass')."
            )
        path = package_root / relative
        if not path.resolve().is_relative_to(root):
            raise BadInput(f"{RESTORE_MANIFEST_NAME}: {where} leads outside the package (through a link).")
        if not path.exists():
            raise BadInput(f"{RESTORE_MANIFEST_NAME}: {where} is not in the package; add it or fix the path.")
        if not is_casa_table(path):
            kind = describe_file(path) if path.is_file() else "a directory that is not a CASA table"
            raise BadInput(f"{RESTORE_MANIFEST_NAME}: {where} is {kind}, not a CASA calibration table.")
        if not is_calibration_table(path):
            raise BadInput(
                f"{RESTORE_MANIFEST_NAME}: {where} is {describe_table_kind(path)}, not a calibration table "
                "(gaincal, bandpass, setjy/fluxscale, gencal output)."
            )
        if any(spw < 0 for spw in entry.spwmap):
            raise BadInput(
                f"{RESTORE_MANIFEST_NAME}: apply[{index}].spwmap has negative spw ids: {entry.spwmap}."
            )
        tables.append((entry, path))
    return tables


def restore(
    ms_paths: list[Path],
    package_root: Path,
    manifest: RestoreManifest,
    calls: CasaCallLog,
    output_dir: Path,
) -> RestoreResult:
    """Apply the manifest's tables to the MSs it names (all of them when it names none) and split each
    calibrated MS into `output_dir/<name>`, whose DATA column then holds the calibrated data. MSs the
    manifest does not name pass through unchanged.

    The submitted MSs get a CORRECTED_DATA column (they are the unpacked copies, never the user's).
    BadInput, before anything is written, when the manifest is wrong or a table was solved on another
    array (antenna names differ); BadInput after applycal when it refuses the tables or they leave no
    visibility unflagged.
    """
    tables = validate_restore_manifest(manifest, package_root, ms_paths)
    targets = set(manifest.measurement_sets) or {path.name for path in ms_paths}
    for ms in ms_paths:
        if ms.name in targets:
            for entry, path in tables:
                check_antennas_match(ms, entry.table, path)
    output_dir.mkdir(parents=True, exist_ok=True)
    restored: list[RestoredMeasurementSet] = []
    for ms in ms_paths:
        if ms.name not in targets:
            restored.append(RestoredMeasurementSet(name=ms.name, path=ms, calibrated=False))
            continue
        restored.append(_restore_one(ms, tables, calls, output_dir / ms.name))
    return RestoreResult(measurement_sets=restored, applied_tables=[entry.table for entry, _ in tables])


def check_antennas_match(ms: Path, table_name: str, table_path: Path) -> None:
    """BadInput when a calibration table has solutions for an antenna that the MS names differently.

    applycal matches antennas by index, not by name: a table from another observation is applied
    silently to whatever antennas share its indices (and the rest of the data is flagged). A table
    carries a copy of the ANTENNA table of the MS it was solved on, so the names must agree."""
    antenna_table = table_path / "ANTENNA"
    if not is_casa_table(antenna_table):
        return  # tables written before CASA 4 carry no ANTENNA sub-table: nothing to compare with
    with guarded_table(antenna_table, table_name, "ANTENNA sub-table", CALIBRATION_TABLE) as table:
        names_in_table = [str(name) for name in table.getcol("NAME")] if table.nrows() else []
    with guarded_table(table_path, table_name, "solutions", CALIBRATION_TABLE) as table:
        solved = sorted({int(a) for a in table.getcol("ANTENNA1")}) if table.nrows() else []
    with guarded_table(ms / "ANTENNA", ms.name, "ANTENNA sub-table") as table:
        names_in_ms = [str(name) for name in table.getcol("NAME")]
    for antenna_id in solved:
        in_table = names_in_table[antenna_id] if antenna_id < len(names_in_table) else "(none)"
        in_ms = names_in_ms[antenna_id] if antenna_id < len(names_in_ms) else "(none)"
        if in_table != in_ms:
            raise BadInput(
                f"Calibration table {table_name} does not belong to {ms.name}: its antenna {antenna_id} is "
                f"{in_table!r} but the MS's antenna {antenna_id} is {in_ms!r}. Package each MS with the "
                "tables solved on it (name the MSs a table applies to in the manifest's 'measurement_sets')."
            )


def _restore_one(
    ms: Path, tables: list[tuple[CalibrationApply, Path]], calls: CasaCallLog, output: Path
) -> RestoredMeasurementSet:
    if output.exists():
        raise FileExistsError(f"restore output {output} exists already")
    flagged_before = measure_flagged_fraction(ms)
    try:
        calls.task(
            "applycal",
            vis=str(ms),
            gaintable=[str(path) for _, path in tables],
            interp=[entry.interp for entry, _ in tables],
            spwmap=[list(entry.spwmap) for entry, _ in tables],
            gainfield=[entry.gainfield for entry, _ in tables],
            calwt=[entry.calwt for entry, _ in tables],
            applymode="calflag",
            flagbackup=False,
        )
    except RuntimeError as error:
        raise BadInput(
            f"applycal refused the package's calibration tables for {ms.name}: {error}. Check each table's "
            "interp, spwmap and gainfield in the manifest, and that the tables belong to this MS.",
            detail=repr(error),
        ) from error
    calls.task("split", vis=str(ms), outputvis=str(output), datacolumn="corrected", keepflags=True)
    if not output.is_dir():
        raise RuntimeError(f"split did not write {output}; see the CASA log")
    flagged_after = measure_flagged_fraction(output)
    if flagged_after >= 1.0 > flagged_before:
        raise BadInput(
            f"Applying the package's calibration tables flagged every visibility of {ms.name} "
            f"(flagged before: {flagged_before:.1%}). The tables have no solutions for its antennas, spws "
            "or times: they are probably from another observation, or need an spwmap.",
        )
    return RestoredMeasurementSet(
        name=ms.name,
        path=output,
        calibrated=True,
        flagged_fraction_before=flagged_before,
        flagged_fraction_after=flagged_after,
    )
