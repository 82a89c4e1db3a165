"""`aperture campaign submit --sample-per-category`, `release` and the report's categories table, against the
real coordinator app served by uvicorn on a free port (SQLite, an in-memory store). The test plays the
workers through its own Coordinator on the same database, as test_cli_campaigns.py does."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aperture_cli.command_line import ExitCode
from aperture_contracts.campaigns import CampaignReport
from aperture_contracts.enums import ErrorClass
from aperture_coordinator.auth import ApiIdentity, Role
from campaign_site import Site, campaign_site
from coordinator.campaign_factories import archive_mous_id, fill_archive
from support.cli import CliResult

OPERATOR = "operator-token"
B6 = {"array": "12m", "band": 6, "spws": 4, "max_channels": 1920, "fields": 1, "size_bytes": 2 * 10**9}
B3 = {"array": "12m", "band": 3, "spws": 4, "max_channels": 128, "fields": 7, "size_bytes": 300_000_000}
KEY_B6 = "12m/B6/4spw/le4kch/single/1to10GB"
KEY_B3 = "12m/B3/4spw/le128ch/mosaic/lt1GB"
CORRUPT = "the package is not a tar archive: package the MS again"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with campaign_site(tmp_path, {OPERATOR: ApiIdentity(user="olga", role=Role.OPERATOR)}) as served:
        yield served


def aperture(site: Site, *args: str) -> CliResult:
    return site.campaign(*args, token=OPERATOR)


def members_file(tmp_path: Path, site: Site) -> Path:
    """Four members of KEY_B6 and three of KEY_B3, as JSON lines with their attributes."""
    kinds: list[dict[str, Any]] = [B6, B3, B6, B3, B6, B3, B6]
    members = fill_archive(site.store, len(kinds))
    path = tmp_path / "members.jsonl"
    path.write_text("\n".join(json.dumps(member | {"attributes": kind}) for member, kind in zip(members, kinds,
                                                                                                 strict=True)))
    return path


def row_of(table: str, category: str) -> list[str]:
    """The cells of a category's row in a rendered table."""
    line = next(line for line in table.splitlines() if category in line)
    return [cell.strip() for cell in line.split("│") if cell.strip()]


def test_a_sampled_campaign_waits_and_release_lets_some_then_every_category_run(site: Site, tmp_path: Path) -> None:
    submitted = aperture(site, "submit", "cycle10", "--pipeline-version", "2026.1", "--mous-list",
                         str(members_file(tmp_path, site)), "--sample-per-category", "2")
    assert submitted.exit_code == 0, submitted
    assert "2 per category; 3 members held until released" in submitted.stderr
    site.play({archive_mous_id(1): (ErrorClass.BAD_INPUT, CORRUPT)})

    status = aperture(site, "status", "cycle10")
    table = aperture(site, "report", "cycle10")
    as_json = CampaignReport.model_validate_json(aperture(site, "report", "cycle10", "--json").stdout)

    assert "awaiting_validation: the samples of 2 categories have ended, 1 of 4 failed" in status.stdout
    assert "aperture campaign release cycle10" in status.stdout
    assert table.exit_code == 0, table
    assert "Categories" in table.stdout and "sample failed" in table.stdout
    # category, pending, submitted, completed, failed, cancelled, total, sampled, sample failed, held
    assert row_of(table.stdout, KEY_B3) == [KEY_B3, "1", "0", "1", "1", "0", "3", "2", "1", "1"]
    assert row_of(table.stdout, KEY_B6) == [KEY_B6, "2", "0", "2", "0", "0", "4", "2", "0", "2"]
    assert {category.category: category.held for category in as_json.categories} == {KEY_B6: 2, KEY_B3: 1}

    some = aperture(site, "release", "cycle10", "--category", KEY_B3)
    site.play()
    rest = aperture(site, "release", "cycle10")
    again = aperture(site, "release", "cycle10", "--category", KEY_B3)

    assert some.exit_code == 0, some
    assert some.stdout.strip() == "1"
    assert f"{KEY_B3}: 1 member released" in some.stderr and "cycle10 is active" in some.stderr
    assert rest.exit_code == 0 and rest.stdout.strip() == "2" and f"{KEY_B6}: 2 members released" in rest.stderr
    assert again.exit_code == 0 and again.stdout.strip() == "0" and f"{KEY_B3}: none held" in again.stderr
    site.play()
    finished = aperture(site, "status", "cycle10")
    assert "completed: 6 completed, 1 failed" in finished.stdout


def test_release_says_what_is_wrong(site: Site, tmp_path: Path) -> None:
    aperture(site, "submit", "sampled", "--pipeline-version", "1", "--mous-list", str(members_file(tmp_path, site)),
             "--sample-per-category", "1")
    aperture(site, "submit", "plain", "--pipeline-version", "1", "--mous-list", str(members_file(tmp_path, site)))

    stranger = aperture(site, "release", "sampled", "--category", "12m/B9")
    not_sampled = aperture(site, "release", "plain")
    nothing = aperture(site, "release", "nope")

    assert stranger.exit_code == ExitCode.REQUEST_FAILED
    assert "has no member of category '12m/B9'" in stranger.stderr and KEY_B6 in stranger.stderr
    assert not_sampled.exit_code == ExitCode.REQUEST_FAILED and "(HTTP 409)" in not_sampled.stderr
    assert "without sample_per_category" in not_sampled.stderr
    assert nothing.exit_code == ExitCode.REQUEST_FAILED and "(HTTP 404)" in nothing.stderr


def test_a_campaign_without_a_sample_shows_no_sample_columns(site: Site, tmp_path: Path) -> None:
    aperture(site, "submit", "plain", "--pipeline-version", "1", "--mous-list", str(members_file(tmp_path, site)))

    table = aperture(site, "report", "plain")

    assert table.exit_code == 0, table
    assert row_of(table.stdout, KEY_B6) == [KEY_B6, "0", "4", "0", "0", "0", "4"]
    assert "sample failed" not in table.stdout and "sample first" not in table.stdout
