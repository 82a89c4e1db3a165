"""/api/v1/requests: users' imaging requests (create, estimate, list, read, re-run, cancel, products).

Every endpoint needs a bearer token (auth.py). A user sees and acts on their own requests only; another
user's request answers 404 exactly as a missing one does, so that ids cannot be probed. Problems are
Problem bodies naming the field (422), the limit (429), the MOUS (404/409) or the token (401).
"""

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Protocol

from aperture_contracts.api import Problem
from aperture_contracts.ids import canonical_mous_id
from aperture_contracts.requests import DryRun, Identity, ProductList, RequestCreate, RequestList, RequestView
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from aperture_coordinator.auth import Caller, caller_of
from aperture_coordinator.imaging_requests import (
    RequestProblem,
    RequestRefused,
    add_version,
    check_limits,
    check_request,
    create_request,
    estimate,
    list_requests,
    load_request,
    resolution_problems,
    run_images,
    version_products,
    view,
)
from aperture_coordinator.models import Mous
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator

REQUESTS = "/api/v1/requests"
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (401, "no token, or an unknown one"),
        (404, "no such request of yours, or no such MOUS"),
        (409, "the MOUS has not finished processing"),
        (422, "a field is wrong: `errors` names it"),
        (429, "a per-user limit (rate, requests at once)"),
    )
}


class LinkSigner(Protocol):
    def presigned_get(self, key: str, expires: timedelta) -> str: ...


def requests_router(
    settings: CoordinatorSettings, coordinator: Coordinator, store: LinkSigner, notify_outbox: Callable[[], None],
) -> APIRouter:
    """The endpoints; accepted versions are handed to `coordinator` to plan and dispatch at once."""
    router = APIRouter(prefix=REQUESTS, tags=["requests"], responses=_PROBLEMS)
    database, clock = coordinator.database, coordinator.clock

    async def start(mous_id: str) -> None:
        # The version is committed: plan and dispatch it now rather than at the next reconcile pass.
        await asyncio.to_thread(coordinator.start_requests, mous_id)
        notify_outbox()

    def caller(authorization: Annotated[str | None, Header(description="Bearer <token>")] = None) -> Caller:
        return caller_of(authorization, settings.api_tokens, settings.production)

    Authenticated = Annotated[Caller, Depends(caller)]

    def _prepared(session: Any, body: RequestCreate) -> tuple[Mous, Any]:
        canonical = canonical_mous_id(body.mous_id)
        mous = session.scalar(select(Mous).where(Mous.id == canonical))
        problems = check_request(mous, body)
        if not problems and mous is not None:
            problems = resolution_problems(body, run_images(session, mous)[0])
        if problems:
            raise RequestRefused(problems)
        assert mous is not None
        found = estimate(session, mous, body, settings.max_request_product_bytes)
        if not found.within_quota:
            raise RequestRefused([RequestProblem(
                "cubes", f"the products would take {found.product_bytes / 1e9:.1f} GB; your limit is "
                f"{settings.max_request_product_bytes / 1e9:.1f} GB: ask for fewer channels, a smaller field or "
                "fewer cubes",
            )])
        return mous, found

    @router.post(
        "", status_code=201, response_model=RequestView,
        responses={200: {"model": DryRun, "description": "dry_run: the estimate, nothing stored"}},
        summary="Ask for an imaging request (dry_run=true: only check it and estimate what it costs)",
    )
    async def create(
        body: RequestCreate, who: Authenticated,
        dry_run: Annotated[bool, Query(description="check and estimate only; nothing is stored")] = False,
    ) -> JSONResponse:
        def run() -> tuple[int, Any]:
            now = clock()
            with database.transaction() as session:
                _mous, found = _prepared(session, body)
                if dry_run:
                    return 200, DryRun(parameters=body, estimate=found)
                limits = check_limits(
                    session, who, settings.request_rate_per_minute, settings.max_active_requests_per_user, now
                )
                if limits:
                    raise RequestRefused(limits)
                return 201, view(create_request(session, who, body, found, now))

        status, answer = await asyncio.to_thread(run)
        headers = {}
        if status == 201:
            await start(answer.mous_id)
            answer = await asyncio.to_thread(read_view, answer.request_id, who)
            headers = {"Location": f"{REQUESTS}/{answer.request_id}"}
        return JSONResponse(answer.model_dump(mode="json"), status_code=status, headers=headers)

    def read_view(request_id: str, who: Caller) -> RequestView:
        with database.transaction() as session:
            return view(load_request(session, request_id, who))

    @router.get("/whoami", response_model=Identity, summary="Who the token names, and their role")
    async def whoami(who: Authenticated) -> Identity:
        return Identity(user=who.user, role=who.role.value)

    @router.get("", response_model=RequestList, summary="Your requests (an operator's: everyone's)")
    async def list_all(
        who: Authenticated,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> RequestList:
        def read() -> RequestList:
            with database.transaction() as session:
                return list_requests(session, who, offset, limit)

        return await asyncio.to_thread(read)

    @router.get("/{request_id}", response_model=RequestView, summary="A request with every version")
    async def read_one(request_id: str, who: Authenticated) -> RequestView:
        return await asyncio.to_thread(read_view, request_id, who)

    @router.post(
        "/{request_id}/versions", status_code=201, response_model=RequestView,
        summary="Run a request again (as asked before, or with new parameters): a new version",
    )
    async def rerun(request_id: str, who: Authenticated, body: RequestCreate | None = None) -> RequestView:
        def write() -> str:
            now = clock()
            with database.transaction() as session:
                request = load_request(session, request_id, who)
                parameters = body or RequestCreate.model_validate(request.versions[-1].parameters)
                if canonical_mous_id(parameters.mous_id) != request.mous_id:
                    raise RequestRefused([RequestProblem(
                        "mous_id", f"a version images the request's MOUS ({request.mous_id}); make a new request "
                        "for another MOUS",
                    )])
                _mous, found = _prepared(session, parameters)
                limits = check_limits(
                    session, who, settings.request_rate_per_minute, settings.max_active_requests_per_user, now
                )
                if limits:
                    raise RequestRefused(limits)
                add_version(session, request, parameters, found, now)
                return request.mous_id

        await start(await asyncio.to_thread(write))
        return await asyncio.to_thread(read_view, request_id, who)

    @router.post(
        "/{request_id}/cancel", response_model=RequestView,
        summary="Cancel its unfinished versions: running CASA work is stopped and their outputs removed",
    )
    async def cancel(request_id: str, who: Authenticated) -> RequestView:
        await asyncio.to_thread(read_view, request_id, who)  # another user's request: 404
        await asyncio.to_thread(coordinator.cancel_request, request_id, f"cancelled by {who.user}")
        notify_outbox()
        return await asyncio.to_thread(read_view, request_id, who)

    @router.get(
        "/{request_id}/versions/{version}/products", response_model=ProductList,
        responses={409: {"model": Problem, "description": "the version has not ended, or was cancelled"}},
        summary="The files a version delivered, with download links valid for a limited time",
    )
    async def products(request_id: str, version: int, who: Authenticated) -> ProductList:
        def read() -> ProductList:
            ttl = timedelta(seconds=settings.download_link_ttl_s)
            with database.transaction() as session:
                found = version_products(session, load_request(session, request_id, who), version)
            return found.signed(store.presigned_get, ttl, clock())

        return await asyncio.to_thread(read)

    return router
