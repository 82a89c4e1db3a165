"""What to calibrate with what, decided from the ingest metadata alone (no CASA): which field solves the
bandpass, which sets the flux scale and how, which phase calibrator each target takes its gains from,
and which calibrator roles are missing.

Roles come from scan intents, as the ALMA pipeline reads them (the part before '#'):
    bandpass  CALIBRATE_BANDPASS
    flux      CALIBRATE_FLUX, or CALIBRATE_AMPLI (the older name of the same role)
    phase     CALIBRATE_PHASE
Every other field with data is calibrated like a target (science targets and check sources), with the
gains of the phase calibrator nearest to it on the sky, interpolated in time.

When a role has no field, the plan falls back and says so (each becomes a QA message):
    no bandpass calibrator -> the bandpass is solved on the flux calibrator, else the first phase calibrator
    no phase calibrator    -> targets take the gains of the bandpass calibrator (not interleaved with them)
    no flux calibrator     -> the flux scale is unknown: the bandpass calibrator is taken as 1 Jy

How the flux scale is set (the first that applies):
    1. the job's `flux_models` names the flux calibrator: setjy standard='manual' with that power law. An
       explicit model wins because it is an operator's deliberate choice (e.g. the ALMA calibrator
       catalogue's measurement for that day, which is not available offline);
    2. the flux calibrator is a solar-system body: setjy's 'Butler-JPL-Horizons 2012' models, with the
       ephemerides casadata carries;
    3. it is a source of CASA's 'Perley-Butler 2017' catalogue and every science spw lies in that
       catalogue's range (up to 50 GHz: at ALMA's frequencies these quasars are variable and uncatalogued);
    4. otherwise 1 Jy at every frequency (spectral index 0): the calibrated amplitudes are then relative
       to the calibrator's unknown flux, and the result says `flux_scale_known=False`.
With no flux calibrator at all, a `flux_models` entry for another calibrator (e.g. a phase calibrator of
known flux) sets the scale instead, else rule 4 applies to the bandpass calibrator.
"""

import math
from enum import StrEnum

from aperture_contracts.flux import FluxModel
from aperture_contracts.metadata import FieldInfo, MeasurementSetInfo
from pydantic import BaseModel, Field


class SelfCalibrationOptions(BaseModel):
    """Self-calibration's thresholds (the rules are in selfcal_plan.py), which a deployment may change
    (CalibrationSettings: APERTURE_SELFCAL_*)."""

    enabled: bool = True
    min_image_snr: float = Field(10.0, gt=0, description="the quick image's peak/rms needed to try at all")
    min_solution_snr: float = Field(3.0, gt=0, description="expected SNR per solution for a phase round")
    amplitude_min_solution_snr: float | None = Field(
        50.0, gt=0, description="expected SNR per scan solution for the amplitude round; None: never"
    )
    min_improvement: float = Field(0.02, ge=0, description="fractional rise of peak/rms a round must bring")
    # The peak is itself uncertain by about one rms, and phases solved on noise pull it up by about as
    # much (self-calibration's bias at low SNR): a kept round must raise peak/rms by several of those.
    min_snr_gain: float = Field(3.0, ge=0, description="absolute rise of peak/rms a round must bring")
    rms_tolerance: float = Field(0.05, ge=0, description="fractional rise of the rms a kept round may bring")
    peak_tolerance: float = Field(0.05, ge=0, lt=1, description="fractional fall of the peak a kept round may bring")
    max_flagged_fraction: float = Field(0.25, ge=0, le=1, description="of a round's solutions")
    max_phase_rounds: int = Field(6, ge=1)
    gaincal_min_snr: float = Field(2.0, gt=0, description="gaincal flags solutions below this SNR")
    niter: int = Field(1000, ge=1, description="clean iterations per quick image")
    nsigma: float = Field(4.0, gt=0, description="clean down to this many times the residual's rms")
    # A long-baseline observation's quick image out to the primary beam's 0.2 level can be ~10,000 pixels
    # across: gigabytes for each of tclean's images, on a worker sized for calibration. The data are
    # imaged and checked by the imaging stage (with its size limits) without self-calibration instead.
    max_image_pixels: int = Field(4096, ge=64, description="across; a larger quick image is not attempted")


