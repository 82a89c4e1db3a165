"""The findcont step that runs inside the CASA child process (see aperture_shared.casa.runner).

Read the target's visibilities in the spw from every MS, grid a dirty LSRK cube with ducc0, average it
inside the joint moment mask, decide the continuum channels (or take the operator's), and write
cont.dat, the plot and a JSON record of everything decided. The handler around it only moves files.
"""

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from aperture_contracts.continuum import ContinuumCase, ContinuumRanges, FrequencyRange
from aperture_shared.casa.calls import CasaCallLog
from aperture_shared.errors import BadInput
from pydantic import BaseModel

from aperture_findcont import frames
from aperture_findcont.cont_dat import format_cont_dat
from aperture_findcont.continuum_finder import ContinuumDecision, FinderParameters, find_continuum_channels
from aperture_findcont.dirty_cube import DirtyCube, ImageGeometry, plan_geometry, sin_offsets
from aperture_findcont.joint_mask import SourceSpectrum, primary_beam_gain, source_spectrum
from aperture_findcont.measurement_set import TargetData, read_target, visibility_blocks
from aperture_findcont.plot import SpectrumPlot, write_spectrum_plot
from aperture_findcont.ranges import channel_selection, channel_width_hz, channels_in_ranges, frequency_ranges

GRIDDER = "ducc0.wgridder.vis2dirty"
WEIGHTING = "natural"
# Cubes larger than this are kept on the scratch disk (memory-mapped) rather than in memory.
IN_MEMORY_CUBE_BYTES = 512 * 2**20
# Pointings closer than this are one pointing (the same field observed in several executions).
SAME_POINTING_RAD = math.radians(0.01 / 3600)
LINE_FOREST_FRACTION = FinderParameters().line_forest_fraction
CONT_DAT_NAME = "cont.dat"
PLOT_NAME = "findcont.png"
RECORD_NAME = "findcont.json"


class LineRecord(BaseModel):
    first_channel: int
    last_channel: int
    low_hz: float
    high_hz: float
    kind: str  # emission or absorption
    peak_sigma: float
    scale_channels: int


class ImagingRecord(BaseModel):
    """How the dirty cube was made (the choice of gridder is recorded here, not in casa_calls: no CASA
    task makes it)."""

    gridder: str = GRIDDER
    weighting: str = WEIGHTING
    npix: int
    cell_arcsec: float
    beam_arcsec: float = 0.0  # estimated from the longest baseline
    primary_beam_fwhm_arcsec: float
    pointings: int
    channels: int
    frame: str = "LSRK"
    rows: int
    measurement_sets: list[str]
    seconds: float


class FindcontStepResult(BaseModel):
    continuum: ContinuumRanges
    cont_dat: str
    plot: str
    record: str
    spw_name: str
    notes: list[str]
    lines: list[LineRecord]
    noise_jy: float | None
    # The spectrum's noise measured off the source (the mask's shifted copies), which the finder was
    # given; None when the image had no room for copies and the finder estimated it from the spectrum.
    off_source_noise_jy: float | None = None
    off_source_noise_copies: int = 0
    mask_pixels: int
    mask_from_emission: bool
    finder_case: ContinuumCase
    finder_line_channels_selected: int  # line channels (by the finder) inside the chosen ranges
    imaging: ImagingRecord
    finding_seconds: float


class _Spectrum(BaseModel):
    lsrk_hz: list[float]
    mean_jy: list[float | None]
    baseline_jy: list[float | None]
    continuum: list[bool]


class FindcontRecord(FindcontStepResult):
    """What findcont.json holds: the result plus the spectrum it was decided on."""

    spectrum: _Spectrum


