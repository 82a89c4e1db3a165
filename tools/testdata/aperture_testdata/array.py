"""The antenna array: an ALMA configuration file from casadata, cut down to the pads nearest its centre."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# ALMA's 12 m antennas by vendor, in the order their names are handed out here.
_ANTENNA_NAME_SERIES = (("DA", 41, 25), ("DV", 1, 25), ("PM", 1, 4))


@dataclass(frozen=True)
class Antenna:
    name: str
    pad: str
    east_m: float
    north_m: float
    up_m: float
    diameter_m: float


class ArrayConfigError(ValueError):
    pass


def configuration_directory() -> Path:
    import casadata  # type: ignore[import-untyped]

    return Path(casadata.datapath) / "alma" / "simmos"


def read_configuration(file_name: str, n_antennas: int) -> list[Antenna]:
    """The `n_antennas` pads nearest the centroid of the configuration, in the file's order.

    Keeping the core (rather than every other pad) keeps the short baselines, so the subset images like
    a compact ALMA configuration; which pads are kept depends only on the file, so it is deterministic.
    """
    path = configuration_directory() / file_name
    if not path.is_file():
        available = sorted(p.name for p in configuration_directory().glob("alma.*.cfg"))
        raise ArrayConfigError(
            f"antenna configuration {file_name!r} is not in {configuration_directory()}; "
            f"choose one of: {', '.join(available)}"
        )
    header: dict[str, str] = {}
    rows: list[list[str]] = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            key, sep, value = line[1:].partition("=")
            if sep:
                header[key.strip()] = value.split("(")[0].strip()
        elif line.strip():
            rows.append(line.split())
    if header.get("coordsys", "").upper() != "LOC" or header.get("observatory") != "ALMA":
        raise ArrayConfigError(
            f"{path}: expected an ALMA configuration in local (LOC) coordinates, found header {header}"
        )
    if n_antennas > len(rows):
        raise ArrayConfigError(f"{file_name} has {len(rows)} pads; {n_antennas} antennas were asked for")
    if n_antennas > sum(count for _, _, count in _ANTENNA_NAME_SERIES):
        raise ArrayConfigError(f"at most {sum(c for _, _, c in _ANTENNA_NAME_SERIES)} antennas can be named")
    positions = np.array([[float(v) for v in row[:3]] for row in rows])
    distance = np.hypot(*(positions[:, :2] - positions[:, :2].mean(axis=0)).T)
    kept = np.sort(np.argsort(distance, kind="stable")[:n_antennas])
    names = [
        f"{prefix}{number:02d}"
        for prefix, first, count in _ANTENNA_NAME_SERIES
        for number in range(first, first + count)
    ]
    return [
        Antenna(
            name=names[i],
            pad=rows[row][4],
            east_m=positions[row, 0],
            north_m=positions[row, 1],
            up_m=positions[row, 2],
            diameter_m=float(rows[row][3]),
        )
        for i, row in enumerate(kept)
    ]


def central_antenna(antennas: list[Antenna]) -> Antenna:
    """The antenna nearest the centre of the kept ones: the reference antenna for calibration."""
    east = np.array([a.east_m for a in antennas])
    north = np.array([a.north_m for a in antennas])
    return antennas[int(np.argmin(np.hypot(east - east.mean(), north - north.mean())))]
