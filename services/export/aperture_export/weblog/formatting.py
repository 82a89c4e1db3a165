"""How the weblog writes numbers, times and lists (jinja2 filters)."""

from datetime import UTC, datetime


def frequency(hz: float) -> str:
    """GHz with enough digits to tell channels apart at ALMA's resolutions."""
    return f"{hz / 1e9:.6f} GHz" if abs(hz) >= 1e8 else f"{hz / 1e6:.4f} MHz"


def flux(jy: float, per_beam: bool = True) -> str:
    """Jy, mJy or µJy (per beam by default): whichever keeps three significant digits readable."""
    unit = "/beam" if per_beam else ""
    for scale, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "µ")):
        if abs(jy) >= scale:
            return f"{jy / scale:.3g} {prefix}Jy{unit}"
    return f"{jy / 1e-6:.3g} µJy{unit}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def timestamp(moment: datetime | None) -> str:
    """UTC to the second, as observers read it."""
    if moment is None:
        return "–"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def spw_list(spw_ids: list[int]) -> str:
    return ",".join(str(spw) for spw in spw_ids)


def number(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}"
