"""Running the `aperture` command in the test's own process, as a person would type it."""

from dataclasses import dataclass

from aperture_cli.main import app
from typer.testing import CliRunner


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def __repr__(self) -> str:
        return f"exit {self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_aperture(*args: str, env: dict[str, str | None] | None = None, columns: int = 200) -> CliResult:
    """`aperture ARGS`; no token or API URL comes from the test's own environment unless `env` gives one."""
    environment: dict[str, str | None] = {
        "COLUMNS": str(columns), "APERTURE_API_TOKEN": None, "APERTURE_API_URL": None,
    }
    result = CliRunner(env=environment | (env or {})).invoke(app, list(args), catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)
