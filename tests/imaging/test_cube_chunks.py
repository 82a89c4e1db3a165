"""Cubes in channel chunks: which output channels a chunk images, when chunk images make one cube, the
cube's clean figures from its chunks' (pure), and the join itself on synthetic chunk images with per-channel
beams (real CASA, no imaging: a few seconds)."""

import math
from pathlib import Path

import numpy as np
import pytest
from aperture_contracts.enums import ErrorClass, ImagingKind
from aperture_contracts.imaging import Beam, ChannelChunk, CubeChunkImage, ImageProduct
from aperture_contracts.storage import ObjectRef
from aperture_imaging.cube_chunks import (
    ChunksDoNotJoin,
    SpectralGrid,
    check_chunk_images,
    check_grids_continue,
    joined_clean,
    output_channels,
)
from aperture_shared.errors import BadInput, JobError

# -- output channels -----------------------------------------------------------------------------------


def chunks_of(total: int, sizes: list[int]) -> list[ChannelChunk]:
    edges = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    return [
        ChannelChunk(index=index, count=len(sizes), first_channel=first, num_channels=end - first, total_channels=total)
        for index, (first, end) in enumerate(zip(edges, edges[1:], strict=False))
    ]


@pytest.mark.parametrize(
    ("total", "sizes", "binning"),
    [(64, [32, 32], 1), (65, [21, 22, 22], 1), (1920, [240] * 8, 2), (129, [43, 43, 43], 2), (128, [42, 43, 43], 3)],
)
def test_chunk_output_channels_cover_the_binned_cube_exactly(total: int, sizes: list[int], binning: int) -> None:
    ranges = [output_channels(chunk, total, binning) for chunk in chunks_of(total, sizes)]
    assert ranges[0].first == 0
    assert all(after.first == before.first + before.count for before, after in zip(ranges, ranges[1:], strict=False))
    assert ranges[-1].first + ranges[-1].count == total // binning == ranges[0].cube_channels
    # tclean's start names the native channel the output channel begins with.
    assert [r.first_native for r in ranges] == [r.first * binning for r in ranges]


def test_a_chunk_planned_for_other_data_or_narrower_than_its_binning_is_refused() -> None:
    (first, _) = chunks_of(64, [32, 32])
    with pytest.raises(BadInput, match="planned for a spw of 64 channels, but the data hold 128"):
        output_channels(first, 128, 1)
    narrow = chunks_of(64, [1, 63])[0]
    with pytest.raises(BadInput, match="no whole output channel with channel binning by 2"):
        output_channels(narrow, 64, 2)


# -- chunk images that make one cube -------------------------------------------------------------------


def ref(name: str) -> ObjectRef:
    return ObjectRef(key=f"mous/x/work/{name}", sha256="0" * 64, size=1)


def chunk_image(chunk: ChannelChunk, first_output: int, **changes: object) -> ImageProduct:
    record = CubeChunkImage(
        chunk=chunk, first_output_channel=first_output, cube_channels=64, channel_binning=1, deconvolver="hogbom",
        pb_level=0.2, expected_beam_arcsec=1.3, dirty_peak_jy=0.05 * (chunk.index + 1), niter=64_000,
        iterations=100 * (chunk.index + 1), stopcode=2, stop_description="threshold", peak_residual_growth=1.0,
    )
    record = record.model_copy(update={key: changes[key] for key in changes if key in CubeChunkImage.model_fields})
    image = ImageProduct(
        kind=ImagingKind.CUBE_CHUNK, target="SimGalaxy", spw_ids=[0], pbcor=ref("pbcor"), image=ref("image"),
        pb=ref("pb"), beam=Beam(major_arcsec=1.4, minor_arcsec=1.2, position_angle_deg=80), cell_arcsec=0.25,
        imsize=[180, 180], num_channels=chunk.num_channels, frequency_min_hz=230e9, frequency_max_hz=231e9,
        rms_jy=1e-3, peak_jy=0.05, theoretical_sensitivity_jy=1e-3, threshold_jy=4e-3 * (chunk.index + 1),
        chunk=record,
    )
    return image.model_copy(update={key: changes[key] for key in changes if key in ImageProduct.model_fields})


