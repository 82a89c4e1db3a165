"""`aperture campaign ...`: archive re-processing campaigns, for operators. Submit many MOUS with one
pipeline version (a list, a manifest in the object store, or every package under a prefix), follow them,
read the report, pause, resume or cancel, re-run the failures of one error class, and release the
categories held until their samples were looked at (--sample-per-category).

Every command needs an operator's token (--token or APERTURE_API_TOKEN). A campaign is named by its id
(camp-<hex>) or its name. stdout carries results (a campaign's id, tables, JSON), stderr notes; exit codes
are command_line.ExitCode.
"""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from aperture_contracts.campaigns import CampaignCreate, CampaignMember, CampaignState
from aperture_contracts.enums import ErrorClass, Recipe
from pydantic import ValidationError
from rich.text import Text

from aperture_cli.campaign_client import CampaignClient
from aperture_cli.campaign_views import campaign_list_table, campaign_view, member_counts, report_view
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

campaign_app = typer.Typer(
    help="Archive re-processing campaigns (operators): many MOUS, one pipeline version, a bounded number at once.",
    epilog="Example: aperture campaign submit cycle10 --pipeline-version 2026.1 --prefix archive/cycle10/",
    no_args_is_help=True,
)

CampaignArgument = Annotated[str, typer.Argument(metavar="CAMPAIGN", help="The campaign's id (camp-<hex>) or name.")]
MOUS_LIST_HELP = (
    "A local file listing the members, one per line: a package's object key (the MOUS id is read from its "
    "name), `MOUS_ID OBJECT_KEY`, or a JSON object {\"mous_id\": ..., \"object_key\": ...}; blank lines and "
    "lines starting with # are skipped."
)


