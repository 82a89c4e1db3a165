"""/api/v1/campaigns: archive re-processing campaigns (submit, list, read, report, pause, resume, cancel,
retry the failures of one error class, and release the categories held after their samples ran).

Campaigns are an operator's business: every endpoint needs an operator's bearer token (401 without a
known token, 403 with a user's). Problems are Problem bodies naming the field (422), the campaign (404),
the state that forbids the call (409) or the object store that cannot be read (503). A submission, a
resume, a retry and a release start feeding at once rather than at the feeder's next pass.
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from aperture_contracts.api import Problem
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
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from aperture_coordinator import campaign_report, campaigns
from aperture_coordinator.auth import Caller, operator_only
from aperture_coordinator.campaign_sources import CampaignProblem, PackageLookup
from aperture_coordinator.campaigns import CampaignFeeder
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator

log = logging.getLogger(__name__)

CAMPAIGNS = "/api/v1/campaigns"
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (401, "no token, or an unknown one"),
        (403, "the token is a user's, not an operator's"),
        (404, "no such campaign"),
        (409, "the campaign's state forbids it (cancelled, completed, not sampled), or the name is another "
              "campaign's"),
        (422, "a field is wrong: `errors` names it"),
        (503, "the object store cannot be read now"),
    )
}


def problem_response(problem: CampaignProblem) -> JSONResponse:
    errors = [{"field": problem.field, "message": problem.message}] if problem.field else []
    body = Problem(detail=problem.message, errors=errors)
    return JSONResponse(body.model_dump(mode="json"), status_code=problem.status)


class _ProblemRoute(APIRoute):
    """A route that answers a CampaignProblem with its Problem body: a router cannot register exception
    handlers, and the app's are api.py's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except CampaignProblem as problem:
                return problem_response(problem)

        return answer


def campaigns_router(
    settings: CoordinatorSettings, coordinator: Coordinator, store: PackageLookup, notify_outbox: Callable[[], None],
) -> APIRouter:
    """The endpoints; members are read from `store` and fed to `coordinator`."""
    router = APIRouter(prefix=CAMPAIGNS, tags=["campaigns"], responses=_PROBLEMS, route_class=_ProblemRoute)
    database, clock = coordinator.database, coordinator.clock
    feeder = CampaignFeeder(coordinator, store)

    operator = operator_only(settings.api_tokens, settings.production, "campaigns are run by operators")
    Operator = Annotated[Caller, Depends(operator)]
    CampaignId = Annotated[str, PathParam(description="the campaign's id (camp-<hex>) or its name")]

    async def feed(campaign_id: str) -> None:
        # The change is committed: a failure to feed now is the feeder's to retry, not the caller's problem.
        try:
            if await asyncio.to_thread(feeder.feed_campaign, campaign_id):
                notify_outbox()
        except Exception:
            log.exception("feeding campaign %s right away failed; the feeder's next pass tries again", campaign_id)

    def read_view(reference: str) -> CampaignView:
        with database.transaction() as session:
            return campaigns.view_of(session, campaigns.load_campaign(session, reference))

    @router.post(
        "", status_code=201, response_model=CampaignSubmitted,
        responses={200: {"model": CampaignSubmitted, "description": "a campaign of that name existed"}},
        summary="Submit a campaign, or add the members it lacks to the campaign of that name",
    )
    async def submit(body: CampaignCreate, who: Operator) -> JSONResponse:
        submitted = await asyncio.to_thread(campaigns.create_campaign, database, body, store, clock())
        log.info("campaign %s submitted by %s: %d members added", body.name, who.user, submitted.members_added)
        campaign_id = submitted.campaign.campaign_id
        await feed(campaign_id)
        submitted.campaign = await asyncio.to_thread(read_view, campaign_id)
        return JSONResponse(
            submitted.model_dump(mode="json"), status_code=201 if submitted.created else 200,
            headers={"Location": f"{CAMPAIGNS}/{campaign_id}"},
        )

    @router.get("", response_model=CampaignList, summary="Campaigns, newest first")
    async def list_all(
        who: Operator,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        state: Annotated[CampaignState | None, Query(description="only campaigns in this state")] = None,
    ) -> CampaignList:
        def read() -> CampaignList:
            with database.transaction() as session:
                return campaigns.list_campaigns(session, offset=offset, limit=limit, state=state)

        return await asyncio.to_thread(read)

    @router.get("/{campaign_id}", response_model=CampaignView, summary="A campaign and its members by state")
    async def read_one(campaign_id: CampaignId, who: Operator) -> CampaignView:
        return await asyncio.to_thread(read_view, campaign_id)

    @router.get(
        "/{campaign_id}/report", response_model=CampaignReport,
        summary="Members by state, failures by class with examples, throughput, time per MOUS, expected end",
    )
    async def report(campaign_id: CampaignId, who: Operator) -> CampaignReport:
        def read() -> CampaignReport:
            with database.transaction() as session:
                return campaign_report.report(session, campaign_id, clock())

        return await asyncio.to_thread(read)

    @router.post("/{campaign_id}/pause", response_model=CampaignView, summary="Submit no new member for now")
    async def pause(campaign_id: CampaignId, who: Operator) -> CampaignView:
        return await asyncio.to_thread(campaigns.pause, database, campaign_id, who.user, clock())

    @router.post("/{campaign_id}/resume", response_model=CampaignView, summary="Submit members again")
    async def resume(campaign_id: CampaignId, who: Operator) -> CampaignView:
        view = await asyncio.to_thread(campaigns.resume, database, campaign_id, who.user, clock())
        await feed(view.campaign_id)
        return await asyncio.to_thread(read_view, view.campaign_id)

    @router.post(
        "/{campaign_id}/cancel", response_model=CampaignView,
        summary="Cancel pending members and stop the MOUS runs in flight",
    )
    async def cancel(campaign_id: CampaignId, who: Operator) -> CampaignView:
        view = await asyncio.to_thread(campaigns.cancel, coordinator, campaign_id, who.user)
        notify_outbox()
        return view

    @router.post(
        "/{campaign_id}/retry", response_model=CampaignRetried,
        summary="Put the failed members of one error class back in the queue: each MOUS gets a new run",
    )
    async def retry(
        campaign_id: CampaignId, who: Operator,
        error_class: Annotated[ErrorClass, Query(description="the class of failures to retry, e.g. timeout")],
    ) -> CampaignRetried:
        view, requeued = await asyncio.to_thread(
            campaigns.retry, database, campaign_id, error_class, who.user, clock()
        )
        await feed(view.campaign_id)
        view = await asyncio.to_thread(read_view, view.campaign_id)
        return CampaignRetried(campaign=view, error_class=error_class, members_requeued=requeued)

    @router.post(
        "/{campaign_id}/release", response_model=CampaignReleased,
        summary="Let the members held after their category's sample run (all held categories, or those named)",
    )
    async def release(
        campaign_id: CampaignId, who: Operator,
        body: Annotated[CampaignRelease | None, Body(description="no body: every held category")] = None,
    ) -> CampaignReleased:
        categories = body.categories if body is not None else None
        view, released = await asyncio.to_thread(
            campaigns.release, database, campaign_id, categories, who.user, clock()
        )
        await feed(view.campaign_id)
        view = await asyncio.to_thread(read_view, view.campaign_id)
        return CampaignReleased(campaign=view, released=released, members_released=sum(released.values()))

    return router