def two_chunks(**second_changes: object) -> list[ImageProduct]:
    first, second = chunks_of(64, [32, 32])
    return [chunk_image(first, 0), chunk_image(second, 32, **second_changes)]


def test_chunks_of_one_plan_that_continue_each_other_make_one_cube() -> None:
    records = check_chunk_images("the cube", two_chunks())
    assert [record.chunk.index for record in records] == [0, 1]


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (two_chunks()[:1], r"the chunks to join are \[0\] of 2"),
        (two_chunks()[::-1], r"the chunks to join are \[1, 0\] of 2"),
        (two_chunks(cell_arcsec=0.3), "cell 0.3 instead of 0.25"),
        (two_chunks(imsize=[160, 160]), r"image size \[160, 160\] instead of \[180, 180\]"),
        (two_chunks(channel_binning=2), "channel binning 2 instead of 1"),
        (two_chunks(theoretical_sensitivity_jy=1.1e-3), "sensitivity 0.0011 Jy instead of 0.001 Jy"),
        (two_chunks(first_output_channel=33), "starts at output channel 33, not at 32"),
        (two_chunks(num_channels=31), "the chunks hold 63 output channels, the cube 64"),
    ],
)
def test_chunks_that_do_not_make_one_cube_fail_saying_how(images: list[ImageProduct], message: str) -> None:
    with pytest.raises(ChunksDoNotJoin, match=message):
        check_chunk_images("the cube", images)


def test_the_cubes_clean_figures_are_the_sum_or_the_worst_of_its_chunks() -> None:
    images = two_chunks()
    clean = joined_clean(images, check_chunk_images("the cube", images))
    assert (clean.iterations, clean.niter) == (300, 128_000)
    assert clean.threshold_jy == pytest.approx(8e-3) and clean.dirty_peak_jy == pytest.approx(0.1)
    assert (clean.stopcode, clean.stop_description) == (2, "threshold")
    # A chunk without emission stops on its empty mask; the cube stops as the chunk that cleaned most.
    empty_first = [chunk_image(chunks_of(64, [32, 32])[0], 0, stopcode=7, stop_description="zero mask",
                               iterations=0), images[1]]
    clean = joined_clean(empty_first, check_chunk_images("the cube", empty_first))
    assert (clean.stopcode, clean.stop_description, clean.iterations) == (2, "threshold", 200)
    at_limit = two_chunks(stopcode=1, stop_description="iteration limit", peak_residual_growth=1.3)
    clean = joined_clean(at_limit, check_chunk_images("the cube", at_limit))
    assert (clean.stopcode, clean.peak_residual_growth) == (1, 1.3)
    diverged = [chunk_image(chunks_of(64, [32, 32])[0], 0, stopcode=5, stop_description="diverged"), at_limit[1]]
    assert joined_clean(diverged, check_chunk_images("the cube", diverged)).stopcode == 5


# -- spectral grids that continue each other -----------------------------------------------------------


