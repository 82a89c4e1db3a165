"""`aperture request ...`: ask for imaging of an MOUS the archive has processed (line cubes of your choosing,
your robust, resolution and field size), see what it will cost first, follow it (`--wait`), list and
fetch its products, run it again, cancel it.

Every command needs a token (--token or APERTURE_API_TOKEN). As with the MOUS commands, stdout carries
results (a new request's id, tables, JSON) and stderr notes and progress; exit codes are
command_line.ExitCode (a wait ends with 0 only when the version succeeded and passed QA).
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated

import typer
from aperture_contracts.imaging import SpectralFrame, VelocityConvention
from aperture_contracts.requests import ProductList, RequestCreate, RequestState, VersionView
from rich.console import Console, Group
from rich.text import Text

from aperture_cli.client import DEFAULT_API_URL, ApertureClient, version_of
from aperture_cli.command_line import (
    ApiUrlOption,
    ExitCode,
    JsonOption,
    LimitOption,
    OffsetOption,
    TokenOption,
    consoles,
    download_report,
    expected_failures,
)
from aperture_cli.request_options import (
    CUBE_EXAMPLE,
    CUBE_HELP,
    RequestOptions,
    request_from_json,
    request_from_options,
)
from aperture_cli.request_views import (
    estimate_view,
    products_view,
    progress_line,
    request_list_table,
    request_state_text,
    request_view,
    version_detail_view,
    version_outcome_view,
)

request_app = typer.Typer(
    help="Imaging requests: your own cubes and imaging choices for an MOUS that has been processed.",
    epilog=(
        f"Example: aperture request create uid://A001/X2fa/X2dd --cube {CUBE_EXAMPLE} --robust 0.5 --estimate; "
        "without --estimate and with --wait it runs and is followed to its end; then "
        "`aperture request download REQ --kind pbcor` fetches its primary-beam-corrected images."
    ),
    no_args_is_help=True,
)

REQUEST_ID_PREFIX = "req-"  # request ids are req-<12 hex digits>; no MOUS id starts so
RequestIdArgument = Annotated[str, typer.Argument(help="Request id, as `create` printed it (req-<hex>).")]
VersionOption = Annotated[
    int | None, typer.Option("--version", min=1, help="Which version of the request (default: the latest).")
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Follow the version until it ends (a progress bar on stderr), then print how it ended with QA "
        "per image. Exit 0 if it succeeded and passed QA; 7 QA not passed, 8 failed, 9 cancelled.",
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", min=0, help="With --wait: stop waiting after this many seconds (exit 6; it goes on)."),
]
PollIntervalOption = Annotated[
    float, typer.Option("--poll-interval", min=0, help="With --wait: seconds between status requests.")
]
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
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    poll_interval: PollIntervalOption = 2.0,
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
        if wait:
            _wait_and_report(client, request.request_id, request.versions[-1].version, timeout, poll_interval, out, err)
            return
    err.print(request_view(request))
    err.print(
        f"follow it with `aperture request status {request.request_id} --wait`", markup=False, highlight=False
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
    limit: LimitOption = 20,
    offset: OffsetOption = 0,
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
    version: VersionOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    poll_interval: PollIntervalOption = 2.0,
    as_json: JsonOption = False,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Show a request: every version with its state, reason, parameters and estimate, then one version's
    jobs and QA per image (--version; default the latest)."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api, token=token) as client:
        if wait:
            _wait_and_report(client, request_id, version, timeout, poll_interval, out, err, as_json=as_json)
        elif as_json:
            typer.echo(json.dumps(client.get_request_json(request_id), indent=2))
        else:
            request = client.get_request(request_id)
            out.print(Group(request_view(request), Text(), version_detail_view(version_of(request, version))))


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
    """Cancel a request's unfinished versions: their running jobs are stopped and their outputs removed
    (finished versions and their products stay)."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api, token=token) as client:
        unfinished = {v.version for v in client.get_request(request_id).versions if not v.state.terminal}
        request = client.cancel_request(request_id)
    for version in request.versions:
        if version.version in unfinished:
            out.print(Text.assemble(
                f"{request.request_id} version {version.version}: ", request_state_text(version.state),
                f" ({version.reason})",
            ))
    if not unfinished:
        err.print(f"nothing to cancel: every version of {request.request_id} had ended", markup=False, highlight=False)
    out.print(request_view(request))


