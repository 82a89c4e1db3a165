"""Cubes imaged in channel chunks (planned by the coordinator, see its planner.py): which output channels a
chunk images, whether the chunks' images can be joined into one cube, and the cube's clean figures from
its chunks'. Pure, so each rule is checked with numbers (tests/imaging/test_cube_chunks.py).

Every chunk plans the whole cube (beam, pixels, image size, channel binning through the size cascade,
sensitivity per plane: `steps._plan_image` on all of the spw's data), then images only its channels of
the whole cube's output grid. The join is then a concatenation along the spectral axis, and it checks
first that the chunks' plans and grids agree: anything else would be a cube that no single job makes.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from aperture_contracts.imaging import ChannelChunk, CubeChunkImage, ImageProduct
from aperture_shared.errors import BadInput, JobError

from aperture_imaging.imaging_qa import TCLEAN_DIVERGENCE_STOPCODES, TCLEAN_ITERATION_LIMIT_STOPCODE

# Channel frequencies of adjacent chunks must continue the grid to this fraction of a channel: they are
# computed by CASA from the same data and start channel, so they agree to rounding (~1e-5 Hz at 230 GHz).
SPECTRAL_TOLERANCE_CHANNELS = 1e-4
# Figures every chunk computes from all of the cube's data, so equal up to floating-point summation order.
SAME_FIGURE_RELATIVE = 1e-6


class ChunksDoNotJoin(JobError):
    """The chunks of a cube were imaged on different plans or grids. Not bad input, and another attempt
    of the join cannot help: it is a fault (error class internal) that a re-run of the MOUS may clear."""


@dataclass(frozen=True)
class OutputChannels:
    """A chunk's channels on the whole cube's output grid (after channel binning)."""

    first: int
    count: int
    cube_channels: int
    binning: int

    @property
    def first_native(self) -> int:
        """The native channel tclean's `start` names for the chunk's first output channel."""
        return self.first * self.binning


def output_channels(chunk: ChannelChunk, native_channels: int, binning: int) -> OutputChannels:
    """The output channels of `chunk` for a cube of `native_channels` binned by `binning`: native channel c
    falls in output channel c // binning, so chunk boundaries map to floor(boundary / binning) and the
    chunks' output ranges cover the cube's native_channels // binning channels exactly.

    BadInput when the chunk was planned for another channel count or is too narrow for the binning."""
    if chunk.total_channels != native_channels:
        raise BadInput(
            f"{chunk.describe()} was planned for a spw of {chunk.total_channels} channels, but the data hold "
            f"{native_channels}: the MOUS's description and its data disagree; submit it again with rerun"
        )
    first, end = chunk.first_channel // binning, chunk.end_channel // binning
    if end <= first:
        raise BadInput(
            f"{chunk.describe()} holds no whole output channel with channel binning by {binning}: plan fewer, "
            "wider chunks (raise APERTURE_CUBE_CHUNK_CHANNELS) or bin less"
        )
    return OutputChannels(first, end - first, native_channels // binning, binning)


def check_chunk_images(cube: str, images: Sequence[ImageProduct]) -> list[CubeChunkImage]:
    """The chunk records of `images`, checked to make one cube: every chunk of the plan once, in order;
    output channels that continue each other from 0 to the cube's last; the same pixels, binning,
    deconvolver and sensitivity (every chunk plans the whole cube, so they must agree).
    cube: the cube's description for messages. Raises ChunksDoNotJoin."""
    chunks = [image.chunk for image in images]
    if not images or any(chunk is None for chunk in chunks):
        raise ChunksDoNotJoin(f"{cube}: the job carries {len(images)} images to join, not all of them cube chunks")
    records = [chunk for chunk in chunks if chunk is not None]
    count = records[0].chunk.count
    indices = [record.chunk.index for record in records]
    if indices != list(range(count)) or any(record.chunk.count != count for record in records):
        raise ChunksDoNotJoin(f"{cube}: the chunks to join are {indices} of {count}; every chunk is needed, in order")
    first = images[0]
    for image, record in zip(images, records, strict=True):
        which = f"{cube}: {record.chunk.describe()}"
        differences = [
            f"{name} {theirs} instead of {ours}"
            for name, theirs, ours in (
                ("cell", image.cell_arcsec, first.cell_arcsec),
                ("image size", image.imsize, first.imsize),
                ("channel binning", record.channel_binning, records[0].channel_binning),
                ("output channels", record.cube_channels, records[0].cube_channels),
                ("deconvolver", record.deconvolver, records[0].deconvolver),
            )
            if theirs != ours
        ]
        if not math.isclose(
            image.theoretical_sensitivity_jy, first.theoretical_sensitivity_jy, rel_tol=SAME_FIGURE_RELATIVE
        ):
            theirs, ours = image.theoretical_sensitivity_jy, first.theoretical_sensitivity_jy
            differences.append(f"sensitivity {theirs:.6g} Jy instead of {ours:.6g} Jy")
        if differences:
            raise ChunksDoNotJoin(
                f"{which} was imaged on another plan than chunk 1 ({'; '.join(differences)}), so the chunks do "
                "not make one cube. Submit the MOUS again with rerun; should it recur, image cubes in one job "
                "(APERTURE_CUBE_CHUNK_CHANNELS=0) and report it."
            )
    expected_first = 0
    for image, record in zip(images, records, strict=True):
        if record.first_output_channel != expected_first:
            raise ChunksDoNotJoin(
                f"{cube}: {record.chunk.describe()} starts at output channel {record.first_output_channel}, "
                f"not at {expected_first} where the chunk before it ends"
            )
        expected_first += image.num_channels
    if expected_first != records[0].cube_channels:
        raise ChunksDoNotJoin(
            f"{cube}: the chunks hold {expected_first} output channels, the cube {records[0].cube_channels}"
        )
    return records


