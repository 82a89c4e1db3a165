"""The STC-S polygon of the footprint (ObsCore s_region): a bounded number of vertices, counter-clockwise
on the sky, holding every footprint pixel, and agreeing with mocpy's reading of the same STC-S."""

import math
import re
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from aperture_footprint.moc import footprint_moc, moc_area_sr
from aperture_footprint.primary_beam import read_beam_region
from aperture_footprint.stcs import (
    SkyPolygon,
    footprint_polygon,
    footprint_stcs,
    parse_stcs_polygon,
    polygon_contains,
)
from astropy.coordinates import SkyCoord
from mocpy import MOC
from synthetic_pb import POINTING, TARGET, disc_area_sr, sky_offset, sky_offsets, write_product

STCS = re.compile(r"^Polygon ICRS( -?\d{1,3}\.\d{6} -?\d{1,2}\.\d{6}){3,}$")


def test_s_region_is_an_icrs_polygon_in_degrees_with_a_bounded_number_of_vertices(tmp_path: Path) -> None:
    region = read_beam_region(write_product(tmp_path).pb_path)

    for max_vertices in (8, 32, 64):
        stcs = footprint_stcs(region, max_vertices)
        assert STCS.match(stcs), stcs
        vertices = len(stcs.split()) // 2 - 1
        # lines of neighbouring directions can touch the same corner of the pixel staircase: one vertex
        assert 0.75 * max_vertices <= vertices <= max_vertices


def test_polygon_holds_pointing_target_and_every_footprint_pixel_but_not_two_pb_radii_away(tmp_path: Path) -> None:
    product = write_product(tmp_path)
    region = read_beam_region(product.pb_path)
    polygon = parse_stcs_polygon(footprint_stcs(region))  # what a reader of s_region gets
    radius = product.limit_radius_arcsec()

    assert polygon.contains([POINTING[0], TARGET[0]], [POINTING[1], TARGET[1]]).tolist() == [True, True]
    far = [sky_offset(POINTING, 2 * radius * math.sin(a), 2 * radius * math.cos(a)) for a in np.linspace(0, 6, 7)]
    assert not polygon.contains([p[0] for p in far], [p[1] for p in far]).any()
    rows, columns = np.nonzero(region.mask)
    ra, dec = region.to_icrs(columns.astype(float), rows.astype(float))
    assert polygon.contains(ra, dec).all()


def test_polygon_is_counter_clockwise_on_the_sky(tmp_path: Path) -> None:
    """Counter-clockwise seen from inside the sphere (north up, east left): position angle, measured from
    north through east, grows from each vertex to the next."""
    region = read_beam_region(write_product(tmp_path).pb_path)
    polygon = footprint_polygon(region)
    centre = SkyCoord(polygon.centre_ra_deg * u.deg, polygon.centre_dec_deg * u.deg)
    angles = centre.position_angle(SkyCoord(np.array(polygon.ra_deg) * u.deg, np.array(polygon.dec_deg) * u.deg))
    turns = np.diff(np.unwrap(angles.rad))

    assert (turns > 0).all()
    assert np.sum(turns) == pytest.approx(2 * math.pi * (len(angles) - 1) / len(angles), rel=0.05)
    assert polygon.is_counter_clockwise_on_sky()
    reversed_polygon = SkyPolygon(polygon.ra_deg[::-1], polygon.dec_deg[::-1], polygon.centre_ra_deg,
                                  polygon.centre_dec_deg)
    assert not reversed_polygon.is_counter_clockwise_on_sky()


def test_polygon_holds_the_moc_and_is_hardly_larger(tmp_path: Path) -> None:
    product = write_product(tmp_path)
    region = read_beam_region(product.pb_path)
    footprint = footprint_moc(region, order=20)
    polygon_moc = MOC.from_stcs(footprint_stcs(region), max_depth=20)

    assert footprint.difference(polygon_moc).sky_fraction == 0.0
    assert moc_area_sr(polygon_moc) == pytest.approx(disc_area_sr(product.limit_radius_arcsec()), rel=0.04)


