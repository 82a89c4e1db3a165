"""`aperture request ...`: ask for imaging of an MOUS the archive has processed (line cubes of your choosing,
your robust, resolution and field size), see what it will cost first, follow it, run it again, cancel it.

Every command needs a token (--token or APERTURE_API_TOKEN). As with the MOUS commands, stdout carries
results (a new request's id, tables, JSON) and stderr notes; exit codes are command_line.ExitCode.
"""

import json
from pathlib import Path
from typing import Annotated

import typer
from aperture_contracts.imaging import SpectralFrame, VelocityConvention
from aperture_contracts.requests import RequestCreate
from rich.text import Text

from aperture_cli.client import DEFAULT_API_URL, ApertureClient
from aperture_cli.command_line import ApiUrlOption, TokenOption, consoles, expected_failures
from aperture_cli.request_options import (
    CUBE_EXAMPLE,
    CUBE_HELP,
    RequestOptions,
    request_from_json,
    request_from_options,
)
from aperture_cli.request_views import estimate_view, request_list_table, request_view

request_app = typer.Typer(
    help="Imaging requests: your own cubes and imaging choices for an MOUS that has been processed.",
    epilog=(
        f"Example: aperture request create uid://A001/X2fa/X2dd --cube {CUBE_EXAMPLE} --robust 0.5 --estimate"
    ),
    no_args_is_help=True,
)

RequestIdArgument = Annotated[str, typer.Argument(help="Request id, as `create` printed it (req-<hex>).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON as it is.")]
FromJsonOption = Annotated[
    Path | None,
    typer.Option(
        "--from-json",
        dir_okay=False,
        help="A file with the whole request as JSON (a RequestCreate body; `status --json` shows the "
        "`parameters` of each version in that form).",
    ),
]


@request_app.command()
def create(
    mous_id: Annotated[
        str | None,
        typer.Argument(metavar="MOUS", help="The MOUS to image (uid://A001/X2fa/X2dd or its file form)."),
    ] = None,
    cube: Annotated[list[str] | None, typer.Option("--cube", metavar="CUBE", help=CUBE_HELP)] = None,
    convention: Annotated[
        VelocityConvention | None,
        typer.Option("--convention", case_sensitive=False, help="Velocity convention of the cubes (default: radio)."),
    ] = None,
    frame: Annotated[
        SpectralFrame | None,
        typer.Option("--frame", case_sensitive=False, help="Spectral frame of the cubes' channels (default: LSRK)."),
    ] = None,
    robust: Annotated[float | None, typer.Option("--robust", help="Briggs robust, -2 to 2.")] = None,
    resolution: Annotated[
        float | None, typer.Option("--resolution", metavar="ARCSEC", help="Taper to about this beam (arcsec).")
    ] = None,
    field_size: Annotated[
        float | None, typer.Option("--field-size", metavar="ARCSEC", help="Image side (arcsec).")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", metavar="URL", help="POSTed the request when a version ends.")
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", metavar="ADDR", help="Mailed when a version ends.")
    ] = None,
    from_json: FromJsonOption = None,
    estimate: Annotated[
        bool,
        typer.Option("--estimate", help="Only check the request and print what it would cost; nothing is stored."),
    ] = False,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Ask for imaging of an MOUS; prints the new request's id (continuum images are always made too)."""
    options = RequestOptions(
        mous_id=mous_id or "",
        cubes=cube or [],
        convention=convention,
        frame=frame,
        robust=robust,
        resolution_arcsec=resolution,
        field_size_arcsec=field_size,
        webhook_url=webhook,
        email=email,
    )
    body = _body(options, from_json)
    out, err = consoles()
    with expected_failures(err), ApertureClient(api, token=token) as client:
        if estimate:
            dry_run = client.create_request(body, dry_run=True)
            out.print(estimate_view(dry_run.parameters, dry_run.estimate))
            err.print("nothing was stored: run the command again without --estimate to make the request")
            return
        request = client.create_request(body)
    out.print(request.request_id, markup=False, highlight=False)
    err.print(request_view(request))
    err.print(
        f"follow it with `aperture request status {request.request_id}`", markup=False, highlight=False
    )


def _body(options: RequestOptions, from_json: Path | None) -> RequestCreate:
    """The request from --from-json or from the options, never a mix (which would win is not obvious)."""
    if from_json is None:
        if not options.mous_id:
            raise typer.BadParameter("give the MOUS to image (or --from-json FILE)", param_hint="'MOUS'")
        return request_from_options(options)
    if options != RequestOptions(mous_id="", cubes=[]):
        raise typer.BadParameter(
            "the file is the whole request: leave out MOUS and the other request options", param_hint="'--from-json'"
        )
    return request_from_json(from_json)


@request_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="How many to show.")] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, help="How many to skip (newest first).")] = 0,
    as_json: JsonOption = False,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """List your requests (an operator's token: everyone's), newest first."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api, token=token) as client:
        if as_json:
            typer.echo(json.dumps(client.list_requests_json(offset=offset, limit=limit), indent=2))
        else:
            out.print(request_list_table(client.list_requests(offset=offset, limit=limit)))


@request_app.command()
def status(
    request_id: RequestIdArgument,
    as_json: JsonOption = False,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Show a request: every version with its state, reason, parameters and estimate."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api, token=token) as client:
        if as_json:
            typer.echo(json.dumps(client.get_request_json(request_id), indent=2))
        else:
            out.print(request_view(client.get_request(request_id)))


@request_app.command()
def rerun(
    request_id: RequestIdArgument,
    from_json: FromJsonOption = None,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Run a request again as a new version: as its latest version asked, or with --from-json's parameters.

    Earlier versions stay as they are.
    """
    body = None if from_json is None else request_from_json(from_json)
    out, err = consoles()
    with expected_failures(err), ApertureClient(api, token=token) as client:
        request = client.rerun_request(request_id, body)
    out.print(request_view(request))
    err.print(Text(f"version {request.versions[-1].version} of {request.request_id} asked for"))


@request_app.command()
def cancel(request_id: RequestIdArgument, api: ApiUrlOption = DEFAULT_API_URL, token: TokenOption = None) -> None:
    """Cancel a request's unfinished versions (finished ones and their products stay)."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api, token=token) as client:
        out.print(request_view(client.cancel_request(request_id)))
