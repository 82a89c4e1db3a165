"""The coordinator's HTTP API (/api/v1) with its health, readiness and metrics endpoints.

Bad input never makes a 500: every 4xx carries a Problem body whose `errors` name the field that is
wrong and say what to do. OpenAPI is served at /openapi.json, and read at /docs.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Protocol

from aperture_contracts.api import Health, MousDetail, MousList, MousSummary, Problem, SubmitFromStorage
from aperture_contracts.enums import MousState
from aperture_contracts.ids import canonical_mous_id, mous_key
from aperture_contracts.storage import ObjectRef
from aperture_shared.errors import JobError
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from aperture_coordinator.auth import Forbidden, Unauthenticated
from aperture_coordinator.campaigns_api import campaigns_router
from aperture_coordinator.db import Database
from aperture_coordinator.imaging_requests import RequestRefused, UnknownRequest
from aperture_coordinator.job_messages import input_prefix
from aperture_coordinator.ledger_api import ledger_router
from aperture_coordinator.metrics import SUBMISSIONS, DatabaseStateCollector
from aperture_coordinator.queries import list_mous, mous_detail, mous_summary
from aperture_coordinator.requests_api import requests_router
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator, NothingToCancel, Submission, UnknownMous
from aperture_coordinator.uploads import (
    PACKAGE_FIELD,
    ReceivedUpload,
    SubmissionProblem,
    parse_rerun,
    receive_multipart,
    resolve_mous_id,
    safe_package_name,
    validate_mous_uid,
)
from aperture_coordinator.web_ui import mount_web_ui

log = logging.getLogger(__name__)

API = "/api/v1"
MAX_JSON_BODY_BYTES = 64 * 1024


class PackageStore(Protocol):
    """What the API needs of the object store (aperture_shared.storage.ObjectStore; sync methods)."""

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> ObjectRef: ...

    def stat(self, key: str) -> ObjectRef: ...

    def exists(self, key: str) -> bool: ...

    def presigned_get(self, key: str, expires: timedelta) -> str: ...


@dataclass
class CoordinatorServices:
    """What the API works with. `notify_outbox` wakes the relay after a commit that wrote messages;
    `readiness` adds checks of dependencies the API does not own (the broker connection)."""

    database: Database
    coordinator: Coordinator
    store: PackageStore
    notify_outbox: Callable[[], None] = lambda: None
    readiness: Callable[[], dict[str, str]] = field(default=lambda: {})


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def problem(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = Problem(detail=detail, errors=errors or [])
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


def field_problem(error: SubmissionProblem) -> JSONResponse:
    return problem(error.status, error.message, [{"field": error.field, "message": error.message}])


def _validation_errors(errors: list[Any], default_location: str) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors as {field, in, message, type}: `field` is the name a client sent."""
    described = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        where = default_location
        if location and location[0] in ("body", "query", "path", "header", "cookie"):
            where = location.pop(0)
        described.append(
            {
                "field": ".".join(location) or where,
                "in": where,
                "message": str(error.get("msg", "invalid")).removeprefix("Value error, "),
                "type": error.get("type", "value_error"),
            }
        )
    return described


def _validation_problem(errors: list[dict[str, Any]]) -> JSONResponse:
    listed = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
    return problem(422, f"the request is not valid: {listed} (the API is described at /docs)", errors)


def parse_mous_id(value: str) -> str:
    """A path's MOUS id in either form (uid://A/B/C, URL-encoded, or uid___A_B_C), canonical."""
    try:
        return validate_mous_uid(canonical_mous_id(value), field_name="mous_id")
    except SubmissionProblem as error:
        raise SubmissionProblem("mous_id", error.message) from error


async def _read_limited(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise SubmissionProblem("body", f"the JSON body is larger than {limit} bytes", status=413)
    return bytes(body)


_SUBMIT_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [PACKAGE_FIELD],
                    "properties": {
                        PACKAGE_FIELD: {
                            "type": "string", "format": "binary",
                            "description": "the MS package (a tar archive, optionally compressed)",
                        },
                        "mous_uid": {"type": "string", "description": "archive uid; overrides the package's"},
                        "rerun": {"type": "boolean", "description": "re-process an MOUS submitted before"},
                    },
                }
            },
            "application/json": {"schema": SubmitFromStorage.model_json_schema()},
        },
    }
}
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (400, "the body cannot be read"),
        (404, "no such MOUS"),
        (409, "the MOUS is finished"),
        (413, "body too large"),
        (507, "no room to receive the upload"),
        (415, "neither multipart/form-data nor JSON"),
        (422, "a field is wrong: `errors` names it"),
        (503, "the object store or the database is unavailable"),
    )
}