def test_point_in_polygon_agrees_with_mocpy_away_from_the_edge(tmp_path: Path) -> None:
    product = write_product(tmp_path)
    stcs = footprint_stcs(read_beam_region(product.pb_path))
    polygon = parse_stcs_polygon(stcs)
    polygon_moc = MOC.from_stcs(stcs, max_depth=22)  # cells of 0.05"
    rng = np.random.default_rng(5)
    radius = product.limit_radius_arcsec()
    offsets = rng.uniform(-1.5 * radius, 1.5 * radius, size=(2000, 2))
    ra, dec = sky_offsets(POINTING, offsets[:, 0], offsets[:, 1])
    # leave out points within 0.3" of the polygon's rim, where a MOC cell can straddle it
    centre = SkyCoord(polygon.centre_ra_deg * u.deg, polygon.centre_dec_deg * u.deg)
    distance = centre.separation(SkyCoord(ra * u.deg, dec * u.deg)).arcsec
    rim = polygon.radius_deg * 3600 * math.cos(math.pi / 32)
    clear = (distance < rim - 0.3) | (distance > polygon.radius_deg * 3600 + 0.3)

    ours = polygon.contains(ra[clear], dec[clear])
    theirs = polygon_moc.contains_lonlat(ra[clear] * u.deg, dec[clear] * u.deg)
    assert 300 < ours.sum() < clear.sum() - 300  # both kinds of point are tested
    assert (ours == theirs).all()


def test_point_in_polygon_handles_a_concave_polygon() -> None:
    """An L shape (1 arcmin arms) at Dec -60, counter-clockwise on the sky, with points in its notch."""
    def at(east_arcmin: float, north_arcmin: float) -> tuple[float, float]:
        return sky_offset((200.0, -60.0), east_arcmin * 60, north_arcmin * 60)

    # on the sky, counter-clockwise is north -> east -> south -> west: in (west, north) coordinates the
    # usual counter-clockwise order
    corners_west_north = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]
    vertices = [at(-west, north) for west, north in corners_west_north]
    inside_ra, inside_dec = at(-0.5, 1.5)
    polygon = SkyPolygon(tuple(v[0] for v in vertices), tuple(v[1] for v in vertices), inside_ra, inside_dec)

    assert polygon.is_counter_clockwise_on_sky()
    probes = [at(-0.5, 0.5), at(-1.5, 0.5), at(-0.5, 1.5), at(-1.5, 1.5), at(-2.5, 0.5), at(0.5, 0.5)]
    inside = polygon_contains(polygon, [p[0] for p in probes], [p[1] for p in probes])
    assert inside.tolist() == [True, True, True, False, False, False]


@pytest.mark.parametrize(
    "pointing", [(0.0015, 10.0), (123.0, -89.998)], ids=["across-ra-zero", "around-the-south-pole"]
)
def test_polygon_across_ra_zero_or_around_a_pole(tmp_path: Path, pointing: tuple[float, float]) -> None:
    product = write_product(tmp_path, centre=pointing)
    stcs = footprint_stcs(read_beam_region(product.pb_path))
    polygon = parse_stcs_polygon(stcs)
    radius = product.limit_radius_arcsec()

    assert STCS.match(stcs)
    inside = [pointing] + [sky_offset(pointing, dx, dy) for dx, dy in ((-15, 0), (15, 0), (0, 15), (0, -15))]
    assert polygon.contains([p[0] for p in inside], [p[1] for p in inside]).all()
    outside = sky_offset(pointing, 0, 2 * radius)
    assert not polygon.contains([outside[0]], [outside[1]]).any()
    assert polygon.radius_deg * 3600 == pytest.approx(radius, rel=0.03)
    assert MOC.from_stcs(stcs, max_depth=20).contains_lonlat(pointing[0] * u.deg, pointing[1] * u.deg).all()


def test_stcs_parses_back_to_the_same_vertices(tmp_path: Path) -> None:
    polygon = footprint_polygon(read_beam_region(write_product(tmp_path).pb_path))
    parsed = parse_stcs_polygon(polygon.to_stcs())

    assert parsed.ra_deg == pytest.approx(polygon.ra_deg, abs=1e-6)
    assert parsed.dec_deg == pytest.approx(polygon.dec_deg, abs=1e-6)
    assert parse_stcs_polygon("polygon 10 10 11 10 11 11").ra_deg == (10.0, 11.0, 11.0)
    with pytest.raises(ValueError, match="not an STC-S polygon"):
        parse_stcs_polygon("Circle ICRS 10 10 1")
    with pytest.raises(ValueError, match="at least 3"):
        parse_stcs_polygon("Polygon ICRS 10 10 11 10")
