"""present_antennas: the rows of an ANTENNA table that describe antennas that were there."""

import numpy as np
from aperture_shared.casa.antennas import present_antennas

VLA_PAD = [-1601710.0, -5042006.9, 3554602.4]


def test_flagged_placeholder_rows_at_the_geocentre_with_no_dish_are_not_antennas():
    # As the VLA writes them: a row per pad number, absent antennas flagged, 0 m dishes at the geocentre.
    flag_row = [False, True, False, False, False]
    diameters = [25.0, 0.0, 25.0, 0.0, 25.0]
    positions = np.array([VLA_PAD, [0.0, 0.0, 0.0], VLA_PAD, VLA_PAD, [0.0, 0.0, 0.0]]).T

    present = present_antennas(flag_row, diameters, positions)

    assert present.tolist() == [True, False, True, False, False]


def test_a_complete_table_keeps_every_row():
    positions = np.tile(np.array(VLA_PAD)[:, None], (1, 3))
    assert present_antennas([False] * 3, [12.0, 12.0, 7.0], positions).all()