@dataclass(frozen=True)
class SpectralGrid:
    """The grid of one chunk image as its coordinate system gives it: the shape (with the spectral axis's
    index), everything of the other axes (reference values, increments, reference pixels), and the
    spectral axis's frame, first channel frequency and channel width."""

    shape: tuple[int, ...]
    spectral_axis: int
    other_axes: tuple[float, ...]
    frame: str
    first_frequency_hz: float
    channel_width_hz: float

    @property
    def channels(self) -> int:
        return self.shape[self.spectral_axis]


def check_grids_continue(what: str, grids: Sequence[SpectralGrid]) -> None:
    """Raise ChunksDoNotJoin unless the grids are one cube's: the same pixels on every axis but the
    spectral one, the same frame and channel width, and each chunk's first channel one channel width
    after the previous chunk's last (no gap, no overlap). what: e.g. "the pbcor images of <cube>"."""
    first = grids[0]
    width = first.channel_width_hz
    for number, (before, grid) in enumerate(zip(grids, grids[1:], strict=False), start=2):
        other_shape = [n for axis, n in enumerate(grid.shape) if axis != grid.spectral_axis]
        first_other_shape = [n for axis, n in enumerate(first.shape) if axis != first.spectral_axis]
        if grid.spectral_axis != first.spectral_axis or other_shape != first_other_shape:
            raise ChunksDoNotJoin(
                f"{what}: chunk {number} has shape {list(grid.shape)}, chunk 1 {list(first.shape)}; "
                "only the spectral axis may differ"
            )
        pairs = zip(grid.other_axes, first.other_axes, strict=False)
        same_sky = len(grid.other_axes) == len(first.other_axes) and all(
            math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in pairs
        )
        if not same_sky:
            raise ChunksDoNotJoin(f"{what}: chunk {number} lies on another sky (or Stokes) grid than chunk 1")
        if grid.frame != first.frame:
            raise ChunksDoNotJoin(f"{what}: chunk {number} is in spectral frame {grid.frame}, chunk 1 in {first.frame}")
        if not math.isclose(grid.channel_width_hz, width, rel_tol=SAME_FIGURE_RELATIVE):
            raise ChunksDoNotJoin(
                f"{what}: chunk {number} has channels {grid.channel_width_hz:.9g} Hz wide, chunk 1 {width:.9g} Hz"
            )
        expected = before.first_frequency_hz + before.channels * width
        off = (grid.first_frequency_hz - expected) / width
        if abs(off) > SPECTRAL_TOLERANCE_CHANNELS:
            kind = "a gap" if off > 0 else "an overlap"
            raise ChunksDoNotJoin(
                f"{what}: chunk {number} starts at {grid.first_frequency_hz:.9g} Hz, but the grid continues at "
                f"{expected:.9g} Hz after chunk {number - 1}: {kind} of {abs(off):.4g} channels"
            )


@dataclass(frozen=True)
class JoinedClean:
    """The cube's clean figures from its chunks': what one job over all channels would report."""

    threshold_jy: float
    dirty_peak_jy: float
    niter: int
    iterations: int
    stopcode: int
    stop_description: str
    peak_residual_growth: float


def joined_clean(images: Sequence[ImageProduct], records: Sequence[CubeChunkImage]) -> JoinedClean:
    """Iterations add up; the threshold, dirty peak and peak-residual growth are the largest (the whole
    cube's dirty peak sets its threshold's dynamic-range correction); the stop is the worst chunk's:
    divergence before the iteration limit before any other stop, which is that of the chunk that cleaned
    most (a chunk of line-free channels stops on an empty mask while the cube stops at its threshold)."""
    stops = [(record.stopcode, record.stop_description) for record in records]
    most_cleaned = max(records, key=lambda record: record.iterations)
    worst = next((stop for stop in stops if stop[0] in TCLEAN_DIVERGENCE_STOPCODES), None)
    worst = worst or next(
        (stop for stop in stops if stop[0] == TCLEAN_ITERATION_LIMIT_STOPCODE),
        (most_cleaned.stopcode, most_cleaned.stop_description),
    )
    return JoinedClean(
        threshold_jy=max(image.threshold_jy for image in images),
        dirty_peak_jy=max(record.dirty_peak_jy for record in records),
        niter=sum(record.niter for record in records),
        iterations=sum(record.iterations for record in records),
        stopcode=worst[0],
        stop_description=worst[1],
        peak_residual_growth=max(record.peak_residual_growth for record in records),
    )
