"""Generate a small ALMA-like MOUS offline: the MS, its calibration tables, the restore manifest, the truth.

Output directory layout (the package, when asked for, holds the first three at its root):

    <name>.ms/               raw DATA (uncalibrated unless calibrated=True), SIGMA/WEIGHT from the noise
    cal/*.bcal, cal/*.gcal   tables that restore it (absent when calibrated=True)
    aperture-restore.json    RestoreManifest: the tables in applycal order
    truth.json               MousTruth: what the data contain
"""

import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from aperture_contracts.ids import MousId
from aperture_contracts.packaging import RESTORE_MANIFEST_NAME, RestoreManifest
from pydantic import TypeAdapter, ValidationError

from aperture_testdata import archive, calibration, corruption, ms_layout, observation, sky
from aperture_testdata.array import Antenna, central_antenna, read_configuration
from aperture_testdata.casa_runtime import casa_version, casatasks_module
from aperture_testdata.gains import BrokenAntennaGains, InjectedGains, draw_broken_antenna, draw_gains
from aperture_testdata.scenarios import INTENT_PHASE, FieldPlan, Scenario, SpwPlan, get_scenario
from aperture_testdata.sky import PRIMARY_BEAM_DESCRIPTION
from aperture_testdata.truth import (
    TRUTH_FILE_NAME,
    AntennaTruth,
    ArrayTruth,
    CalibrationTruth,
    ComponentTruth,
    FieldTruth,
    LineTruth,
    MousTruth,
    NoiseTruth,
    ObservationTruth,
    ScanTruth,
    SpwTruth,
)

DEFAULT_MOUS_UID = "uid://A001/X3a1/X7"
DEFAULT_MS_NAME = "uid___A002_Xsim_X1"
# A channel is line-free when every line is below this fraction of its peak there.
LINE_THRESHOLD = 0.01


class GenerationError(RuntimeError):
    pass


@dataclass(frozen=True)
class GeneratedMous:
    outdir: Path
    ms: Path
    manifest: Path
    truth_file: Path
    truth: MousTruth
    calibration_tables: list[Path]
    package: Path | None
    seconds: float


def generate_mous(
    outdir: Path,
    seed: int = 1,
    scenario: str = "default",
    name: str = DEFAULT_MS_NAME,
    mous_uid: str = DEFAULT_MOUS_UID,
    calibrated: bool = False,
    package: Path | None = None,
    overwrite: bool = False,
) -> GeneratedMous:
    """Make one MOUS into `outdir`. Same (scenario, seed) => same DATA, bit for bit.

    calibrated: no gain errors and no tables (an MOUS delivered already calibrated).
    package: also write the MS package (*.tar, *.tar.gz or *.tgz) there.
    overwrite: replace an earlier MOUS of the same name in outdir instead of refusing.
    """
    started = time.monotonic()
    plan = get_scenario(scenario)
    mous_uid, ms_name = check_options(scenario, seed, name, mous_uid, package)
    outdir = outdir.resolve()
    outputs = [
        outdir / ms_name,
        outdir / calibration.CALIBRATION_DIRECTORY,
        outdir / RESTORE_MANIFEST_NAME,
        outdir / TRUTH_FILE_NAME,
    ]
    _clear_outputs(outputs, overwrite)
    outdir.mkdir(parents=True, exist_ok=True)
    ms = outdir / ms_name

    try:
        truth = _simulate_and_calibrate(plan, seed, mous_uid, ms, outdir, calibrated)
    except BaseException:
        # Half an MOUS would make the next run refuse (or, worse, look complete): remove it.
        _remove(outputs)
        raise
    written_package = None
    if package is not None:
        members = archive.package_members(ms_name, with_calibration=truth.calibration is not None)
        written_package = archive.write_package(package.resolve(), outdir, members)
    return GeneratedMous(
        outdir=outdir,
        ms=ms,
        manifest=outdir / RESTORE_MANIFEST_NAME,
        truth_file=outdir / TRUTH_FILE_NAME,
        truth=truth,
        calibration_tables=[outdir / e.table for e in truth.calibration.apply] if truth.calibration else [],
        package=written_package,
        seconds=time.monotonic() - started,
    )


