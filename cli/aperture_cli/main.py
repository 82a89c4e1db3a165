"""The `aperture` command: submit Measurement Sets to the coordinator, follow them, fetch their products.

Output contract, for scripts: stdout carries results (the MOUS id from `submit`, the final state, tables,
JSON); progress and notes go to stderr. Exit codes are the ExitCode values (aperture_cli.command_line).
Imaging requests are the `aperture request` commands (aperture_cli.request_commands).
"""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from aperture_contracts.api import MousDetail
from rich.console import Console
from rich.live import Live
from rich.text import Text

from aperture_cli.campaign_commands import campaign_app
from aperture_cli.client import (
    DEFAULT_API_URL,
    UNSUCCESSFUL_MOUS_STATES,
    ApertureClient,
    Submission,
)
from aperture_cli.command_line import (
    EXIT_CODES_HELP,
    ApiUrlOption,
    ExitCode,
    LimitOption,
    OffsetOption,
    consoles,
    download_report,
    expected_failures,
    transfer_progress,
)
from aperture_cli.ledger_commands import ledger_app
from aperture_cli.packaging import UploadPackage, prepare_upload
from aperture_cli.request_commands import REQUEST_ID_PREFIX, request_app
from aperture_cli.views import (
    format_bytes,
    mous_list_table,
    outcome_view,
    progress_line,
    progress_view,
    state_text,
    status_view,
)

app = typer.Typer(
    name="aperture",
    help="Submit Measurement Sets to Aperture, follow their processing and fetch their products.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(request_app, name="request")
app.add_typer(campaign_app, name="campaign")
app.add_typer(ledger_app, name="ledger")

MousIdArgument = Annotated[
    str, typer.Argument(help="MOUS id: uid://A001/X2fa/X2dd, uid___A001_X2fa_X2dd or aperture-<hex>.")
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout", min=0, help="Give up waiting after this many seconds (the MOUS keeps running)."
    ),
]
PollIntervalOption = Annotated[
    float, typer.Option("--poll-interval", min=0, help="Seconds between status requests while waiting.")
]


@contextmanager
def _keeps_running_on_interrupt(err: Console, mous_id: str) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        err.print(
            Text(
                f"stopped waiting; {mous_id} goes on: `aperture status {mous_id}` shows it, "
                f"`aperture cancel {mous_id}` stops it",
                style="yellow",
            )
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None


@app.command()
def submit(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            help="A Measurement Set directory (packed into a tar first) or a .tar / .tar.gz archive of it.",
        ),
    ],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the processing until nothing more can run.")
    ] = False,
    download: Annotated[
        Path | None,
        typer.Option(
            "--download", file_okay=False, help="Then fetch every product into this folder (implies --wait)."
        ),
    ] = None,
    mous_uid: Annotated[
        str | None, typer.Option("--mous-uid", help="Archive uid to file it under, overriding the package's.")
    ] = None,
    rerun: Annotated[bool, typer.Option("--rerun", help="Process again an MOUS submitted before.")] = False,
    timeout: TimeoutOption = None,
    poll_interval: PollIntervalOption = 2.0,
    scratch_dir: Annotated[
        Path | None,
        typer.Option(
            "--scratch-dir",
            file_okay=False,
            help="Where a directory is packed before upload (default: $TMPDIR).",
        ),
    ] = None,
    api: ApiUrlOption = DEFAULT_API_URL,
) -> None:
    """Upload a Measurement Set and print its MOUS id."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api) as client:
        submission = _upload(client, path, mous_uid=mous_uid, rerun=rerun, scratch_dir=scratch_dir, err=err)
        summary = submission.summary
        out.print(summary.mous_id, markup=False, highlight=False)
        if submission.created:
            err.print(Text.assemble("submitted, run ", str(summary.run), ": ", state_text(summary.state)))
        else:
            err.print(
                Text.assemble(
                    "already submitted (run ",
                    str(summary.run),
                    ", ",
                    state_text(summary.state),
                    "); ",
                    "nothing new started: add --rerun to process it again",
                )
            )
        if not (wait or download):
            err.print(f"follow it with `aperture status {summary.mous_id}`", markup=False, highlight=False)
            return
        with _keeps_running_on_interrupt(err, summary.mous_id):
            detail = _wait_with_display(client, summary.mous_id, timeout, poll_interval, err)
        _finish(client, detail, download, out, err)


@app.command("wait")
def wait_command(
    mous_id: MousIdArgument,
    download: Annotated[
        Path | None,
        typer.Option("--download", file_okay=False, help="Then fetch every product into this folder."),
    ] = None,
    timeout: TimeoutOption = None,
    poll_interval: PollIntervalOption = 2.0,
    api: ApiUrlOption = DEFAULT_API_URL,
) -> None:
    """Follow an MOUS until nothing more can run; exit 1 if it failed."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api) as client:
        with _keeps_running_on_interrupt(err, mous_id):
            detail = _wait_with_display(client, mous_id, timeout, poll_interval, err)
        _finish(client, detail, download, out, err)