def find_continuum_in_spw(arguments: dict[str, Any], calls: CasaCallLog) -> FindcontStepResult:
    target: str = arguments["target"]
    spw_id = int(arguments["spw_id"])
    output = Path(arguments["output_dir"])
    output.mkdir(parents=True, exist_ok=True)
    threads = int(arguments.get("threads") or max(1, len(os.sched_getaffinity(0))))

    started = time.monotonic()
    found = [read_target(Path(path), target, spw_id) for path in arguments["measurement_sets"]]
    targets = [data for data in found if data is not None and data.row_count]
    if not targets:
        names = ", ".join(Path(path).name for path in arguments["measurement_sets"])
        raise BadInput(
            f"no unflagged cross-correlation of field {target!r} in spw {spw_id} in {names}: "
            "check the target name and spw id against the MOUS metadata"
        )
    reference = targets[0]
    _check_same_channels(targets)
    cube, geometry, lsrk_hz = dirty_cube_of(targets, output, threads)
    imaging = ImagingRecord(
        npix=geometry.npix, cell_arcsec=_arcsec(geometry.cell_rad), beam_arcsec=_arcsec(geometry.beam_rad),
        primary_beam_fwhm_arcsec=_arcsec(geometry.primary_beam_fwhm_rad),
        pointings=len(geometry.pointing_offsets_rad), channels=lsrk_hz.size,
        rows=sum(t.row_count for t in targets), measurement_sets=[t.path.name for t in targets],
        seconds=round(time.monotonic() - started, 3),
    )

    started = time.monotonic()
    primary_beam = primary_beam_gain(
        geometry.npix, geometry.cell_rad, [geometry.pixel_of(*offset) for offset in geometry.pointing_offsets_rad],
        geometry.primary_beam_fwhm_rad,
    )
    source = source_spectrum(cube, primary_beam, geometry.beam_area_pixels)
    decision = find_continuum_channels(source.spectrum, source_detected=source.from_mask, noise=source.noise)
    width = channel_width_hz(lsrk_hz)
    operator = arguments.get("operator")
    if operator is not None:
        continuum, case = _operator_selection(operator, lsrk_hz, width, decision, reference)
        source_name = "operator"
        notes = [f"continuum ranges from the operator's cont.dat; findcont alone would say {decision.case.value}"]
    else:
        continuum, case, source_name, notes = decision.continuum, decision.case, "findcont", list(decision.notes)
    ranges = frequency_ranges(continuum, lsrk_hz, width)
    all_continuum = bool(continuum.all())
    selection = channel_selection(_channels_in_every_ms(ranges, targets, width))
    result = FindcontStepResult(
        continuum=ContinuumRanges(
            target=target, spw_id=spw_id, frame="LSRK", ranges=ranges, channel_ranges=selection, case=case,
            source=source_name, continuum_fraction=round(float(continuum.sum()) / continuum.size, 6),
        ),
        cont_dat=str(output / CONT_DAT_NAME), plot=str(output / PLOT_NAME), record=str(output / RECORD_NAME),
        spw_name=reference.spw_name, notes=notes, lines=_line_records(decision, lsrk_hz, width),
        noise_jy=decision.noise if math.isfinite(decision.noise) else None,
        off_source_noise_jy=source.noise, off_source_noise_copies=source.noise_copies,
        mask_pixels=source.mask_pixels, mask_from_emission=source.from_mask, finder_case=decision.case,
        finder_line_channels_selected=int((continuum & decision.usable & ~decision.continuum).sum()),
        imaging=imaging, finding_seconds=0.0,
    )
    (output / CONT_DAT_NAME).write_text(
        format_cont_dat(target, spw_id, ranges, "LSRK", all_continuum=all_continuum)
    )
    _plot(result, source, decision, lsrk_hz, continuum, output / PLOT_NAME)
    result.finding_seconds = round(time.monotonic() - started, 3)
    record = FindcontRecord(
        **result.model_dump(),
        spectrum=_Spectrum(
            lsrk_hz=lsrk_hz.tolist(), mean_jy=_finite_or_none(source.spectrum),
            baseline_jy=_finite_or_none(decision.baseline), continuum=continuum.tolist(),
        ),
    )
    (output / RECORD_NAME).write_text(record.model_dump_json(indent=2))
    return result


# -- imaging -------------------------------------------------------------------------------------------


