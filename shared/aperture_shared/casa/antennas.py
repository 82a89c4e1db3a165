"""Which rows of an MS's ANTENNA table are antennas.

Real Measurement Sets keep rows for antennas that were not in the array: the VLA writes one row per pad
number, and an absent antenna's row is flagged, unnamed, with a dish diameter of 0 and a position at the
Earth's centre. Averaging positions over such rows moves the "array centre" thousands of km, and the
smallest diameter becomes 0 (a primary beam of infinite width), so every reader of the table takes the
rows through `present_antennas` first.
"""

import numpy as np
from numpy.typing import ArrayLike, NDArray


def present_antennas(flag_row: ArrayLike, dish_diameter_m: ArrayLike, position_m: ArrayLike) -> NDArray[np.bool_]:
    """A mask over the ANTENNA rows: True for rows that describe an antenna that was there.

    `position_m` is the POSITION column as casatools returns it, shape (3, rows).
    """
    flagged = np.asarray(flag_row, dtype=bool)
    diameters = np.asarray(dish_diameter_m, dtype=float)
    distance_from_geocentre = np.linalg.norm(np.asarray(position_m, dtype=float), axis=0)
    return ~flagged & (diameters > 0) & (distance_from_geocentre > 0)