def _simulate_and_calibrate(
    plan: Scenario, seed: int, mous_uid: str, ms: Path, outdir: Path, calibrated: bool
) -> MousTruth:
    """Everything but the package: the MS, the tables, the manifest and the truth file."""
    antennas = read_configuration(plan.antenna_config, plan.n_antennas)
    reference_antenna = central_antenna(antennas).name
    schedule = observation.plan_schedule(plan)
    # Independent streams: a scenario change in how gains are drawn leaves the noise as it was (and a
    # third stream leaves the first two as they were: spawn's children do not depend on their number).
    gains_rng, noise_rng, broken_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    if plan.broken_antenna is not None and antennas[plan.broken_antenna.antenna_index].name == reference_antenna:
        raise ValueError(
            f"scenario {plan.name!r}: the broken antenna {reference_antenna} is the array's central antenna, which "
            "the generator's own calibration takes as its reference; break another one"
        )
    lsrk_over_topo = {f.name: observation.lsrk_over_topo(f, schedule.middle_mjd_s) for f in plan.fields}
    gains = None
    if not calibrated:
        antenna_names = [a.name for a in antennas]
        gains = draw_gains(plan.gains, antenna_names, 2, schedule.start_mjd_s, gains_rng)
    calibration_truth = None
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".aperture-make-mous-") as scratch_name:
        scratch = Path(scratch_name)
        component_lists = {}
        for index, field in enumerate(plan.fields):
            component_lists[field.name] = scratch / f"field{index}.cl"
            sky.write_component_list(
                field, plan.spws, lsrk_over_topo[field.name], component_lists[field.name]
            )
        raw_ms = scratch / "simulated.ms"
        observation.simulate(plan, antennas, schedule, component_lists, raw_ms)
        # split writes the compact layout (DATA only, no MODEL/CORRECTED columns), ~35 % smaller.
        casatasks_module().split(vis=str(raw_ms), outputvis=str(ms), datacolumn="data", keepflags=True)
        shutil.rmtree(raw_ms)
        ms_layout.merge_spw_scans(ms)
        ms_layout.write_source_table(ms, plan.spws)
        ms_layout.write_time_ranges(ms)
        broken = None
        if plan.broken_antenna is not None:
            broken = draw_broken_antenna(
                plan.broken_antenna, [a.name for a in antennas], corruption.integration_times(ms), 2, broken_rng
            )
        corruption.corrupt(ms, gains, plan.noise_sigma_jy, noise_rng, broken)
        # Without calibrators (e.g. the 'selfcal' scenario) there is nothing to derive restore tables
        # from: the MOUS carries its gain errors and no tables, as a target observed on its own would.
        if not calibrated and plan.has_calibrators:
            calibration_truth = _calibrate(plan, ms, outdir, scratch, reference_antenna)

    manifest = RestoreManifest(
        mous_uid=mous_uid,
        apply=calibration_truth.apply if calibration_truth else [],
        measurement_sets=[ms.name],
    )
    (outdir / RESTORE_MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2) + "\n")
    truth = _truth(
        plan, seed, mous_uid, ms, antennas, reference_antenna, lsrk_over_topo, gains, calibration_truth, broken
    )
    truth.write(outdir / TRUTH_FILE_NAME)
    return truth


def _calibrate(
    plan: Scenario, ms: Path, outdir: Path, scratch: Path, reference_antenna: str
) -> CalibrationTruth:
    """Solve the tables, then prove on a copy that they restore the data well enough for the tests."""
    solved = calibration.solve(plan, ms, outdir, scratch, reference_antenna)
    check_field = plan.fields_with_intent(INTENT_PHASE)[0].name
    check = calibration.check_restore(ms, outdir, solved.apply, check_field, scratch)
    if check.drop < calibration.MIN_PHASE_SCATTER_DROP:
        raise GenerationError(
            f"the derived tables bring the phase scatter of {check_field} only from {check.before_deg:.1f} "
            f"to {check.after_deg:.1f} deg (x{check.drop:.1f}; x{calibration.MIN_PHASE_SCATTER_DROP:.0f} "
            f"needed): scenario {plan.name!r} needs larger gain errors or less noise"
        )
    return CalibrationTruth(
        reference_antenna=reference_antenna,
        apply=solved.apply,
        fluxscale=solved.fluxscale,
        check_field=check_field,
        phase_scatter_before_deg=round(check.before_deg, 3),
        phase_scatter_after_deg=round(check.after_deg, 3),
    )


