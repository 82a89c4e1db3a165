"""What every `aperture` command shares: its exit codes, the options that say which API to talk to and as
whom, and the one place where the client's expected failures become a message and an exit code."""

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from http import HTTPStatus
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from aperture_cli.client import iter_field_errors
from aperture_cli.errors import ApertureClientError, ApiError, ApiUnreachable, DownloadError, WaitTimeout


class ExitCode(IntEnum):
    OK = 0
    MOUS_UNSUCCESSFUL = 1  # the MOUS failed or was cancelled
    USAGE = 2  # a wrong option or argument (typer's own code)
    API_UNREACHABLE = 3
    REQUEST_FAILED = 4  # the API refused the request, answered nonsense, or the input cannot be sent
    DOWNLOAD_FAILED = 5  # a product could not be fetched, or its checksum did not match
    WAIT_TIMEOUT = 6  # --timeout passed before the MOUS settled; it keeps running
    INTERRUPTED = 130  # Ctrl-C; the MOUS keeps running


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


def consoles() -> tuple[Console, Console]:
    """stdout for results, stderr for progress and notes."""
    # Made per command, not at import, so they write to whatever stdout/stderr are at call time.
    return Console(), Console(stderr=True)


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
    except WaitTimeout as error:
        err.print(Text(f"error: {error}", style="yellow"))
        raise typer.Exit(ExitCode.WAIT_TIMEOUT) from None
    except ApertureClientError as error:
        err.print(Text(f"error: {error}", style="red"))
        raise typer.Exit(ExitCode.REQUEST_FAILED) from None