class CalibrationOptions(BaseModel):
    """Settings of the calibration sequence that a deployment may change (CalibrationSettings)."""

    edge_channel_fraction: float = Field(0.03125, ge=0, lt=0.5, description="flagged at each spw edge")
    min_snr: float = Field(3.0, gt=0, description="solutions below this SNR are flagged")
    self_calibration: SelfCalibrationOptions = SelfCalibrationOptions()


class CalibratorRole(StrEnum):
    BANDPASS = "bandpass"
    FLUX = "flux"
    PHASE = "phase"


ROLE_INTENTS: dict[CalibratorRole, tuple[str, ...]] = {
    CalibratorRole.BANDPASS: ("CALIBRATE_BANDPASS",),
    CalibratorRole.FLUX: ("CALIBRATE_FLUX", "CALIBRATE_AMPLI"),
    CalibratorRole.PHASE: ("CALIBRATE_PHASE",),
}


class FluxStandard(StrEnum):
    """setjy's `standard` for each way of setting the flux scale."""

    SOLAR_SYSTEM = "Butler-JPL-Horizons 2012"
    CATALOGUE = "Perley-Butler 2017"
    MANUAL = "manual"


# Bodies with a model in 'Butler-JPL-Horizons 2012' (and an ephemeris in casadata).
SOLAR_SYSTEM_BODIES = frozenset(
    {"venus", "mars", "jupiter", "uranus", "neptune", "io", "europa", "ganymede", "callisto", "titan",
     "ceres", "pallas", "vesta", "juno", "lutetia"}
)  # fmt: skip
# Sources of 'Perley-Butler 2017' under the names an MS may give them (3C, B1950 and J2000 names).
CATALOGUE_SOURCES: dict[str, str] = {
    alias: name
    for name, aliases in {
        "3C48": ("3C48", "0137+331", "J0137+3309"),
        "3C123": ("3C123", "0433+295", "J0437+2940"),
        "3C138": ("3C138", "0521+166", "J0521+1638"),
        "3C147": ("3C147", "0542+498", "J0542+4951"),
        "3C196": ("3C196", "0809+483", "J0813+4813"),
        "3C286": ("3C286", "1331+305", "J1331+3030"),
        "3C295": ("3C295", "1409+524", "J1411+5212"),
        "3C380": ("3C380", "1828+487", "J1829+4844"),
    }.items()
    for alias in aliases
}
CATALOGUE_MAX_FREQUENCY_HZ = 50e9
ASSUMED_FLUX_JY = 1.0


class FieldSelection(BaseModel):
    """A field name and its ids (a mosaic has several pointings under one name)."""

    name: str
    ids: list[int]

    @property
    def selection(self) -> str:
        """For CASA's field parameters: ids, which no character in a name can make ambiguous."""
        return ",".join(str(i) for i in self.ids)


class FluxReference(BaseModel):
    """Where the flux scale comes from."""

    field: FieldSelection
    standard: FluxStandard
    flux_jy: float | None = Field(None, description="manual: Stokes I at reference_frequency_hz")
    reference_frequency_hz: float | None = None
    spectral_index: float = 0.0
    scale_known: bool
    how: str = Field(description="a sentence for the summary")


class MissingRole(BaseModel):
    role: CalibratorRole
    substitute: str = Field(description="the field used instead; '' when none is")
    message: str


class TargetGains(BaseModel):
    """Targets calibrated with the gains of one calibrator (nearest on the sky)."""

    targets: list[FieldSelection]
    gain_field: FieldSelection


