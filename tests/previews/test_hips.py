"""The HiPS of a continuum image: valid HiPS 1.0, as deep as the image's pixels, the source in the right
tile at the right pixel, tiles only around the image, and a validator that finds what is broken."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from aperture_previews.hips import (
    ALLSKY_COLUMNS,
    ALLSKY_ORDER,
    ALLSKY_ROWS,
    HipsSurvey,
    TileFormat,
    build_hips,
    choose_hips_images,
    deepest_order,
    healpix_pixel_deg,
    read_properties,
    tile_indices,
    tile_path,
    write_properties,
)
from aperture_previews.hips_validation import validate_hips
from aperture_shared.errors import BadInput
from astropy import units as u
from astropy.coordinates import ICRS, SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from astropy_healpix import HEALPix
from continuum_images import IMAGE_NAME, MOUS_ID, ContinuumImage, write_continuum_image
from mocpy import MOC
from PIL import Image

ARCSEC = 1 / 3600


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> ContinuumImage:
    return write_continuum_image(tmp_path_factory.mktemp("image") / IMAGE_NAME)


@pytest.fixture(scope="module")
def survey(image: ContinuumImage, tmp_path_factory: pytest.TempPathFactory) -> HipsSurvey:
    return build_hips(image.path, tmp_path_factory.mktemp("hips") / "cont.hips", mous_id=MOUS_ID)


def healpix(order: int) -> HEALPix:
    return HEALPix(nside=2**order, order="nested", frame=ICRS())


def tile_wcs(path: Path) -> WCS:
    return WCS(fits.getheader(path))


def test_the_hips_of_a_casa_continuum_image_is_valid(survey: HipsSurvey) -> None:
    assert validate_hips(survey.root) == []
    assert not survey.root.with_name(survey.root.name + ".partial").exists()
    assert not (survey.root / "index.html").exists(), "reproject's page loads Aladin Lite from a CDN"
    properties = read_properties(survey.root)
    assert properties == survey.properties
    assert properties["creator_did"] == "ivo://aperture/P/uid___A001_X3a1_X7/SimGalaxy_sci.spw0_1.cont.I.pbcor"
    assert properties["hips_frame"] == "equatorial"
    assert properties["hips_tile_format"] == "png fits"
    assert properties["dataproduct_type"] == "image"
    assert properties["obs_regime"] == "Millimeter"
    assert "SimGalaxy aggregate continuum" in properties["obs_title"]
    # The template's plane: 225.466 GHz, 10.9 GHz wide -> 1.298 to 1.363 mm.
    assert float(properties["em_min"]) == pytest.approx(1.29828e-3, rel=1e-4)
    assert float(properties["em_max"]) == pytest.approx(1.36259e-3, rel=1e-4)
    assert (survey.min_order, survey.max_order) == (ALLSKY_ORDER, int(properties["hips_order"]))
    assert survey.allsky and (survey.root / "Norder3" / "Allsky.png").is_file()
    assert survey.tile_count == int(properties["hips_nb_tiles"])
    # The viewer starts on the interior point: here the middle of the disk of data.
    interior = SkyCoord(survey.interior_ra_deg * u.deg, survey.interior_dec_deg * u.deg)
    centre = SkyCoord(float(properties["hips_initial_ra"]) * u.deg, float(properties["hips_initial_dec"]) * u.deg)
    assert interior.separation(centre).deg < 2 * float(properties["s_pixel_scale"])


def test_the_deepest_order_has_pixels_no_larger_than_the_images_and_at_most_twice_as_fine(
    survey: HipsSurvey, image: ContinuumImage
) -> None:
    cell = image.cell_deg()
    assert healpix_pixel_deg(survey.max_order, survey.tile_width) <= cell
    assert healpix_pixel_deg(survey.max_order - 1, survey.tile_width) > cell
    assert float(survey.properties["hips_pixel_scale"]) == pytest.approx(
        healpix_pixel_deg(survey.max_order, survey.tile_width), rel=1e-5
    )
    # 0.26" ALMA pixels: order 12 with 256-pixel tiles (0.20" pixels), 11 with 512 (the same pixels).
    assert deepest_order(0.26 * ARCSEC, 256) == 12
    assert deepest_order(0.26 * ARCSEC, 512) == 11
    # A cell exactly the size of an order's pixels stops at that order.
    assert deepest_order(healpix_pixel_deg(9, 512), 512) == 9
    assert deepest_order(healpix_pixel_deg(9, 512) * 0.999, 512) == 10


def test_the_source_is_in_the_tile_healpix_names_at_the_pixel_of_its_position(
    survey: HipsSurvey, image: ContinuumImage
) -> None:
    source = image.source_position()
    order = survey.max_order
    tile = int(healpix(order).skycoord_to_healpix(source))
    path = tile_path(survey.root, order, tile, TileFormat.FITS)
    assert path.is_file(), f"no tile {tile} at order {order}: {tile_indices(survey.root, order, TileFormat.FITS)}"
    data = fits.getdata(path)
    peak_row, peak_column = np.unravel_index(np.nanargmax(data), data.shape)
    # The brightest HiPS pixel lies on the source, within one image pixel, and it is a HEALPix cell
    # (at order + log2(width)) of this very tile.
    peak = tile_wcs(path).pixel_to_world(peak_column, peak_row)
    assert peak.separation(source).deg < image.cell_deg()
    fine = healpix(order + int(np.log2(survey.tile_width))).skycoord_to_healpix(peak)
    assert int(fine) >> 2 * int(np.log2(survey.tile_width)) == tile
    # Bilinear resampling of a well-sampled beam keeps its peak to a few per cent.
    assert float(data[peak_row, peak_column]) == pytest.approx(image.peak_jy, rel=0.05)
    # The PNG twin has the same picture upside down (PNG rows run top-down), brightest at the peak.
    with Image.open(tile_path(survey.root, order, tile, TileFormat.PNG)) as png:
        grey = np.asarray(png)[:, :, 0]
        alpha = np.asarray(png)[:, :, 3]
    assert np.unravel_index(np.argmax(grey), grey.shape) == (survey.tile_width - 1 - peak_row, peak_column)
    assert grey.max() > 240  # the stretch tops at the image's peak, which resampling lowers a little
    assert np.array_equal(alpha[::-1] == 255, np.isfinite(data))


def test_tiles_exist_only_around_the_image(survey: HipsSurvey, image: ContinuumImage) -> None:
    centre = SkyCoord(
        float(survey.properties["hips_initial_ra"]) * u.deg, float(survey.properties["hips_initial_dec"]) * u.deg
    )
    image_radius = 120 * image.cell_deg() / np.sqrt(2) * u.deg
    for order in range(survey.min_order, survey.max_order + 1):
        indices = tile_indices(survey.root, order, TileFormat.FITS)
        assert indices == tile_indices(survey.root, order, TileFormat.PNG)
        assert 1 <= len(indices) <= 4, f"order {order}: {len(indices)} tiles for a 31-arcsec image"
        tile_diagonal = 2 * healpix_pixel_deg(order, 1) * u.deg
        distances = healpix(order).healpix_to_skycoord(np.array(indices)).separation(centre)
        assert (distances < image_radius + tile_diagonal).all()
        assert survey.tiles_per_order[order] == len(indices)
    assert not (survey.root / "Norder0").exists() and not (survey.root / "Norder2").exists()
    moc = MOC.from_fits(survey.root / "Moc.fits")
    assert moc.contains_skycoords(image.source_position())
    assert not moc.contains_skycoords(SkyCoord(centre.ra, centre.dec + 1 * u.deg))
    assert moc.sky_fraction == pytest.approx(float(survey.properties["moc_sky_fraction"]), rel=1e-4)
    assert moc.sky_fraction < 1e-6


def test_the_allsky_file_shows_the_image_in_its_order_3_slot_only(survey: HipsSurvey, image: ContinuumImage) -> None:
    with Image.open(survey.root / "Norder3" / "Allsky.png") as allsky:
        alpha = np.asarray(allsky)[:, :, 3]
    subtile = 64
    assert alpha.shape == (ALLSKY_ROWS * subtile, ALLSKY_COLUMNS * subtile)
    row, column = divmod(int(healpix(ALLSKY_ORDER).skycoord_to_healpix(image.source_position())), ALLSKY_COLUMNS)
    slot = np.zeros_like(alpha, dtype=bool)
    slot[row * subtile : (row + 1) * subtile, column * subtile : (column + 1) * subtile] = True
    assert alpha[slot].any()
    assert not alpha[~slot].any()


def test_the_validator_finds_broken_properties_missing_tiles_and_a_wrong_allsky(
    survey: HipsSurvey, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.hips"
    shutil.copytree(survey.root, broken)
    properties = dict(survey.properties)
    del properties["hips_frame"]
    properties["hips_release_date"] = "2025-13-01"
    properties["creator_did"] = "aperture/P/x"
    properties["hips_status"] = "public private"
    write_properties(broken, properties)
    shutil.rmtree(broken / f"Norder{survey.min_order + 1}")
    Image.new("RGBA", (100, 100)).save(broken / "Norder3" / "Allsky.png")
    (broken / f"Norder{survey.max_order}").glob("Dir*/Npix*.png").__next__().unlink()

    problems = "\n".join(validate_hips(broken))

    assert "lacks the required keyword hips_frame" in problems
    assert "hips_release_date = '2025-13-01'" in problems
    assert "creator_did = 'aperture/P/x'" in problems
    assert "hips_status = 'public private'" in problems
    assert f"no fits tile at order {survey.min_order + 1}" in problems
    assert f"no png tile at order {survey.min_order + 1}" in problems
    assert f"fits and png tiles differ at order {survey.max_order}" in problems
    assert "Allsky.png is 100 x 100 pixels" in problems
    assert validate_hips(tmp_path / "nothing") == [f"{tmp_path / 'nothing'} has no properties file"]


def test_a_rebuild_replaces_the_previous_hips(image: ContinuumImage, tmp_path: Path) -> None:
    root = tmp_path / "cont.hips"
    build_hips(image.path, root, mous_id=MOUS_ID, tile_width=512)
    (root / "stale-file").write_text("from an earlier build")
    rebuilt = build_hips(image.path, root, mous_id=MOUS_ID, tile_width=512)
    assert not (root / "stale-file").exists()
    assert rebuilt.tile_width == 512 and rebuilt.max_order == 11
    assert validate_hips(root) == []


def test_a_cube_gets_no_hips(tmp_path: Path) -> None:
    cube = write_continuum_image(tmp_path / "cube.fits", planes=3)
    with pytest.raises(BadInput, match="3 planes"):
        build_hips(cube.path, tmp_path / "cube.hips", mous_id=MOUS_ID)


def test_each_target_gets_the_hips_of_its_aggregate_continuum_or_else_of_each_spw() -> None:
    mous = "uid___A001_X3a1_X7"
    names = [
        f"{mous}.NGC_1_sci.spw0_1.cont.I.pbcor.fits",
        f"{mous}.NGC_1_sci.spw0_1.cont.I.pb.fits",
        f"{mous}.NGC_1_sci.spw0.mfs.I.pbcor.fits",
        f"{mous}.NGC_1_sci.spw1.mfs.I.pbcor.fits",
        f"{mous}.NGC_1_sci.spw0.cube.I.pbcor.fits",
        f"{mous}.NGC_2_sci.spw0.mfs.I.tt0.pbcor.fits",
        f"{mous}.NGC_2_sci.spw1.mfs.I.tt0.pbcor.fits",
        f"{mous}.NGC_2_sci.spw1.mfs.I.residual.fits",
        "someone-elses-image.fits",
    ]
    chosen = [path.name for path in choose_hips_images([Path(name) for name in names])]
    assert chosen == [
        "someone-elses-image.fits",
        f"{mous}.NGC_1_sci.spw0_1.cont.I.pbcor.fits",
        f"{mous}.NGC_2_sci.spw0.mfs.I.tt0.pbcor.fits",
        f"{mous}.NGC_2_sci.spw1.mfs.I.tt0.pbcor.fits",
    ]
