"""Check that a path is a readable Measurement Set, describe it (`MeasurementSetInfo`), and merge the
descriptions of an MOUS's MSs (`MousMetadata`).

Runs inside the CASA child process: `configure_offline()` must have been called before anything here
runs, because casatools is imported on first use, never at module import.

Every read goes through `casa_tables`' guards, so reading the values ingest needs is also the check that
they are readable, and a damaged MS is reported by the part that could not be read.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from aperture_contracts.metadata import (
    AntennaInfo,
    FieldInfo,
    MeasurementSetInfo,
    MousMetadata,
    RepresentativeSpw,
    SpectralWindow,
)
from aperture_shared.casa.antennas import present_antennas
from aperture_shared.errors import BadInput, NoVisibilities

from aperture_ingest.casa_tables import ReadGuard, guarded_msmetadata, guarded_table
from aperture_ingest.tables_on_disk import (
    describe_file,
    describe_table_kind,
    is_casa_table,
    looks_like_measurement_set,
    table_type,
)

# Visibility columns an MS may carry; ingest and every later stage read DATA.
VISIBILITY_COLUMNS = ("DATA", "FLOAT_DATA", "CORRECTED_DATA", "MODEL_DATA", "LAG_DATA")
# Main-table columns without which a table is not an interferometer MS at all.
REQUIRED_MAIN_COLUMNS = ("ANTENNA1", "ANTENNA2", "TIME", "FIELD_ID", "DATA_DESC_ID", "FLAG", "EXPOSURE")
# Sub-tables ingest reads; STATE may be absent or empty (no intents recorded).
REQUIRED_SUBTABLES = (
    "ANTENNA",
    "DATA_DESCRIPTION",
    "FIELD",
    "OBSERVATION",
    "POLARIZATION",
    "SPECTRAL_WINDOW",
)

# FLAG is read this many elements (correlations x channels x rows) at a time: ~16 MB of booleans, so
# the flagged fraction of a many-GB MS is computed in bounded memory.
DEFAULT_CHUNK_ELEMENTS = 1 << 24

# casacore's Stokes enumeration (Stokes::StokesTypes): POLARIZATION.CORR_TYPE holds these codes.
STOKES_NAMES = (
    "Undefined", "I", "Q", "U", "V", "RR", "RL", "LR", "LL", "XX", "XY", "YX", "YY",
    "RX", "RY", "LX", "LY", "XR", "XL", "YR", "YL", "PP", "PQ", "QP", "QQ",
    "RCircular", "LCircular", "Linear", "Ptotal", "Plinear", "PFtotal", "PFlinear", "Pangle",
)  # fmt: skip

# Intents (the part of an ALMA/VLA scan intent before '#') of scans on calibrator sources that the
# calibration stage solves on. Device and system intents (CALIBRATE_ATMOSPHERE, _WVR, _POINTING,
# _FOCUS, _SIDEBAND_RATIO) occur on science targets too and do not make a field a calibrator.
CALIBRATOR_INTENTS = (
    "CALIBRATE_BANDPASS",
    "CALIBRATE_PHASE",
    "CALIBRATE_FLUX",
    "CALIBRATE_AMPLI",
    "CALIBRATE_POLARIZATION",
    "CALIBRATE_POL_ANGLE",
    "CALIBRATE_POL_LEAKAGE",
    "CALIBRATE_DELAY",
    "CALIBRATE_DIFFGAIN",
)
TARGET_INTENT = "OBSERVE_TARGET"
# Scans whose data are science data even though the field is not a target (ALMA check sources).
SCIENCE_DATA_INTENTS = (TARGET_INTENT, "OBSERVE_CHECK_SOURCE")

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)

SOURCE_SBSUMMARY_WINDOW = "data: ASDM_SBSUMMARY science goal representativeWindow"
SOURCE_SBSUMMARY_FREQUENCY = "data: ASDM_SBSUMMARY science goal representativeFrequency"
SOURCE_WIDEST_ON_FIRST_TARGET = (
    "rule: widest-bandwidth science spw observed on the first science target "
    "(ties: most channels, then lowest id)"
)


def describe_measurement_set(path: Path, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> MeasurementSetInfo:
    """Check `path` is a readable MS with a DATA column, then describe it. Raises BadInput otherwise.

    Fields are listed in the order they were first observed (fields without data last), so that the
    MOUS's science targets can be ordered by first observation. Fields without any intent count as
    science targets when they have data: non-ALMA data often records no intents at all. Antennas and
    baselines are those with data in the main table: an ANTENNA table may list more (the VLA excerpt in
    the tests lists 28 rows, 9 of them empty padding, and 18 antennas have data).
    chunk_elements: how many flags to read at a time (memory bound; tests make it tiny).
    """
    check_measurement_set(path)
    reader = _MeasurementSetReader(path)
    return reader.describe(chunk_elements)


def check_measurement_set(path: Path) -> None:
    """Raise BadInput, saying what the path is and what to do, unless it is an MS ingest can read:
    a casacore Measurement Set with rows, a DATA column and the sub-tables ingest reads."""
    _check_on_disk(path)
    name = path.name
    with guarded_table(path, name, "main table") as table:
        columns = list(table.colnames())
        keywords = table.getkeywords()
        num_rows = int(table.nrows())
        missing_columns = [column for column in REQUIRED_MAIN_COLUMNS if column not in columns]
        missing_subtables = [sub for sub in REQUIRED_SUBTABLES if sub not in keywords]
        if missing_columns or missing_subtables:
            lacks = [f"the columns {', '.join(missing_columns)}"] if missing_columns else []
            lacks += [f"the sub-tables {', '.join(missing_subtables)}"] if missing_subtables else []
            raise BadInput(
                f"{name} is a CASA table but not a Measurement Set: it lacks {' and '.join(lacks)}. "
                "Submit the MS written by importasdm/importvla/importuvfits (or split) instead."
            )
        if num_rows == 0:
            raise NoVisibilities(
                f"{name} is an empty Measurement Set (its main table has no rows, so no visibilities). "
                "Check the data selection that produced it (split/mstransform) and submit an MS with data."
            )
        if "DATA" not in columns:
            raise BadInput(_no_data_column(name, [c for c in VISIBILITY_COLUMNS if c in columns]))
        if not table.iscelldefined("DATA", 0):
            raise BadInput(
                f"{name} has a DATA column that holds no data (its first row is undefined). "
                "Submit an MS whose DATA column was filled (e.g. by split or importasdm)."
            )
    # Reading the first and the last row's visibilities finds a DATA storage file that is missing or
    # was cut short, without reading the whole column.
    with guarded_table(path, name, "DATA column") as table:
        table.getcell("DATA", 0)
        table.getcell("DATA", num_rows - 1)


def _no_data_column(name: str, present: list[str]) -> str:
    """What to do about an MS without DATA depends on what it has instead."""
    message = f"{name} has no DATA column (its visibility columns: {', '.join(present) or 'none'}). "
    if "CORRECTED_DATA" in present:
        return message + (
            "Aperture reads visibilities from DATA: run split(vis, outputvis, datacolumn='corrected') "
            "and submit the result."
        )
    if "FLOAT_DATA" in present:
        return message + "FLOAT_DATA holds single-dish spectra; Aperture processes interferometer data only."
    return message + "It holds no visibilities to process; submit the MS as written by the observatory."


def _check_on_disk(path: Path) -> None:
    """Checks that need no CASA: the path exists, is a directory, is a casacore table, is an MS."""
    name = path.name
    if not path.exists():
        raise BadInput(f"{name}: no such file or directory ({path}).")
    if not path.is_dir():
        raise BadInput(
            f"{name} is {describe_file(path)}, not a Measurement Set: an MS is a directory of casacore "
            "tables. Submit the .ms directory itself (the CLI packs it), or a tar archive of MSs."
        )
    if is_casa_table(path):
        kind = table_type(path)
        if kind not in ("", "Measurement Set"):
            raise BadInput(
                f"{name} is {describe_table_kind(path)}, not a Measurement Set. "
                "Submit the MS the observation was recorded in."
            )
        return
    entries = sorted(entry.name for entry in path.iterdir())
    if not entries:
        raise BadInput(f"{name} is an empty directory, not a Measurement Set.")
    inner = [entry for entry in sorted(path.iterdir()) if looks_like_measurement_set(entry)]
    if inner:
        raise BadInput(
            f"{name} is a directory that holds Measurement Sets ({', '.join(e.name for e in inner[:5])}) "
            "but is not one itself: give the path of each MS, or submit the directory as a package."
        )
    shown = ", ".join(entries[:8]) + (", ..." if len(entries) > 8 else "")
    raise BadInput(
        f"{name} is a directory but not a casacore table (it has no table.dat; it holds {shown}). "
        "Submit a Measurement Set directory."
    )


@dataclass
class _MainTableSummary:
    """What one pass over the main table finds, chunk by chunk."""

    flagged: int = 0
    total: int = 0
    antenna_ids: set[int] = field(default_factory=set)
    baselines: set[tuple[int, int]] = field(default_factory=set)
    first_time_of_field: dict[int, float] = field(default_factory=dict)
    time_start: float = math.inf
    time_end: float = -math.inf
    # integration midpoint -> exposure, over rows of science-target fields; keyed by time so that the
    # same integration recorded for several spws counts once
    science_integrations: dict[float, float] = field(default_factory=dict)


@dataclass
class _SpwRow:
    spw_id: int
    name: str
    frequencies: np.ndarray
    widths: np.ndarray


class _MeasurementSetReader:
    """Reads one checked MS; one instance per describe call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name

    def describe(self, chunk_elements: int) -> MeasurementSetInfo:
        antenna_rows = self._read_antennas()
        spw_rows = self._read_spectral_windows()
        spw_of_ddid, pol_of_ddid = self._read_data_descriptions()
        correlations_of_pol = self._read_polarizations()
        observatory = self._read_observatory()
        self._check_fields_and_states()
        columns, num_rows, time_reference = self._read_main_table_layout()

        with guarded_msmetadata(self.path) as metadata:
            num_fields = int(metadata.nfields())
            field_names = [str(n) for n in metadata.fieldnames()]
            intents_of_field = {
                fid: sorted(str(i) for i in metadata.intentsforfield(fid)) for fid in range(num_fields)
            }
            spws_of_field = {
                fid: sorted(int(s) for s in metadata.spwsforfield(fid)) for fid in range(num_fields)
            }
            directions = {fid: metadata.phasecenter(fid) for fid in range(num_fields)}
            intents_of_spw = {
                row.spw_id: [str(i) for i in metadata.intentsforspw(row.spw_id)] for row in spw_rows
            }
            frames = {row.spw_id: str(metadata.reffreq(row.spw_id)["refer"]) for row in spw_rows}

        # a field without rows has no intents either; it is a target only if it was observed
        target_candidates = {fid for fid in range(num_fields) if _is_science_target(intents_of_field[fid])}
        summary = _scan_main_table(self.path, target_candidates, chunk_elements)
        observed_field_ids = set(summary.first_time_of_field)
        target_field_ids = target_candidates & observed_field_ids
        positions = self._equatorial_positions(directions, summary.first_time_of_field, summary.time_start)

        correlations_of_spw: dict[int, list[str]] = {}
        for ddid, spw_id in spw_of_ddid.items():
            names = correlations_of_spw.setdefault(spw_id, [])
            names.extend(c for c in correlations_of_pol.get(pol_of_ddid[ddid], []) if c not in names)

        spectral_windows = [
            _spectral_window(
                row,
                frames[row.spw_id],
                correlations_of_spw.get(row.spw_id, []),
                science=is_science_spectral_window(
                    row.name, len(row.frequencies), observatory, intents_of_spw[row.spw_id]
                ),
            )
            for row in spw_rows
        ]

        fields_info = [
            FieldInfo(
                field_id=fid,
                name=field_names[fid],
                ra_deg=positions[fid][0],
                dec_deg=positions[fid][1],
                intents=intents_of_field[fid],
                is_science_target=fid in target_field_ids,
                spw_ids=spws_of_field[fid],
            )
            for fid in sorted(
                range(num_fields),
                key=lambda fid: (summary.first_time_of_field.get(fid, math.inf), fid),
            )
        ]
        all_intents = sorted({intent for fid in observed_field_ids for intent in intents_of_field[fid]})
        antennas = [antenna_rows[aid] for aid in sorted(summary.antenna_ids) if aid in antenna_rows]
        ms_correlations: list[str] = []
        for spw_id in sorted(correlations_of_spw):
            ms_correlations.extend(c for c in correlations_of_spw[spw_id] if c not in ms_correlations)

        recorded = self._recorded_representative_spw(spectral_windows, fields_info, summary)
        return MeasurementSetInfo(
            name=self.name,
            observatory=observatory,
            time_start=_to_datetime(summary.time_start, time_reference),
            time_end=_to_datetime(summary.time_end, time_reference),
            exposure_s=float(sum(summary.science_integrations.values())),
            num_rows=num_rows,
            num_antennas=len(antennas),
            num_baselines=len(summary.baselines),
            antennas=antennas,
            fields=fields_info,
            spectral_windows=spectral_windows,
            correlations=ms_correlations,
            intents=all_intents,
            flagged_fraction=summary.flagged / summary.total if summary.total else 1.0,
            data_columns=[column for column in VISIBILITY_COLUMNS if column in columns],
            has_calibrator_intents=any(_is_calibrator_intent(intent) for intent in all_intents),
            recorded_representative_spw=recorded,
        )

    # -- sub-tables, read with the table tool (each read is also the check that it is readable)

    def _subtable(self, subtable: str) -> Any:
        return guarded_table(self.path / subtable, self.name, f"{subtable} sub-table")

    def _read_antennas(self) -> dict[int, AntennaInfo]:
        with self._subtable("ANTENNA") as table:
            if table.nrows() == 0:
                raise BadInput(f"{self.name}: its ANTENNA sub-table is empty. The MS is incomplete.")
            names = table.getcol("NAME")
            stations = table.getcol("STATION")
            diameters = table.getcol("DISH_DIAMETER")
            present = present_antennas(table.getcol("FLAG_ROW"), diameters, table.getcol("POSITION"))
        if not present.any():
            raise BadInput(f"{self.name}: every row of its ANTENNA sub-table is flagged or has no dish "
                           "diameter or position. The MS is incomplete.")
        # Rows of antennas that were not in the array (flagged placeholders) are not antennas of this MS.
        return {
            aid: AntennaInfo(antenna_id=aid, name=str(names[aid]), station=str(stations[aid]),
                             diameter_m=float(diameters[aid]))
            for aid in np.flatnonzero(present).tolist()
        }  # fmt: skip

    def _read_spectral_windows(self) -> list[_SpwRow]:
        rows: list[_SpwRow] = []
        with self._subtable("SPECTRAL_WINDOW") as table:
            if table.nrows() == 0:
                raise BadInput(f"{self.name}: its SPECTRAL_WINDOW sub-table is empty. The MS is incomplete.")
            names = table.getcol("NAME")
            for spw_id in range(int(table.nrows())):
                # CHAN_FREQ's shape differs between spws, so it is read cell by cell
                frequencies = np.asarray(table.getcell("CHAN_FREQ", spw_id), dtype=float)
                widths = np.asarray(table.getcell("CHAN_WIDTH", spw_id), dtype=float)
                rows.append(_SpwRow(spw_id, str(names[spw_id]), frequencies, widths))
        return rows

    def _read_data_descriptions(self) -> tuple[dict[int, int], dict[int, int]]:
        with self._subtable("DATA_DESCRIPTION") as table:
            spw_ids = table.getcol("SPECTRAL_WINDOW_ID")
            pol_ids = table.getcol("POLARIZATION_ID")
        return (
            {ddid: int(spw) for ddid, spw in enumerate(spw_ids)},
            {ddid: int(pol) for ddid, pol in enumerate(pol_ids)},
        )

    def _read_polarizations(self) -> dict[int, list[str]]:
        correlations: dict[int, list[str]] = {}
        with self._subtable("POLARIZATION") as table:
            for pol_id in range(int(table.nrows())):
                codes = np.atleast_1d(table.getcell("CORR_TYPE", pol_id))
                correlations[pol_id] = [_stokes_name(int(code)) for code in codes]
        return correlations

    def _read_observatory(self) -> str:
        with self._subtable("OBSERVATION") as table:
            names = [str(n) for n in table.getcol("TELESCOPE_NAME")] if table.nrows() else []
        distinct = list(dict.fromkeys(n for n in names if n))
        return ",".join(distinct) if distinct else "unknown"

    def _check_fields_and_states(self) -> None:
        """Read FIELD's and STATE's columns once with the table tool, so that a damaged one is reported
        by name; msmetadata reads them again (positions in their frames, intents per field)."""
        with self._subtable("FIELD") as table:
            if table.nrows() == 0:
                raise BadInput(f"{self.name}: its FIELD sub-table is empty. The MS is incomplete.")
            table.getcol("NAME")
            for row in range(int(table.nrows())):
                table.getcell("PHASE_DIR", row)
        if (self.path / "STATE").exists():  # optional, but when present it must be readable
            with self._subtable("STATE") as table:
                if table.nrows():
                    table.getcol("OBS_MODE")

    def _read_main_table_layout(self) -> tuple[list[str], int, str]:
        with guarded_table(self.path, self.name, "main table") as table:
            columns = list(table.colnames())
            num_rows = int(table.nrows())
            measure_info = table.getcolkeyword("TIME", "MEASINFO") or {}
        return columns, num_rows, str(measure_info.get("Ref", "UTC"))

    # -- positions

    def _equatorial_positions(
        self, directions: dict[int, dict[str, Any]], first_times: dict[int, float], time_start: float
    ) -> dict[int, tuple[float, float]]:
        """(RA, Dec) in degrees per field. J2000 and ICRS are taken as they are (they differ by tens of
        milliarcseconds); other frames (AZEL, HADEC, APP, B1950, GALACTIC) are converted to J2000 at the
        field's first observation, as seen from the array's centre."""
        positions: dict[int, tuple[float, float]] = {}
        to_convert: list[int] = []
        for fid, direction in directions.items():
            if str(direction.get("refer", "")).upper() in ("J2000", "ICRS"):
                positions[fid] = _degrees(direction)
            else:
                to_convert.append(fid)
        if not to_convert:
            return positions
        import casatools

        array_centre = self._array_centre()
        measures = casatools.measures()
        quanta = casatools.quanta()
        try:
            with ReadGuard(self.name, "FIELD directions (conversion to J2000)"):
                measures.doframe(array_centre)
                for fid in to_convert:
                    seconds = first_times.get(fid, time_start)
                    measures.doframe(measures.epoch("UTC", quanta.quantity(float(seconds), "s")))
                    converted = measures.measure(directions[fid], "J2000")
                    if not converted:
                        raise BadInput(
                            f"{self.name}: the direction of field {fid} (frame "
                            f"{directions[fid].get('refer')}) cannot be converted to J2000."
                        )
                    positions[fid] = _degrees(converted)
        finally:
            measures.done()
        return positions

    def _array_centre(self) -> dict[str, Any]:
        """The mean antenna position as an ITRF position measure: where "the observatory" is, taken
        from the data because casadata's observatory list lacks some arrays (LWA-SV, for one)."""
        import casatools

        with self._subtable("ANTENNA") as table:
            positions = np.asarray(table.getcol("POSITION"), dtype=float)
            present = present_antennas(table.getcol("FLAG_ROW"), table.getcol("DISH_DIAMETER"), positions)
        centre = positions[:, present].mean(axis=1)
        quanta = casatools.quanta()
        position: dict[str, Any] = casatools.measures().position(
            "ITRF", *(quanta.quantity(float(v), "m") for v in centre)
        )
        return position

    # -- the observatory's recorded choice of representative spw

    def _recorded_representative_spw(
        self, spectral_windows: list[SpectralWindow], fields: list[FieldInfo], summary: _MainTableSummary
    ) -> RepresentativeSpw | None:
        """The representative spw as the observatory recorded it: ALMA writes the SB's science goal into
        the ASDM_SBSUMMARY sub-table (importasdm keeps it). From Cycle 7 it names the window
        (`representativeWindow`); before, only its frequency and bandwidth. The frequency is read the
        way the ALMA pipeline reads it (a barycentric sky frequency, converted to TOPO at the start of
        the representative source's first scan) and matched to a science spw that covers it. Other
        observatories record nothing of the kind."""
        goals = self._read_science_goals()
        if not goals:
            return None
        science = [spw for spw in spectral_windows if spw.science]
        window = goals.get("representativeWindow", "")
        if window and window.lower() != "none":
            for spw in science:
                if _same_window(spw.name, window):
                    return RepresentativeSpw(
                        spw_id=spw.spw_id, source=f"{SOURCE_SBSUMMARY_WINDOW} {window!r}"
                    )
        frequency_hz = _quantity_in(goals.get("representativeFrequency", ""), "Hz")
        if not frequency_hz:
            return None
        source_name = goals.get("representativeSource", "")
        source_fields = [f for f in fields if f.is_science_target and f.name == source_name] or [
            f for f in fields if f.is_science_target
        ]
        if not source_fields:
            return None
        observed_spws = {spw_id for f in source_fields for spw_id in f.spw_ids}
        first_time = summary.first_time_of_field.get(source_fields[0].field_id, summary.time_start)
        topo_hz = self._barycentric_to_topocentric(frequency_hz, source_fields[0], first_time)
        covering = [
            spw for spw in science
            if spw.spw_id in observed_spws and spw.min_frequency_hz <= topo_hz <= spw.max_frequency_hz
        ]  # fmt: skip
        bandwidth_hz = _quantity_in(goals.get("representativeBandwidth", ""), "Hz")
        if bandwidth_hz:
            # channels no wider than the representative bandwidth (1% margin for online Hanning smoothing)
            covering = [s for s in covering if abs(s.channel_width_hz) <= 1.01 * bandwidth_hz] or covering
        if not covering:
            return None
        best = max(covering, key=lambda s: (s.bandwidth_hz, s.num_channels, -s.spw_id))
        return RepresentativeSpw(
            spw_id=best.spw_id, source=f"{SOURCE_SBSUMMARY_FREQUENCY} {frequency_hz / 1e9:.6f} GHz"
        )

    def _read_science_goals(self) -> dict[str, str]:
        """The first SB summary row's science goals as {keyword: value}; {} when the MS has none.

        ASDM_SBSUMMARY is optional, observatory-specific metadata: when it is missing or unreadable the
        representative spw falls back to the documented rule instead of failing the MS."""
        table_path = self.path / "ASDM_SBSUMMARY"
        if not is_casa_table(table_path):
            return {}
        try:
            with self._subtable("ASDM_SBSUMMARY") as table:
                if table.nrows() == 0 or "scienceGoal" not in table.colnames():
                    return {}
                goals = [str(g) for g in np.atleast_1d(table.getcell("scienceGoal", 0))]
        except BadInput:
            return {}
        parsed: dict[str, str] = {}
        for goal in goals:
            keyword, separator, value = goal.partition("=")
            if separator:
                parsed.setdefault(keyword.strip(), value.strip())
        return parsed

    def _barycentric_to_topocentric(self, frequency_hz: float, target: FieldInfo, seconds: float) -> float:
        import casatools

        array_centre = self._array_centre()
        measures = casatools.measures()
        quanta = casatools.quanta()
        try:
            measures.doframe(array_centre)
            measures.doframe(measures.direction("J2000", f"{target.ra_deg}deg", f"{target.dec_deg}deg"))
            measures.doframe(measures.epoch("UTC", quanta.quantity(float(seconds), "s")))
            converted = measures.measure(
                measures.frequency("BARY", quanta.quantity(frequency_hz, "Hz")), "TOPO"
            )
            return float(converted["m0"]["value"]) if converted else frequency_hz
        except RuntimeError:
            return frequency_hz
        finally:
            measures.done()