def grid(first_hz: float, channels: int = 32, width_hz: float = 488e3, **changes: object) -> SpectralGrid:
    values = {"shape": (180, 180, 1, channels), "spectral_axis": 3, "other_axes": (0.1, -0.5, 1.0, -1e-6, 1e-6, 1.0),
              "frame": "LSRK", "first_frequency_hz": first_hz, "channel_width_hz": width_hz} | changes
    return SpectralGrid(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("width", [488e3, -488e3])
def test_grids_that_continue_channel_by_channel_pass_in_either_direction(width: float) -> None:
    check_grids_continue("x", [grid(230e9, width_hz=width), grid(230e9 + 32 * width, 20, width)])


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (grid(230e9 + 33 * 488e3), "a gap of 1 channels"),
        (grid(230e9 + 31.5 * 488e3), "an overlap of 0.5 channels"),
        (grid(230e9 + 32 * 488e3, width_hz=500e3), "channels 500000 Hz wide, chunk 1 488000 Hz"),
        (grid(230e9 + 32 * 488e3, shape=(160, 180, 1, 32)), "only the spectral axis may differ"),
        (grid(230e9 + 32 * 488e3, other_axes=(0.1, -0.5, 1.0, -2e-6, 1e-6, 1.0)), "another sky"),
        (grid(230e9 + 32 * 488e3, frame="TOPO"), "spectral frame TOPO, chunk 1 in LSRK"),
    ],
)
def test_grids_that_do_not_continue_are_refused_saying_how(second: SpectralGrid, message: str) -> None:
    with pytest.raises(ChunksDoNotJoin, match=message):
        check_grids_continue("the pbcor images of the cube", [grid(230e9), second])


# -- the join with CASA, on synthetic chunks -----------------------------------------------------------


def synthetic_chunk(fits, casa_tools, folder: Path, role: str, first_hz: float, beams: np.ndarray, seed: int):
    """A chunk image as tclean leaves one: RA/Dec/Stokes/frequency (the order CASA writes), per-channel beams
    for image roles; written as FITS (astropy) and imported into a CASA image."""
    channels = len(beams)
    data = np.random.default_rng(seed).normal(size=(channels, 1, 24, 20)).astype(np.float32)
    header = fits.Header()
    axes = [("RA---SIN", 150.0, -1e-4, 10.0, "deg"), ("DEC--SIN", -30.0, 1e-4, 12.0, "deg"),
            ("STOKES", 1.0, 1.0, 1.0, ""), ("FREQ", first_hz, 488e3, 1.0, "Hz")]
    for number, (ctype, crval, cdelt, crpix, cunit) in enumerate(axes, start=1):
        header.update({f"CTYPE{number}": ctype, f"CRVAL{number}": crval, f"CDELT{number}": cdelt,
                       f"CRPIX{number}": crpix, f"CUNIT{number}": cunit})
    header.update({"BUNIT": "Jy/beam", "SPECSYS": "LSRK", "RESTFRQ": 230.538e9, "RADESYS": "FK5", "EQUINOX": 2000.0})
    if role != "pb":
        header["CASAMBM"] = True  # CASA reads the BEAMS table only with this flag
    hdus = [fits.PrimaryHDU(data, header)]
    if role != "pb":
        table = fits.BinTableHDU.from_columns([
            fits.Column("BMAJ", "E", unit="arcsec", array=beams[:, 0]),
            fits.Column("BMIN", "E", unit="arcsec", array=beams[:, 1]),
            fits.Column("BPA", "E", unit="deg", array=beams[:, 2]),
            fits.Column("CHAN", "J", array=np.arange(channels)), fits.Column("POL", "J", array=np.zeros(channels)),
        ], name="BEAMS")
        table.header.update({"NCHAN": channels, "NPOL": 1})
        hdus.append(table)
    folder.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(folder / f"{role}.fits")
    image = casa_tools.image()
    image.fromfits(outfile=str(folder / f"{role}.im"), infile=str(folder / f"{role}.fits"))
    image.done()
    return str(folder / f"{role}.im"), data


ROLES = ("image", "pbcor", "pb", "residual")


def synthetic_chunks(fits, casa_tools, root: Path, starts: list[float], sizes: list[int]):
    chunks, pixels, beams = [], {role: [] for role in ROLES}, []
    for index, (first_hz, channels) in enumerate(zip(starts, sizes, strict=True)):
        chunk_beams = np.array([[1.4 + 0.01 * (index * 10 + c), 1.2, 80.0 + index] for c in range(channels)])
        beams.append(chunk_beams)
        paths = {}
        for role in ROLES:
            paths[role], data = synthetic_chunk(fits, casa_tools, root / f"chunk{index}", role, first_hz, chunk_beams,
                                                seed=index * 10 + ROLES.index(role))
            pixels[role].append(data)
        chunks.append(paths)
    return chunks, pixels, np.concatenate(beams)


