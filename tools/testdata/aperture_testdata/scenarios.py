"""Scenarios: what a simulated MOUS contains, as data, and the registry that names them.

A scenario fixes everything but the random draws: array, frequency setup, fields and their sky models,
the schedule, the noise level and the statistics of the injected gain errors. The seed then fixes the
draws (gains, noise), so `(scenario, seed)` fixes the data.

Adding a case (line forests, all-continuum spws, broad or edge lines, several targets) is a new
function that returns a `Scenario` and one entry in `SCENARIOS`; cases that need behaviour the models
cannot express yet (a bad antenna, a broken package) add a field here and the code that honours it.
"""

from collections.abc import Callable
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SPEED_OF_LIGHT_KMS = 299_792.458

# ALMA scan intents as they appear in the STATE table's OBS_MODE column.
INTENT_BANDPASS = "CALIBRATE_BANDPASS#ON_SOURCE"
INTENT_FLUX = "CALIBRATE_FLUX#ON_SOURCE"
INTENT_PHASE = "CALIBRATE_PHASE#ON_SOURCE"
INTENT_TARGET = "OBSERVE_TARGET#ON_SOURCE"
CALIBRATOR_INTENTS = (INTENT_BANDPASS, INTENT_FLUX, INTENT_PHASE)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpectralLine(_Frozen):
    """A Gaussian emission line; its velocity is LSRK in the radio convention."""

    transition: str = Field(examples=["CO(2-1)"])
    rest_frequency_hz: float = Field(gt=0)
    velocity_kms: float
    fwhm_kms: float = Field(gt=0)
    peak_jy: float = Field(description="flux density of the line alone at its centre (continuum excluded)")

    @property
    def centre_frequency_hz(self) -> float:
        """Observed (LSRK) centre: radio convention, nu = nu0 (1 - v/c)."""
        return self.rest_frequency_hz * (1.0 - self.velocity_kms / SPEED_OF_LIGHT_KMS)

    @property
    def fwhm_hz(self) -> float:
        return self.rest_frequency_hz * self.fwhm_kms / SPEED_OF_LIGHT_KMS


class SkyComponent(_Frozen):
    """A point or elliptical Gaussian source: power-law continuum plus optional lines.

    Offsets are true angles on the sky from the field centre (east and north, SIN projection).
    """

    name: str
    shape: Literal["point", "gaussian"]
    offset_east_arcsec: float = 0.0
    offset_north_arcsec: float = 0.0
    flux_jy: float = Field(ge=0, description="continuum flux density at reference_frequency_hz")
    reference_frequency_hz: float = Field(gt=0)
    spectral_index: float = 0.0
    major_fwhm_arcsec: float | None = Field(None, gt=0)
    minor_fwhm_arcsec: float | None = Field(None, gt=0)
    position_angle_deg: float | None = None
    lines: tuple[SpectralLine, ...] = ()

    @model_validator(mode="after")
    def _gaussian_has_size(self) -> "SkyComponent":
        sizes = (self.major_fwhm_arcsec, self.minor_fwhm_arcsec, self.position_angle_deg)
        if self.shape == "gaussian":
            if None in sizes:
                raise ValueError(f"component {self.name!r}: a gaussian needs major, minor and position angle")
            assert self.major_fwhm_arcsec is not None and self.minor_fwhm_arcsec is not None
            if self.minor_fwhm_arcsec > self.major_fwhm_arcsec:
                raise ValueError(f"component {self.name!r}: the minor axis is larger than the major axis")
        elif sizes != (None, None, None):
            raise ValueError(f"component {self.name!r}: a point source has no size or position angle")
        return self


class FieldPlan(_Frozen):
    """A pointing: its J2000 centre (CASA angle strings), its intents and what is in it."""

    name: str
    ra: str = Field(examples=["15h17m41.8s"])
    dec: str = Field(examples=["-24d22m19.5s"])
    intents: tuple[str, ...]
    components: tuple[SkyComponent, ...]