def measure_flagged_fraction(path: Path, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> float:
    """The fraction of the MS's visibilities (correlation x channel x row) that are flagged."""
    summary = _scan_main_table(path, set(), chunk_elements, flags_only=True)
    return summary.flagged / summary.total if summary.total else 1.0


def _scan_main_table(
    path: Path, target_field_ids: set[int], chunk_elements: int, flags_only: bool = False
) -> _MainTableSummary:
    """One pass over the main table, data description by data description (FLAG has one shape within
    each), at most `chunk_elements` flags at a time, so memory stays bounded however large the MS."""
    summary = _MainTableSummary()
    targets = np.fromiter(sorted(target_field_ids), dtype=int)
    columns = (
        "FLAG,FLAG_ROW" if flags_only else "FLAG,FLAG_ROW,ANTENNA1,ANTENNA2,TIME,INTERVAL,EXPOSURE,FIELD_ID"
    )
    with guarded_table(path, path.name, "main table (visibility flags and times)") as table:
        for ddid in _data_description_ids(path):
            selection = table.query(f"DATA_DESC_ID=={ddid}", columns=columns)
            try:
                num_rows = int(selection.nrows())
                if num_rows == 0:
                    continue
                elements_per_row = max(1, int(np.prod(np.shape(selection.getcell("FLAG", 0)))))
                rows_per_chunk = max(1, chunk_elements // elements_per_row)
                for start in range(0, num_rows, rows_per_chunk):
                    count = min(rows_per_chunk, num_rows - start)
                    _add_flags(summary, selection, start, count)
                    if not flags_only:
                        _add_rows(summary, selection, start, count, targets)
            finally:
                selection.close()
    return summary


def _data_description_ids(path: Path) -> range:
    with guarded_table(path / "DATA_DESCRIPTION", path.name, "DATA_DESCRIPTION sub-table") as table:
        return range(int(table.nrows()))


def _add_flags(summary: _MainTableSummary, selection: Any, start: int, count: int) -> None:
    flags = np.asarray(selection.getcol("FLAG", start, count), dtype=bool)
    row_flags = np.asarray(selection.getcol("FLAG_ROW", start, count), dtype=bool)
    elements_per_row = int(flags.size // count)
    # FLAG_ROW set means the whole row is flagged, whatever FLAG says
    summary.flagged += int(flags[..., ~row_flags].sum()) + int(row_flags.sum()) * elements_per_row
    summary.total += int(flags.size)


def _add_rows(
    summary: _MainTableSummary, selection: Any, start: int, count: int, targets: np.ndarray
) -> None:
    antenna1 = np.asarray(selection.getcol("ANTENNA1", start, count), dtype=int)
    antenna2 = np.asarray(selection.getcol("ANTENNA2", start, count), dtype=int)
    summary.antenna_ids.update(int(a) for a in np.union1d(antenna1, antenna2))
    cross = antenna1 != antenna2
    pairs = np.unique(
        np.stack(
            [np.minimum(antenna1[cross], antenna2[cross]), np.maximum(antenna1[cross], antenna2[cross])]
        ),
        axis=1,
    )
    summary.baselines.update((int(a), int(b)) for a, b in pairs.T)

    times = np.asarray(selection.getcol("TIME", start, count), dtype=float)
    intervals = np.asarray(selection.getcol("INTERVAL", start, count), dtype=float)
    summary.time_start = min(summary.time_start, float((times - intervals / 2).min()))
    summary.time_end = max(summary.time_end, float((times + intervals / 2).max()))

    field_ids = np.asarray(selection.getcol("FIELD_ID", start, count), dtype=int)
    for fid in np.unique(field_ids):
        first = float(times[field_ids == fid].min())
        known = summary.first_time_of_field.get(int(fid), math.inf)
        summary.first_time_of_field[int(fid)] = min(known, first)

    on_target = np.isin(field_ids, targets)
    if on_target.any():
        exposures = np.asarray(selection.getcol("EXPOSURE", start, count), dtype=float)
        for time, exposure in zip(times[on_target], exposures[on_target], strict=True):
            known_exposure = summary.science_integrations.get(float(time), 0.0)
            summary.science_integrations[float(time)] = max(known_exposure, float(exposure))


def _spectral_window(row: _SpwRow, frame: str, correlations: list[str], *, science: bool) -> SpectralWindow:
    half_widths = np.abs(row.widths) / 2
    low = float((row.frequencies - half_widths).min())
    high = float((row.frequencies + half_widths).max())
    return SpectralWindow(
        spw_id=row.spw_id,
        name=row.name,
        num_channels=len(row.frequencies),
        ref_frequency_hz=float(row.frequencies[0]),
        centre_frequency_hz=(low + high) / 2,
        bandwidth_hz=high - low,
        channel_width_hz=float(row.widths[0]),
        min_frequency_hz=low,
        max_frequency_hz=high,
        frame=frame,
        correlations=correlations,
        science=science,
    )


def is_science_spectral_window(name: str, num_channels: int, observatory: str, intents: list[str]) -> bool:
    """False for spws that carry no science data: water-vapour radiometer and channel-average windows
    (ALMA writes them with 4 and 1 channels; their names say WVR / CH_AVG), and, where intents are
    recorded, spws used only for calibration-device scans (pointing, atmosphere, sideband ratio)."""
    upper = name.upper()
    if "WVR" in upper or "CH_AVG" in upper:
        return False
    if _is_alma(observatory) and num_channels in (1, 4):
        return False
    science_data = [i for i in intents if _is_calibrator_intent(i) or _intent_base(i) in SCIENCE_DATA_INTENTS]
    return not intents or bool(science_data)


def _is_alma(observatory: str) -> bool:
    return observatory.upper().startswith("ALMA") or observatory.upper() == "ACA"


def _intent_base(intent: str) -> str:
    return intent.partition("#")[0]


def _is_science_target(intents: list[str]) -> bool:
    """A field observed with an OBSERVE_TARGET intent (not its single-dish OFF_SOURCE position), or with
    no intent at all: data from observatories that record no intents is all treated as targets."""
    if not intents:
        return True
    return any(
        _intent_base(intent) == TARGET_INTENT and not intent.endswith("#OFF_SOURCE") for intent in intents
    )


def _is_calibrator_intent(intent: str) -> bool:
    return _intent_base(intent).startswith(CALIBRATOR_INTENTS)


def _stokes_name(code: int) -> str:
    return STOKES_NAMES[code] if 0 <= code < len(STOKES_NAMES) else f"STOKES_{code}"


def _degrees(direction: dict[str, Any]) -> tuple[float, float]:
    ra = math.degrees(float(direction["m0"]["value"])) % 360.0
    dec = math.degrees(float(direction["m1"]["value"]))
    return ra, dec


def _to_datetime(seconds: float, reference: str) -> datetime:
    """An MS time (seconds since MJD 0 in `reference`) as a UTC datetime."""
    if reference.upper() != "UTC":
        import casatools

        measures = casatools.measures()
        quanta = casatools.quanta()
        try:
            epoch = measures.measure(measures.epoch(reference, quanta.quantity(seconds, "s")), "UTC")
            seconds = float(epoch["m0"]["value"]) * 86400.0
        finally:
            measures.done()
    return MJD_EPOCH + timedelta(seconds=seconds)


def _quantity_in(text: str, unit: str) -> float | None:
    """A science-goal value like '112.374 GHz' in `unit`; None when empty, unparseable or not positive."""
    match = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([A-Za-z]*)\s*", text or "")
    if not match:
        return None
    import casatools

    quanta = casatools.quanta()
    try:
        value = float(quanta.convert(quanta.quantity(float(match[1]), match[2] or unit), unit)["value"])
    except (RuntimeError, ValueError):
        return None
    return value if value > 0 else None


def _same_window(spw_name: str, window: str) -> bool:
    """ALMA spw names look like 'X1068667655#ALMA_RB_03#BB_1#SW-01#FULL_RES'; the science goal may give
    the window with or without the leading configuration id and the trailing '#FULL_RES'."""
    return _window_key(spw_name) == _window_key(window)


def _window_key(name: str) -> str:
    parts = [p for p in name.strip().split("#") if p]
    if parts and re.fullmatch(r"X\d+", parts[0]):
        parts = parts[1:]
    if parts and parts[-1] == "FULL_RES":
        parts = parts[:-1]
    return "#".join(parts)


def merge_metadata(infos: list[MeasurementSetInfo], calibrated: bool) -> MousMetadata:
    """The MOUS over its MSs: science targets in the order first observed, science spws (those observed
    on a science target), and the representative spw.

    The representative spw is the one the observatory recorded (the earliest MS that records one
    naming a science spw wins); otherwise the rule SOURCE_WIDEST_ON_FIRST_TARGET. Spw ids are taken to
    mean the same spw in every MS of the MOUS, as they do for the execution blocks of one ALMA SB.
    """
    if not infos:
        raise BadInput("the package holds no Measurement Set to describe.")
    in_time_order = sorted(infos, key=lambda info: info.time_start)

    science_targets: list[str] = []
    science_spw_ids: set[int] = set()
    for info in in_time_order:
        science_in_ms = {spw.spw_id for spw in info.spectral_windows if spw.science}
        for field_info in info.fields:  # already in the order first observed
            if not field_info.is_science_target:
                continue
            if field_info.name not in science_targets:
                science_targets.append(field_info.name)
            science_spw_ids.update(science_in_ms.intersection(field_info.spw_ids))

    return MousMetadata(
        measurement_sets=list(infos),
        science_targets=science_targets,
        science_spw_ids=sorted(science_spw_ids),
        representative_spw=_representative_spw(in_time_order, science_targets, science_spw_ids),
        calibrated=calibrated,
    )


def _representative_spw(
    in_time_order: list[MeasurementSetInfo], science_targets: list[str], science_spw_ids: set[int]
) -> RepresentativeSpw | None:
    for info in in_time_order:
        recorded = info.recorded_representative_spw
        if recorded is not None and recorded.spw_id in science_spw_ids:
            return recorded
    if not science_targets:
        return None
    first_target = science_targets[0]
    candidates: dict[int, SpectralWindow] = {}
    for info in in_time_order:
        spws = {spw.spw_id: spw for spw in info.spectral_windows}
        for field_info in info.fields:
            if field_info.is_science_target and field_info.name == first_target:
                for spw_id in field_info.spw_ids:
                    if spw_id in science_spw_ids and spw_id in spws:
                        candidates.setdefault(spw_id, spws[spw_id])
    if not candidates:
        return None
    best = max(candidates.values(), key=lambda spw: (spw.bandwidth_hz, spw.num_channels, -spw.spw_id))
    return RepresentativeSpw(spw_id=best.spw_id, source=SOURCE_WIDEST_ON_FIRST_TARGET)
