"""How imaging requests, their versions and their estimates look in a terminal (rich renderables, no I/O).

As in views.py, every string from the API goes into `Text`, never into markup.
"""

from aperture_contracts.imaging import SpectralAxisMode
from aperture_contracts.requests import (
    CubeRequest,
    RequestCreate,
    RequestEstimate,
    RequestList,
    RequestState,
    RequestView,
    VersionView,
)
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aperture_cli.views import format_bytes, format_duration, format_time

REQUEST_STATE_STYLES: dict[RequestState, str] = {
    RequestState.QUEUED: "white",
    RequestState.RUNNING: "cyan",
    RequestState.SUCCEEDED: "green",
    RequestState.FAILED: "bold red",
    RequestState.CANCELLED: "magenta",
}


def request_state_text(state: RequestState) -> Text:
    return Text(state.value, style=REQUEST_STATE_STYLES[state])


def describe_cube(cube: CubeRequest) -> str:
    """`spw 0: 20 × 5 km/s from -50 km/s (rest 230.538 GHz, radio, LSRK)`: what was asked, in its units."""
    axis = cube.spectral_axis
    if axis.mode is SpectralAxisMode.VELOCITY:
        channels = f"{axis.nchan} × {axis.width:g} km/s from {axis.start:g} km/s"
        # Velocity cubes always have a rest frequency (the contract requires it).
        details = [f"rest {_frequency(axis.rest_frequency_hz or 0.0)}", axis.velocity_convention.value]
    else:
        channels = f"{axis.nchan} × {_frequency(axis.width)} from {_frequency(axis.start)}"
        details = [f"rest {_frequency(axis.rest_frequency_hz)}"] if axis.rest_frequency_hz else []
    return f"spw {cube.spw_id}: {channels} ({', '.join([*details, axis.frame.value])})"


def _frequency(hz: float) -> str:
    for unit, scale in (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3)):
        if abs(hz) >= scale:
            return f"{hz / scale:.7g} {unit}"
    return f"{hz:g} Hz"


def describe_parameters(parameters: RequestCreate) -> list[str]:
    """The request's cubes, one line each, then its imaging choices (or that the pipeline's are used)."""
    lines = [describe_cube(cube) for cube in parameters.cubes] or ["continuum only (no cubes)"]
    choices = []
    if parameters.robust is not None:
        choices.append(f"robust {parameters.robust:g}")
    if parameters.target_resolution_arcsec is not None:
        choices.append(f"resolution {parameters.target_resolution_arcsec:g}″")
    if parameters.field_size_arcsec is not None:
        choices.append(f"field {parameters.field_size_arcsec:g}″")
    lines.append(", ".join(choices) if choices else "the pipeline's robust, resolution and field size")
    return lines


def run_time_text(estimate: RequestEstimate) -> str:
    if estimate.run_time_s <= 0:
        return "unknown"
    return f"about {format_duration(estimate.run_time_s)}"


def estimate_view(parameters: RequestCreate, estimate: RequestEstimate) -> RenderableType:
    """`aperture request create --estimate`: what the request would make and what it would cost."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("MOUS", Text(parameters.mous_id))
    grid.add_row("asked", Text("\n".join(describe_parameters(parameters))))
    grid.add_row("products", format_bytes(estimate.product_bytes))
    grid.add_row("largest cube", format_bytes(estimate.largest_cube_bytes))
    grid.add_row("images", str(estimate.images))
    grid.add_row("run time", run_time_text(estimate))
    grid.add_row("estimated from", Text(estimate.run_time_basis))
    grid.add_row(
        "within quota",
        Text("yes", style="green") if estimate.within_quota else Text("no", style="bold red"),
    )
    if estimate.mitigation:
        grid.add_row("size limits", Text("\n".join(estimate.mitigation), style="yellow"))
    return Group(Text("Estimate (nothing stored)", style="bold underline"), grid)


def request_view(request: RequestView) -> RenderableType:
    """`aperture request status`: who asked what of which MOUS, and every version's state and estimate."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("request", Text(request.request_id))
    summary.add_row("owner", Text(request.owner))
    summary.add_row("MOUS", Text(request.mous_id))
    summary.add_row("created", format_time(request.created_at))
    return Group(summary, Text(), versions_table(request.versions))


def versions_table(versions: list[VersionView]) -> Table:
    table = Table(title="Versions", title_justify="left", title_style="bold")
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("asked", overflow="fold")
    table.add_column("products", justify="right", no_wrap=True)
    table.add_column("run time", no_wrap=True)
    table.add_column("QA", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for version in versions:
        table.add_row(
            str(version.version),
            request_state_text(version.state),
            Text("\n".join(describe_parameters(version.parameters))),
            format_bytes(version.estimate.product_bytes),
            run_time_text(version.estimate),
            _qa_text(version.passed_qa),
            format_time(version.updated_at),
            Text(version.reason),
        )
    return table


def _qa_text(passed: bool | None) -> Text:
    if passed is None:
        return Text("-", style="dim")
    return Text("passed", style="green") if passed else Text("failed", style="bold red")


def request_list_table(requests: RequestList) -> RenderableType:
    """`aperture request list`: each request with its latest version."""
    table = Table()
    for column in ("request", "MOUS", "versions", "latest", "products", "run time", "created"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", overflow="fold")
    for request in requests.requests:
        latest = request.versions[-1] if request.versions else None
        table.add_row(
            Text(request.request_id),
            Text(request.mous_id),
            str(len(request.versions)),
            request_state_text(latest.state) if latest else "-",
            format_bytes(latest.estimate.product_bytes) if latest else "-",
            run_time_text(latest.estimate) if latest else "-",
            format_time(request.created_at),
            Text(latest.reason) if latest else "",
        )
    shown, offset, total = len(requests.requests), requests.offset, requests.total
    if shown == 0:
        footer = Text(
            "no requests yet: `aperture request create MOUS --cube ...` makes one"
            if total == 0
            else f"nothing at offset {offset} (there are {total})",
            style="dim",
        )
        return Group(table, footer) if total else footer
    footer_text = f"{offset + 1}–{offset + shown} of {total}"
    if offset + shown < total:
        footer_text += f" (--offset {offset + shown} for more)"
    return Group(table, Text(footer_text, style="dim"))