class SpwPlan(_Frozen):
    """A spectral window in the topocentric frame, as ALMA records them."""

    name: str
    centre_frequency_hz: float = Field(gt=0)
    nchan: int = Field(ge=1)
    channel_width_hz: float = Field(gt=0)
    rest_frequency_hz: float = Field(gt=0, description="written to the SOURCE table for this spw")
    transition: str = Field(description="written to the SOURCE table's TRANSITION for this spw")

    @property
    def first_channel_hz(self) -> float:
        return self.centre_frequency_hz - (self.nchan - 1) / 2 * self.channel_width_hz

    def channel_frequencies_hz(self) -> list[float]:
        return [self.first_channel_hz + i * self.channel_width_hz for i in range(self.nchan)]


class ScanPlan(_Frozen):
    field: str
    duration_s: float = Field(gt=0)


class GainPlan(_Frozen):
    """Statistics of the antenna-based errors that make DATA uncalibrated.

    Per antenna and polarisation: a fixed phase (by default uniform over the circle, as electronic
    offsets are), an amplitude scale, and a delay (a phase slope across each spw, which the bandpass takes
    out). Per antenna: a slow phase and amplitude drift shared by both polarisations (the atmosphere),
    made of sinusoids with periods much longer than the phase-calibrator cycle, so that interpolating
    in time calibrates the target.
    """

    phase_offset_max_deg: float = Field(180.0, ge=0, le=180, description="offsets uniform in +-this")
    amplitude_rms: float = Field(0.1, ge=0, lt=0.4)
    delay_rms_ns: float = Field(0.1, ge=0)
    drift_phase_rms_deg: float = Field(25.0, ge=0)
    drift_amplitude_rms: float = Field(0.03, ge=0, lt=0.2)
    drift_periods_s: tuple[float, ...] = (1800.0, 3600.0, 7200.0)


class BrokenAntennaPlan(_Frozen):
    """One antenna whose receiver is broken (an LO that does not stay locked, a failing amplifier): per
    integration and polarisation its gain gets a phase uniform over the circle and an amplitude factor
    uniform in [amplitude_low, amplitude_high], on top of the smooth gains every antenna has. Its data are
    still there and unflagged, as in an archive MS before the pipeline's outlier flagging; per-scan
    solutions cannot follow it, so the targets' data on its baselines stay scrambled."""

    antenna_index: int = Field(ge=0, description="row of the ANTENNA table (the kept pads in file order)")
    amplitude_low: float = Field(0.05, gt=0, le=1)
    amplitude_high: float = Field(0.6, gt=0, le=1)
    random_phase: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> "BrokenAntennaPlan":
        if self.amplitude_high < self.amplitude_low:
            raise ValueError(
                f"broken antenna: amplitude_high {self.amplitude_high} is below amplitude_low {self.amplitude_low}"
            )
        return self


class Scenario(_Frozen):
    name: str
    description: str
    antenna_config: str = Field(description="a file in casadata's alma/simmos/")
    n_antennas: int = Field(ge=3, description="how many antennas, nearest the array centre, to keep")
    observation_date: date = Field(
        description="UT date; the target transits mid-observation. casadata's IERS tables must cover it"
    )
    integration_s: float = Field(gt=0)
    slew_s: float = Field(ge=0, description="gap between scans")
    project_code: str
    spws: tuple[SpwPlan, ...]
    fields: tuple[FieldPlan, ...]
    scans: tuple[ScanPlan, ...]
    noise_sigma_jy: float = Field(
        gt=0, description="rms of the real and of the imaginary part of one visibility"
    )
    gains: GainPlan = GainPlan()
    broken_antenna: BrokenAntennaPlan | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"scenario {self.name!r}: field names repeat: {names}")
        unknown = sorted({s.field for s in self.scans} - set(names))
        if unknown:
            raise ValueError(f"scenario {self.name!r}: scans name fields that do not exist: {unknown}")
        unobserved = sorted(set(names) - {s.field for s in self.scans})
        if unobserved:
            raise ValueError(f"scenario {self.name!r}: fields never observed: {unobserved}")
        if not self.fields_with_intent(INTENT_TARGET):
            raise ValueError(f"scenario {self.name!r}: no field has the intent {INTENT_TARGET}")
        # Calibrators come as a set or not at all: the generator derives the restore tables from all
        # three roles, and a scenario with none (e.g. 'selfcal') is a target observed on its own.
        missing = [role for role in CALIBRATOR_INTENTS if not self.fields_with_intent(role)]
        if missing and len(missing) < len(CALIBRATOR_INTENTS):
            raise ValueError(
                f"scenario {self.name!r}: no field has the intent {', '.join(missing)}; give fields for every "
                f"calibrator role ({', '.join(CALIBRATOR_INTENTS)}) or for none"
            )
        if self.broken_antenna is not None and self.broken_antenna.antenna_index >= self.n_antennas:
            raise ValueError(
                f"scenario {self.name!r}: the broken antenna is row {self.broken_antenna.antenna_index}, but the "
                f"array has {self.n_antennas} antennas (rows 0..{self.n_antennas - 1})"
            )
        return self

    @property
    def has_calibrators(self) -> bool:
        """Whether the scenario observes calibrators (then every role: see the validator)."""
        return bool(self.fields_with_intent(INTENT_PHASE))

    def fields_with_intent(self, intent: str) -> list[FieldPlan]:
        return [f for f in self.fields if intent in f.intents]

    def field(self, name: str) -> FieldPlan:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    @property
    def duration_s(self) -> float:
        """From the first scan's start to the last scan's end."""
        return sum(s.duration_s for s in self.scans) + self.slew_s * (len(self.scans) - 1)


