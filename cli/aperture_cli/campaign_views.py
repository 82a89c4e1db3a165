"""How campaigns and their reports look in a terminal (rich renderables, no I/O).

As in views.py, every string from the API goes into `Text`, never into markup.
"""

from aperture_contracts.campaigns import (
    CampaignList,
    CampaignReport,
    CampaignState,
    CampaignView,
    CategoryCount,
    Durations,
    FailureClass,
    MemberState,
)
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aperture_cli.views import format_bytes, format_duration, format_time

CAMPAIGN_STATE_STYLES: dict[CampaignState, str] = {
    CampaignState.ACTIVE: "cyan",
    CampaignState.PAUSED: "yellow",
    CampaignState.AWAITING_VALIDATION: "bold yellow",
    CampaignState.CANCELLED: "magenta",
    CampaignState.COMPLETED: "green",
}
MEMBER_STATE_STYLES: dict[MemberState, str] = {
    MemberState.PENDING: "white",
    MemberState.SUBMITTED: "cyan",
    MemberState.COMPLETED: "green",
    MemberState.FAILED: "bold red",
    MemberState.CANCELLED: "magenta",
}


def campaign_state_text(state: CampaignState) -> Text:
    return Text(state.value, style=CAMPAIGN_STATE_STYLES[state])


def member_counts(view: CampaignView) -> Text:
    """`32 members: 5 pending, 3 submitted, 24 completed` (states with none left out)."""
    text = Text(f"{view.total} members: ")
    shown = [state for state in MemberState if view.members.get(state)]
    for index, state in enumerate(shown):
        if index:
            text.append(", ")
        text.append(f"{view.members[state]} {state.value}", style=MEMBER_STATE_STYLES[state])
    return text


def campaign_view(view: CampaignView) -> RenderableType:
    """`aperture campaign status`: what the campaign runs and where its members are."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("campaign", Text(f"{view.name} ({view.campaign_id})"))
    grid.add_row("state", campaign_state_text(view.state) + Text(f": {view.reason}" if view.reason else ""))
    grid.add_row("pipeline", Text(view.pipeline_version))
    if view.parameters:
        grid.add_row("parameters", Text(", ".join(f"{key}={value}" for key, value in view.parameters.items())))
    grid.add_row("in flight", f"{view.members.get(MemberState.SUBMITTED, 0)} (at most {view.max_in_flight})")
    if view.sample_per_category is not None:
        grid.add_row(
            "sample first", f"{view.sample_per_category} per category; {view.held} members held until released"
        )
    grid.add_row("members", member_counts(view))
    grid.add_row("updated", format_time(view.updated_at))
    return grid


def campaign_list_table(campaigns: CampaignList) -> RenderableType:
    """`aperture campaign list`."""
    if not campaigns.campaigns:
        return Text(
            "no campaigns yet: `aperture campaign submit NAME ...` makes one" if campaigns.total == 0
            else f"nothing at offset {campaigns.offset} (there are {campaigns.total})",
            style="dim",
        )
    table = Table()
    for column in ("campaign", "name", "state", "pipeline", "members", "created"):
        table.add_column(column, no_wrap=column != "members")
    for view in campaigns.campaigns:
        table.add_row(
            Text(view.campaign_id), Text(view.name), campaign_state_text(view.state), Text(view.pipeline_version),
            member_counts(view), format_time(view.created_at),
        )
    shown = len(campaigns.campaigns)
    footer = f"{campaigns.offset + 1}–{campaigns.offset + shown} of {campaigns.total}"
    return Group(table, Text(footer, style="dim"))


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _durations_line(durations: Durations) -> str:
    if not durations.count:
        return "no member has completed yet"
    return (
        f"median {_duration(durations.median_s)}, mean {_duration(durations.mean_s)} "
        f"over {durations.count} completed"
    )


def failures_table(failures: list[FailureClass]) -> Table:
    table = Table(title="Failures by class", title_justify="left", title_style="bold")
    table.add_column("class", no_wrap=True)
    table.add_column("MOUS", justify="right", no_wrap=True)
    table.add_column("examples (MOUS, job: message)", overflow="fold")
    for failure in failures:
        examples = Text()
        for index, example in enumerate(failure.examples):
            if index:
                examples.append("\n")
            examples.append(f"{example.mous_id}", style="bold")
            examples.append(f" {example.job_id or '(not submitted)'}: ", style="dim")
            examples.append(example.message)
        table.add_row(Text(failure.error_class.value, style="red"), str(failure.count), examples)
    return table


def categories_table(categories: list[CategoryCount], *, sampled: bool) -> Table:
    """Members per category by state; with a sample, how many were in it, how many of those failed, and
    how many members wait for the category's release."""
    table = Table(title="Categories", title_justify="left", title_style="bold")
    table.add_column("category", no_wrap=True)
    for state in MemberState:
        table.add_column(state.value, justify="right", no_wrap=True)
    table.add_column("total", justify="right", no_wrap=True)
    if sampled:
        for column in ("sampled", "sample failed", "held"):
            table.add_column(column, justify="right", no_wrap=True)
    for category in categories:
        row: list[RenderableType] = [Text(category.category)]
        row += [_count(category.members.get(state, 0), MEMBER_STATE_STYLES[state]) for state in MemberState]
        row.append(str(category.total))
        if sampled:
            row += [str(category.sampled), _count(category.sample_failed, "bold red"), _count(category.held, "yellow")]
        table.add_row(*row)
    return table


def _count(value: int, style: str) -> Text:
    """A count in its colour, dim when nought (so that the few that matter stand out)."""
    return Text(str(value), style=style if value else "dim")


def report_view(report: CampaignReport) -> RenderableType:
    """`aperture campaign report`: states, failures with examples, throughput, times and when it ends."""
    view = report.campaign
    states = Table(title="Members by state", title_justify="left", title_style="bold")
    for state in MemberState:
        states.add_column(state.value, justify="right", no_wrap=True)
    states.add_column("total", justify="right", no_wrap=True)
    states.add_row(
        *[Text(str(view.members.get(state, 0)), style=MEMBER_STATE_STYLES[state]) for state in MemberState],
        str(view.total),
    )
    figures = Table.grid(padding=(0, 2))
    figures.add_column(style="bold")
    figures.add_column()
    overall = report.throughput.overall_per_hour
    figures.add_row(
        "throughput",
        f"{report.throughput.last_hour:g} MOUS completed in the last hour; "
        + ("-" if overall is None else f"{overall:.1f} per hour overall"),
    )
    figures.add_row("time per MOUS", _durations_line(report.time_per_mous))
    for bucket in report.time_per_mous_by_size:
        figures.add_row(f"  {bucket.label}", _durations_line(bucket))
    figures.add_row("remaining", f"{report.remaining} members pending or in flight")
    if report.expected_completion_at is not None:
        figures.add_row("expected end", format_time(report.expected_completion_at))
    elif report.remaining:
        why = "not while it is " + view.state.value if view.state is not CampaignState.ACTIVE else "no rate yet"
        figures.add_row("expected end", Text(f"- ({why})", style="dim"))
    figures.add_row("products", f"{report.products} files, {format_bytes(report.product_bytes)}")
    parts: list[RenderableType] = [campaign_view(view), Text(), states]
    parts.append(failures_table(report.failures) if report.failures else Text("no failures", style="green"))
    if report.categories:
        parts += [Text(), categories_table(report.categories, sampled=view.sample_per_category is not None)]
    parts += [Text(), figures, Text(f"as of {format_time(report.generated_at)}", style="dim")]
    return Group(*parts)
