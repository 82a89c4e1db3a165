"""`aperture ledger ...`: the run ledger, for operators. `aperture ledger` lists attempts of jobs, newest
first (when, which MOUS and job, which worker, how long, peak memory, outcome and error); `aperture ledger
summary` counts them by outcome and error class and gives peak memory per stage. Both take the same filters.

Every command needs an operator's token (--token or APERTURE_API_TOKEN). stdout carries results (tables,
JSON), stderr notes; exit codes are command_line.ExitCode.
"""

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from aperture_contracts.enums import ErrorClass, Stage
from aperture_contracts.ledger import AttemptOutcome

from aperture_cli.client import DEFAULT_API_URL
from aperture_cli.command_line import (
    ApiUrlOption,
    JsonOption,
    LimitOption,
    OffsetOption,
    TokenOption,
    consoles,
    expected_failures,
)
from aperture_cli.ledger_client import LedgerClient, LedgerQuery
from aperture_cli.ledger_views import ledger_table, summary_view

ledger_app = typer.Typer(
    help="The run ledger (operators): every attempt of every job, who ran it, how long, peak memory, outcome.",
    epilog="Examples: aperture ledger --campaign cycle10 --outcome failed; aperture ledger summary --stage imaging",
)


def moment(value: str | None) -> datetime | None:
    """An ISO 8601 time; one without a zone is taken as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time such as 2025-11-21T12:00Z") from error
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


MousOption = Annotated[str | None, typer.Option("--mous", metavar="MOUS_ID", help="Only this MOUS.")]
CampaignOption = Annotated[
    str | None, typer.Option("--campaign", metavar="CAMPAIGN", help="Only the runs this campaign (id or name) started.")
]
StageOption = Annotated[Stage | None, typer.Option("--stage", case_sensitive=False, help="Only jobs of this stage.")]
OutcomeOption = Annotated[
    AttemptOutcome | None, typer.Option("--outcome", case_sensitive=False, help="Only attempts that ended so.")
]
ClassOption = Annotated[
    ErrorClass | None, typer.Option("--class", case_sensitive=False, help="Only attempts that failed with it.")
]
WorkerOption = Annotated[str | None, typer.Option("--worker", metavar="HOST:PID", help="Only this worker's attempts.")]
SinceOption = Annotated[
    datetime | None,
    typer.Option("--since", metavar="TIME", parser=moment, help="Dispatched at or after (ISO 8601; UTC if no zone)."),
]
UntilOption = Annotated[
    datetime | None,
    typer.Option("--until", metavar="TIME", parser=moment, help="Dispatched before (ISO 8601; UTC if no zone)."),
]

# Where to reach the API, which any command reads from the environment too; the other options of `aperture
# ledger` are the listing's, and given before `summary` they would silently do nothing.
_CONNECTION_OPTIONS = ("api", "token")


def listing_options_given(ctx: typer.Context) -> list[str]:
    """The listing's options typed on the command line (as their flags)."""
    return [
        param.opts[0] for param in ctx.command.params
        if param.name and param.name not in _CONNECTION_OPTIONS
        and getattr(ctx.get_parameter_source(param.name), "name", None) == "COMMANDLINE"
    ]


@ledger_app.callback(invoke_without_command=True)
def entries(
    ctx: typer.Context,
    mous: MousOption = None,
    campaign: CampaignOption = None,
    stage: StageOption = None,
    outcome: OutcomeOption = None,
    error_class: ClassOption = None,
    worker: WorkerOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    as_json: JsonOption = False,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """List attempts of jobs, newest first; `aperture ledger summary` sums them up."""
    if ctx.invoked_subcommand is not None:
        given = listing_options_given(ctx)
        if given:
            raise typer.BadParameter(
                f"options before `{ctx.invoked_subcommand}` are the listing's; put them after it: "
                f"aperture ledger {ctx.invoked_subcommand} [OPTIONS]", param_hint=", ".join(given),
            )
        return
    query = LedgerQuery(mous_id=mous, campaign_id=campaign, stage=stage, outcome=outcome, error_class=error_class,
                        worker=worker, since=since, until=until)
    out, err = consoles()
    with expected_failures(err), LedgerClient(api, token=token) as client:
        if as_json:
            typer.echo(json.dumps(client.ledger_json(query, offset=offset, limit=limit), indent=2))
            return
        out.print(ledger_table(client.ledger(query, offset=offset, limit=limit)))


@ledger_app.command()
def summary(
    mous: MousOption = None,
    campaign: CampaignOption = None,
    stage: StageOption = None,
    outcome: OutcomeOption = None,
    error_class: ClassOption = None,
    worker: WorkerOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    as_json: JsonOption = False,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Attempts by outcome and error class, and peak memory per stage (p50, p95, max)."""
    query = LedgerQuery(mous_id=mous, campaign_id=campaign, stage=stage, outcome=outcome, error_class=error_class,
                        worker=worker, since=since, until=until)
    out, err = consoles()
    with expected_failures(err), LedgerClient(api, token=token) as client:
        if as_json:
            typer.echo(json.dumps(client.ledger_summary_json(query), indent=2))
            return
        out.print(summary_view(client.ledger_summary(query)))
