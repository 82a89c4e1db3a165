"""/api/v1/ledger: the run ledger, every attempt of every job of every MOUS (who ran it, when, for how long,
its peak memory, inputs and Aperture version, the outcome and error), and a summary of it.

Both endpoints take the same filters as query parameters and need an operator's bearer token (401 without a
known token, 403 with a user's). An unknown stage, outcome or error class is a 422 naming the parameter.
"""

import asyncio
from typing import Annotated, Any

from aperture_contracts.api import Problem
from aperture_contracts.enums import ErrorClass, Stage
from aperture_contracts.ids import canonical_mous_id
from aperture_contracts.ledger import AttemptOutcome, LedgerPage, LedgerSummary
from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from aperture_coordinator import ledger
from aperture_coordinator.auth import operator_only
from aperture_coordinator.db import Database
from aperture_coordinator.ledger import LedgerFilter
from aperture_coordinator.settings import CoordinatorSettings

LEDGER = "/api/v1/ledger"
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (401, "no token, or an unknown one"),
        (403, "the token is a user's, not an operator's"),
        (422, "a parameter is wrong: `errors` names it"),
    )
}


def ledger_filter(
    mous_id: Annotated[str | None, Query(description="only this MOUS (uid://A/B/C or uid___A_B_C)")] = None,
    campaign_id: Annotated[
        str | None, Query(description="only the jobs of the MOUS runs this campaign (id or name) started")
    ] = None,
    stage: Annotated[Stage | None, Query(description="only jobs of this stage")] = None,
    outcome: Annotated[AttemptOutcome | None, Query(description="only attempts that ended so")] = None,
    error_class: Annotated[ErrorClass | None, Query(description="only attempts that failed with it")] = None,
    worker: Annotated[str | None, Query(description="only attempts run by this worker (host:pid)")] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="dispatched at or after (ISO 8601 with a zone)")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="dispatched before (ISO 8601 with a zone)")] = None,
    software_version: Annotated[
        str | None, Query(description="only attempts run by this Aperture version, e.g. `aperture 0.1.0`")
    ] = None,
) -> LedgerFilter:
    """The query parameters both endpoints share."""
    return LedgerFilter(
        mous_id=canonical_mous_id(mous_id.strip()) if mous_id else None, campaign=campaign_id, stage=stage,
        outcome=outcome, error_class=error_class, worker=worker, since=since, until=until,
        software_version=software_version,
    )


Filter = Annotated[LedgerFilter, Depends(ledger_filter)]


def ledger_router(settings: CoordinatorSettings, database: Database) -> APIRouter:
    """The endpoints, reading `database`."""
    operator = operator_only(settings.api_tokens, settings.production, "the run ledger is read by operators")
    router = APIRouter(prefix=LEDGER, tags=["ledger"], responses=_PROBLEMS, dependencies=[Depends(operator)])

    @router.get("", response_model=LedgerPage, summary="Attempts of jobs, newest dispatch first")
    async def entries(
        where: Filter,
        offset: Annotated[int, Query(ge=0, description="how many to skip")] = 0,
        limit: Annotated[int, Query(ge=1, le=500, description="how many to return")] = 50,
    ) -> LedgerPage:
        def read() -> LedgerPage:
            with database.transaction() as session:
                return ledger.ledger_page(session, where, offset=offset, limit=limit)

        return await asyncio.to_thread(read)

    @router.get(
        "/summary", response_model=LedgerSummary,
        summary="The matching attempts by outcome and error class, and peak memory per stage (p50, p95, max)",
    )
    async def summary(where: Filter) -> LedgerSummary:
        def read() -> LedgerSummary:
            with database.transaction() as session:
                return ledger.ledger_summary(session, where)

        return await asyncio.to_thread(read)

    return router