@request_app.command()
def products(
    request_id: RequestIdArgument,
    version: VersionOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the API's JSON as it is (a ProductList, with the download links).")
    ] = False,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """List the files a version delivered, with their kinds, sizes and checksums (once it has ended)."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api, token=token) as client:
        if as_json:
            typer.echo(json.dumps(client.request_products_json(request_id, version), indent=2))
        else:
            out.print(products_view(client.request_products(request_id, version)))


@request_app.command()
def download(
    request_id: RequestIdArgument,
    version: VersionOption = None,
    to: Annotated[
        Path,
        typer.Option(
            "--to", file_okay=False, help="Folder to put them in, under <request id>/v<version>/ (default: here)."
        ),
    ] = Path("."),
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind", metavar="KIND", help="Only products of this kind (pbcor, image, pb, quicklook, ...); repeat "
            "for more. `aperture request products` lists them.",
        ),
    ] = None,
    api: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Fetch a version's products, verifying each file's size and SHA-256 (intact files already there stay)."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api, token=token) as client:
        listing = client.request_products(request_id, version)
        _note_what_the_products_are(listing, err)
        with download_report(out, err) as report:
            results = client.download_listing(
                listing,
                to,
                kinds=kind,
                on_product=lambda product: report.started(product.name, product.size),
                on_bytes=report.received,
                on_done=report.done,
            )
    what = f"version {listing.version} of {listing.request_id}"
    if not results:
        err.print(f"{what} has no products to download", markup=False, highlight=False)
    else:
        total = len(results)
        err.print(f"{total} file(s) of {what} in {results[0].path.parent}", markup=False, highlight=False)


# The steps behind the commands


class ProgressDisplay:
    """A wait's progress on stderr as plain text: one line redrawn in place (\r) on a terminal, and a line
    per change otherwise (a log or a pipe gets no control characters)."""

    def __init__(self, stream: IO[str], redraw: bool) -> None:
        self._stream = stream
        self._redraw = redraw
        self._line = ""
        self.last: VersionView | None = None

    def show(self, version: VersionView) -> None:
        self.last = version
        line = progress_line(version)
        if line == self._line:
            return
        if self._redraw:
            # Padded to the previous line's length, so that a shorter line leaves nothing of it behind.
            self._stream.write("\r" + line.ljust(len(self._line)))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
        self._line = line

    def close(self) -> None:
        if self._redraw and self._line:
            self._stream.write("\n")
            self._stream.flush()


def outcome_exit_code(version: VersionView) -> ExitCode:
    """0 only for a version that succeeded and passed QA; a code of its own for each other ending."""
    if version.state is RequestState.CANCELLED:
        return ExitCode.VERSION_CANCELLED
    if version.state is RequestState.FAILED:
        return ExitCode.VERSION_FAILED
    return ExitCode.OK if version.passed_qa else ExitCode.QA_NOT_PASSED


@contextmanager
def _keeps_running_on_interrupt(err: Console, request_id: str) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        err.print(
            Text(
                f"stopped waiting; {request_id} goes on: `aperture request status {request_id}` shows it, "
                f"`aperture request cancel {request_id}` stops it",
                style="yellow",
            )
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None


def _wait_and_report(
    client: ApertureClient,
    request_id: str,
    version: int | None,
    timeout: float | None,
    poll_interval: float,
    out: Console,
    err: Console,
    *,
    as_json: bool = False,
) -> None:
    """Wait for the version to end with a progress display, print how it ended, exit with its code."""
    display = ProgressDisplay(err.file, redraw=err.is_terminal)
    try:
        with _keeps_running_on_interrupt(err, request_id):
            request = client.wait_for_request(
                request_id, version=version, poll_s=poll_interval, timeout_s=timeout, on_progress=display.show
            )
    finally:
        display.close()
    # The version awaited (the latest when the wait began, if none was named): every poll showed it.
    assert display.last is not None
    ended = version_of(request, display.last.version)
    if as_json:
        typer.echo(json.dumps(client.get_request_json(request_id), indent=2))
    else:
        out.print(version_outcome_view(request.request_id, ended))
    if ended.state is RequestState.CANCELLED:
        hint = f"`aperture request rerun {request.request_id}` runs it again"
    else:
        hint = f"`aperture request download {request.request_id} --version {ended.version}` fetches its products"
    err.print(hint, markup=False, highlight=False)
    code = outcome_exit_code(ended)
    if code is not ExitCode.OK:
        raise typer.Exit(code)


def _note_what_the_products_are(listing: ProductList, err: Console) -> None:
    """Before a download: say so when the files are those of a version that failed or did not pass QA."""
    what = f"version {listing.version} of {listing.request_id}"
    if listing.state is RequestState.FAILED:
        err.print(
            Text(f"{what} failed: these are the products of its jobs that succeeded", style="yellow")
        )
    elif listing.passed_qa is False:
        err.print(Text(
            f"{what} did not pass QA: `aperture request status {listing.request_id} --version {listing.version}` "
            "shows why", style="yellow",
        ))
