"""`aperture campaign ...` against the real coordinator app served by uvicorn on a free port (SQLite, an
in-memory store that lists prefixes). The test plays the workers through its own Coordinator on the same
database, so the CLI goes through its real HTTP path (--api, --token, Problem bodies) with no fake between."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aperture_cli.campaign_client import CampaignClient
from aperture_cli.command_line import ExitCode
from aperture_cli.errors import ApiError
from aperture_contracts.campaigns import CampaignCreate, CampaignReport, MemberState
from aperture_contracts.enums import ErrorClass, MousState, Recipe
from aperture_coordinator.auth import ApiIdentity, Role
from campaign_site import Site, campaign_site
from coordinator.campaign_factories import (
    ARCHIVE,
    archive_key,
    archive_mous_id,
    fill_archive,
)
from coordinator.factories import load_mous
from support.cli import CliResult

OPERATOR, ALICE = "operator-token", "alice-token"
TOKENS = {OPERATOR: ApiIdentity(user="olga", role=Role.OPERATOR), ALICE: ApiIdentity(user="alice")}
SLOW = "CASA ran past the ingest time limit of 3600 s"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with campaign_site(tmp_path, TOKENS) as served:
        yield served


def aperture(site: Site, *args: str, token: str | None = OPERATOR) -> CliResult:
    """Run `aperture campaign ARGS --api URL [--token T]` in this process, untouched by the test's environment."""
    return site.campaign(*args, token=token)


def mous_list(tmp_path: Path, site: Site, count: int) -> Path:
    """A --mous-list file naming `count` stored packages in each of its three line forms."""
    members = fill_archive(site.store, count)
    lines = ["# cycle 10, first batch", ""]
    for index, member in enumerate(members):
        if index % 3 == 0:
            lines.append(member["object_key"])
        elif index % 3 == 1:
            lines.append(f"{member['mous_id']} {member['object_key']}")
        else:
            lines.append(json.dumps(member))
    path = tmp_path / "members.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


LIMITS = 'size_limits={"max_cube_bytes": 1000000000}'


def test_submit_prints_the_id_and_submitting_again_adds_nothing(site: Site, tmp_path: Path) -> None:
    members = mous_list(tmp_path, site, 6)

    first = aperture(site, "submit", "cycle10", "--pipeline-version", "2026.1", "--mous-list", str(members),
                     "--max-in-flight", "4", "--param", LIMITS, "--recipe", "quicklook")
    again = aperture(site, "submit", "cycle10", "--pipeline-version", "2026.1", "--mous-list", str(members),
                     "--max-in-flight", "4", "--param", LIMITS, "--recipe", "quicklook")

    assert first.exit_code == 0, first
    campaign_id = first.stdout.strip()
    assert campaign_id.startswith("camp-") and len(campaign_id) == len("camp-") + 12
    assert "campaign cycle10 submitted: 6 members added, 0 already in it" in first.stderr
    assert "6 members: 2 pending, 4 submitted" in first.stderr
    assert again.exit_code == 0 and again.stdout.strip() == campaign_id
    assert "already known: 0 members added, 6 already in it" in again.stderr
    with CampaignClient(site.url, token=OPERATOR) as client:
        view = client.get_campaign(campaign_id)
    assert view.parameters == {"size_limits": {"max_cube_bytes": 1000000000}}
    assert view.recipe is Recipe.QUICKLOOK
    assert load_mous(site.database, archive_mous_id(0)).state is MousState.RECEIVED

    listed = aperture(site, "list")
    status = aperture(site, "status", "cycle10")
    assert listed.exit_code == 0 and campaign_id in listed.stdout and "cycle10" in listed.stdout
    assert status.exit_code == 0
    assert "at most 4" in status.stdout and "size_limits=" in status.stdout


