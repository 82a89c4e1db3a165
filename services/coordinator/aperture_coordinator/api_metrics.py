"""Request metrics of the coordinator's API: rate, latency and errors per method, route and status class.

The route is the template a request matched (`/api/v1/mous/{mous_id}`), never the path it asked for, so
that MOUS ids and a scanner's random paths cannot add series; a request that matched no route counts as
`unmatched`. A plain ASGI middleware (not Starlette's BaseHTTPMiddleware): it leaves request and response
bodies streaming through untouched, which multi-GB package uploads need.
"""

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "aperture_api_requests",
    "API requests answered, by method, route template and status class (2xx, 4xx, 5xx, ...)",
    ["method", "route", "status_class"],
)
REQUEST_DURATION = Histogram(
    "aperture_api_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


def route_template(scope: Scope) -> str:
    """The template of the route the router matched (it records the route in the scope it was given)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class RequestMetricsMiddleware:
    """Counts and times every HTTP request of the app it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # An exception that escapes the app becomes a 500 in the server-error middleware outside this one.
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            route = route_template(scope)
            REQUESTS.labels(method, route, status_class(status)).inc()
            REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)


def install_request_metrics(app: Any) -> None:
    """Add the middleware to a Starlette/FastAPI app (before it starts serving)."""
    app.add_middleware(RequestMetricsMiddleware)
