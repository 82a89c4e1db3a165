"""What every `aperture` command shares: its exit codes, the options that say which API to talk to and as
whom, and the one place where the client's expected failures become a message and an exit code."""

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from http import HTTPStatus
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from aperture_cli.client import DownloadedProduct, iter_field_errors
from aperture_cli.errors import (
    ApertureClientError,
    ApiError,
    ApiUnreachable,
    DownloadError,
    RequestWaitTimeout,
    WaitTimeout,
)
from aperture_cli.views import format_bytes


class ExitCode(IntEnum):
    """What `aperture` exits with. REQUEST_FAILED is about an HTTP request the API refused; how an imaging
    request's version ended has codes of its own (7 to 9), so that a script can tell them apart."""

    OK = 0  # also: a waited-for request version succeeded and passed QA
    MOUS_UNSUCCESSFUL = 1  # the MOUS failed or was cancelled
    USAGE = 2  # a wrong option or argument (typer's own code)
    API_UNREACHABLE = 3
    REQUEST_FAILED = 4  # the API refused the request, answered nonsense, or the input cannot be sent
    DOWNLOAD_FAILED = 5  # a product could not be fetched, or its size or checksum did not match
    WAIT_TIMEOUT = 6  # --timeout passed before the MOUS settled (or the request version ended); it goes on
    QA_NOT_PASSED = 7  # the request version succeeded, but not every image passed QA
    VERSION_FAILED = 8  # the request version failed (some of its jobs failed)
    VERSION_CANCELLED = 9  # the request version was cancelled
    INTERRUPTED = 130  # Ctrl-C; the MOUS (or request) keeps running


EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 the MOUS failed or was cancelled, 2 usage, 3 API unreachable, 4 request refused, "
    "5 download failed, 6 wait timed out, 7 a request version's images did not pass QA, 8 the version failed, "
    "9 the version was cancelled, 130 interrupted."
)


TOKEN_ENV = "APERTURE_API_TOKEN"

ApiUrlOption = Annotated[
    str,
    typer.Option("--api", envvar="APERTURE_API_URL", help="Base URL of the Aperture API.", show_envvar=True),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=TOKEN_ENV,
        show_envvar=True,
        help="Bearer token of the requests API (an operator hands them out). Prefer the environment "
        "variable: an option shows in the shell's history and in `ps`.",
    ),
]

# The options every listing and every reading command shares.
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=500, help="How many to show.")]
OffsetOption = Annotated[int, typer.Option("--offset", min=0, help="How many to skip (newest first).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON as it is.")]


def consoles() -> tuple[Console, Console]:
    """stdout for results, stderr for progress and notes."""
    # Made per command, not at import, so they write to whatever stdout/stderr are at call time.
    return Console(), Console(stderr=True)


def transfer_progress(err: Console) -> Progress:
    """Bars for packing, uploading and downloading; drawn only on a terminal, and gone when done."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


class DownloadReport:
    """What a download shows: a bar for the file being fetched (on a terminal), and a line per file in
    place on stdout; its methods are the client's on_product / on_bytes / on_done callbacks."""

    def __init__(self, progress: Progress, out: Console, err: Console) -> None:
        self._progress = progress
        # With both streams on one terminal, lines must go through the progress display's console, or
        # they land in the middle of the bar; otherwise they go to stdout as results should.
        self._report = progress.console if out.is_terminal and err.is_terminal else out
        self._current: TaskID | None = None

    def started(self, name: str, size: int) -> None:
        if self._current is not None:
            self._progress.remove_task(self._current)
        self._current = self._progress.add_task(name, total=size)

    def received(self, size: int) -> None:
        if self._current is not None:
            self._progress.advance(self._current, size)

    def done(self, result: DownloadedProduct) -> None:
        note = "already there, checksum ok" if result.already_present else "sha256 ok"
        self._report.print(Text(f"{result.path}  {format_bytes(result.size)}  {note}"))


@contextmanager
def download_report(out: Console, err: Console) -> Iterator[DownloadReport]:
    with transfer_progress(err) as progress:
        yield DownloadReport(progress, out, err)


@contextmanager
def expected_failures(err: Console) -> Iterator[None]:
    """Turn the client's expected failures into a message and an exit code, never a traceback."""
    try:
        yield
    except ApiUnreachable as error:
        err.print(Text(f"error: {error}", style="red"))
        raise typer.Exit(ExitCode.API_UNREACHABLE) from None
    except ApiError as error:
        err.print(
            Text(
                f"error: the API refused {error.method} {error.path} (HTTP {error.status_code}): ",
                style="red",
            )
            + Text(error.detail)
        )
        for where, message in iter_field_errors(error.field_errors):
            # The API often repeats its one field error as the detail: then only the field is news.
            if message == error.detail:
                if where:
                    err.print(Text(f"  (field: {where})"))
            else:
                err.print(Text(f"  - {where}: {message}" if where else f"  - {message}"))
        if error.status_code == HTTPStatus.UNAUTHORIZED:
            err.print(Text(f"  give the token with --token or the environment variable {TOKEN_ENV}"))
        raise typer.Exit(ExitCode.REQUEST_FAILED) from None
    except DownloadError as error:
        err.print(Text(f"error: {error}", style="red"))
        raise typer.Exit(ExitCode.DOWNLOAD_FAILED) from None
    except (WaitTimeout, RequestWaitTimeout) as error:
        err.print(Text(f"error: {error}", style="yellow"))
        raise typer.Exit(ExitCode.WAIT_TIMEOUT) from None
    except ApertureClientError as error:
        err.print(Text(f"error: {error}", style="red"))
        raise typer.Exit(ExitCode.REQUEST_FAILED) from None
