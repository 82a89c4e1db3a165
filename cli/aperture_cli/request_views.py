"""How imaging requests, their versions, jobs, QA and products look in a terminal (rich renderables and
plain lines, no I/O).

As in views.py, every string from the API goes into `Text`, never into markup.
"""

from aperture_contracts.enums import JobState, Stage
from aperture_contracts.imaging import SpectralAxisMode
from aperture_contracts.requests import (
    CubeRequest,
    ImageCheck,
    ProductList,
    RequestCreate,
    RequestEstimate,
    RequestJobView,
    RequestList,
    RequestState,
    RequestView,
    VersionView,
)
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aperture_cli.client import ended_jobs
from aperture_cli.views import format_bytes, format_duration, format_time, job_state_text

BAR_WIDTH = 20
_STAGE_ORDER = {stage: index for index, stage in enumerate(Stage)}

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


# Progress, jobs and QA of a version


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """`[########............]`: plain characters, so that it reads the same in a log file."""
    filled = min(width, max(0, round(fraction * width)))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def progress_counts(version: VersionView) -> str:
    """`8/16 jobs, 2 running, 1 failed`: jobs ended of all, then those running, failed or cancelled."""
    jobs = version.progress
    counts = [f"{ended_jobs(jobs)}/{jobs.total} jobs"]
    counts += [f"{count} {what}" for count, what in (
        (jobs.running, "running"), (jobs.failed, "failed"), (jobs.cancelled, "cancelled")
    ) if count]
    return ", ".join(counts)


def progress_line(version: VersionView) -> str:
    """`version 1 running [##########..........] 8/16 jobs, 2 running`: one line, for a terminal or a log."""
    jobs = version.progress
    bar = progress_bar(ended_jobs(jobs) / jobs.total if jobs.total else 0.0)
    return f"version {version.version} {version.state.value} {bar} {progress_counts(version)}"


def qa_verdict(passed_qa: bool | None) -> Text:
    if passed_qa is None:
        return Text("QA not yet known", style="dim")
    return Text("QA passed", style="green") if passed_qa else Text("QA not passed", style="bold red")


def request_jobs_table(jobs: list[RequestJobView]) -> Table:
    """A version's jobs, one line each: what it makes, how far it is, and why."""
    table = Table(title="Jobs", title_justify="left", title_style="bold")
    for column in ("stage", "kind", "target", "spw", "state", "attempts", "took", "reason"):
        table.add_column(column, overflow="fold")
    for job in sorted(jobs, key=lambda job: (_STAGE_ORDER[job.stage], job.job_id)):
        table.add_row(
            job.stage.value,
            Text(job.kind),
            Text(job.target or ""),
            "" if job.spw_id is None else str(job.spw_id),
            job_state_text(job.state),
            str(job.attempts),
            "" if job.duration_s is None else format_duration(job.duration_s),
            Text(job.reason),
        )
    return table


def qa_table(checks: list[ImageCheck]) -> Table:
    """Each image's measured rms and beam against what the data should give, and whether it passed."""
    table = Table(title="QA per image", title_justify="left", title_style="bold")
    for column in ("image", "kind", "target", "spws"):
        table.add_column(column, overflow="fold")
    for column in ("rms mJy/beam", "expected", "rms ratio", "beam ″", "beam ratio"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("QA", no_wrap=True)
    table.add_column("notes", overflow="fold")
    for check in checks:
        table.add_row(
            Text(check.image),
            check.kind.value,
            Text(check.target),
            ", ".join(str(spw) for spw in check.spw_ids),
            f"{check.rms_jy * 1e3:.3g}",
            f"{check.expected_rms_jy * 1e3:.3g}",
            f"{check.rms_ratio:.2f}",
            f"{check.beam_major_arcsec:.2f} × {check.beam_minor_arcsec:.2f}",
            "-" if check.beam_ratio is None else f"{check.beam_ratio:.2f}",
            Text("passed", style="green") if check.passed else Text("not passed", style="bold red"),
            # The figures are in the other columns: the notes say why only where an image did not pass.
            Text("" if check.passed else "\n".join(check.notes)),
        )
    return table


def version_detail_view(version: VersionView) -> RenderableType:
    """`aperture request status`'s part about one version: its progress, every job, and QA per image."""
    parts: list[RenderableType] = [
        Text(f"Version {version.version}", style="bold underline"),
        Text(progress_line(version)),
        request_jobs_table(version.jobs) if version.jobs else Text("no jobs planned yet", style="dim"),
    ]
    if version.qa:
        parts.append(qa_table(version.qa))
    return Group(*parts)


def version_outcome_view(request_id: str, version: VersionView) -> RenderableType:
    """What a wait ends with: how the version ended and why, its failed jobs, and its QA per image."""
    parts: list[RenderableType] = [
        Text.assemble(
            (f"{request_id} version {version.version}", "bold"), ": ", request_state_text(version.state), ", ",
            qa_verdict(version.passed_qa),
        ),
        Text.assemble("reason: ", version.reason),
    ]
    took = ""
    if version.started_at is not None and version.ended_at is not None:
        took = f" in {format_duration((version.ended_at - version.started_at).total_seconds())}"
    parts.append(Text(progress_line(version) + took))
    failed = [job for job in version.jobs if job.state is JobState.FAILED]
    for job in failed:
        what = " ".join(part for part in (job.kind, job.target or "", _spw(job.spw_id)) if part)
        parts.append(Text.assemble(("  failed: ", "bold red"), f"{job.stage.value} {what}: ", job.reason))
    if version.qa:
        parts.append(qa_table(version.qa))
    return Group(*parts)


def _spw(spw_id: int | None) -> str:
    return "" if spw_id is None else f"spw {spw_id}"


def products_view(listing: ProductList) -> RenderableType:
    """`aperture request products`: the version's files (the links are in --json)."""
    header = Text.assemble(
        (f"{listing.request_id} version {listing.version}", "bold"), ": ", request_state_text(listing.state),
        ", ", qa_verdict(listing.passed_qa), f"; links valid until {format_time(listing.links_expire_at)}",
    )
    if not listing.products:
        return Group(header, Text("no products", style="dim"))
    table = Table()
    for column in ("name", "kind", "image", "target", "spws"):
        table.add_column(column, overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("sha256", no_wrap=True)
    for product in listing.products:
        table.add_row(
            Text(product.name),
            Text(product.kind),
            "" if product.image_kind is None else product.image_kind.value,
            Text(product.target or ""),
            ", ".join(str(spw) for spw in product.spw_ids),
            format_bytes(product.size),
            product.sha256[:16] + "…",
        )
    total = sum(product.size for product in listing.products)
    footer = Text(f"{len(listing.products)} files, {format_bytes(total)}", style="dim")
    return Group(header, table, footer)
