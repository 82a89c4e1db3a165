"""What the imaging tests compare with: the simulated MOUS's target and the continuum ranges its truth
implies (what findcont should find)."""

from aperture_contracts.continuum import ContinuumCase, ContinuumRanges, FrequencyRange

TARGET = "SimGalaxy"


def truth_continuum(truth, case: dict[int, ContinuumCase] | None = None) -> list[ContinuumRanges]:
    """The continuum ranges findcont should find: the truth's line-free channels of the target per spw.
    case: make some spws another case (e.g. no_continuum) to test how they are handled."""
    ranges = []
    for spw in truth.spws:
        chosen = (case or {}).get(spw.spw_id, ContinuumCase.LINES_AND_CONTINUUM)
        free = [] if chosen == ContinuumCase.NO_CONTINUUM else spw.line_free_channels
        ranges.append(
            ContinuumRanges(
                target=TARGET,
                spw_id=spw.spw_id,
                frame="TOPO",
                ranges=[
                    FrequencyRange(
                        low_hz=spw.first_channel_hz + first * spw.channel_width_hz,
                        high_hz=spw.first_channel_hz + last * spw.channel_width_hz,
                    )
                    for first, last in free
                ],
                channel_ranges=";".join(f"{first}~{last}" for first, last in free),
                case=chosen,
                source="operator",
                continuum_fraction=sum(last - first + 1 for first, last in free) / spw.nchan,
            )
        )
    return ranges