def check_options(
    scenario: str, seed: int, name: str, mous_uid: str, package: Path | None
) -> tuple[str, str]:
    """Refuse bad options before any CASA work; returns the canonical MOUS uid and the MS's file name."""
    get_scenario(scenario)
    if seed < 0:
        raise ValueError(f"the seed must be a non-negative integer, got {seed}")
    try:
        mous_uid = TypeAdapter(MousId).validate_python(mous_uid)
    except ValidationError as error:
        raise ValueError(error.errors()[0]["msg"].removeprefix("Value error, ")) from None
    if package is not None:
        archive.is_gzipped(package)
    ms_name = name if name.endswith(".ms") else f"{name}.ms"
    if "/" in ms_name or ms_name.startswith("."):
        raise ValueError(f"the name {name!r} must be a plain file name (no '/', not hidden)")
    return mous_uid, ms_name


def _clear_outputs(outputs: list[Path], overwrite: bool) -> None:
    existing = [p for p in outputs if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(str(p) for p in existing)} already exist(s): choose another output directory or "
            "name, or pass overwrite=True (--overwrite) to replace them"
        )
    _remove(existing)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _truth(
    plan: Scenario,
    seed: int,
    mous_uid: str,
    ms: Path,
    antennas: list[Antenna],
    reference_antenna: str,
    lsrk_over_topo: dict[str, float],
    gains: InjectedGains | None,
    calibration_truth: CalibrationTruth | None,
    broken: BrokenAntennaGains | None = None,
) -> MousTruth:
    scans = ms_layout.read_scans(ms)
    start, end = scans[0].start_mjd_s, scans[-1].end_mjd_s
    return MousTruth(
        scenario=plan.name,
        description=plan.description,
        seed=seed,
        mous_uid=mous_uid,
        measurement_set=ms.name,
        casa_version=casa_version(),
        calibrated=gains is None,
        array=ArrayTruth(
            configuration=plan.antenna_config,
            selection=f"the {plan.n_antennas} pads nearest the centroid of the configuration",
            reference_antenna=reference_antenna,
            antennas=[
                AntennaTruth(
                    name=a.name,
                    pad=a.pad,
                    east_m=a.east_m,
                    north_m=a.north_m,
                    up_m=a.up_m,
                    diameter_m=a.diameter_m,
                )
                for a in antennas
            ],
        ),
        observation=ObservationTruth(
            date=plan.observation_date,
            start_utc=observation.utc_from_mjd_seconds(start).isoformat(),
            end_utc=observation.utc_from_mjd_seconds(end).isoformat(),
            start_mjd_s=start,
            end_mjd_s=end,
            integration_s=plan.integration_s,
            project_code=plan.project_code,
            scans=[
                ScanTruth(
                    scan_number=s.scan_number,
                    field=plan.fields[s.field_id].name,
                    intents=list(s.intents),
                    start_mjd_s=s.start_mjd_s,
                    end_mjd_s=s.end_mjd_s,
                )
                for s in scans
            ],
        ),
        fields=[_field_truth(i, f, plan.spws, lsrk_over_topo[f.name]) for i, f in enumerate(plan.fields)],
        spws=[_spw_truth(i, spw, plan, lsrk_over_topo) for i, spw in enumerate(plan.spws)],
        noise=NoiseTruth(sigma_jy=plan.noise_sigma_jy, weight=1.0 / plan.noise_sigma_jy**2),
        line_threshold=LINE_THRESHOLD,
        primary_beam=PRIMARY_BEAM_DESCRIPTION,
        gains=gains,
        calibration=calibration_truth,
        broken_antenna=broken,
    )


