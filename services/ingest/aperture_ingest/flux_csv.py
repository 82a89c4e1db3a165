"""An operator's flux.csv: the flux densities of the flux calibrators, in the ALMA pipeline's format.

The ALMA pipeline reads `flux.csv` from its working directory, one row per MS, field and spw:

    ms,field,spw,I,Q,U,V,spix,uvmin,uvmax,comment
    uid___A002_X1.ms,0,0,2.61,0,0,0,-0.6,0,0,"# J1517-2422 from the calibrator catalogue"

(older files stop after `spix` or have no uv range). A package that carries one at its root gives the
calibration stage a flux model for calibrators CASA has no model of (ALMA's quasars, whose flux is
monitored, not modelled); without it the flux scale is relative.

Each row gives Stokes I at its spw's centre frequency. The calibration contract takes one power law per
field, S(nu) = S0 (nu / nu0)^alpha, so the rows of a field become one: with two or more frequencies the
spectral index is fitted to them (least squares in log S, log nu) and the reference is the lowest
frequency; with one, the row's own `spix` is used. Q, U, V and the uv range are read and not used (the
calibration models Stokes I only), and a row that sets them says so in the log rather than failing.
"""

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from aperture_contracts.flux import FluxModel
from aperture_contracts.metadata import MeasurementSetInfo
from aperture_shared.errors import BadInput

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("ms", "field", "spw", "I")


@dataclass(frozen=True)
class FluxRow:
    line: int
    field: str
    frequency_hz: float
    flux_jy: float
    spectral_index: float


def read_flux_csv(path: Path, measurement_sets: list[MeasurementSetInfo]) -> list[FluxModel]:
    """The flux models the file gives, one per field, sorted by field name. Raises BadInput naming the
    line and what is wrong when a row cannot be read or names an MS, field or spw the package lacks."""
    by_name = {info.name: info for info in measurement_sets}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(line for line in handle if line.strip() and not line.lstrip().startswith("#"))
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise BadInput(
                f"{path.name}: its header lacks the column(s) {', '.join(missing)}; the ALMA format is "
                "'ms,field,spw,I,Q,U,V,spix,uvmin,uvmax,comment'"
            )
        reader.fieldnames = header
        rows = [_row(path.name, reader.line_num, record, by_name) for record in reader]
    if not rows:
        raise BadInput(f"{path.name} has a header but no rows: remove it, or give a row per flux calibrator and spw")
    fields = sorted({row.field for row in rows})
    return [_power_law(path.name, [row for row in rows if row.field == field]) for field in fields]


def _row(file: str, line: int, record: dict[str, str | None], by_name: dict[str, MeasurementSetInfo]) -> FluxRow:
    def value(column: str) -> str:
        return (record.get(column) or "").strip()

    ms_name = value("ms")
    info = by_name.get(ms_name) or by_name.get(f"{ms_name}.ms")
    if info is None:
        raise BadInput(
            f"{file} line {line}: no Measurement Set named {ms_name!r} in the package "
            f"(it holds {', '.join(sorted(by_name))})"
        )
    field = _field_name(file, line, value("field"), info)
    spw_text = value("spw")
    spw = next((s for s in info.spectral_windows if spw_text.isdigit() and s.spw_id == int(spw_text)), None)
    if spw is None:
        raise BadInput(
            f"{file} line {line}: {info.name} has no spw {spw_text!r} "
            f"(its spws: {', '.join(str(s.spw_id) for s in info.spectral_windows)})"
        )
    flux = _number(file, line, "I", value("I"))
    if flux <= 0:
        raise BadInput(f"{file} line {line}: Stokes I must be a positive flux density in Jy, not {flux:g}")
    polarised = [column for column in ("Q", "U", "V") if value(column) and _number(file, line, column, value(column))]
    if polarised:
        log.info("%s line %d sets %s: only Stokes I is used for the flux scale", file, line, "/".join(polarised))
    spix = _number(file, line, "spix", value("spix")) if value("spix") else 0.0
    return FluxRow(line=line, field=field, frequency_hz=spw.centre_frequency_hz, flux_jy=flux, spectral_index=spix)


def _field_name(file: str, line: int, given: str, info: MeasurementSetInfo) -> str:
    """The pipeline writes field ids; people write names. Either is taken."""
    for candidate in info.fields:
        if given == candidate.name or (given.isdigit() and int(given) == candidate.field_id):
            return candidate.name
    raise BadInput(
        f"{file} line {line}: {info.name} has no field {given!r} "
        f"(its fields: {', '.join(f'{f.field_id}={f.name}' for f in info.fields)})"
    )


def _number(file: str, line: int, column: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise BadInput(f"{file} line {line}: column {column} must be a number, not {text!r}") from None
    if not math.isfinite(number):
        raise BadInput(f"{file} line {line}: column {column} must be finite, not {text!r}")
    return number


def _power_law(file: str, rows: list[FluxRow]) -> FluxModel:
    field = rows[0].field
    lowest = min(rows, key=lambda row: row.frequency_hz)
    frequencies = sorted({row.frequency_hz for row in rows})
    if len(frequencies) == 1:
        if len({(row.flux_jy, row.spectral_index) for row in rows}) > 1:
            lines = ", ".join(str(row.line) for row in rows)
            raise BadInput(f"{file} lines {lines} give {field} different fluxes at the same frequency: keep one")
        return FluxModel(field=field, flux_jy=lowest.flux_jy, reference_frequency_hz=lowest.frequency_hz,
                         spectral_index=lowest.spectral_index)  # fmt: skip
    # Several spws: the spectral index the rows imply, fitted, rather than any one row's spix.
    xs = [math.log(row.frequency_hz / lowest.frequency_hz) for row in rows]
    ys = [math.log(row.flux_jy) for row in rows]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    alpha = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    flux_at_lowest = math.exp(mean_y - alpha * mean_x)
    return FluxModel(field=field, flux_jy=flux_at_lowest, reference_frequency_hz=lowest.frequency_hz,
                     spectral_index=alpha)  # fmt: skip