def default_scenario() -> Scenario:
    """A band-6 MOUS: bandpass/flux calibrator, phase calibrator and a galaxy with CO and 13CO.

    The galaxy is an extended Gaussian carrying the lines and a dusty (rising) continuum, with a compact
    synchrotron-like point source 4.6" away (beyond the ~1.9" beam, so the two can be fitted apart).
    The lines sit off-centre in their spws, away from the edges, each covering under a third of the
    spw, so continuum finding has real line-free ranges on both sides.
    """
    band6_ref = 225.0e9
    co = SpectralLine(
        transition="CO(2-1)", rest_frequency_hz=230.538e9, velocity_kms=50.0, fwhm_kms=150.0, peak_jy=0.030
    )
    co13 = SpectralLine(
        transition="13CO(2-1)",
        rest_frequency_hz=220.39868e9,
        velocity_kms=50.0,
        fwhm_kms=150.0,
        peak_jy=0.010,
    )
    bandpass_cal = FieldPlan(
        name="J1517-2422",
        ra="15h17m41.813s",
        dec="-24d22m19.48s",
        intents=(INTENT_BANDPASS, INTENT_FLUX),
        components=(
            SkyComponent(
                name="J1517-2422",
                shape="point",
                flux_jy=2.5,
                reference_frequency_hz=band6_ref,
                spectral_index=-0.6,
            ),
        ),
    )
    phase_cal = FieldPlan(
        name="J1553-2422",
        ra="15h53m31.624s",
        dec="-24d22m06.03s",
        intents=(INTENT_PHASE,),
        components=(
            SkyComponent(
                name="J1553-2422",
                shape="point",
                flux_jy=0.9,
                reference_frequency_hz=band6_ref,
                spectral_index=-0.4,
            ),
        ),
    )
    target = FieldPlan(
        name="SimGalaxy",
        ra="15h58m30.000s",
        dec="-24d15m00.00s",
        intents=(INTENT_TARGET,),
        components=(
            SkyComponent(
                name="disk",
                shape="gaussian",
                offset_east_arcsec=-0.5,
                offset_north_arcsec=0.3,
                flux_jy=0.004,
                reference_frequency_hz=band6_ref,
                spectral_index=3.0,
                major_fwhm_arcsec=3.0,
                minor_fwhm_arcsec=2.0,
                position_angle_deg=30.0,
                lines=(co, co13),
            ),
            SkyComponent(
                name="nucleus",
                shape="point",
                offset_east_arcsec=3.5,
                offset_north_arcsec=2.5,
                flux_jy=0.002,
                reference_frequency_hz=band6_ref,
                spectral_index=-0.7,
            ),
        ),
    )
    channel_width = 15.625e6
    return Scenario(
        name="default",
        description="25 antennas, band 6, 2 spws x 64 channels, 27 min; calibrators and a galaxy with "
        "continuum, CO(2-1) and 13CO(2-1)",
        antenna_config="alma.cycle10.3.cfg",
        n_antennas=25,
        observation_date=date(2025, 6, 1),
        integration_s=30.0,
        slew_s=60.0,  # slews, and the atmosphere/pointing scans that are not simulated
        project_code="2025.1.00001.S",
        spws=(
            SpwPlan(
                name="ALMA_RB_06#BB_1#SW-01#FULL_RES",
                centre_frequency_hz=230.42e9,
                nchan=64,
                channel_width_hz=channel_width,
                rest_frequency_hz=co.rest_frequency_hz,
                transition=co.transition,
            ),
            SpwPlan(
                name="ALMA_RB_06#BB_2#SW-01#FULL_RES",
                centre_frequency_hz=220.52e9,
                nchan=64,
                channel_width_hz=channel_width,
                rest_frequency_hz=co13.rest_frequency_hz,
                transition=co13.transition,
            ),
        ),
        fields=(bandpass_cal, phase_cal, target),
        scans=(
            ScanPlan(field=bandpass_cal.name, duration_s=150.0),
            ScanPlan(field=phase_cal.name, duration_s=60.0),
            ScanPlan(field=target.name, duration_s=270.0),
            ScanPlan(field=phase_cal.name, duration_s=60.0),
            ScanPlan(field=target.name, duration_s=270.0),
            ScanPlan(field=phase_cal.name, duration_s=60.0),
            ScanPlan(field=target.name, duration_s=270.0),
            ScanPlan(field=phase_cal.name, duration_s=60.0),
        ),
        noise_sigma_jy=0.05,
    )