def _check_same_channels(targets: list[TargetData]) -> None:
    reference = targets[0]
    for other in targets[1:]:
        if other.channel_hz.size != reference.channel_hz.size:
            raise BadInput(
                f"spw {reference.spw_id} has {reference.channel_hz.size} channels in {reference.path.name} but "
                f"{other.channel_hz.size} in {other.path.name}: the executions of an MOUS must share the spw "
                "setup (renumber or split the spws so that the same id means the same window)"
            )


def _pointings(targets: list[TargetData]) -> list[tuple[float, float]]:
    """The distinct directions of the target's fields over all MSs (a mosaic has several)."""
    unique: list[tuple[float, float]] = []
    for data in targets:
        for ra, dec in data.field_directions.values():
            if not any(_separation(ra, dec, *known) < SAME_POINTING_RAD for known in unique):
                unique.append((ra, dec))
    return unique


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Angle between two directions (haversine: exact for the milliarcseconds that matter here)."""
    term = math.sin((dec2 - dec1) / 2) ** 2 + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    return 2 * math.asin(min(1.0, math.sqrt(term)))


def _mid_time_factor(data: TargetData) -> float:
    """LSRK / own-frame factor of an execution at its middle, towards the target's first field."""
    direction = next(iter(data.field_directions.values()))
    return float(
        frames.lsrk_factors(
            np.array([data.mid_time_s]), direction, data.direction_frame, data.observatory_itrf_m, data.frame
        )[0]
    )


def dirty_cube_of(
    targets: list[TargetData], workdir: Path, threads: int
) -> tuple[np.ndarray, ImageGeometry, np.ndarray]:
    """The target's dirty LSRK cube over all executions, its geometry and its channel frequencies."""
    reference = targets[0]
    pointings = _pointings(targets)
    centre = _mean_direction(pointings)
    offsets = [sin_offsets(*centre, ra, dec) for ra, dec in pointings]
    # What ducc0 needs per pointing: where the image centre lies as seen from that pointing.
    centres_seen = tuple(sin_offsets(ra, dec, *centre) for ra, dec in pointings)
    factors = [
        {
            part.data_description_id: frames.lsrk_factors(
                part.time_s, pointings[0], data.direction_frame, data.observatory_itrf_m, data.frame
            )
            for part in data.rows
        }
        for data in targets
    ]
    # The output channels are the reference execution's, in LSRK at its middle.
    lsrk_hz = reference.channel_hz * _mid_time_factor(reference)
    geometry = plan_geometry(
        longest_baseline_m=max(data.longest_baseline_m for data in targets),
        lowest_frequency_hz=float(lsrk_hz.min()), highest_frequency_hz=float(lsrk_hz.max()),
        dish_diameter_m=min(data.dish_diameter_m for data in targets), pointing_offsets_rad=offsets,
    )
    cube_bytes = 4 * lsrk_hz.size * geometry.npix**2
    cube = DirtyCube(
        geometry, lsrk_hz, path=workdir / "dirty_cube.npy" if cube_bytes > IN_MEMORY_CUBE_BYTES else None,
        threads=threads,
    )
    for data, data_factors in zip(targets, factors, strict=True):
        pointing_of_field = {
            field: next(
                index for index, (ra, dec) in enumerate(pointings)
                if _separation(ra, dec, *data.field_directions[field]) < SAME_POINTING_RAD
            )
            for field in data.field_ids
        }
        for block in visibility_blocks(data, data_factors, pointing_of_field, centres_seen):
            cube.add(block, data.channel_hz)
    return cube.finish(), geometry, lsrk_hz


def _mean_direction(directions: list[tuple[float, float]]) -> tuple[float, float]:
    vectors = np.array([[math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d)] for r, d in directions])
    x, y, z = vectors.mean(axis=0)
    return math.atan2(y, x), math.atan2(z, math.hypot(x, y))


# -- the selection -------------------------------------------------------------------------------------