def join(casa_step, chunks, root: Path):
    return casa_step(
        "join_cube",
        {"chunks": chunks, "cube": "the synthetic cube", "pblimit": 0.2, "work_dir": str(root / "work"),
         "fits_dir": str(root / "fits"), "product_stem": "uid___A001_X1_X2.Src_sci.spw0.cube.I",
         "mous_id": "uid://A001/X1/X2", "spw_ids": [0]},
        root / "casa",
    )


@pytest.mark.casa
def test_the_join_concatenates_pixels_and_per_channel_beams_along_the_spectral_axis(
    astropy_fits, casa_tools, casa_step, tmp_path
):
    from aperture_imaging.steps import JoinStepResult

    width = 488e3
    chunks, pixels, beams = synthetic_chunks(astropy_fits, casa_tools, tmp_path, [230e9, 230e9 + 5 * width], [5, 3])
    value, seconds = join(casa_step, chunks, tmp_path)
    joined = JoinStepResult.model_validate(value)
    print(f"join of 2 synthetic chunks x {len(ROLES)} roles: {seconds:.1f} s")
    assert {role: Path(path).name for role, path in joined.fits.items()} == {
        role: f"uid___A001_X1_X2.Src_sci.spw0.cube.I.{role}.fits" for role in ROLES
    }
    assert joined.num_channels == 8
    assert joined.frequency_min_hz == pytest.approx(230e9 - width / 2)
    assert joined.frequency_max_hz == pytest.approx(230e9 + 7.5 * width)
    for role in ROLES:
        with astropy_fits.open(joined.fits[role]) as hdus:
            header, data = hdus[0].header, np.array(hdus[0].data)
            # FITS axes, slowest first: Stokes, frequency, Dec, RA (exportfits with stokeslast).
            assert data.shape == (1, 8, 24, 20)
            expected = np.concatenate(pixels[role], axis=0).transpose(1, 0, 2, 3)
            np.testing.assert_array_equal(data, expected)
            assert header["CTYPE3"] == "FREQ" and header["NAXIS3"] == 8
            assert header["CRVAL3"] + (1 - header["CRPIX3"]) * header["CDELT3"] == pytest.approx(230e9, abs=1e-3)
            assert header["CDELT3"] == pytest.approx(width)
            assert header["MOUSID"] == "uid://A001/X1/X2" and header["SPW"] == "0"
            # Every role's FITS carries the image's per-channel beams (the PB gets them copied at export).
            assert "BMAJ" not in header
            table = hdus["BEAMS"].data
            np.testing.assert_allclose(table["BMAJ"], beams[:, 0], rtol=1e-6)
            np.testing.assert_allclose(table["BPA"], beams[:, 2], rtol=1e-6)
            assert list(table["CHAN"]) == list(range(8))
    assert math.isfinite(joined.rms_jy) and joined.beam.major_arcsec >= beams[:, 0].max() - 1e-6


@pytest.mark.casa
def test_the_join_refuses_chunks_with_a_gap_between_them(astropy_fits, casa_tools, casa_step, tmp_path):
    width = 488e3
    chunks, _, _ = synthetic_chunks(astropy_fits, casa_tools, tmp_path, [230e9, 230e9 + 6 * width], [5, 3])
    # Raised in the CASA process, it reaches the worker as a failure of class internal (not worth a retry).
    gap = r"the image images of the synthetic cube: chunk 2 .* a gap of 1 channels"
    with pytest.raises(JobError, match=gap) as raised:
        join(casa_step, chunks, tmp_path)
    assert raised.value.error_class is ErrorClass.INTERNAL