def edge_line_scenario() -> Scenario:
    """The default MOUS with the target's lines moved to where continuum finding is hardest: none in the
    first spw (all of it is continuum) and one across the upper edge of the second (its centre ~4
    channels inside, its wing beyond the edge). The velocity is chosen for the place, not for realism."""
    base = default_scenario()
    target = base.fields_with_intent(INTENT_TARGET)[0]
    edge_spw = base.spws[1]
    edge_frequency = edge_spw.first_channel_hz + (edge_spw.nchan - 4) * edge_spw.channel_width_hz
    edge_line = SpectralLine(
        transition="13CO(2-1)", rest_frequency_hz=220.39868e9,
        velocity_kms=SPEED_OF_LIGHT_KMS * (1 - edge_frequency / 220.39868e9), fwhm_kms=150.0, peak_jy=0.015,
    )
    components = tuple(
        component.model_copy(update={"lines": (edge_line,)}) if component.lines else component
        for component in target.components
    )
    fields = tuple(
        field.model_copy(update={"components": components}) if field.name == target.name else field
        for field in base.fields
    )
    return base.model_copy(
        update={
            "name": "edge_line",
            "description": "the default MOUS with no line in spw 0 (all continuum) and a line across the "
            "upper edge of spw 1",
            "fields": fields,
        }
    )


def line_at_channel(
    spw: SpwPlan, channel: float, transition: str, rest_frequency_hz: float, fwhm_channels: float, peak_jy: float
) -> SpectralLine:
    """A line whose LSRK centre falls on `channel` of `spw` (fractional; to within the LSRK-TOPO shift,
    under a channel here) and whose FWHM is `fwhm_channels` channels. The velocity is chosen for the
    place, not for realism; the truth file gives the channels exactly."""
    centre_hz = spw.first_channel_hz + channel * spw.channel_width_hz
    return SpectralLine(
        transition=transition, rest_frequency_hz=rest_frequency_hz,
        velocity_kms=SPEED_OF_LIGHT_KMS * (1 - centre_hz / rest_frequency_hz),
        fwhm_kms=SPEED_OF_LIGHT_KMS * fwhm_channels * spw.channel_width_hz / rest_frequency_hz, peak_jy=peak_jy,
    )


def _with_target_lines(base: Scenario, lines: tuple[SpectralLine, ...], **update: object) -> Scenario:
    """`base` with the lines of the target's line-carrying component replaced by `lines`."""
    target = base.fields_with_intent(INTENT_TARGET)[0]
    components = tuple(
        component.model_copy(update={"lines": lines}) if component.lines else component
        for component in target.components
    )
    fields = tuple(
        field.model_copy(update={"components": components}) if field.name == target.name else field
        for field in base.fields
    )
    return _validated(base, fields=fields, **update)


def _validated(base: Scenario, **update: object) -> Scenario:
    """`base` with `update` applied and every check run again (model_copy alone skips validation)."""
    return Scenario.model_validate(base.model_copy(update=update).model_dump())


