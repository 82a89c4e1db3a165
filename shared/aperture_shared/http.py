"""The health and metrics endpoints every worker serves (the coordinator serves them on its API)."""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import uvicorn
from aperture_contracts.api import Health
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

HealthCheck = Callable[[], dict[str, str]]


def add_health_routes(app: FastAPI, service: str, checks: HealthCheck) -> None:
    """/healthz (process alive), /readyz (dependencies reachable: 503 when one is not), /metrics."""

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        return Health(status="ok", service=service)

    @app.get("/readyz", response_model=Health, tags=["operations"])
    async def readyz() -> JSONResponse:
        results = checks()
        ready = all(value == "ok" for value in results.values())
        body = Health(status="ok" if ready else "unavailable", service=service, checks=results)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a worker: the worker owns SIGTERM/SIGINT (uvicorn would take them for itself)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_operations_endpoints(service: str, host: str, port: int, checks: HealthCheck) -> None:
    """Serve health and metrics until cancelled."""
    app = FastAPI(title=f"Aperture {service} (operations)", docs_url=None, redoc_url=None)
    add_health_routes(app, service, checks)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = _EmbeddedServer(config)
    try:
        await server.serve()
    except asyncio.CancelledError:
        server.should_exit = True
        raise
