"""The `aperture request create` options turned into a RequestCreate body, and every mistake in them into a
usage error naming the option (exit 2) before anything is sent.

A cube is one `--cube` value, colon-separated so that it types without quotes:

    SPW:MODE:START:WIDTH:NCHAN[:REST_FREQ_HZ]    e.g. 0:velocity:-50:5:20:230.538e9

MODE velocity takes START and WIDTH in km/s and needs the rest frequency; MODE frequency takes them in Hz.
The limits themselves (robust in [-2, 2], a positive width, ...) are the contract's: pydantic checks them
and the messages are mapped back to the option that was typed, so the CLI repeats no limit of its own.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer
from aperture_contracts.imaging import SpectralAxisMode, SpectralFrame, VelocityConvention
from aperture_contracts.requests import RequestCreate
from pydantic import ValidationError

CUBE_FORM = "SPW:MODE:START:WIDTH:NCHAN[:REST_FREQ_HZ]"
CUBE_EXAMPLE = "0:velocity:-50:5:20:230.538e9"
CUBE_HELP = (
    f"A line cube, as {CUBE_FORM}; repeat for more spws. MODE is velocity (START and WIDTH in km/s; "
    "REST_FREQ_HZ required) or frequency (START and WIDTH in Hz). START is the centre of the first channel. "
    f"Example: --cube {CUBE_EXAMPLE} is 20 channels of 5 km/s from -50 km/s around CO(2-1) in spw 0."
)

NumberT = TypeVar("NumberT", int, float)

# Where each RequestCreate field comes from on the command line, for messages.
FIELD_OPTIONS = {
    "mous_id": "MOUS",
    "cubes": "--cube",
    "robust": "--robust",
    "target_resolution_arcsec": "--resolution",
    "field_size_arcsec": "--field-size",
    "webhook_url": "--webhook",
    "notify_email": "--email",
}

# Where each field of a cube comes from: its part of the --cube value, or an option for all cubes.
CUBE_PARTS = {
    "spw_id": "SPW",
    "mode": "MODE",
    "start": "START",
    "width": "WIDTH",
    "nchan": "NCHAN",
    "rest_frequency_hz": "REST_FREQ_HZ",
    "velocity_convention": "(--convention)",
    "frame": "(--frame)",
}


@dataclass(frozen=True)
class CubeSpec:
    """One `--cube` value, read but not yet checked against the contract's limits."""

    spw_id: int
    mode: SpectralAxisMode
    start: float
    width: float
    nchan: int
    rest_frequency_hz: float | None


@dataclass(frozen=True)
class RequestOptions:
    """What `aperture request create` was given, besides --from-json."""

    mous_id: str
    cubes: list[str]
    convention: VelocityConvention | None = None
    frame: SpectralFrame | None = None
    robust: float | None = None
    resolution_arcsec: float | None = None
    field_size_arcsec: float | None = None
    webhook_url: str | None = None
    email: str | None = None


def parse_cube(text: str) -> CubeSpec:
    """One `--cube` value; a typer.BadParameter (a usage error) saying what the form is when it is not."""
    parts = [part.strip() for part in text.split(":")]
    if len(parts) not in (5, 6):
        raise _cube_problem(text, f"it has {len(parts)} part(s); a cube has 5 or 6")
    spw, mode, start, width, nchan = parts[:5]
    rest = parts[5] if len(parts) == 6 and parts[5] else None
    spec = CubeSpec(
        spw_id=_number(text, "SPW", spw, int),
        mode=_mode(text, mode),
        start=_number(text, "START", start, float),
        width=_number(text, "WIDTH", width, float),
        nchan=_number(text, "NCHAN", nchan, int),
        rest_frequency_hz=None if rest is None else _number(text, "REST_FREQ_HZ", rest, float),
    )
    if spec.mode is SpectralAxisMode.VELOCITY and spec.rest_frequency_hz is None:
        raise _cube_problem(
            text, "a velocity cube needs REST_FREQ_HZ, the 6th part: velocities are measured from it"
        )
    return spec


def _mode(text: str, typed: str) -> SpectralAxisMode:
    # Any beginning of a mode's name will do (v, vel, f, freq): these are typed often.
    matches = [mode for mode in SpectralAxisMode if typed and mode.value.startswith(typed.lower())]
    if len(matches) != 1:
        names = " or ".join(mode.value for mode in SpectralAxisMode)
        raise _cube_problem(text, f"MODE {typed!r} is not {names}")
    return matches[0]


def _number(text: str, part: str, typed: str, kind: type[NumberT]) -> NumberT:
    try:
        return kind(typed)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise _cube_problem(text, f"{part} {typed!r} is not {what}") from None


def _cube_problem(text: str, problem: str) -> typer.BadParameter:
    return typer.BadParameter(
        f"{text!r}: {problem}. Expected {CUBE_FORM}, e.g. {CUBE_EXAMPLE}", param_hint="'--cube'"
    )


def request_from_options(options: RequestOptions) -> RequestCreate:
    """The body the options describe; a usage error naming every option that is wrong."""
    specs = [parse_cube(text) for text in options.cubes]
    axis_defaults: dict[str, object] = {}
    if options.convention is not None:
        axis_defaults["velocity_convention"] = options.convention
    if options.frame is not None:
        axis_defaults["frame"] = options.frame
    body: dict[str, object] = {
        "mous_id": options.mous_id,
        "cubes": [
            {
                "spw_id": spec.spw_id,
                "spectral_axis": {
                    "mode": spec.mode,
                    "start": spec.start,
                    "width": spec.width,
                    "nchan": spec.nchan,
                    "rest_frequency_hz": spec.rest_frequency_hz,
                    **axis_defaults,
                },
            }
            for spec in specs
        ],
        "robust": options.robust,
        "target_resolution_arcsec": options.resolution_arcsec,
        "field_size_arcsec": options.field_size_arcsec,
        "webhook_url": options.webhook_url,
        "notify_email": options.email,
    }
    try:
        return RequestCreate.model_validate(body)
    except ValidationError as error:
        raise _options_problem(error, options.cubes) from None


def _options_problem(error: ValidationError, cubes: list[str]) -> typer.BadParameter:
    hints: list[str] = []
    problems: list[str] = []
    for item in error.errors():
        location = [str(part) for part in item["loc"]]
        option = FIELD_OPTIONS.get(location[0], location[0]) if location else "the request"
        where = option
        if location[:1] == ["cubes"] and len(location) > 1 and location[1].isdigit():
            part = CUBE_PARTS.get(location[-1])
            where = f"--cube {cubes[int(location[1])]}" + (f" {part}" if part else "")
        # pydantic prefixes the messages of validators with "Value error, ".
        problems.append(f"{where}: {str(item['msg']).removeprefix('Value error, ')}")
        if f"'{option}'" not in hints:
            hints.append(f"'{option}'")
    return typer.BadParameter("; ".join(problems), param_hint=" / ".join(hints))


def request_from_json(path: Path) -> RequestCreate:
    """A RequestCreate body from a JSON file (what `aperture request status --json` shows a version has)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"cannot read {path}: {error}", param_hint="'--from-json'") from None
    try:
        return RequestCreate.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '(the body)'}: "
            f"{str(item['msg']).removeprefix('Value error, ')}"
            for item in error.errors()
        )
        raise typer.BadParameter(
            f"{path} is not a request body: {problems}. Its fields: {', '.join(RequestCreate.model_fields)}",
            param_hint="'--from-json'",
        ) from None