def _default_lines() -> dict[str, SpectralLine]:
    target = default_scenario().fields_with_intent(INTENT_TARGET)[0]
    return {line.transition: line for component in target.components for line in component.lines}


# A hot core's spectrum in spw 0: where each unidentified line ("U-line") sits (channel), its FWHM
# (channels) and its peak (Jy). Narrow, of mixed strength, so close that their wings overlap: the few
# gaps are a handful of channels wide, some only a channel or two, as in Orion KL or Sgr B2 spectra.
_FOREST_LINES = (
    (3.0, 1.6, 0.020), (8.5, 2.0, 0.030), (13.5, 1.4, 0.012), (18.0, 2.2, 0.025), (23.5, 1.6, 0.015),
    (29.0, 2.4, 0.035), (34.5, 1.5, 0.018), (39.0, 1.8, 0.022), (45.0, 2.0, 0.028), (50.5, 1.4, 0.014),
    (55.0, 2.0, 0.024), (60.5, 1.6, 0.016),
)


def line_forest_scenario() -> Scenario:
    """A hot core: spw 0 a forest of a dozen narrow lines whose wings overlap (little continuum, in
    gaps of a few channels), spw 1 as in the default (13CO beside ample continuum)."""
    base = default_scenario()
    forest_spw = base.spws[0]
    forest = tuple(
        line_at_channel(forest_spw, channel, f"U-line {number}", forest_spw.rest_frequency_hz, fwhm, peak)
        for number, (channel, fwhm, peak) in enumerate(_FOREST_LINES, start=1)
    )
    return _with_target_lines(
        base, (*forest, _default_lines()["13CO(2-1)"]), name="line_forest",
        description="the default MOUS with a line forest (12 narrow, overlapping lines) over spw 0; spw 1 as "
        "in the default",
    )


def broad_line_scenario() -> Scenario:
    """A galaxy whose CO line is broad: FWHM 16 channels (~330 km/s, a quarter of the spw), so that its
    wings, down to 1 % of the peak, take ~2/3 of the spw and leave continuum on both sides; spw 1 as in
    the default. (A line of FWHM half the spw would reach beyond both edges at that level: that is the
    whole_spw_line case.)"""
    base = default_scenario()
    lines = _default_lines()
    co = lines["CO(2-1)"]
    broad = line_at_channel(base.spws[0], 30.0, co.transition, co.rest_frequency_hz, 16.0, co.peak_jy)
    return _with_target_lines(
        base, (broad, lines["13CO(2-1)"]), name="broad_line",
        description="the default MOUS with a broad CO line (FWHM a quarter of spw 0); spw 1 as in the default",
    )


def whole_spw_line_scenario() -> Scenario:
    """Deliberately degraded: the 13CO line in spw 1 is as wide as the spw (FWHM 64 channels), so no
    channel of spw 1 is line-free (even its edges carry half the peak); spw 0 as in the default. Nothing
    can be taken as continuum there, and findcont must say so rather than call the edges continuum."""
    base = default_scenario()
    lines = _default_lines()
    co13 = lines["13CO(2-1)"]
    spw = base.spws[1]
    whole = line_at_channel(spw, (spw.nchan - 1) / 2, co13.transition, co13.rest_frequency_hz, spw.nchan, 0.015)
    return _with_target_lines(
        base, (lines["CO(2-1)"], whole), name="whole_spw_line",
        description="deliberately degraded: the default MOUS with a line as wide as spw 1 (no line-free channel "
        "there); spw 0 as in the default",
    )


def broken_antenna_scenario() -> Scenario:
    """Deliberately degraded: the default MOUS with one antenna (DA45, not the array's central reference
    antenna) whose receiver is broken: random phase and a low, erratic amplitude in every integration."""
    return _validated(
        default_scenario(), name="bad_antenna",
        description="deliberately degraded: the default MOUS with one antenna (row 4, DA45) whose gain has a "
        "random phase and an amplitude of 5-60 % in every integration",
        broken_antenna=BrokenAntennaPlan(antenna_index=4),
    )