class CalibrationPlan(BaseModel):
    ms_name: str
    science_spw_ids: list[int]
    edge_channels: dict[int, int] = Field(description="spw id -> channels flagged at each edge")
    edge_flag_selection: str = Field(description="those channels as a CASA spw selection ('' when none)")
    num_channels: dict[int, int] = Field(description="spw id -> channels, for every science spw")
    bandpass: FieldSelection
    flux: FluxReference
    phase_calibrators: list[FieldSelection]
    calibrators: list[FieldSelection] = Field(description="every field solved on, each once")
    targets: list[TargetGains]
    missing: list[MissingRole]
    min_snr: float

    @property
    def gain_sources(self) -> list[FieldSelection]:
        """The calibrators whose per-scan gains the targets take."""
        return _unique([group.gain_field for group in self.targets])

    @property
    def spw_selection(self) -> str:
        return ",".join(str(spw) for spw in self.science_spw_ids)


def fields_by_role(info: MeasurementSetInfo) -> dict[CalibratorRole, list[FieldSelection]]:
    """The fields with data that carry each calibrator intent, grouped by name, in observing order."""
    found: dict[CalibratorRole, list[FieldSelection]] = {role: [] for role in CalibratorRole}
    for role, intents in ROLE_INTENTS.items():
        matching = [f for f in observed_fields(info) if any(scan_intent(i) in intents for i in f.intents)]
        found[role] = group_by_name(matching)
    return found


def plan_calibration(
    info: MeasurementSetInfo, flux_models: list[FluxModel], options: CalibrationOptions
) -> CalibrationPlan | None:
    """The calibration of one MS; None when it has no bandpass, flux or phase calibrator at all."""
    roles = fields_by_role(info)
    flux_fields, phase_fields = roles[CalibratorRole.FLUX], roles[CalibratorRole.PHASE]
    if not any(roles.values()):
        return None
    missing: list[MissingRole] = []

    bandpass = (roles[CalibratorRole.BANDPASS] or flux_fields or phase_fields)[0]
    if not roles[CalibratorRole.BANDPASS]:
        missing.append(
            MissingRole(
                role=CalibratorRole.BANDPASS, substitute=bandpass.name,
                message=f"no bandpass calibrator: the bandpass is solved on {bandpass.name}",
            )
        )

    models = {model.field: model for model in flux_models}
    if flux_fields:
        flux = choose_flux_reference(flux_fields[0], models.get(flux_fields[0].name), info)
    else:
        calibrators_with_model = [f for f in (bandpass, *phase_fields) if f.name in models]
        reference = calibrators_with_model[0] if calibrators_with_model else bandpass
        flux = choose_flux_reference(reference, models.get(reference.name), info, flux_intent=False)
        missing.append(
            MissingRole(
                role=CalibratorRole.FLUX, substitute=reference.name if flux.scale_known else "",
                message="no flux calibrator: flux scale unknown"
                if not flux.scale_known
                else f"no flux calibrator: the flux scale comes from the model given for {reference.name}",
            )
        )

    gain_sources = phase_fields or [bandpass]
    if not phase_fields:
        missing.append(
            MissingRole(
                role=CalibratorRole.PHASE, substitute=bandpass.name,
                message=f"no phase calibrator: targets take the gains of {bandpass.name}, "
                "which was not observed between them",
            )
        )
    calibrators = _unique([bandpass, flux.field, *phase_fields])
    calibrator_names = {field.name for field in calibrators}
    targets = [f for f in group_by_name(observed_fields(info)) if f.name not in calibrator_names]
    fields = {f.field_id: f for f in info.fields}
    grouped: dict[str, TargetGains] = {}
    for target in targets:
        source = _nearest(fields[target.ids[0]], gain_sources, fields)
        grouped.setdefault(source.name, TargetGains(targets=[], gain_field=source)).targets.append(target)

    science = [spw for spw in info.spectral_windows if spw.science]
    edges = {spw.spw_id: edge_channels(spw.num_channels, options.edge_channel_fraction) for spw in science}
    return CalibrationPlan(
        ms_name=info.name,
        science_spw_ids=[spw.spw_id for spw in science],
        edge_channels=edges,
        num_channels={spw.spw_id: spw.num_channels for spw in science},
        edge_flag_selection=",".join(
            f"{spw.spw_id}:0~{edges[spw.spw_id] - 1};{spw.num_channels - edges[spw.spw_id]}~{spw.num_channels - 1}"
            for spw in science
            if edges[spw.spw_id]
        ),
        bandpass=bandpass,
        flux=flux,
        phase_calibrators=phase_fields,
        calibrators=calibrators,
        targets=list(grouped.values()),
        missing=missing,
        min_snr=options.min_snr,
    )