@app.command()
def status(
    mous_id: MousIdArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON as it is.")] = False,
    api: ApiUrlOption = DEFAULT_API_URL,
) -> None:
    """Show an MOUS: state, observation, jobs by stage, errors, QA and products."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api) as client:
        if as_json:
            typer.echo(json.dumps(client.get_mous_json(mous_id), indent=2))
        else:
            out.print(status_view(client.get_mous(mous_id)))


@app.command("list")
def list_command(
    limit: LimitOption = 20,
    offset: OffsetOption = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON as it is.")] = False,
    api: ApiUrlOption = DEFAULT_API_URL,
) -> None:
    """List submitted MOUSs."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api) as client:
        if as_json:
            typer.echo(json.dumps(client.list_mous_json(limit=limit, offset=offset), indent=2))
        else:
            out.print(mous_list_table(client.list_mous(limit=limit, offset=offset), offset))


@app.command()
def cancel(mous_id: MousIdArgument, api: ApiUrlOption = DEFAULT_API_URL) -> None:
    """Cancel an MOUS: jobs not yet finished are stopped (an imaging request: `aperture request cancel`)."""
    out, err = consoles()
    if mous_id.strip().startswith(REQUEST_ID_PREFIX):
        # No MOUS id has this form, so the user meant a request; say which command does that.
        err.print(Text(
            f"{mous_id.strip()} is an imaging request, not an MOUS: `aperture request cancel {mous_id.strip()}` "
            "cancels it", style="red",
        ))
        raise typer.Exit(ExitCode.USAGE)
    with expected_failures(err), ApertureClient(api) as client:
        summary = client.cancel_mous(mous_id)
        out.print(Text.assemble(summary.mous_id, ": ", state_text(summary.state), "  ", summary.reason))


@app.command("download")
def download_command(
    mous_id: MousIdArgument,
    directory: Annotated[Path, typer.Argument(file_okay=False, help="Folder to put the products in.")],
    api: ApiUrlOption = DEFAULT_API_URL,
) -> None:
    """Fetch every product of an MOUS, verifying each file's SHA-256."""
    out, err = consoles()
    with expected_failures(err), ApertureClient(api) as client:
        _download(client, mous_id, directory, out, err)


def main() -> None:
    app()


# The steps behind the commands


def _upload(
    client: ApertureClient,
    path: Path,
    *,
    mous_uid: str | None,
    rerun: bool,
    scratch_dir: Path | None,
    err: Console,
) -> Submission:
    with transfer_progress(err) as progress:
        packing = progress.add_task(f"packing {path.resolve().name}", total=None, visible=path.is_dir())
        if path.is_dir() and not err.is_terminal:
            err.print(f"packing {path} into a temporary tar", markup=False, highlight=False)
        with prepare_upload(
            path,
            scratch_dir=scratch_dir,
            on_member=lambda member: progress.advance(packing, member.size),
        ) as package:
            progress.update(packing, visible=False)
            uploading = progress.add_task(f"uploading {package.upload_name}", total=package.size)
            if not err.is_terminal:
                err.print(_describe_upload(package, client.api_url), markup=False, highlight=False)
            return client.upload_package(
                package,
                mous_uid=mous_uid,
                rerun=rerun,
                on_bytes=lambda sent: progress.advance(uploading, sent),
            )


def _describe_upload(package: UploadPackage, api_url: str) -> str:
    return f"uploading {package.upload_name} ({format_bytes(package.size)}) to {api_url}"


def _wait_with_display(
    client: ApertureClient, mous_id: str, timeout: float | None, poll_interval: float, err: Console
) -> MousDetail:
    """Poll until the MOUS settles: a live table on a terminal, a line per change otherwise."""
    started = time.monotonic()
    if err.is_terminal:
        with Live(console=err, refresh_per_second=4, transient=False) as live:
            return client.wait(
                mous_id,
                timeout_s=timeout,
                poll_interval_s=poll_interval,
                on_update=lambda detail: live.update(progress_view(detail, time.monotonic() - started)),
            )
    last_line = ""

    def log_changes(detail: MousDetail) -> None:
        nonlocal last_line
        line = progress_line(detail)
        if line != last_line:
            err.print(line, markup=False, highlight=False)
            last_line = line

    return client.wait(mous_id, timeout_s=timeout, poll_interval_s=poll_interval, on_update=log_changes)


def _finish(
    client: ApertureClient, detail: MousDetail, download: Path | None, out: Console, err: Console
) -> None:
    out.print(outcome_view(detail))
    if detail.state in UNSUCCESSFUL_MOUS_STATES:
        if download is not None:
            err.print("no products downloaded: the MOUS did not complete", style="yellow")
        raise typer.Exit(ExitCode.MOUS_UNSUCCESSFUL)
    if download is not None:
        _download(client, detail.mous_id, download, out, err)


def _download(client: ApertureClient, mous_id: str, directory: Path, out: Console, err: Console) -> None:
    with download_report(out, err) as report:
        results = client.download_products(
            mous_id,
            directory,
            on_product=lambda product: report.started(product.name, product.object.size),
            on_bytes=report.received,
            on_done=report.done,
        )
    if not results:
        err.print(f"{mous_id} has no products to download", markup=False, highlight=False)
