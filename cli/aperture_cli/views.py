"""How MOUS states, jobs and metadata look in a terminal (rich renderables, no I/O of their own).

Every string that comes from the API goes into `Text` objects, never into markup, so a target named
"[red]" prints as it is.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from aperture_contracts.api import JobView, MousDetail, MousList, MousSummary
from aperture_contracts.enums import JobState, MousState, Stage
from aperture_contracts.metadata import MousMetadata, SpectralWindow
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

MOUS_STATE_STYLES: dict[MousState, str] = {
    MousState.RECEIVED: "white",
    MousState.INGESTING: "cyan",
    MousState.PROCESSING: "cyan",
    MousState.WAITING_FOR_SERVICE: "yellow",
    MousState.COMPLETED: "green",
    MousState.FAILED: "bold red",
    MousState.CANCELLED: "magenta",
}
JOB_STATE_STYLES: dict[JobState, str] = {
    JobState.PLANNED: "dim",
    JobState.WAITING_FOR_SERVICE: "yellow",
    JobState.RETRY_WAIT: "yellow",
    JobState.DISPATCHED: "white",
    JobState.RUNNING: "cyan",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "bold red",
    JobState.CANCELLED: "magenta",
    JobState.SUPERSEDED: "dim",
}
_STAGE_ORDER = {stage: index for index, stage in enumerate(Stage)}


def state_text(state: MousState) -> Text:
    return Text(state.value, style=MOUS_STATE_STYLES[state])


def job_state_text(state: JobState) -> Text:
    return Text(state.value, style=JOB_STATE_STYLES[state])


def format_time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.isoformat(sep=" ", timespec="seconds")


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_bytes(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TiB"


# Progress while waiting


@dataclass(frozen=True)
class StageProgress:
    """One stage's jobs of the current run (jobs superseded by a re-run are left out)."""

    stage: Stage
    total: int
    done: int  # in an end state
    succeeded: int
    running: int
    failed: int


def stage_progress(detail: MousDetail) -> list[StageProgress]:
    jobs_by_stage: dict[Stage, list[JobView]] = {}
    for job in detail.jobs:
        if job.state is not JobState.SUPERSEDED:
            jobs_by_stage.setdefault(job.stage, []).append(job)
    progress = []
    for stage in sorted(jobs_by_stage, key=_STAGE_ORDER.__getitem__):
        states = Counter(job.state for job in jobs_by_stage[stage])
        progress.append(
            StageProgress(
                stage=stage,
                total=sum(states.values()),
                done=sum(count for state, count in states.items() if state.terminal),
                succeeded=states[JobState.SUCCEEDED],
                running=states[JobState.RUNNING],
                failed=states[JobState.FAILED],
            )
        )
    return progress


def progress_line(detail: MousDetail) -> str:
    """One plain line for logs and pipes: `processing: ingest 1/1, imaging 2/6 (1 running)`."""
    parts = []
    for stage in stage_progress(detail):
        part = f"{stage.stage.value} {stage.done}/{stage.total}"
        extras = [f"{stage.running} running"] if stage.running else []
        if stage.failed:
            extras.append(f"{stage.failed} failed")
        parts.append(part + (f" ({', '.join(extras)})" if extras else ""))
    line = f"{detail.state.value}: " + (", ".join(parts) if parts else "no jobs yet")
    return line + (f" ({detail.reason})" if detail.reason else "")


