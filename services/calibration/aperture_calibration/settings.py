"""The calibration worker's settings (environment, prefix APERTURE_)."""

from aperture_shared.settings import WorkerSettings
from pydantic import Field

from aperture_calibration.plan import CalibrationOptions


class CalibrationSettings(WorkerSettings):
    service_name: str = "calibration-worker"
    # Fraction of each science spw's channels flagged at each edge, where the baseband filter makes
    # them noisy (the ALMA pipeline's hifa_flagdata `fracspw`, 1/32 by default).
    edge_channel_fraction: float = Field(0.03125, ge=0, lt=0.5)
    # Solutions below this signal-to-noise ratio are flagged by gaincal and bandpass.
    min_snr: float = Field(3.0, gt=0)

    def options(self) -> CalibrationOptions:
        return CalibrationOptions(edge_channel_fraction=self.edge_channel_fraction, min_snr=self.min_snr)