def selfcal_scenario() -> Scenario:
    """A bright compact target observed on its own, with no calibrator at all: what self-calibration
    is for. A 0.4 Jy point source at the phase centre with a weaker knot 2.5" away (so the model is not
    a single point), in one 2 GHz continuum spw.

    The gain errors are what phase referencing leaves plus fast atmospheric phase: per antenna and
    polarisation a fixed phase of up to +-45 deg (what the X-Y and per-antenna offsets a calibrator
    would have removed leave), and a phase drift of 35 deg rms whose periods (90 s to 20 min) run
    within the 4-min scans, so that solution intervals shorter than a scan keep improving the image;
    small amplitude errors (5 %). The source still shows in the uncorrected image (baseline phases of
    ~60 deg rms keep about half its peak), as self-calibration needs. The noise puts the thermal
    peak/rms of the full data near 2000, enough for per-integration phase solutions.
    """
    reference = 233.0e9
    target = FieldPlan(
        name="SimQuasar",
        ra="12h29m06.700s",
        dec="-24d03m08.60s",
        intents=(INTENT_TARGET,),
        components=(
            SkyComponent(
                name="core", shape="point", flux_jy=0.4, reference_frequency_hz=reference, spectral_index=-0.5
            ),
            SkyComponent(
                name="knot", shape="point", offset_east_arcsec=-2.0, offset_north_arcsec=1.5, flux_jy=0.04,
                reference_frequency_hz=reference, spectral_index=-0.8,
            ),
        ),
    )
    return Scenario(
        name="selfcal",
        description="25 antennas, band 6, 1 continuum spw x 32 channels, 4 scans of 4 min on a 0.4 Jy "
        "quasar and nothing else (no calibrators); phase errors of ~45 deg varying within scans",
        antenna_config="alma.cycle10.3.cfg",
        n_antennas=25,
        observation_date=date(2025, 6, 1),
        integration_s=20.0,
        slew_s=30.0,
        project_code="2025.1.00002.S",
        spws=(
            SpwPlan(
                name="ALMA_RB_06#BB_1#SW-01#FULL_RES",
                centre_frequency_hz=reference,
                nchan=32,
                channel_width_hz=62.5e6,
                rest_frequency_hz=reference,
                transition="continuum",
            ),
        ),
        fields=(target,),
        scans=tuple(ScanPlan(field=target.name, duration_s=240.0) for _ in range(4)),
        noise_sigma_jy=0.2,
        gains=GainPlan(
            phase_offset_max_deg=45.0,
            amplitude_rms=0.05,
            delay_rms_ns=0.02,
            drift_phase_rms_deg=35.0,
            drift_amplitude_rms=0.02,
            drift_periods_s=(90.0, 300.0, 1200.0),
        ),
    )


def four_spw_scenario() -> Scenario:
    """A full band-6 setup as ALMA takes one: 4 spws x 128 channels of 7.8 MHz (1 GHz each), CO(2-1)
    and 13CO(2-1) in two of them and continuum alone in the other two; the default's sources and
    schedule. Four times the default's channels and twice its spws: the scale-out benchmark's MOUS,
    where per-spw and per-cube work outweighs what must run once per MOUS, as on real data."""
    base = default_scenario()
    width = 7.8125e6
    lines = _default_lines()

    def spw(baseband: int, centre_hz: float, rest_frequency_hz: float, transition: str) -> SpwPlan:
        return SpwPlan(
            name=f"ALMA_RB_06#BB_{baseband}#SW-01#FULL_RES", centre_frequency_hz=centre_hz, nchan=128,
            channel_width_hz=width, rest_frequency_hz=rest_frequency_hz, transition=transition,
        )

    co, co13 = lines["CO(2-1)"], lines["13CO(2-1)"]
    return _validated(
        base, name="four_spw",
        description="25 antennas, band 6, 4 spws x 128 channels, 27 min; the default's calibrators and "
        "galaxy, CO(2-1) and 13CO(2-1) in two spws and continuum alone in the other two",
        spws=(
            spw(1, 230.42e9, co.rest_frequency_hz, co.transition),
            spw(2, 232.50e9, 232.50e9, "continuum"),
            spw(3, 220.52e9, co13.rest_frequency_hz, co13.transition),
            spw(4, 218.00e9, 218.00e9, "continuum"),
        ),
    )