def choose_flux_reference(
    field: FieldSelection, model: FluxModel | None, info: MeasurementSetInfo, flux_intent: bool = True
) -> FluxReference:
    """How setjy sets the flux of `field` (the rules of the module docstring, in order)."""
    if model is not None:
        return FluxReference(
            field=field, standard=FluxStandard.MANUAL, flux_jy=model.flux_jy,
            reference_frequency_hz=model.reference_frequency_hz, spectral_index=model.spectral_index,
            scale_known=True,
            how=f"flux scale from the model given for {field.name} ({model.flux_jy:g} Jy at "
            f"{model.reference_frequency_hz / 1e9:g} GHz, spectral index {model.spectral_index:g})",
        )
    if flux_intent and field.name.strip().lower() in SOLAR_SYSTEM_BODIES:
        return FluxReference(
            field=field, standard=FluxStandard.SOLAR_SYSTEM, scale_known=True,
            how=f"flux scale from the {FluxStandard.SOLAR_SYSTEM.value} model of {field.name}",
        )
    highest = max((spw.max_frequency_hz for spw in info.spectral_windows if spw.science), default=math.inf)
    catalogue_name = CATALOGUE_SOURCES.get(field.name.strip().upper())
    if flux_intent and catalogue_name and highest <= CATALOGUE_MAX_FREQUENCY_HZ:
        return FluxReference(
            field=field, standard=FluxStandard.CATALOGUE, scale_known=True,
            how=f"flux scale from the {FluxStandard.CATALOGUE.value} model of {catalogue_name}",
        )
    return FluxReference(
        field=field, standard=FluxStandard.MANUAL, flux_jy=ASSUMED_FLUX_JY, reference_frequency_hz=None,
        spectral_index=0.0, scale_known=False,
        how=f"flux scale relative: {field.name} assumed to be {ASSUMED_FLUX_JY:g} Jy at every frequency",
    )


def edge_channels(num_channels: int, fraction: float) -> int:
    """Channels to flag at each edge; never so many that nothing is left."""
    count = int(num_channels * fraction)
    return count if 2 * count < num_channels else 0


def scan_intent(intent: str) -> str:
    """An intent without its sub-intent: CALIBRATE_PHASE#ON_SOURCE -> CALIBRATE_PHASE."""
    return intent.split("#", 1)[0]


def observed_fields(info: MeasurementSetInfo) -> list[FieldInfo]:
    return [f for f in info.fields if f.spw_ids]


def group_by_name(fields: list[FieldInfo]) -> list[FieldSelection]:
    grouped: dict[str, FieldSelection] = {}
    for field in fields:
        grouped.setdefault(field.name, FieldSelection(name=field.name, ids=[])).ids.append(field.field_id)
    return list(grouped.values())


def _unique(fields: list[FieldSelection]) -> list[FieldSelection]:
    return list({field.name: field for field in fields}.values())


def _nearest(target: FieldInfo, sources: list[FieldSelection], fields: dict[int, FieldInfo]) -> FieldSelection:
    return min(sources, key=lambda source: angular_separation_deg(target, fields[source.ids[0]]))


def angular_separation_deg(a: FieldInfo, b: FieldInfo) -> float:
    """Great-circle distance (haversine: accurate at small separations too)."""
    ra1, dec1, ra2, dec2 = map(math.radians, (a.ra_deg, a.dec_deg, b.ra_deg, b.dec_deg))
    h = math.sin((dec2 - dec1) / 2) ** 2 + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))