def test_a_prefix_campaign_reports_failures_by_class_and_retry_reruns_only_that_class(site: Site) -> None:
    fill_archive(site.store, 8)
    submitted = aperture(site, "submit", "cycle10", "--pipeline-version", "2026.1", "--prefix", ARCHIVE,
                         "--max-in-flight", "3")
    assert submitted.exit_code == 0, submitted
    failures = {
        archive_mous_id(1): (ErrorClass.TIMEOUT, SLOW),
        archive_mous_id(4): (ErrorClass.TIMEOUT, SLOW),
        archive_mous_id(6): (ErrorClass.BAD_INPUT, "the package holds no Measurement Set"),
    }
    for _ in range(5):
        site.play(failures)

    table = aperture(site, "report", "cycle10")
    as_json = aperture(site, "report", "cycle10", "--json")

    assert table.exit_code == 0, table
    assert "Failures by class" in table.stdout
    assert "timeout" in table.stdout and "bad_input" in table.stdout
    assert f"{archive_mous_id(1)} r1.ingest: {SLOW}" in table.stdout
    assert "5 MOUS completed in the last hour" in table.stdout
    assert "products" in table.stdout and "5 files" in table.stdout
    report = CampaignReport.model_validate_json(as_json.stdout)
    assert report.campaign.members[MemberState.FAILED] == 3
    assert [(failure.error_class, failure.count) for failure in report.failures] == [
        (ErrorClass.TIMEOUT, 2), (ErrorClass.BAD_INPUT, 1)
    ]

    retried = aperture(site, "retry", "cycle10", "--class", "timeout")

    assert retried.exit_code == 0, retried
    assert retried.stdout.strip() == "2"
    assert "2 timeout failures of cycle10 put back in its queue" in retried.stderr
    assert load_mous(site.database, archive_mous_id(1)).run == 2
    assert load_mous(site.database, archive_mous_id(6)).run == 1
    unknown = aperture(site, "retry", "cycle10", "--class", "gremlins")
    assert unknown.exit_code == ExitCode.USAGE and "gremlins" in unknown.stderr


def test_pause_resume_and_cancel(site: Site) -> None:
    fill_archive(site.store, 5)
    aperture(site, "submit", "cycle10", "--pipeline-version", "2026.1", "--prefix", ARCHIVE, "--max-in-flight", "2")

    paused = aperture(site, "pause", "cycle10")
    site.play()
    while_paused = aperture(site, "status", "cycle10")
    resumed = aperture(site, "resume", "cycle10")
    cancelled = aperture(site, "cancel", "cycle10")
    again = aperture(site, "pause", "cycle10")

    assert paused.exit_code == 0 and "paused: paused by olga" in paused.stdout
    assert "5 members: 3 pending, 2 completed" in while_paused.stdout
    assert resumed.exit_code == 0 and "3 pending" not in resumed.stdout and "2 submitted" in resumed.stdout
    assert cancelled.exit_code == 0, cancelled
    assert "cancelled: campaign cancelled by olga" in cancelled.stdout
    assert "5 members: 2 completed, 3 cancelled" in cancelled.stdout
    assert load_mous(site.database, archive_mous_id(2)).state is MousState.CANCELLED
    assert again.exit_code == ExitCode.REQUEST_FAILED
    assert "is cancelled: there is nothing to pause" in again.stderr


def test_a_users_token_or_none_is_refused_with_what_to_do(site: Site) -> None:
    as_user = aperture(site, "list", token=ALICE)
    without = aperture(site, "list", token=None)

    assert as_user.exit_code == ExitCode.REQUEST_FAILED
    assert "(HTTP 403)" in as_user.stderr and "campaigns are run by operators" in as_user.stderr
    assert without.exit_code == ExitCode.REQUEST_FAILED
    assert "(HTTP 401)" in without.stderr and "APERTURE_API_TOKEN" in without.stderr


def test_usage_mistakes_are_caught_before_anything_is_sent(site: Site, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("uid://A001/X1/X1 a.tar extra\n")

    two_sources = aperture(site, "submit", "c", "--pipeline-version", "1", "--prefix", "a/", "--manifest", "m")
    no_member = aperture(site, "submit", "c", "--pipeline-version", "1", "--mous-list", str(empty))
    bad_line = aperture(site, "submit", "c", "--pipeline-version", "1", "--mous-list", str(bad))
    bad_name = aperture(site, "submit", "no spaces", "--pipeline-version", "1", "--prefix", "a/")

    assert two_sources.exit_code == ExitCode.USAGE and "exactly one of --mous-list" in two_sources.stderr
    assert no_member.exit_code == ExitCode.USAGE and "lists no member" in no_member.stderr
    assert bad_line.exit_code == ExitCode.USAGE and "line 1 of" in bad_line.stderr
    assert bad_name.exit_code == ExitCode.USAGE and "name" in bad_name.stderr
    with CampaignClient(site.url, token=OPERATOR) as client:
        assert client.list_campaigns().total == 0


def test_the_client_raises_the_apis_problem(site: Site) -> None:
    with CampaignClient(site.url, token=OPERATOR) as client, pytest.raises(ApiError) as error:
        client.submit_campaign(CampaignCreate(name="c", pipeline_version="1", manifest_key="missing.jsonl"))
    assert error.value.status_code == 422
    assert error.value.field_errors[0]["field"] == "manifest_key"
    assert "upload the manifest first" in error.value.detail
    site.store.put_bytes("m.jsonl", json.dumps({"object_key": archive_key(0)}).encode())
    with CampaignClient(site.url, token=OPERATOR) as client:
        assert client.submit_campaign(CampaignCreate(name="c", pipeline_version="1", manifest_key="m.jsonl")).created
