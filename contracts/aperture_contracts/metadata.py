"""What ingest learns about an observation, kept in the coordinator's state and returned by the API."""

from datetime import datetime

from pydantic import BaseModel, Field


class SpectralWindow(BaseModel):
    spw_id: int = Field(ge=0)
    name: str = ""
    num_channels: int = Field(ge=1)
    ref_frequency_hz: float = Field(description="frequency of the first channel's centre")
    centre_frequency_hz: float
    bandwidth_hz: float = Field(description="total bandwidth, always positive")
    channel_width_hz: float = Field(description="signed: negative when frequency falls with channel")
    min_frequency_hz: float
    max_frequency_hz: float
    frame: str = Field("", description="spectral reference frame of the channel frequencies, e.g. TOPO")
    correlations: list[str] = Field(default_factory=list, examples=[["XX", "YY"]])
    science: bool = Field(True, description="False for WVR and channel-average spws")


class FieldInfo(BaseModel):
    field_id: int = Field(ge=0)
    name: str
    ra_deg: float
    dec_deg: float
    intents: list[str] = Field(default_factory=list, examples=[["OBSERVE_TARGET#ON_SOURCE"]])
    is_science_target: bool = Field(
        description="has a target intent, or no intents at all (non-ALMA data: treated as a target)"
    )
    spw_ids: list[int] = Field(default_factory=list, description="spws observed on this field")


class AntennaInfo(BaseModel):
    antenna_id: int = Field(ge=0)
    name: str
    station: str = ""
    diameter_m: float


class RepresentativeSpw(BaseModel):
    spw_id: int
    source: str = Field(description="where the choice came from: 'data' or the rule used")


class MeasurementSetInfo(BaseModel):
    """One Measurement Set of the MOUS."""

    name: str = Field(examples=["uid___A002_X1_X2.ms"])
    observatory: str = Field(examples=["ALMA"])
    time_start: datetime
    time_end: datetime
    exposure_s: float = Field(description="on-source integration summed over scans of science targets")
    num_rows: int
    num_antennas: int
    num_baselines: int = Field(description="cross-correlation baselines, n(n-1)/2")
    antennas: list[AntennaInfo]
    fields: list[FieldInfo]
    spectral_windows: list[SpectralWindow]
    correlations: list[str]
    intents: list[str]
    flagged_fraction: float = Field(ge=0.0, le=1.0)
    data_columns: list[str] = Field(examples=[["DATA", "MODEL_DATA", "CORRECTED_DATA"]])
    has_calibrator_intents: bool
    recorded_representative_spw: RepresentativeSpw | None = Field(
        None,
        description="the representative spw as this MS records it (ALMA: the SB's science goal in "
        "ASDM_SBSUMMARY); None when it records none",
    )


class MousMetadata(BaseModel):
    """The whole observation, merged over its Measurement Sets."""

    measurement_sets: list[MeasurementSetInfo]
    science_targets: list[str] = Field(description="field names, in the order first observed")
    science_spw_ids: list[int]
    representative_spw: RepresentativeSpw | None
    calibrated: bool = Field(description="True when ingest applied calibration tables (restore)")