def _operator_selection(
    operator: dict[str, Any], lsrk_hz: np.ndarray, width: float, decision: ContinuumDecision, reference: TargetData
) -> tuple[np.ndarray, ContinuumCase]:
    """The operator's ranges on the cube's channels. TOPO ranges are moved to LSRK with the reference
    execution's mid-time factor (the frame a TOPO range was read off)."""
    if operator["all_continuum"]:
        return decision.usable.copy(), ContinuumCase.ALL_CONTINUUM
    factor = _mid_time_factor(reference) if any(frame == "TOPO" for _, _, frame in operator["ranges"]) else 1.0
    ranges = [
        FrequencyRange(low_hz=low * factor, high_hz=high * factor) if frame == "TOPO"
        else FrequencyRange(low_hz=low, high_hz=high)
        for low, high, frame in operator["ranges"]
    ]
    continuum = channels_in_ranges(ranges, lsrk_hz, width) & decision.usable
    fraction = float(continuum.sum()) / continuum.size
    if not continuum.any():
        case = ContinuumCase.NO_CONTINUUM
    elif continuum.sum() == decision.usable.sum():
        case = ContinuumCase.ALL_CONTINUUM
    elif fraction < LINE_FOREST_FRACTION:
        case = ContinuumCase.LINE_FOREST
    else:
        case = ContinuumCase.LINES_AND_CONTINUUM
    return continuum, case


def _channels_in_every_ms(ranges: list[FrequencyRange], targets: list[TargetData], width: float) -> np.ndarray:
    """The MS channels (their own numbering) inside the ranges in every execution: each execution's
    channels sit at other LSRK frequencies, and a channel is only safe as continuum if it is so in all."""
    selected = np.ones(targets[0].channel_hz.size, dtype=bool)
    for data in targets:
        selected &= channels_in_ranges(ranges, data.channel_hz * _mid_time_factor(data), width)
    return selected


def _line_records(decision: ContinuumDecision, lsrk_hz: np.ndarray, width: float) -> list[LineRecord]:
    records = []
    for line in decision.lines:
        edges = lsrk_hz[[line.first, line.last]]
        records.append(
            LineRecord(
                first_channel=line.first, last_channel=line.last, low_hz=float(edges.min()) - width / 2,
                high_hz=float(edges.max()) + width / 2, kind="absorption" if line.sign < 0 else "emission",
                peak_sigma=line.peak_sigma, scale_channels=line.scale,
            )
        )
    return records


# -- outputs -------------------------------------------------------------------------------------------


def _plot(
    result: FindcontStepResult,
    source: SourceSpectrum,
    decision: ContinuumDecision,
    lsrk_hz: np.ndarray,
    continuum: np.ndarray,
    path: Path,
) -> None:
    imaging = result.imaging
    one_channel = decision.thresholds.get(1)
    mask = (
        f"mask: {source.mask_pixels} pixels above the moment thresholds" if source.from_mask
        else "mask: nothing above the moment thresholds, inner primary beam averaged"
    )
    write_spectrum_plot(
        SpectrumPlot(
            target=result.continuum.target, spw_id=result.continuum.spw_id, lsrk_hz=lsrk_hz,
            spectrum_jy=source.spectrum, continuum=continuum,
            baseline_jy=decision.baseline if result.continuum.source == "findcont" else None,
            threshold_jy=one_channel * decision.noise if one_channel and math.isfinite(decision.noise) else None,
            finder_lines=(decision.usable & ~decision.continuum) if result.continuum.source != "findcont" else None,
            title_detail=(
                f"{result.continuum.case.value}, {result.continuum.continuum_fraction:.0%} continuum "
                f"({result.continuum.source})"
            ),
            footnote=(
                f"dirty cube: {imaging.gridder}, {imaging.weighting} weighting, {imaging.npix}x{imaging.npix} "
                f"pixels of {imaging.cell_arcsec:.3g}\", {imaging.channels} LSRK channels, {imaging.rows} rows "
                f"from {len(imaging.measurement_sets)} MS; {mask}"
            ),
        ),
        path,
    )


def _arcsec(radians: float) -> float:
    return round(math.degrees(radians) * 3600, 5)


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]
