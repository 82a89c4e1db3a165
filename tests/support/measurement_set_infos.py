"""MeasurementSetInfo descriptions written by hand, for tests of decisions made from metadata alone."""

from datetime import UTC, datetime

from aperture_contracts.metadata import AntennaInfo, FieldInfo, MeasurementSetInfo, MousMetadata, SpectralWindow

BANDPASS = "CALIBRATE_BANDPASS#ON_SOURCE"
FLUX = "CALIBRATE_FLUX#ON_SOURCE"
AMPLI = "CALIBRATE_AMPLI#ON_SOURCE"
PHASE = "CALIBRATE_PHASE#ON_SOURCE"
TARGET = "OBSERVE_TARGET#ON_SOURCE"
ATMOSPHERE = "CALIBRATE_ATMOSPHERE#ON_SOURCE"


def field(field_id: int, name: str, intents: list[str], ra_deg: float = 0.0, dec_deg: float = -24.0,
          spw_ids: list[int] | None = None) -> FieldInfo:  # fmt: skip
    return FieldInfo(
        field_id=field_id, name=name, ra_deg=ra_deg, dec_deg=dec_deg, intents=intents,
        is_science_target=not intents or TARGET in intents, spw_ids=[0, 1] if spw_ids is None else spw_ids,
    )


def spw(spw_id: int, num_channels: int = 64, centre_hz: float = 230e9, science: bool = True) -> SpectralWindow:
    width = 15.625e6
    bandwidth = num_channels * width
    return SpectralWindow(
        spw_id=spw_id, num_channels=num_channels, ref_frequency_hz=centre_hz - bandwidth / 2,
        centre_frequency_hz=centre_hz, bandwidth_hz=bandwidth, channel_width_hz=width,
        min_frequency_hz=centre_hz - bandwidth / 2, max_frequency_hz=centre_hz + bandwidth / 2,
        correlations=["XX", "YY"], science=science,
    )


def ms_info(fields: list[FieldInfo], spws: list[SpectralWindow] | None = None, name: str = "uid___A002_X1.ms",
            data_columns: list[str] | None = None) -> MeasurementSetInfo:  # fmt: skip
    spws = spws if spws is not None else [spw(0), spw(1, centre_hz=220e9)]
    intents = sorted({intent for f in fields for intent in f.intents})
    return MeasurementSetInfo(
        name=name, observatory="ALMA", time_start=datetime(2025, 6, 1, 3, tzinfo=UTC),
        time_end=datetime(2025, 6, 1, 4, tzinfo=UTC), exposure_s=810.0, num_rows=1000, num_antennas=3,
        num_baselines=3, antennas=[AntennaInfo(antenna_id=i, name=f"DA4{i}", diameter_m=12.0) for i in range(3)],
        fields=fields, spectral_windows=spws, correlations=["XX", "YY"], intents=intents, flagged_fraction=0.0,
        data_columns=data_columns or ["DATA"],
        has_calibrator_intents=any(i.startswith("CALIBRATE_") for i in intents),
    )


def alma_like(name: str = "uid___A002_X1.ms") -> MeasurementSetInfo:
    """The generator's default layout: a bandpass/flux calibrator, a phase calibrator and a target."""
    return ms_info(
        [
            field(0, "J1517-2422", [BANDPASS, FLUX], ra_deg=229.42),
            field(1, "J1553-2422", [PHASE], ra_deg=238.38),
            field(2, "SimGalaxy", [TARGET], ra_deg=239.62),
        ],
        name=name,
    )


def metadata(*infos: MeasurementSetInfo, calibrated: bool = False) -> MousMetadata:
    return MousMetadata(
        measurement_sets=list(infos), science_targets=[], science_spw_ids=[0, 1], representative_spw=None,
        calibrated=calibrated,
    )