def _field_truth(
    field_id: int, field: FieldPlan, spws: tuple[SpwPlan, ...], lsrk_over_topo: float
) -> FieldTruth:
    ra0, dec0 = sky.field_direction_rad(field)
    ra_text, dec_text = sky.sexagesimal(ra0, dec0)
    components = []
    for component in field.components:
        ra, dec = sky.direction_at_offset(
            ra0, dec0, component.offset_east_arcsec, component.offset_north_arcsec
        )
        ra_c, dec_c = sky.sexagesimal(ra, dec)
        lines = []
        for line in component.lines:
            topo = line.centre_frequency_hz / lsrk_over_topo
            spw_id, channel = _channel_of(topo, spws)
            lines.append(
                LineTruth(
                    transition=line.transition,
                    rest_frequency_hz=line.rest_frequency_hz,
                    velocity_kms=line.velocity_kms,
                    centre_frequency_lsrk_hz=line.centre_frequency_hz,
                    fwhm_kms=line.fwhm_kms,
                    fwhm_hz=line.fwhm_hz,
                    peak_jy=line.peak_jy,
                    spw_id=spw_id,
                    centre_channel=None if channel is None else round(channel, 3),
                )
            )
        components.append(
            ComponentTruth(
                name=component.name,
                shape=component.shape,
                ra=ra_c,
                dec=dec_c,
                ra_deg=math.degrees(ra),
                dec_deg=math.degrees(dec),
                offset_east_arcsec=component.offset_east_arcsec,
                offset_north_arcsec=component.offset_north_arcsec,
                flux_jy=component.flux_jy,
                reference_frequency_hz=component.reference_frequency_hz,
                spectral_index=component.spectral_index,
                major_fwhm_arcsec=component.major_fwhm_arcsec,
                minor_fwhm_arcsec=component.minor_fwhm_arcsec,
                position_angle_deg=component.position_angle_deg,
                primary_beam_gain=round(
                    float(
                        sky.primary_beam_gain(sky.offset_arcsec(component), component.reference_frequency_hz)
                    ),
                    5,
                ),
                lines=lines,
            )
        )
    return FieldTruth(
        field_id=field_id,
        name=field.name,
        ra=ra_text,
        dec=dec_text,
        ra_deg=math.degrees(ra0),
        dec_deg=math.degrees(dec0),
        intents=list(field.intents),
        lsrk_over_topo=lsrk_over_topo,
        components=components,
    )


def _channel_of(topo_hz: float, spws: tuple[SpwPlan, ...]) -> tuple[int | None, float | None]:
    for spw_id, spw in enumerate(spws):
        channel = (topo_hz - spw.first_channel_hz) / spw.channel_width_hz
        if -0.5 <= channel <= spw.nchan - 0.5:
            return spw_id, channel
    return None, None


def _spw_truth(spw_id: int, spw: SpwPlan, plan: Scenario, lsrk_over_topo: dict[str, float]) -> SpwTruth:
    """Line and line-free channels of one spw, over the lines of every field's components."""
    topo = np.asarray(spw.channel_frequencies_hz())
    has_line = np.zeros(spw.nchan, dtype=bool)
    for field in plan.fields:
        for component in field.components:
            for line in component.lines:
                profile = sky.line_profile_jy(
                    component.model_copy(update={"lines": (line,)}), topo * lsrk_over_topo[field.name]
                )
                has_line |= profile >= LINE_THRESHOLD * line.peak_jy
    line_ranges = _ranges(np.flatnonzero(has_line))
    free_ranges = _ranges(np.flatnonzero(~has_line))
    return SpwTruth(
        spw_id=spw_id,
        name=spw.name,
        nchan=spw.nchan,
        first_channel_hz=spw.first_channel_hz,
        channel_width_hz=spw.channel_width_hz,
        centre_frequency_hz=spw.centre_frequency_hz,
        rest_frequency_hz=spw.rest_frequency_hz,
        transition=spw.transition,
        line_channels=line_ranges,
        line_free_channels=free_ranges,
        line_free_selection=f"{spw_id}:" + ";".join(f"{a}~{b}" for a, b in free_ranges)
        if free_ranges
        else "",
    )


def _ranges(channels: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive channel numbers as inclusive (first, last) ranges."""
    ranges: list[tuple[int, int]] = []
    for channel in channels.tolist():
        if ranges and channel == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], channel)
        else:
            ranges.append((channel, channel))
    return ranges