def create_app(
    settings: CoordinatorSettings, services: CoordinatorServices, *, lifespan: Lifespan | None = None
) -> FastAPI:
    """The API over `services`; `lifespan` starts and stops the background work (main.py's)."""

    @asynccontextmanager
    async def no_background(_app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="Aperture coordinator",
        version="1.0",
        description="Submit MS packages, follow their processing, fetch their products.",
        lifespan=lifespan or no_background,
    )
    if settings.upload_dir is not None:
        settings.upload_dir.mkdir(parents=True, exist_ok=True)
    state_metrics = CollectorRegistry()
    state_metrics.register(DatabaseStateCollector(services.database))
    link_ttl = timedelta(seconds=settings.download_link_ttl_s)

    # -- errors ----------------------------------------------------------------------------------------

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _validation_problem(_validation_errors(list(error.errors()), "body"))

    @app.exception_handler(SubmissionProblem)
    async def _bad_submission(_request: Request, error: SubmissionProblem) -> JSONResponse:
        return field_problem(error)

    @app.exception_handler(UnknownMous)
    async def _unknown_mous(_request: Request, error: UnknownMous) -> JSONResponse:
        return problem(404, str(error), [{"field": "mous_id", "message": str(error)}])

    @app.exception_handler(NothingToCancel)
    async def _nothing_to_cancel(_request: Request, error: NothingToCancel) -> JSONResponse:
        return problem(409, str(error))

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_request: Request, error: Unauthenticated) -> JSONResponse:
        response = problem(401, str(error), [{"field": "Authorization", "message": str(error)}])
        response.headers["WWW-Authenticate"] = 'Bearer realm="aperture"'
        return response

    @app.exception_handler(Forbidden)
    async def _forbidden(_request: Request, error: Forbidden) -> JSONResponse:
        return problem(403, str(error), [{"field": "Authorization", "message": str(error)}])

    @app.exception_handler(RequestRefused)
    async def _request_refused(_request: Request, error: RequestRefused) -> JSONResponse:
        errors = [{"field": p.field, "message": p.message} for p in error.problems]
        return problem(error.status, f"the request cannot be made: {error}", errors)

    @app.exception_handler(UnknownRequest)
    async def _unknown_request(_request: Request, error: UnknownRequest) -> JSONResponse:
        return problem(404, str(error), [{"field": "request_id", "message": str(error)}])

    @app.exception_handler(JobError)
    async def _storage_unavailable(_request: Request, error: JobError) -> JSONResponse:
        # Storage failures surface as aperture_shared.errors (StorageError, IntegrityError).
        log.warning("object store: %s (%s)", error.message, error.detail)
        return problem(503, f"{error.message}; try again in a minute")

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(_request: Request, _error: ClientDisconnect) -> JSONResponse:
        log.info("a client disconnected before its request was read")
        return problem(400, "the request body was cut off: send it again")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else json.dumps(error.detail)
        if error.status_code == 404:
            detail = f"{detail}: no such endpoint; the API is described at /docs"
        return problem(error.status_code, detail)

    @app.exception_handler(Exception)
    async def _internal_error(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error in a request")
        return problem(500, "the coordinator failed on this request (a bug); it is logged, please report it")

    # -- submitting ------------------------------------------------------------------------------------

    async def submit(
        mous_id: str, package: ObjectRef, package_name: str, rerun: bool, source: str
    ) -> Response:
        outcome = await asyncio.to_thread(
            services.coordinator.submit, Submission(mous_id, package, package_name, rerun)
        )
        services.notify_outbox()
        SUBMISSIONS.labels(source, "created" if outcome.created else "existing").inc()
        summary = await asyncio.to_thread(_summary, outcome.mous_id)
        return JSONResponse(
            summary.model_dump(mode="json"),
            status_code=201 if outcome.created else 200,
            headers={"Location": f"{API}/mous/{mous_key(outcome.mous_id)}"},
        )

    def _summary(mous_id: str) -> MousSummary:
        with services.database.transaction() as session:
            summary = mous_summary(session, mous_id)
        if summary is None:
            raise UnknownMous(mous_id)
        return summary

    async def existing(mous_id: str, rerun: bool, source: str) -> Response | None:
        """The existing MOUS, unchanged, when this is a plain re-submission."""
        if rerun or await asyncio.to_thread(services.coordinator.mous_run, mous_id) is None:
            return None
        SUBMISSIONS.labels(source, "existing").inc()
        summary = await asyncio.to_thread(_summary, mous_id)
        return JSONResponse(summary.model_dump(mode="json"), status_code=200)

    async def submit_upload(request: Request, content_type: str) -> Response:
        upload: ReceivedUpload = await receive_multipart(
            content_type, request.stream(), spool_dir=settings.upload_dir, max_bytes=settings.max_upload_bytes
        )
        try:
            explicit = upload.fields.get("mous_uid", "").strip() or None
            rerun = parse_rerun(upload.fields.get("rerun", "false"))
            mous_id = await asyncio.to_thread(resolve_mous_id, explicit, upload.path, upload.filename)
            response = await existing(mous_id, rerun, "upload")
            if response is not None:
                return response
            package_name = safe_package_name(upload.filename)
            key = input_prefix(mous_id) + package_name
            package = await asyncio.to_thread(services.store.put_file, key, upload.path, upload.content_type)
        finally:
            await asyncio.to_thread(upload.path.unlink, True)
        return await submit(mous_id, package, package_name, rerun, "upload")

    async def submit_reference(request: Request) -> Response:
        raw = await _read_limited(request, MAX_JSON_BODY_BYTES)
        try:
            body = SubmitFromStorage.model_validate_json(raw)
        except ValidationError as error:
            return _validation_problem(_validation_errors(list(error.errors(include_url=False)), "body"))
        explicit = (body.mous_uid or "").strip() or None
        mous_id = resolve_mous_id(explicit, None, PurePosixPath(body.object_key).name)
        response = await existing(mous_id, body.rerun, "reference")
        if response is not None:
            return response
        if not await asyncio.to_thread(services.store.exists, body.object_key):
            raise SubmissionProblem(
                "object_key",
                f"the object store has no object {body.object_key!r}: upload the package first, "
                "or submit it as a file",
            )
        package = await asyncio.to_thread(services.store.stat, body.object_key)
        return await submit(mous_id, package, safe_package_name(body.object_key), body.rerun, "reference")

    @app.post(
        f"{API}/mous",
        tags=["mous"],
        summary="Submit an MS package: a file upload, or a reference to an object already stored",
        status_code=201,
        response_model=MousSummary,
        responses={200: {"model": MousSummary, "description": "submitted before: unchanged"}, **_PROBLEMS},
        openapi_extra=_SUBMIT_REQUEST_BODY,
    )
    async def submit_mous(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type == "multipart/form-data":
            return await submit_upload(request, content_type)
        if media_type == "application/json":
            return await submit_reference(request)
        raise SubmissionProblem(
            "Content-Type",
            f"cannot read a {media_type or 'body without a Content-Type'}: upload the package as "
            "multipart/form-data (field 'package'), or send JSON naming a stored object (object_key)",
            status=415,
        )

    # -- reading ---------------------------------------------------------------------------------------

    @app.get(f"{API}/mous", tags=["mous"], response_model=MousList, responses=_PROBLEMS)
    async def list_all(
        offset: Annotated[int, Query(ge=0, description="how many to skip")] = 0,
        limit: Annotated[int, Query(ge=1, le=500, description="how many to return")] = 50,
        state: Annotated[MousState | None, Query(description="only MOUS in this state")] = None,
    ) -> MousList:
        def read() -> MousList:
            with services.database.transaction() as session:
                return list_mous(session, offset=offset, limit=limit, state=state)

        return await asyncio.to_thread(read)

    def _sign(detail: MousDetail) -> MousDetail:
        for product in detail.products:
            try:
                product.download_url = services.store.presigned_get(product.object.key, link_ttl)
            except JobError as error:
                log.warning("no download link for %s: %s", product.object.key, error.message)
        return detail

    @app.get(
        API + "/mous/{mous_id:path}",
        tags=["mous"],
        response_model=MousDetail,
        responses=_PROBLEMS,
        summary="An MOUS with its jobs, attempts, errors, QA and products (with time-limited links)",
    )
    async def detail(mous_id: str) -> MousDetail:
        canonical = parse_mous_id(mous_id)

        def read() -> MousDetail:
            with services.database.transaction() as session:
                found = mous_detail(session, canonical)
            if found is None:
                raise UnknownMous(canonical)
            return _sign(found)

        return await asyncio.to_thread(read)

    @app.post(
        API + "/mous/{mous_id:path}/cancel",
        tags=["mous"],
        response_model=MousSummary,
        responses=_PROBLEMS,
        summary="Cancel every unfinished job of an MOUS (a cancelled MOUS stays cancelled: 200 again)",
    )
    async def cancel(mous_id: str) -> MousSummary:
        canonical = parse_mous_id(mous_id)
        await asyncio.to_thread(services.coordinator.cancel, canonical, "cancelled by request")
        services.notify_outbox()
        return await asyncio.to_thread(_summary, canonical)

    # notify_outbox is replaced when the service starts (the relay's wake-up): look it up at call time.
    app.include_router(
        requests_router(settings, services.coordinator, services.store, lambda: services.notify_outbox())
    )
    # Looked up at each call: the lifespan sets notify_outbox once the relay runs, after the app is made.
    app.include_router(
        campaigns_router(settings, services.coordinator, services.store, lambda: services.notify_outbox())
    )
    app.include_router(ledger_router(settings, services.database))
    mount_web_ui(app)

    # -- operations ------------------------------------------------------------------------------------

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        return Health(status="ok", service=settings.service_name)

    @app.get("/readyz", response_model=Health, tags=["operations"], responses={503: {"model": Health}})
    async def readyz() -> JSONResponse:
        checks = dict(services.readiness())
        try:
            await asyncio.to_thread(services.database.ping)
            checks["database"] = "ok"
        except Exception as error:  # any failure means not ready; the reason is what matters
            checks["database"] = f"unreachable: {type(error).__name__}"
        ready = all(value == "ok" for value in checks.values())
        body = Health(status="ok" if ready else "unavailable", service=settings.service_name, checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        def render() -> bytes:
            return generate_latest(REGISTRY) + generate_latest(state_metrics)

        return Response(await asyncio.to_thread(render), media_type=CONTENT_TYPE_LATEST)

    return app