def progress_view(detail: MousDetail, elapsed_s: float) -> RenderableType:
    """The live display: state and reason, then a bar per stage with jobs done / total."""
    header = Text.assemble(
        (detail.mous_id, "bold"), "  ", state_text(detail.state), f"  (waiting {format_duration(elapsed_s)})"
    )
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("stage")
    table.add_column("progress", width=30)
    table.add_column("done", justify="right")
    table.add_column("running", justify="right")
    table.add_column("failed", justify="right")
    for stage in stage_progress(detail):
        table.add_row(
            stage.stage.value,
            ProgressBar(total=max(stage.total, 1), completed=stage.done, width=30),
            f"{stage.done}/{stage.total}",
            str(stage.running) if stage.running else "",
            Text(str(stage.failed), style="bold red") if stage.failed else "",
        )
    parts: list[RenderableType] = [header]
    if detail.reason:
        parts.append(Text(detail.reason, style="dim"))
    parts.append(table if table.row_count else Text("no jobs planned yet", style="dim"))
    return Group(*parts)


# Outcome and status


def outcome_view(detail: MousDetail) -> RenderableType:
    """What a finished wait reports: final state, why, and every error."""
    parts: list[RenderableType] = [
        Text.assemble((detail.mous_id, "bold"), ": ", state_text(detail.state)),
    ]
    if detail.reason:
        parts.append(Text.assemble("reason: ", detail.reason))
    if detail.state is MousState.WAITING_FOR_SERVICE:
        parts.append(
            Text(
                "everything the deployed stages can do is done; the rest waits for a stage that is not "
                "deployed (see the jobs in `aperture status`)",
                style="yellow",
            )
        )
    parts.extend(_errors_view(detail.errors))
    return Group(*parts)


def status_view(detail: MousDetail) -> RenderableType:
    """`aperture status`: summary, observation metadata, jobs by stage, errors, QA and products."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("MOUS", detail.mous_id)
    summary.add_row("state", state_text(detail.state))
    summary.add_row("reason", Text(detail.reason or "-"))
    summary.add_row("run", str(detail.run))
    summary.add_row("package", Text(detail.package_name))
    summary.add_row("submitted", format_time(detail.submitted_at))
    summary.add_row("updated", format_time(detail.updated_at))
    parts: list[RenderableType] = [summary, Text()]
    if detail.metadata is not None:
        parts += [Text("Observation", style="bold underline"), metadata_view(detail.metadata), Text()]
    else:
        parts += [Text("Observation: not known until ingest has read the data", style="dim"), Text()]
    parts.append(jobs_table(detail.jobs) if detail.jobs else Text("no jobs yet", style="dim"))
    parts.extend(_errors_view(detail.errors))
    if detail.qa:
        qa = Table(title="QA", title_justify="left", title_style="bold")
        for column in ("score", "applies to", "message"):
            qa.add_column(column)
        for score in detail.qa:
            qa.add_row(
                Text(f"{score.score:.2f}", style=score.band.value),
                Text(score.applies_to),
                Text(score.message),
            )
        parts += [Text(), qa]
    if detail.products:
        products = Table(title="Products", title_justify="left", title_style="bold")
        products.add_column("name")
        products.add_column("size", justify="right")
        products.add_column("sha256")
        for product in detail.products:
            products.add_row(
                Text(product.name), format_bytes(product.object.size), product.object.sha256[:16] + "…"
            )
        parts += [Text(), products]
    return Group(*parts)


def metadata_view(metadata: MousMetadata) -> RenderableType:
    """Targets, spectral windows, observatory and time range, merged over the MOUS's Measurement Sets."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    sets = metadata.measurement_sets
    observatories = sorted({ms.observatory for ms in sets})
    grid.add_row("observatory", Text(", ".join(observatories) or "-"))
    if sets:
        start = min(ms.time_start for ms in sets)
        end = max(ms.time_end for ms in sets)
        span = format_duration((end - start).total_seconds())
        grid.add_row("time range", f"{format_time(start)} – {format_time(end)} ({span})")
        on_source = sum(ms.exposure_s for ms in sets)
        grid.add_row("on source", format_duration(on_source))
    grid.add_row(
        "measurement sets",
        Text(f"{len(sets)}: " + ", ".join(ms.name for ms in sets) if sets else "0"),
    )
    grid.add_row("targets", Text(", ".join(metadata.science_targets) or "-"))
    windows = _science_windows(metadata)
    grid.add_row("spectral windows", Text("\n".join(_describe_window(spw) for spw in windows) or "-"))
    if metadata.representative_spw is not None:
        representative = metadata.representative_spw
        grid.add_row("representative spw", Text(f"{representative.spw_id} (from {representative.source})"))
    grid.add_row("calibration", "applied at ingest" if metadata.calibrated else "as delivered")
    return grid


