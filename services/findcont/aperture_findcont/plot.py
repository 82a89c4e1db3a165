"""The findcont plot: the mean spectrum in the source mask with the continuum ranges shaded.

What a person checks by eye: do the shaded ranges avoid every line, including faint wings? The baseline
and the one-channel threshold are drawn too, so that "why is this channel not continuum?" can be read
off the plot. matplotlib with the Agg backend: no display is needed.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aperture_findcont.continuum_finder import runs


@dataclass
class SpectrumPlot:
    target: str
    spw_id: int
    lsrk_hz: np.ndarray
    spectrum_jy: np.ndarray
    continuum: np.ndarray  # the chosen continuum channels
    baseline_jy: np.ndarray | None  # the finder's continuum model (None for operator ranges without one)
    threshold_jy: float | None  # one-channel detection threshold above/below the baseline
    finder_lines: np.ndarray | None  # channels the finder called line, shown when other ranges were chosen
    title_detail: str  # the case and where the ranges came from
    footnote: str  # how the cube was made


def write_spectrum_plot(plot: SpectrumPlot, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    order = np.argsort(plot.lsrk_hz)
    frequency_ghz = plot.lsrk_hz[order] / 1e9
    spectrum_mjy = plot.spectrum_jy[order] * 1e3
    width_ghz = abs(float(frequency_ghz[-1] - frequency_ghz[0])) / max(1, frequency_ghz.size - 1)
    figure, axes = pyplot.subplots(figsize=(10, 4.8), dpi=110)
    try:
        for index, (first, last) in enumerate(runs(plot.continuum[order])):
            axes.axvspan(
                frequency_ghz[first] - width_ghz / 2, frequency_ghz[last] + width_ghz / 2, color="tab:green",
                alpha=0.18, lw=0, label="continuum" if index == 0 else None,
            )
        if plot.finder_lines is not None and plot.finder_lines.any():
            lines = plot.finder_lines[order]
            for index, (first, last) in enumerate(runs(lines)):
                axes.axvspan(
                    frequency_ghz[first] - width_ghz / 2, frequency_ghz[last] + width_ghz / 2, ymax=0.05,
                    color="tab:red", alpha=0.6, lw=0, label="line (findcont)" if index == 0 else None,
                )
        axes.step(frequency_ghz, spectrum_mjy, where="mid", color="black", lw=0.9, label="mean in mask")
        if plot.baseline_jy is not None:
            baseline_mjy = plot.baseline_jy[order] * 1e3
            axes.plot(frequency_ghz, baseline_mjy, color="tab:blue", lw=1.0, label="baseline")
            if plot.threshold_jy is not None:
                for sign in (1, -1):
                    axes.plot(
                        frequency_ghz, baseline_mjy + sign * plot.threshold_jy * 1e3, color="tab:blue", lw=0.7,
                        ls="--", label="detection threshold" if sign == 1 else None,
                    )
        axes.set_xlabel("LSRK frequency (GHz)")
        axes.set_ylabel("mean intensity in mask (mJy/beam)")
        axes.set_title(f"{plot.target} spw {plot.spw_id}: {plot.title_detail}")
        axes.set_xlim(frequency_ghz[0] - width_ghz / 2, frequency_ghz[-1] + width_ghz / 2)
        axes.legend(loc="upper right", fontsize="small", framealpha=0.8)
        figure.text(0.01, 0.01, plot.footnote, fontsize="x-small", color="dimgray")
        figure.tight_layout(rect=(0, 0.03, 1, 1))
        figure.savefig(path, format="png")
    finally:
        pyplot.close(figure)
    return path

