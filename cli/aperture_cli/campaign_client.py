"""The client's campaign methods (`/api/v1/campaigns`, an operator's token needed), for the CLI and notebooks:

    from aperture_cli.campaign_client import CampaignClient
    with CampaignClient(api_url, token="...") as aperture:
        submitted = aperture.submit_campaign(CampaignCreate(name="cycle10", pipeline_version="2026.1",
                                                            scan_prefix="archive/cycle10/"))
        report = aperture.campaign_report(submitted.campaign.campaign_id)

It is the ApertureClient with these methods added (same errors, same bearer-token handling).
"""

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx
from aperture_contracts.campaigns import (
    CampaignCreate,
    CampaignList,
    CampaignRelease,
    CampaignReleased,
    CampaignReport,
    CampaignRetried,
    CampaignState,
    CampaignSubmitted,
    CampaignView,
)
from aperture_contracts.enums import ErrorClass

from aperture_cli.client import ApertureClient

CAMPAIGNS_PATH = "/campaigns"


def campaign_path(reference: str) -> str:
    # Quoted whole, so that a name typed with a slash cannot reach another endpoint.
    return f"{CAMPAIGNS_PATH}/{quote(reference.strip(), safe='')}"


class CampaignClient(ApertureClient):
    """The coordinator's API, campaigns included. A campaign is named by its id (camp-<hex>) or its name."""

    def submit_campaign(self, body: CampaignCreate) -> CampaignSubmitted:
        """Submit a campaign, or add to the campaign of that name the members it lacks (none: a no-op)."""
        response = self._send(
            "POST", CAMPAIGNS_PATH, json=body.model_dump(mode="json", exclude_none=True), headers=self._bearer()
        )
        return self._parse(response, CampaignSubmitted)

    def list_campaigns(self, *, offset: int = 0, limit: int = 50, state: CampaignState | None = None) -> CampaignList:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if state is not None:
            params["state"] = state.value
        response = self._send("GET", CAMPAIGNS_PATH, params=params, headers=self._bearer())
        return self._parse(response, CampaignList)

    def get_campaign(self, reference: str) -> CampaignView:
        return self._parse(self._send("GET", campaign_path(reference), headers=self._bearer()), CampaignView)

    def campaign_report(self, reference: str) -> CampaignReport:
        return self._parse(self._campaign_report_response(reference), CampaignReport)

    def campaign_report_json(self, reference: str) -> Any:
        """The API's body as it came (checked against the contract first)."""
        response = self._campaign_report_response(reference)
        self._parse(response, CampaignReport)
        return response.json()

    def pause_campaign(self, reference: str) -> CampaignView:
        return self._steer(reference, "pause")

    def resume_campaign(self, reference: str) -> CampaignView:
        return self._steer(reference, "resume")

    def cancel_campaign(self, reference: str) -> CampaignView:
        return self._steer(reference, "cancel")

    def retry_campaign(self, reference: str, error_class: ErrorClass | str) -> CampaignRetried:
        """Put the campaign's failed members of one error class back in its queue."""
        response = self._send(
            "POST", campaign_path(reference) + "/retry", params={"error_class": str(error_class)},
            headers=self._bearer(),
        )
        return self._parse(response, CampaignRetried)

    def release_campaign(self, reference: str, categories: Sequence[str] | None = None) -> CampaignReleased:
        """Let the members held after their category's sample run: of these categories, or of every one."""
        body = CampaignRelease(categories=list(categories) if categories else None)
        response = self._send(
            "POST", campaign_path(reference) + "/release", json=body.model_dump(mode="json"), headers=self._bearer()
        )
        return self._parse(response, CampaignReleased)

    def _steer(self, reference: str, action: str) -> CampaignView:
        response = self._send("POST", f"{campaign_path(reference)}/{action}", headers=self._bearer())
        return self._parse(response, CampaignView)

    def _campaign_report_response(self, reference: str) -> httpx.Response:
        return self._send("GET", campaign_path(reference) + "/report", headers=self._bearer())