def fine_channels_scenario() -> Scenario:
    """The default MOUS with spw 0 in fine channels, for cubes on a grid of the user's choosing (SRDP-style
    cubes of, say, 20 x 5 km/s): 128 channels of 1.953 MHz (2.54 km/s at 230.5 GHz, 250 MHz in all) around
    CO(2-1), and the CO line narrower (FWHM 40 km/s) so that it leaves line-free channels on both sides of
    this narrower spw; spw 1 as in the default. The noise per visibility and channel is the default's, so
    a 5 km/s channel holds the line at a high signal-to-noise ratio (real data would be ~3x noisier)."""
    base = default_scenario()
    lines = _default_lines()
    co = lines["CO(2-1)"].model_copy(update={"fwhm_kms": 40.0})
    coarse = base.spws[0]
    fine = coarse.model_copy(
        update={"name": "ALMA_RB_06#BB_1#SW-01#FULL_RES", "centre_frequency_hz": 230.49e9, "nchan": 128,
                "channel_width_hz": 1.953125e6}
    )
    return _with_target_lines(
        base, (co, lines["13CO(2-1)"]), name="fine_channels",
        description="the default MOUS with spw 0 in 128 fine channels (1.95 MHz, 2.5 km/s) around a narrower "
        "CO(2-1) line (FWHM 40 km/s); spw 1 as in the default",
        spws=(fine, base.spws[1]),
    )


def campaign_tiny_scenario(antenna_config: str = "alma.cycle10.3.cfg", n_antennas: int = 12,
                           name: str = "campaign_tiny") -> Scenario:
    """The default's sources on a small budget, for campaigns of many MOUS in tests: 12 antennas, one spw of
    16 channels of 62.5 MHz (the CO spw's 1 GHz), 9 minutes. Its continuum image is ~100 pixels across;
    the long-baseline variants below make the same observation's images far larger."""
    base = default_scenario()
    co_spw = base.spws[0].model_copy(update={"nchan": 16, "channel_width_hz": 62.5e6})
    bandpass_cal, phase_cal, target = (plan.name for plan in base.fields)
    return _validated(
        base, name=name,
        description=f"{n_antennas} antennas of {antenna_config}, band 6, 1 spw x 16 channels, 9 min; the "
        "default's calibrators and galaxy",
        antenna_config=antenna_config, n_antennas=n_antennas, spws=(co_spw,),
        scans=(
            ScanPlan(field=bandpass_cal, duration_s=60.0),
            ScanPlan(field=phase_cal, duration_s=30.0),
            ScanPlan(field=target, duration_s=120.0),
            ScanPlan(field=phase_cal, duration_s=30.0),
            ScanPlan(field=target, duration_s=120.0),
            ScanPlan(field=phase_cal, duration_s=30.0),
        ),
    )


def campaign_long_baselines_scenario() -> Scenario:
    """campaign_tiny on 25 antennas of configuration 9 (~2.4 km at the 80th percentile): a continuum image
    ~3000 pixels across (36 MB a plane), whose imaging needs a few times the memory of the tiny one's."""
    return campaign_tiny_scenario("alma.cycle10.9.cfg", 25, "campaign_long_baselines")


def campaign_widest_scenario() -> Scenario:
    """campaign_tiny on all 43 antennas of configuration 10 (~9 km): images ~11000 pixels across (0.5 GB a
    plane), 12 times more than the size cascade can take off a product of ~40 MB."""
    return campaign_tiny_scenario("alma.cycle10.10.cfg", 43, "campaign_widest")


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "selfcal": selfcal_scenario,
    "default": default_scenario,
    "edge_line": edge_line_scenario,
    "line_forest": line_forest_scenario,
    "broad_line": broad_line_scenario,
    "whole_spw_line": whole_spw_line_scenario,
    "bad_antenna": broken_antenna_scenario,
    "four_spw": four_spw_scenario,
    "fine_channels": fine_channels_scenario,
    "campaign_tiny": campaign_tiny_scenario,
    "campaign_long_baselines": campaign_long_baselines_scenario,
    "campaign_widest": campaign_widest_scenario,
}


class UnknownScenario(ValueError):
    pass


def get_scenario(name: str) -> Scenario:
    try:
        factory = SCENARIOS[name]
    except KeyError:
        raise UnknownScenario(
            f"no scenario named {name!r}; choose one of: {', '.join(sorted(SCENARIOS))}"
        ) from None
    return factory()