def _science_windows(metadata: MousMetadata) -> list[SpectralWindow]:
    """Each science spw once (the first MS that has it describes it), in the order of science_spw_ids."""
    first_seen: dict[int, SpectralWindow] = {}
    for ms in metadata.measurement_sets:
        for spw in ms.spectral_windows:
            first_seen.setdefault(spw.spw_id, spw)
    return [first_seen[spw_id] for spw_id in metadata.science_spw_ids if spw_id in first_seen]


def _describe_window(spw: SpectralWindow) -> str:
    low, high = spw.min_frequency_hz / 1e9, spw.max_frequency_hz / 1e9
    width_mhz = abs(spw.channel_width_hz) / 1e6
    name = f" {spw.name}" if spw.name else ""
    return (
        f"spw {spw.spw_id}{name}: {low:.4f}–{high:.4f} GHz, {spw.num_channels} ch × {width_mhz:.4g} MHz"
        + (f" {spw.frame}" if spw.frame else "")
    )


def jobs_table(jobs: list[JobView]) -> Table:
    table = Table(title="Jobs", title_justify="left", title_style="bold")
    for column in ("stage", "job", "kind", "target", "spw", "state", "attempts", "reason"):
        table.add_column(column, overflow="fold")
    ordered = sorted(jobs, key=lambda job: (_STAGE_ORDER[job.stage], job.job_id))
    for job in ordered:
        attempts = str(len(job.attempts))
        last = job.attempts[-1] if job.attempts else None
        if last is not None and last.error_class is not None:
            attempts += f" (last: {last.error_class.value})"
        if any(attempt.deliveries > 1 for attempt in job.attempts):
            attempts += " redelivered"
        table.add_row(
            job.stage.value,
            Text(job.job_id),
            Text(job.kind or ""),
            Text(job.target or ""),
            "" if job.spw_id is None else str(job.spw_id),
            job_state_text(job.state),
            attempts,
            Text(job.reason),
        )
    return table


def _errors_view(errors: list[str]) -> list[RenderableType]:
    if not errors:
        return []
    lines: list[RenderableType] = [Text(f"errors ({len(errors)}, newest first):", style="bold red")]
    lines.extend(Text.assemble("  - ", error) for error in errors)
    return lines


def mous_list_table(mous_list: MousList, offset: int) -> RenderableType:
    table = Table()
    for column in ("MOUS", "state", "run"):
        table.add_column(column, no_wrap=True)
    for column in ("package", "submitted", "updated", "reason"):
        table.add_column(column, overflow="fold")
    for item in mous_list.items:
        table.add_row(*_summary_cells(item))
    shown = len(mous_list.items)
    if shown == 0:
        footer = Text(
            "no MOUS submitted yet: `aperture submit PATH` sends one"
            if mous_list.total == 0 and offset == 0
            else f"nothing at offset {offset} (there are {mous_list.total})",
            style="dim",
        )
        return Group(table, footer) if mous_list.total else footer
    footer_text = f"{offset + 1}–{offset + shown} of {mous_list.total}"
    if offset + shown < mous_list.total:
        footer_text += f" (--offset {offset + shown} for more)"
    return Group(table, Text(footer_text, style="dim"))


def _summary_cells(item: MousSummary) -> tuple[RenderableType, ...]:
    return (
        Text(item.mous_id),
        state_text(item.state),
        str(item.run),
        Text(item.package_name),
        format_time(item.submitted_at),
        format_time(item.updated_at),
        Text(item.reason),
    )
