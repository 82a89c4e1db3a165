"""The calibration worker's settings (environment, prefix APERTURE_)."""

from aperture_shared.settings import WorkerSettings
from pydantic import Field

from aperture_calibration.plan import CalibrationOptions, SelfCalibrationOptions

_SELFCAL = SelfCalibrationOptions()


class CalibrationSettings(WorkerSettings):
    service_name: str = "calibration-worker"
    # Fraction of each science spw's channels flagged at each edge, where the baseband filter makes
    # them noisy (the ALMA pipeline's hifa_flagdata `fracspw`, 1/32 by default).
    edge_channel_fraction: float = Field(0.03125, ge=0, lt=0.5)
    # Solutions below this signal-to-noise ratio are flagged by gaincal and bandpass.
    min_snr: float = Field(3.0, gt=0)
    # Self-calibration of the science targets (selfcal_plan.py has the rules): on or off, the quick
    # image's peak/rms and the expected SNR per solution it needs, the amplitude round's SNR (0: never),
    # the most phase rounds, and the largest quick image (pixels across) worth attempting.
    selfcal_enabled: bool = _SELFCAL.enabled
    selfcal_min_image_snr: float = Field(_SELFCAL.min_image_snr, gt=0)
    selfcal_min_solution_snr: float = Field(_SELFCAL.min_solution_snr, gt=0)
    selfcal_amplitude_min_solution_snr: float = Field(_SELFCAL.amplitude_min_solution_snr or 0.0, ge=0)
    selfcal_max_phase_rounds: int = Field(_SELFCAL.max_phase_rounds, ge=1)
    selfcal_max_image_pixels: int = Field(_SELFCAL.max_image_pixels, ge=64)

    def options(self) -> CalibrationOptions:
        return CalibrationOptions(
            edge_channel_fraction=self.edge_channel_fraction,
            min_snr=self.min_snr,
            self_calibration=SelfCalibrationOptions(
                enabled=self.selfcal_enabled,
                min_image_snr=self.selfcal_min_image_snr,
                min_solution_snr=self.selfcal_min_solution_snr,
                amplitude_min_solution_snr=self.selfcal_amplitude_min_solution_snr or None,
                max_phase_rounds=self.selfcal_max_phase_rounds,
                max_image_pixels=self.selfcal_max_image_pixels,
            ),
        )
