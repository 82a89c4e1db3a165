"""How the run ledger and its summary look in a terminal (rich renderables, no I/O).

As in views.py, every string from the API goes into `Text`, never into markup.
"""

from aperture_contracts.ledger import AttemptOutcome, LedgerEntry, LedgerPage, LedgerSummary
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aperture_cli.views import format_duration, format_time

OUTCOME_STYLES: dict[AttemptOutcome, str] = {
    AttemptOutcome.SUCCEEDED: "green",
    AttemptOutcome.FAILED: "bold red",
    AttemptOutcome.CANCELLED: "magenta",
    AttemptOutcome.SUPERSEDED: "dim",
}
# A table row shows the start of a failure's message; --json has all of it.
MESSAGE_WIDTH = 60


def shortened(text: str, width: int = MESSAGE_WIDTH) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis when longer."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def outcome_text(entry: LedgerEntry) -> Text:
    """`failed: storage`, `succeeded`, or, before the attempt ended, `running` / `queued`."""
    if entry.outcome is None:
        return Text("running", style="cyan") if entry.started_at else Text("queued", style="dim")
    text = Text(entry.outcome.value, style=OUTCOME_STYLES[entry.outcome])
    if entry.error_class is not None:
        text.append(f": {entry.error_class.value}")
    return text


def _megabytes(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def ledger_table(page: LedgerPage) -> RenderableType:
    """`aperture ledger`: one row per attempt, newest dispatch first."""
    if not page.entries:
        return Text(
            "no attempt matches" if page.total == 0 else f"nothing at offset {page.offset} (there are {page.total})",
            style="dim",
        )
    table = Table()
    for column in ("dispatched", "MOUS", "job", "attempt", "worker", "duration", "peak MB", "outcome", "message"):
        numeric = column in ("attempt", "duration", "peak MB")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column != "message")
    for entry in page.entries:
        table.add_row(
            format_time(entry.dispatched_at), Text(entry.mous_id), Text(entry.job_id), str(entry.attempt),
            Text(entry.worker or "-"), "-" if entry.duration_s is None else format_duration(entry.duration_s),
            _megabytes(entry.peak_memory_mb), outcome_text(entry), Text(shortened(entry.message or "")),
        )
    shown = len(page.entries)
    footer = f"{page.offset + 1}–{page.offset + shown} of {page.total} attempts"
    if page.offset + shown < page.total:
        footer += f"; --offset {page.offset + shown} shows the next"
    return Group(table, Text(footer, style="dim"))


def summary_view(summary: LedgerSummary) -> RenderableType:
    """`aperture ledger summary`: counts by outcome and error class, and peak memory per stage."""
    counts = Table.grid(padding=(0, 2))
    counts.add_column(style="bold")
    counts.add_column()
    counts.add_row("attempts", f"{summary.attempts} ({summary.unfinished} queued or running)")
    outcomes = Text()
    for index, (outcome, count) in enumerate(summary.by_outcome.items()):
        outcomes.append(", " if index else "")
        outcomes.append(f"{count} {outcome.value}", style=OUTCOME_STYLES[outcome])
    counts.add_row("outcomes", outcomes if summary.by_outcome else Text("none ended", style="dim"))
    classes = ", ".join(f"{count} {error_class.value}" for error_class, count in summary.by_error_class.items())
    counts.add_row("error classes", Text(classes or "none"))
    if not summary.peak_memory:
        return Group(counts, Text("no attempt reported its peak memory", style="dim"))
    memory = Table(title="Peak memory per stage (MB)", title_justify="left", title_style="bold")
    for column in ("stage", "attempts", "p50", "p95", "max"):
        memory.add_column(column, justify="left" if column == "stage" else "right", no_wrap=True)
    for stage in summary.peak_memory:
        memory.add_row(
            stage.stage.value, str(stage.attempts), _megabytes(stage.p50_mb), _megabytes(stage.p95_mb),
            _megabytes(stage.max_mb),
        )
    parts: list[RenderableType] = [counts, memory]
    if summary.peak_memory_truncated:
        parts.append(Text(f"over the newest {summary.peak_memory_limit} attempts with a figure", style="dim"))
    return Group(*parts)
