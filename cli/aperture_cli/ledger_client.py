"""The client's run-ledger methods (`/api/v1/ledger`, an operator's token needed), for the CLI and notebooks:

    from aperture_cli.ledger_client import LedgerClient, LedgerQuery
    with LedgerClient(api_url, token="...") as aperture:
        failures = aperture.ledger(LedgerQuery(campaign_id="cycle10", outcome=AttemptOutcome.FAILED))
        imaging_memory = aperture.ledger_summary(LedgerQuery(stage=Stage.IMAGING)).peak_memory

It is the ApertureClient with these methods added (same errors, same bearer-token handling).
"""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import httpx
from aperture_contracts.enums import ErrorClass, Stage
from aperture_contracts.ledger import AttemptOutcome, LedgerPage, LedgerSummary

from aperture_cli.client import ApertureClient

LEDGER_PATH = "/ledger"


@dataclass(frozen=True)
class LedgerQuery:
    """Which attempts to read (every condition given must hold); the API's query parameters by name.
    `campaign_id` takes a campaign's id or name; `since` and `until` bound the dispatch time [since, until)."""

    mous_id: str | None = None
    campaign_id: str | None = None
    stage: Stage | None = None
    outcome: AttemptOutcome | None = None
    error_class: ErrorClass | None = None
    worker: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    software_version: str | None = None

    def params(self) -> dict[str, str]:
        given = {field.name: getattr(self, field.name) for field in fields(self)}
        return {
            name: value.isoformat() if isinstance(value, datetime) else str(value)
            for name, value in given.items()
            if value is not None
        }


EVERY_ATTEMPT = LedgerQuery()


class LedgerClient(ApertureClient):
    """The coordinator's API, the run ledger included."""

    def ledger(self, query: LedgerQuery = EVERY_ATTEMPT, *, offset: int = 0, limit: int = 50) -> LedgerPage:
        """The attempts matching `query`, newest dispatch first, with how many match in all."""
        return self._parse(self._ledger_response(query, offset, limit), LedgerPage)

    def ledger_json(self, query: LedgerQuery = EVERY_ATTEMPT, *, offset: int = 0, limit: int = 50) -> Any:
        """The API's body as it came (checked against the contract first)."""
        response = self._ledger_response(query, offset, limit)
        self._parse(response, LedgerPage)
        return response.json()

    def ledger_summary(self, query: LedgerQuery = EVERY_ATTEMPT) -> LedgerSummary:
        """The matching attempts by outcome and error class, and peak memory per stage."""
        return self._parse(self._summary_response(query), LedgerSummary)

    def ledger_summary_json(self, query: LedgerQuery = EVERY_ATTEMPT) -> Any:
        response = self._summary_response(query)
        self._parse(response, LedgerSummary)
        return response.json()

    def _ledger_response(self, query: LedgerQuery, offset: int, limit: int) -> httpx.Response:
        params = query.params() | {"offset": str(offset), "limit": str(limit)}
        return self._send("GET", LEDGER_PATH, params=params, headers=self._bearer())

    def _summary_response(self, query: LedgerQuery) -> httpx.Response:
        return self._send("GET", LEDGER_PATH + "/summary", params=query.params(), headers=self._bearer())
