"""`truth.json`: what a generated MOUS really contains, for tests to compare the system's products with.

Frequencies of lines are LSRK (the source's frame); spws are topocentric, as ALMA records them, and
channel numbers refer to the MS's own (topocentric) channels. Over an observation of half an hour the
two frames differ by a shift that changes by far less than a channel, so one conversion, at the middle
of the observation, is given per field (`lsrk_over_topo`).
"""

from datetime import date
from pathlib import Path
from typing import Literal

from aperture_contracts.packaging import CalibrationApply
from pydantic import BaseModel, ConfigDict, Field

from aperture_testdata.gains import BrokenAntennaGains, InjectedGains

TRUTH_FILE_NAME = "truth.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineTruth(_Model):
    transition: str
    rest_frequency_hz: float
    velocity_kms: float = Field(description="LSRK, radio convention")
    centre_frequency_lsrk_hz: float
    fwhm_kms: float
    fwhm_hz: float
    peak_jy: float = Field(description="line alone at its centre, before primary-beam attenuation")
    spw_id: int | None = Field(description="the spw the line falls in; None when outside every spw")
    centre_channel: float | None = Field(description="fractional channel of the centre in that spw")


class ComponentTruth(_Model):
    name: str
    shape: Literal["point", "gaussian"]
    ra: str = Field(description="J2000, sexagesimal")
    dec: str
    ra_deg: float
    dec_deg: float
    offset_east_arcsec: float
    offset_north_arcsec: float
    flux_jy: float = Field(description="intrinsic continuum at reference_frequency_hz")
    reference_frequency_hz: float
    spectral_index: float
    major_fwhm_arcsec: float | None
    minor_fwhm_arcsec: float | None
    position_angle_deg: float | None
    primary_beam_gain: float = Field(
        description="primary-beam response at the component's position and reference frequency; "
        "the DATA carry flux x gain (per channel), a primary-beam-corrected image the intrinsic flux"
    )
    lines: list[LineTruth]


class FieldTruth(_Model):
    field_id: int
    name: str
    ra: str
    dec: str
    ra_deg: float
    dec_deg: float
    intents: list[str]
    lsrk_over_topo: float = Field(description="nu_LSRK / nu_TOPO towards this field at mid-observation")
    components: list[ComponentTruth]


class SpwTruth(_Model):
    spw_id: int
    name: str
    frame: Literal["TOPO"] = "TOPO"
    nchan: int
    first_channel_hz: float
    channel_width_hz: float
    centre_frequency_hz: float
    rest_frequency_hz: float
    transition: str
    line_channels: list[tuple[int, int]] = Field(
        description="inclusive channel ranges where any target line exceeds line_threshold of its peak"
    )
    line_free_channels: list[tuple[int, int]] = Field(description="inclusive channel ranges, the complement")
    line_free_selection: str = Field(
        description="the line-free ranges in CASA spw syntax, e.g. '0:0~26;47~63'"
    )


class ScanTruth(_Model):
    scan_number: int
    field: str
    intents: list[str]
    start_mjd_s: float
    end_mjd_s: float


class AntennaTruth(_Model):
    name: str
    pad: str
    east_m: float
    north_m: float
    up_m: float
    diameter_m: float


class ArrayTruth(_Model):
    configuration: str = Field(description="file in casadata alma/simmos/")
    selection: str
    reference_antenna: str
    antennas: list[AntennaTruth]


class ObservationTruth(_Model):
    date: date
    start_utc: str
    end_utc: str
    start_mjd_s: float
    end_mjd_s: float
    integration_s: float
    project_code: str
    scans: list[ScanTruth]


class NoiseTruth(_Model):
    sigma_jy: float = Field(description="rms of the real and of the imaginary part of one visibility")
    weight: float = Field(description="the WEIGHT written, 1/sigma^2")
    seed_stream: str = "numpy default_rng(SeedSequence(seed)).spawn: [gains, noise, broken antenna]"


class FluxscaleResult(_Model):
    field: str
    spw_id: int
    derived_flux_jy: float
    true_flux_jy: float


class CalibrationTruth(_Model):
    reference_antenna: str
    apply: list[CalibrationApply] = Field(description="as in aperture-restore.json")
    fluxscale: list[FluxscaleResult]
    check_field: str = Field(description="the phase calibrator whose scatter was measured")
    phase_scatter_before_deg: float = Field(description="DATA, channel-averaged, rms about zero")
    phase_scatter_after_deg: float = Field(description="after applycal with the tables above")


class MousTruth(_Model):
    kind: Literal["aperture.testdata-truth"] = "aperture.testdata-truth"
    schema_version: Literal["1.0"] = "1.0"
    scenario: str
    description: str
    seed: int
    mous_uid: str
    measurement_set: str = Field(description="directory name of the MS beside this file")
    casa_version: str
    calibrated: bool = Field(description="True: DATA hold calibrated visibilities and no tables are given")
    array: ArrayTruth
    observation: ObservationTruth
    fields: list[FieldTruth]
    spws: list[SpwTruth]
    noise: NoiseTruth
    line_threshold: float = Field(description="fraction of a line's peak below which a channel is line-free")
    primary_beam: str
    gains: InjectedGains | None
    calibration: CalibrationTruth | None
    broken_antenna: BrokenAntennaGains | None = Field(
        None, description="an antenna whose data are bad (scenario 'bad_antenna'); None when every antenna works"
    )

    def fields_with_intent(self, intent: str) -> list[FieldTruth]:
        return [f for f in self.fields if intent in f.intents]

    def field(self, name: str) -> FieldTruth:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise KeyError(f"no field {name!r} in the truth; fields: {[f.name for f in self.fields]}")

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> "MousTruth":
        return cls.model_validate_json(path.read_text())