def members_from_file(path: Path) -> list[CampaignMember]:
    """The members a --mous-list file names (see MOUS_LIST_HELP)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"cannot read {path}: {error}", param_hint="'--mous-list'") from error
    members = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            members.append(_member(text))
        except (ValueError, ValidationError) as error:
            first = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
            raise typer.BadParameter(f"line {number} of {path}: {first}", param_hint="'--mous-list'") from error
    if not members:
        raise typer.BadParameter(f"{path} lists no member", param_hint="'--mous-list'")
    return members


def _member(text: str) -> CampaignMember:
    if text.startswith("{"):
        return CampaignMember.model_validate_json(text)
    fields = text.replace(",", " ").split()
    if len(fields) == 1:
        return CampaignMember(object_key=fields[0])
    if len(fields) == 2:
        return CampaignMember(mous_id=fields[0], object_key=fields[1])
    raise ValueError("expected OBJECT_KEY, MOUS_ID OBJECT_KEY or a JSON object")


def parameters_from(pairs: list[str]) -> dict[str, Any]:
    """--param KEY=VALUE pairs; a VALUE that reads as JSON (a number, true, a list) is taken as such."""
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="'--param'")
        try:
            parameters[key.strip()] = json.loads(value)
        except ValueError:
            parameters[key.strip()] = value
    return parameters


@campaign_app.command()
def submit(
    name: Annotated[str, typer.Argument(help="The campaign's name: its identity (submit it again to add members).")],
    pipeline_version: Annotated[str, typer.Option("--pipeline-version", help="The pipeline version it runs.")],
    mous_list: Annotated[
        Path | None, typer.Option("--mous-list", metavar="FILE", dir_okay=False, help=MOUS_LIST_HELP)
    ] = None,
    manifest: Annotated[
        str | None,
        typer.Option("--manifest", metavar="KEY", help="An object in the store: JSON lines {mous_id, object_key}."),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", metavar="PREFIX", help="Every *.tar, *.tar.gz and *.tgz under this prefix."),
    ] = None,
    max_in_flight: Annotated[
        int, typer.Option("--max-in-flight", min=1, help="MOUS of the campaign processed at once, at most.")
    ] = 10,
    recipe: Annotated[
        Recipe,
        typer.Option("--recipe", case_sensitive=False, help="What each run makes: full, or quicklook (continuum)."),
    ] = Recipe.FULL,
    sample_per_category: Annotated[
        int | None,
        typer.Option(
            "--sample-per-category", min=1, metavar="N",
            help="Run N members of each category (array, band, spws, channels, mosaic, size) first; the rest "
            "waits until `aperture campaign release`.",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", metavar="KEY=VALUE",
            help="A run parameter for every job of the campaign (repeatable), e.g. size_limits={...}.",
        ),
    ] = None,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Submit a campaign (or add new members to the one of that name); prints its id."""
    sources = [flag for flag, value in (("--mous-list", mous_list), ("--manifest", manifest), ("--prefix", prefix))
               if value is not None]
    if len(sources) != 1:
        raise typer.BadParameter(
            "give exactly one of --mous-list, --manifest and --prefix"
            + (f" (not {' and '.join(sources)})" if sources else ""),
            param_hint="'--mous-list' / '--manifest' / '--prefix'",
        )
    try:
        body = CampaignCreate(
            name=name, pipeline_version=pipeline_version, parameters=parameters_from(param or []),
            members=members_from_file(mous_list) if mous_list is not None else None,
            manifest_key=manifest, scan_prefix=prefix, max_in_flight=max_in_flight, recipe=recipe,
            sample_per_category=sample_per_category,
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "campaign"
        raise typer.BadParameter(f"{where}: {first['msg']}") from error
    out, err = consoles()
    with expected_failures(err), CampaignClient(api, token=token) as client:
        submitted = client.submit_campaign(body)
    campaign = submitted.campaign
    out.print(campaign.campaign_id, markup=False, highlight=False)
    what = "submitted" if submitted.created else "already known"
    err.print(Text(f"campaign {campaign.name} {what}: {submitted.members_added} members added, "
                   f"{submitted.members_known} already in it"))
    err.print(campaign_view(campaign))
    err.print(f"follow it with `aperture campaign report {campaign.name}`", markup=False, highlight=False)


@campaign_app.command("list")
def list_command(
    state: Annotated[
        CampaignState | None, typer.Option("--state", case_sensitive=False, help="Only campaigns in this state.")
    ] = None,
    limit: LimitOption = 20,
    offset: OffsetOption = 0,
    as_json: JsonOption = False,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """List campaigns, newest first."""
    out, err = consoles()
    with expected_failures(err), CampaignClient(api, token=token) as client:
        listed = client.list_campaigns(offset=offset, limit=limit, state=state)
    if as_json:
        typer.echo(listed.model_dump_json(indent=2))
    else:
        out.print(campaign_list_table(listed))


@campaign_app.command()
def status(
    campaign: CampaignArgument, as_json: JsonOption = False, api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Show a campaign: what it runs and its members by state."""
    out, err = consoles()
    with expected_failures(err), CampaignClient(api, token=token) as client:
        view = client.get_campaign(campaign)
    if as_json:
        typer.echo(view.model_dump_json(indent=2))
    else:
        out.print(campaign_view(view))


@campaign_app.command()
def report(
    campaign: CampaignArgument, as_json: JsonOption = False, api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """The report: members by state, failures by class with examples, throughput, time per MOUS, expected end."""
    out, err = consoles()
    with expected_failures(err), CampaignClient(api, token=token) as client:
        if as_json:
            typer.echo(json.dumps(client.campaign_report_json(campaign), indent=2))
            return
        out.print(report_view(client.campaign_report(campaign)))


@campaign_app.command()
def pause(campaign: CampaignArgument, api: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None) -> None:
    """Submit no new member until it is resumed (members in flight run to their end)."""
    out, err = consoles()
    with expected_failures(err), CampaignClient(api, token=token) as client:
        out.print(campaign_view(client.pause_campaign(campaign)))


@campaign_app.command()
def resume(campaign: CampaignArgument, api: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None) -> None:
    """Submit members again after a pause."""
    out, err = consoles()
    with expected_failures(err), CampaignClient(api, token=token) as client:
        out.print(campaign_view(client.resume_campaign(campaign)))


@campaign_app.command()
def cancel(campaign: CampaignArgument, api: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None) -> None:
    """Cancel the pending members and stop the MOUS runs in flight (completed ones and products stay)."""
    out, err = consoles()
    with expected_failures(err), CampaignClient(api, token=token) as client:
        out.print(campaign_view(client.cancel_campaign(campaign)))


@campaign_app.command()
def retry(
    campaign: CampaignArgument,
    error_class: Annotated[
        ErrorClass, typer.Option("--class", case_sensitive=False, help="Re-run the members that failed with it.")
    ],
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Re-run only the failed members of one error class (each MOUS gets a new run)."""
    out, err = consoles()
    with expected_failures(err), CampaignClient(api, token=token) as client:
        retried = client.retry_campaign(campaign, error_class)
    out.print(str(retried.members_requeued), markup=False, highlight=False)
    err.print(Text(f"{retried.members_requeued} {error_class.value} failures of {retried.campaign.name} "
                   "put back in its queue; ") + member_counts(retried.campaign))


@campaign_app.command()
def release(
    campaign: CampaignArgument,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", metavar="KEY", help="Release only this held category (repeatable); default: all."),
    ] = None,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Let the members held after their category's sample run (see `aperture campaign report` first)."""
    out, err = consoles()
    with expected_failures(err), CampaignClient(api, token=token) as client:
        released = client.release_campaign(campaign, category or None)
    out.print(str(released.members_released), markup=False, highlight=False)
    for key, count in released.released.items():
        err.print(Text(f"{key}: {count} member{'' if count == 1 else 's'} released" if count else f"{key}: none held"))
    err.print(Text(f"{released.campaign.name} is {released.campaign.state.value}; ") + member_counts(released.campaign))
